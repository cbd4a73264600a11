"""SIGTERM to exit: how long a process with N idle procs takes to stop after a SIGTERM.

Each contender is a fresh Python process that starts N idle tasks, prints ``ready`` on stdout
once all have started, and on SIGTERM stops them in reverse order, one after the other, and
exits. The figure is the wall time from ``kill(SIGTERM)`` to the process having exited (so
it includes what the process writes to stderr on the way out, here to a file), median of
several runs with the contenders alternating:

- ``super_visor``: ``super_visor.run()`` with its default logging (stderr, INFO) and report.
- ``raw anyio``: a TaskGroup, ``await tg.start()`` per task, an anyio signal receiver, then
  each task's own scope cancelled in reverse and waited for.
- ``raw asyncio``: ``loop.add_signal_handler`` and one asyncio task per proc (asyncio only).

    python bench/shutdown.py                  # N = 1,000 on asyncio and trio
    python bench/shutdown.py --n 10000 --repeat 7
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SUPER_VISOR = """
import super_visor
from super_visor import SupervisorBuilder

async def idle(token):
    await token.wait()

async def last(token):  # every proc before it has begun: say so, as the raw ones do
    print("ready", flush=True)
    await token.wait()

builder = SupervisorBuilder("bench", grace=5.0)
for i in range({n} - 1):
    builder.add_proc(idle, name=f"p{{i}}")
builder.add_proc(last)
super_visor.run(builder, backend="{backend}")
"""

RAW_ANYIO = """
import signal
import anyio

async def idle(task_status):
    with anyio.CancelScope() as scope:
        task_status.started(scope)
        await anyio.sleep_forever()

async def main():
    async with anyio.create_task_group() as tg:
        scopes = [await tg.start(idle) for _ in range({n})]
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            print("ready", flush=True)
            async for _ in signals:
                break
        for scope in reversed(scopes):
            scope.cancel()
            await anyio.lowlevel.checkpoint()

anyio.run(main, backend="{backend}")
"""

RAW_ASYNCIO = """
import asyncio
import signal

async def main():
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    tasks = [asyncio.create_task(asyncio.Event().wait()) for _ in range({n})]
    await asyncio.sleep(0)
    print("ready", flush=True)
    await stop.wait()
    for task in reversed(tasks):
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

asyncio.run(main())
"""


def contenders(backend: str) -> dict[str, str]:
    found = {"super_visor": SUPER_VISOR, "raw anyio": RAW_ANYIO}
    if backend == "asyncio":
        found["raw asyncio"] = RAW_ASYNCIO
    return found


def sigterm_to_exit(source: str) -> float:
    """Start the contender, wait for its ``ready``, SIGTERM it, time until it has exited."""
    with (
        tempfile.TemporaryFile() as stderr,
        subprocess.Popen(
            [sys.executable, "-c", source], stdout=subprocess.PIPE, stderr=stderr, text=True
        ) as process,
    ):
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            process.kill()
            raise SystemExit(f"contender did not start: {line!r} {process.communicate()}")
        t0 = time.perf_counter()
        os.kill(process.pid, signal.SIGTERM)
        # A blocking wait: with a timeout, Popen.wait polls with sleeps of up to 50 ms,
        # which would round every figure to that step.
        process.wait()
        elapsed = time.perf_counter() - t0
    if process.returncode not in (0, -signal.SIGTERM):
        raise SystemExit(f"contender exited {process.returncode}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", nargs="*", default=["asyncio", "trio"])
    args = parser.parse_args()
    print(f"{'backend':8} {'contender':12} {'SIGTERM->exit':>14} {'vs raw anyio':>13}")
    medians: dict[str, dict[str, float]] = {}
    for backend in args.backend:
        sources = {
            name: source.format(n=args.n, backend=backend)
            for name, source in contenders(backend).items()
        }
        runs: dict[str, list[float]] = {name: [] for name in sources}
        for _ in range(args.repeat):
            for name, source in sources.items():
                runs[name].append(sigterm_to_exit(source))
        raw = statistics.median(runs["raw anyio"])
        medians[backend] = {name: statistics.median(times) for name, times in runs.items()}
        for name, times in runs.items():
            median = statistics.median(times)
            print(f"{backend:8} {name:12} {median * 1e3:>11.1f} ms {median / raw:>12.2f}x")
        sys.stdout.flush()
    for backend, of_backend in medians.items():
        print_goals(backend, of_backend, medians.get("asyncio"))


#: Issue #14's goals, set on asyncio: SIGTERM to exit no slower than raw anyio; on trio,
#: within 1.3x of asyncio's time.
RAW_GOAL, TRIO_GOAL = 1.0, 1.3


def print_goals(
    backend: str, median: dict[str, float], on_asyncio: dict[str, float] | None
) -> None:
    """One line per backend: the goal, its figure in this run, met or not."""
    ours = median["super_visor"]
    if backend == "asyncio" or on_asyncio is None:
        ratio, goal, limit = ours / median["raw anyio"], "<= 1.0x raw anyio", RAW_GOAL
    else:
        ratio, goal, limit = ours / on_asyncio["super_visor"], "within 1.3x of asyncio's", TRIO_GOAL
    verdict = "met" if ratio <= limit else "NOT met"
    print(f"goals    {backend:8} SIGTERM->exit {goal}: {ratio:.2f}x {verdict}")


if __name__ == "__main__":
    main()
