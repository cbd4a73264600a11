"""Restarts: policies, a strategy, and the intensity limit.

``cache`` crashes once; the supervisor's REST_FOR_ONE strategy stops ``web`` (declared after
it), then starts ``cache`` and ``web`` again in order, while ``db`` keeps running. A second
tree crashes in a loop and gives up with RestartLimitExceeded after 2 restarts.
"""

from __future__ import annotations

import anyio

from super_visor import (
    CancellationToken,
    Restart,
    RestartLimitExceeded,
    Strategy,
    SupervisorBuilder,
    SupervisorError,
)


async def healing() -> None:
    cache_runs = 0
    web_is_up = anyio.Event()
    web_is_back = anyio.Event()

    async def db(token: CancellationToken) -> None:
        print("db: start", flush=True)
        await token.wait()
        print("db: stop", flush=True)

    async def cache(token: CancellationToken) -> None:
        nonlocal cache_runs
        cache_runs += 1
        print(f"cache: start (run {cache_runs})", flush=True)
        if cache_runs == 1:
            await web_is_up.wait()
            print("cache: crash!", flush=True)
            raise ConnectionError("cache lost its connection")
        await token.wait()
        print("cache: stop", flush=True)

    async def web(token: CancellationToken) -> None:
        print("web: start", flush=True)
        web_is_up.set()
        if cache_runs == 2:
            web_is_back.set()
        await token.wait()
        print("web: stop", flush=True)

    app = (
        SupervisorBuilder("app", strategy=Strategy.REST_FOR_ONE)
        .add_proc(db, restart=Restart.PERMANENT)
        .add_proc(cache, restart=Restart.PERMANENT)
        .add_proc(web, restart=Restart.PERMANENT)
        .build()
    )
    async with app.running() as handle:
        await web_is_back.wait()
        print("healed", flush=True)
    cache_outcome = handle.report["cache"]
    print(f"cache: {cache_outcome.status.name}, {cache_outcome.restarts} restart(s)", flush=True)
    print(f"cache history: {cache_outcome.history[0]!r}", flush=True)


async def crash_loop() -> None:
    async def broken(token: CancellationToken) -> None:
        raise OSError("config file missing")

    app = (
        SupervisorBuilder("loop", max_restarts=2, within=10.0)
        .add_proc(broken, restart=Restart.PERMANENT)
        .build()
    )
    try:
        await app.start(handle_signals=False)
    except SupervisorError as error:
        limit = error.subgroup(RestartLimitExceeded)
        assert limit is not None
        print(f"gave up: {limit.exceptions[0]}", flush=True)
        print(f"broken restarts: {error.report['broken'].restarts}", flush=True)


async def main() -> None:
    await healing()
    await crash_loop()


if __name__ == "__main__":
    anyio.run(main)
