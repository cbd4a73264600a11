"""OTP's rules for group restarts (ONE_FOR_ALL, REST_FOR_ONE): the group stops in reverse
and starts in declared order, and a TEMPORARY sibling stopped for the restart stays stopped.

Procs are `Worker` fakes (``tests/fakes.py``) the test crashes or completes on demand;
each writes ``"<event> <name>"`` lines into a shared log, so a test reads the order of stops
and starts of a whole restart from one list.
"""

from __future__ import annotations

import anyio
import pytest

from super_visor import (
    ProcStatus,
    Restart,
    Strategy,
    SupervisorBuilder,
)

from .fakes import Worker, build_supervisor
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_temporary_sibling_stopped_for_a_restart_is_not_restarted(
    strategy: Strategy,
) -> None:
    log: list[str] = []
    a, t, c = Worker("a", log), Worker("t", log), Worker("c", log)
    sup = (
        SupervisorBuilder("app", strategy=strategy)
        .add_proc(a, restart=Restart.PERMANENT)
        .add_proc(t, restart=Restart.TEMPORARY)
        .add_proc(c, restart=Restart.PERMANENT)
        .build()
    )
    async with sup.running() as handle:
        a.crash()
        await c.wait_run(2)
        await anyio.wait_all_tasks_blocked()
        assert log[3:] == ["crash a", "stop c", "stop t", "start a", "start c"]
        assert not handle.stopped  # t stopped by us is not "a significant proc ending"
    assert t.runs == 1
    report = handle.report
    assert report["t"].status is ProcStatus.STOPPED
    assert report["t"].restarts == 0
    assert (report["a"].restarts, report["c"].restarts) == (1, 1)
    assert log[-2:] == ["stop c", "stop a"]


async def test_stop_order_is_reverse_declared_order_after_restarts() -> None:
    """After a, then b were restarted, the start order is c, a, b; the stop is still c, b, a."""
    log: list[str] = []
    a, b, c = Worker("a", log), Worker("b", log), Worker("c", log)
    sup = build_supervisor([a, b, c])
    async with sup.running():
        a.crash()
        await a.wait_run(2)
        b.crash()
        await b.wait_run(2)
        await anyio.wait_all_tasks_blocked()
        del log[:]
    assert log == ["stop c", "stop b", "stop a"]


async def test_group_restart_stops_in_reverse_and_starts_in_declared_order() -> None:
    log: list[str] = []
    workers = [Worker(n, log) for n in "abcde"]
    sup = build_supervisor(workers, strategy=Strategy.REST_FOR_ONE)
    async with sup.running():
        workers[1].crash()
        await workers[4].wait_run(2)
        assert log[5:] == [
            "crash b",
            "stop e",
            "stop d",
            "stop c",
            "start b",
            "start c",
            "start d",
            "start e",
        ]
