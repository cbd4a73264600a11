"""What isolation costs and what it buys: start+stop of an Isolated proc, replicas' throughput.

Two figures, each from the same run of this script:

- **start+stop**: the median wall time of ``async with tree.running(): pass`` for a tree of
  one proc that is ready at once and stops on its token, run in process and as
  ``Isolated`` (a fresh interpreter, its imports, the protocol, the stop and the reap);
- **throughput**: a CPU-bound pure-Python job (rounds of a sum of squares) run for the
  same time as one proc in this process, then as ``Isolated(..., replicas=N)``; each run
  reports its rounds per second over its own running time, and the ratio is the replicas'
  total against the one process (ideally N, bounded by the cores: the GIL keeps the
  in-process job on one core).

The job's target is ``"__main__:cpu_job"``: each child runs this script again as
``__mp_main__``, so the entry point is guarded. Nothing here asserts: figures are printed.

    python bench/isolated.py                       # asyncio and trio, N = number of CPUs
    python bench/isolated.py --backend trio --replicas 4 --seconds 5 --repeat 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import anyio

from super_visor import CancellationToken, SupervisorBuilder
from super_visor.procs import Isolated


async def idle(token: CancellationToken) -> None:
    token.ready()
    await token.wait()


async def cpu_job(token: CancellationToken) -> tuple[int, float]:
    """Rounds of pure-Python work until stopped: (rounds, seconds it ran)."""
    token.ready()
    started = time.perf_counter()
    rounds = 0
    while not token.cancelled:
        sum(i * i for i in range(10_000))
        rounds += 1
        await anyio.lowlevel.checkpoint()
    return rounds, time.perf_counter() - started


async def start_stop(proc: object, repeat: int) -> float:
    """Median seconds to start a tree of *proc* until ready, then stop it."""
    times = []
    for _ in range(repeat):
        tree = SupervisorBuilder("bench").add_proc(proc, name="p").build()
        started = time.perf_counter()
        async with tree.running():
            pass
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def rate(proc: object, seconds: float) -> float:
    """Rounds per second of the CPU job(s) in *proc*, summed over its replicas."""
    tree = SupervisorBuilder("bench").add_proc(proc, name="job").build()
    async with tree.running() as handle:
        await anyio.sleep(seconds)
    report = handle.report
    leaves = [o for o in report["job"].walk() if not o.children] or [report["job"]]
    total = 0.0
    for outcome in leaves:
        result = outcome.result
        assert isinstance(result, tuple), f"{outcome.path}: {outcome.status}, {outcome.error}"
        rounds, ran = result
        total += rounds / ran
    return total


async def main(args: argparse.Namespace, backend: str) -> None:
    in_process = await start_stop(idle, args.repeat)
    isolated = await start_stop(Isolated("__main__:idle"), args.repeat)
    print(
        f"[{backend}] start+stop, median of {args.repeat}: in process "
        f"{in_process * 1e3:.2f} ms, isolated {isolated * 1e3:.1f} ms "
        f"(+{(isolated - in_process) * 1e3:.1f} ms per isolated proc)"
    )
    one = await rate(cpu_job, args.seconds)
    many = await rate(Isolated("__main__:cpu_job", replicas=args.replicas), args.seconds)
    print(
        f"[{backend}] CPU-bound job for {args.seconds:g} s: one process {one:,.0f} rounds/s, "
        f"{args.replicas} replicas {many:,.0f} rounds/s: ratio {many / one:.2f} "
        f"({os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["asyncio", "trio", "both"], default="both")
    parser.add_argument("--replicas", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=10)
    arguments = parser.parse_args()
    backends = ["asyncio", "trio"] if arguments.backend == "both" else [arguments.backend]
    for name in backends:
        anyio.run(main, arguments, name, backend=name)
