"""Periodic and Thread: a scheduled async job and a blocking function, stopped cleanly.

``cleanup`` runs every 0.1 s on a fixed grid; its third call is slow on purpose, so the ticks
it overlaps are skipped (never run twice at once) and counted. ``indexer`` is blocking code in
a thread: it checks its ``stop`` flag (a `threading.Event`) between batches and returns when
it is set. ``stubborn`` ignores its flag: when its grace runs out it is abandoned, and the
report says so instead of shutdown hanging on it.
"""

from __future__ import annotations

import threading

import anyio

from super_visor import SupervisorBuilder, SupervisorError
from super_visor.procs import Periodic, PeriodicStats, Thread

calls = 0
release_stubborn = threading.Event()


async def cleanup() -> None:
    global calls
    calls += 1
    print(f"cleanup: run {calls}", flush=True)
    if calls == 3:
        await anyio.sleep(0.25)  # overruns two ticks: they are skipped, not queued


def indexer(stop: threading.Event, batch: int) -> int:
    indexed = 0
    while not stop.wait(0.01):  # blocking work in small steps, checking the flag
        indexed += batch
    print("indexer: stop flag seen, returning", flush=True)
    return indexed


def stubborn(stop: threading.Event) -> None:
    release_stubborn.wait()  # never looks at its flag


async def main() -> None:
    app = (
        SupervisorBuilder("app")
        .add_proc(Thread(stubborn, grace=0.2))
        .add_proc(Thread(indexer, 100))
        .add_proc(Periodic(cleanup, every=0.1, run_at_start=True))
        .build()
    )
    report = None
    try:
        async with app.running():
            await anyio.sleep(0.7)  # let the app run for a while
    except SupervisorError as exc:
        report = exc.report
    finally:
        release_stubborn.set()  # lets the abandoned thread end, so the example exits at once
    assert report is not None, "the abandoned thread is a failure, so running() raised"
    stats = report["cleanup"].result
    assert isinstance(stats, PeriodicStats)
    print(f"cleanup: {stats.runs} runs, {stats.missed} missed ticks", flush=True)
    print(f"indexer: {report['indexer'].status.value}", flush=True)
    print(report.render(), flush=True)


if __name__ == "__main__":
    anyio.run(main)
