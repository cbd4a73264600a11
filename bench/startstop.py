"""Start N idle procs in order, then stop them in reverse; print time and memory per proc.

Three contenders do the same ordered work in the same run, each measurement in a fresh
subprocess so heaps do not leak into each other:

- ``super_visor``: N procs ``await token.wait()`` under one supervisor; ``running()`` returns
  once all have begun, leaving the block stops them in reverse, one at a time.
- ``raw anyio``: a TaskGroup, ``await tg.start(proc)`` per proc, then cancel each proc's own
  scope in reverse order and wait for it to finish before the next (what we replace).
- ``raw asyncio``: ``asyncio.TaskGroup`` with an Event per task for "started" and for "done":
  the floor in Python (asyncio only).

Time is the median wall time of start + stop (build excluded, printed apart); memory is the
traced allocation (tracemalloc) while all N are running, divided by N, in a separate run
because tracing slows everything down. Nothing here asserts: figures are printed.

    python bench/startstop.py                 # N = 1k, 10k, 100k on asyncio and trio
    python bench/startstop.py --n 10000 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskStatus


# ---------------------------------------------------------------- contenders (in a child)


async def super_visor_run(n: int, on_all_started: Callable[[], None]) -> float:
    from super_visor import CancellationToken, SupervisorBuilder

    async def idle(token: CancellationToken) -> None:
        await token.wait()

    builder = SupervisorBuilder("bench")
    for i in range(n):
        builder.add_proc(idle, name=f"p{i}")
    t0 = time.perf_counter()
    sup = builder.build()
    build_time = time.perf_counter() - t0
    async with sup.running():
        on_all_started()
    return build_time


async def raw_anyio_run(n: int, on_all_started: Callable[[], None]) -> float:
    async def idle(task_status: TaskStatus[tuple[anyio.CancelScope, anyio.Event]]) -> None:
        done = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                task_status.started((scope, done))
                await anyio.sleep_forever()
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        started = [await tg.start(idle) for _ in range(n)]
        on_all_started()
        for scope, done in reversed(started):
            scope.cancel()
            await done.wait()
    return 0.0


async def raw_asyncio_run(n: int, on_all_started: Callable[[], None]) -> float:
    async def idle(started: asyncio.Event, stop: asyncio.Event, done: asyncio.Event) -> None:
        started.set()
        try:
            await stop.wait()
        finally:
            done.set()

    async with asyncio.TaskGroup() as tg:
        procs = []
        for _ in range(n):
            started, stop, done = asyncio.Event(), asyncio.Event(), asyncio.Event()
            tg.create_task(idle(started, stop, done))
            await started.wait()
            procs.append((stop, done))
        on_all_started()
        for stop, done in reversed(procs):
            stop.set()
            await done.wait()
    return 0.0


CONTENDERS: dict[str, Callable[[int, Callable[[], None]], Awaitable[float]]] = {
    "super_visor": super_visor_run,
    "raw anyio": raw_anyio_run,
    "raw asyncio": raw_asyncio_run,
}


def child(contender: str, backend: str, n: int, measure: str) -> None:
    """Run one measurement and print it as JSON (called in a fresh interpreter)."""
    fn = CONTENDERS[contender]
    memory: list[int] = []
    if contender == "super_visor":
        # The engine loads on a process's first run (`import super_visor` stays cheap); a
        # service pays that once, so it is loaded before anything is measured, as anyio is.
        importlib.import_module("super_visor._engine")

    def on_all_started() -> None:
        if measure == "memory":
            memory.append(tracemalloc.get_traced_memory()[0])

    async def main() -> tuple[float, float]:
        if measure == "memory":
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            memory.append(base)
        t0 = time.perf_counter()
        build = await fn(n, on_all_started)
        return time.perf_counter() - t0 - build, build

    if contender == "raw asyncio":
        total, build = asyncio.run(main())
    else:
        total, build = anyio.run(main, backend=backend)
    per_proc = (memory[1] - memory[0]) / n if len(memory) == 2 else 0.0
    print(json.dumps({"seconds": total, "build": build, "bytes_per_proc": per_proc}))


# ---------------------------------------------------------------- the parent


def measure(contender: str, backend: str, n: int, what: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", contender, backend, str(n), what]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def row(contender: str, backend: str, n: int, repeat: int) -> dict[str, float]:
    times = [measure(contender, backend, n, "time") for _ in range(repeat)]
    mem = measure(contender, backend, n, "memory")
    return {
        "seconds": statistics.median(t["seconds"] for t in times),
        "build": statistics.median(t["build"] for t in times),
        "kb_per_proc": mem["bytes_per_proc"] / 1024,
    }


#: Issue #14's goals, set on asyncio: start+stop time against raw anyio, memory per idle
#: proc; on trio, each figure within 1.3x of asyncio's.
TIME_GOAL, KB_GOAL, TRIO_GOAL = 0.5, 4.0, 1.3


def print_goals(
    backend: str,
    n: int,
    ours: dict[str, float],
    anyio_row: dict[str, float],
    on_asyncio: dict[str, float],
) -> None:
    """One line per backend: each goal, its figure in this run, met or not."""
    ratio = ours["seconds"] / anyio_row["seconds"]
    if backend == "asyncio":
        kb = ours["kb_per_proc"]
        checks = [
            (f"start+stop <= {TIME_GOAL}x raw anyio", f"{ratio:.2f}x", ratio <= TIME_GOAL),
            (f"<= {KB_GOAL:g} KB/proc", f"{kb:.2f}", kb <= KB_GOAL),
        ]
    else:
        time_vs = ours["seconds"] / on_asyncio["seconds"]
        kb_vs = ours["kb_per_proc"] / on_asyncio["kb_per_proc"]
        checks = [
            (f"time <= {TRIO_GOAL}x asyncio's", f"{time_vs:.2f}x", time_vs <= TRIO_GOAL),
            (f"KB/proc <= {TRIO_GOAL}x asyncio's", f"{kb_vs:.2f}x", kb_vs <= TRIO_GOAL),
        ]
    said = "; ".join(f"{goal}: {got} {'met' if ok else 'NOT met'}" for goal, got, ok in checks)
    print(f"goals    {n:>7} {backend:8} {said} (vs raw anyio {ratio:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--backend", nargs="*", default=["asyncio", "trio"])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        contender, backend, n, what = args.child
        child(contender, backend, int(n), what)
        return
    print(
        f"{'backend':8} {'N':>7} {'contender':12} {'start+stop':>10} {'per proc':>9} "
        f"{'KB/proc':>8} {'vs anyio':>8} {'vs asyncio':>10}"
    )
    goals: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    for n in args.n:
        repeat = args.repeat if n <= 10_000 else 1
        floor = row("raw asyncio", "asyncio", n, repeat)
        for backend in args.backend:
            anyio_row = row("raw anyio", backend, n, repeat)
            ours = row("super_visor", backend, n, repeat)
            goals[backend] = (ours, anyio_row)
            for name, r in (("super_visor", ours), ("raw anyio", anyio_row)):
                print(
                    f"{backend:8} {n:>7} {name:12} {r['seconds']:>9.3f}s "
                    f"{r['seconds'] / n * 1e6:>7.1f}us {r['kb_per_proc']:>8.2f} "
                    f"{r['seconds'] / anyio_row['seconds']:>7.2f}x "
                    f"{r['seconds'] / floor['seconds']:>9.2f}x"
                )
            if name == "raw anyio":
                print(f"{'':8} {'':>7} {'(build)':12} {ours['build']:>9.3f}s")
        print(
            f"{'asyncio':8} {n:>7} {'raw asyncio':12} {floor['seconds']:>9.3f}s "
            f"{floor['seconds'] / n * 1e6:>7.1f}us {floor['kb_per_proc']:>8.2f}"
        )
        for backend, (ours, anyio_row) in goals.items():
            print_goals(backend, n, ours, anyio_row, goals.get("asyncio", (ours, anyio_row))[0])
        goals.clear()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
