"""Readiness: a gating proc holds back the procs declared after it until it is ready.

``wait_ready=True`` makes the supervisor wait for ``token.ready(value)`` before it starts the
next proc; ``ready_timeout`` bounds that wait. The value is kept:
``handle.ready_value("db")`` returns it, which is how a test finds the port a server bound.

The second half shows a proc that never becomes ready in time: start-up fails with
`StartupError`. The late proc is stopped like any other (token cancelled, then its grace),
and the procs after it are reported ``NOT_STARTED``.
"""

from __future__ import annotations

import anyio

from super_visor import CancellationToken, StartupError, SupervisorBuilder, SupervisorError


async def db(token: CancellationToken) -> None:
    print("db: connecting", flush=True)
    await anyio.sleep(0.3)  # stands in for real connection set-up
    print("db: ready", flush=True)
    token.ready("postgres://localhost/app")
    await token.wait()


async def api(token: CancellationToken) -> None:
    print("api: started (db is ready by now)", flush=True)
    await token.wait()


async def slow_db(token: CancellationToken) -> None:
    with anyio.move_on_after(10):  # a connection attempt that takes far too long
        await token.wait()
    token.ready()


async def main() -> None:
    app = (
        SupervisorBuilder("app")
        .add_proc(db, wait_ready=True, ready_timeout=5.0)
        .add_proc(api)
        .build()
    )
    async with app.running() as handle:  # entered once every proc is ready
        print(f"ready value of db: {handle.ready_value('db')}", flush=True)
    print(f"report: {handle.report.reason}", flush=True)

    broken = (
        SupervisorBuilder("broken")
        .add_proc(slow_db, name="db", wait_ready=True, ready_timeout=0.2)
        .add_proc(api)
        .build()
    )
    try:
        await broken.start(handle_signals=False)
    except SupervisorError as exc:  # one sub-exception per failed proc
        error = exc.exceptions[0]
        assert isinstance(error, StartupError)
        print(f"start-up failed: {error}", flush=True)
        print(f"api: {exc.report['api'].status.name}", flush=True)


if __name__ == "__main__":
    anyio.run(main)
