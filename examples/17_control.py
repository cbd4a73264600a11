"""Controlling a running tree: stop, start, restart, abort and fail any proc, at any depth.

``handle.stop()`` stops one proc gracefully and leaves it in the tree, stopped; ``start()``
runs it again; ``restart()`` does both. Neither counts as a restart of the proc, and a
stopped proc does not end the app, even a significant one. ``abort()`` forces a proc now,
``inject_failure()`` makes it fail as if it had raised (a drill: its restart policy applies).
A proc reaches its own supervisor's controls through ``token.supervisor``: here the
dispatcher starts a job in its pipeline.
"""

from __future__ import annotations

from collections import defaultdict

import anyio

from super_visor import CancellationToken, Event, EventKind, Restart, SupervisorBuilder


async def db(token: CancellationToken) -> None:
    print("db: connected", flush=True)
    await token.wait()
    print(f"db: closed ({token.reason})", flush=True)


async def stubborn(token: CancellationToken) -> None:
    try:
        await anyio.sleep_forever()  # ignores its token: only force ends it
    finally:
        print("stubborn: forced", flush=True)


async def job(token: CancellationToken) -> None:
    await token.wait()


async def dispatcher(token: CancellationToken) -> None:
    await token.supervisor.start_child(job, name="job-1")  # in its own supervisor
    print(f"dispatcher: started {token.path.rpartition('/')[0]}/job-1", flush=True)
    token.ready()
    await token.wait()


async def main() -> None:
    seen: defaultdict[tuple[EventKind, str], anyio.Event] = defaultdict(anyio.Event)

    def on_event(event: Event) -> None:
        if event.kind is EventKind.CONTROL:
            print(f"event: {event.path}: {event.detail}", flush=True)
        seen[event.kind, event.path].set()

    pipeline = SupervisorBuilder("pipeline").add_proc(dispatcher, wait_ready=True)
    app = (
        SupervisorBuilder("app")
        .add_proc(db, significant=True)
        .add_proc(stubborn, grace=60)
        .add_proc(pipeline, restart=Restart.PERMANENT)
        .on_event(on_event)
        .build()
    )
    async with app.running() as handle:
        await handle.stop("db")
        print(f"db is {handle.status()['db'].state}; the app runs on: {handle.ready}", flush=True)
        await handle.start("db")
        print(f"db restarts: {handle.status()['db'].restarts}", flush=True)

        handle.abort("stubborn")  # no 60 s grace: forced now
        await seen[EventKind.FORCED, "app/stubborn"].wait()
        print(f"stubborn is {handle.status()['stubborn'].state}", flush=True)

        print(f"pipeline/job-1 running: {handle.is_running('pipeline/job-1')}", flush=True)
        del seen[EventKind.READY, "app/pipeline"]
        handle.inject_failure("pipeline", RuntimeError("drill"))
        await seen[EventKind.READY, "app/pipeline"].wait()  # restarted by its policy
        print(f"pipeline restarts: {handle.status()['pipeline'].restarts}", flush=True)
    for proc in handle.report.walk():
        print(f"  {proc.path}: {proc.status.name}", flush=True)


if __name__ == "__main__":
    anyio.run(main)
