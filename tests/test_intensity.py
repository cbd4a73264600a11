"""Restart intensity at runtime: restarts within ``max_restarts`` per ``within`` seconds keep
the tree running, one more fails it with `RestartLimitExceeded`; the outcome counts them.

Time is the run's clock: a test moves it (`ManualClock`) instead of sleeping.
"""

from __future__ import annotations

import pytest

from super_visor import (
    ProcStatus,
    Restart,
    RestartLimitExceeded,
    SupervisorBuilder,
    SupervisorError,
)

from .clock import ManualClock, with_clock
from .fakes import Worker, build_supervisor
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes


async def test_intensity_exceeded_fails_with_restart_limit_exceeded() -> None:
    log: list[str] = []
    first = Worker("first", log)
    crasher = Worker("crasher", log, fail_runs=range(1, 100))
    last = Worker("last", log)
    sup = (
        SupervisorBuilder("app", max_restarts=2, within=60.0)
        .add_proc(first)
        .add_proc(crasher, restart=Restart.PERMANENT)
        .add_proc(last)
        .build()
    )
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    limits = [e for e in caught.value.exceptions if isinstance(e, RestartLimitExceeded)]
    assert len(limits) == 1
    message = str(limits[0])
    assert "app" in message
    assert "app/crasher" in message  # the proc that crashed last
    assert "2 restarts" in message
    assert "60s" in message
    assert limits[0].path == "app"
    assert limits[0].last_proc == "app/crasher"
    assert (limits[0].restarts, limits[0].within) == (2, 60.0)
    assert crasher.runs == 3  # first run and 2 restarts; the third crash is one too many
    # The supervisor stopped its children in reverse order.
    assert log[-2:] == ["stop last", "stop first"]
    report = caught.value.report
    assert report["crasher"].status is ProcStatus.FAILED
    assert report["crasher"].restarts == 2
    assert report["first"].status is ProcStatus.STOPPED


async def test_restarts_within_the_limit_keep_the_tree_running() -> None:
    log: list[str] = []
    w = Worker("w", log)
    sup = build_supervisor([w], max_restarts=3, within=60.0)
    async with sup.running() as handle:
        for run in range(1, 4):
            w.crash()
            await w.wait_run(run + 1)
        assert not handle.stopped
    assert handle.report["w"].restarts == 3
    assert handle.report["w"].status is ProcStatus.STOPPED  # final outcome: stopped cleanly


async def test_restarts_spread_over_time_do_not_trip_the_intensity() -> None:
    """1 restart allowed within 0.1 s; crashes 0.15 s apart never have two in the window.

    The run's clock spaces the restarts beyond the window; nothing sleeps.
    """
    log: list[str] = []
    w = Worker("w", log)
    clock = ManualClock()
    sup = with_clock(build_supervisor([w], max_restarts=1, within=0.1), clock)
    async with sup.running() as handle:
        for run in range(1, 5):
            clock.advance(0.15)
            w.crash()
            await w.wait_run(run + 1)
        assert not handle.stopped
    assert handle.report["w"].restarts == 4


async def test_outcome_counts_restarts_and_keeps_the_last_five_errors() -> None:
    log: list[str] = []
    crasher = Worker("crasher", log, fail_runs=range(1, 9))  # 8 crashes, then stable
    sup = build_supervisor([crasher], max_restarts=20, within=60.0)
    async with sup.running() as handle:
        await crasher.wait_run(9)
    outcome = handle.report["crasher"]
    assert outcome.restarts == 8
    assert outcome.status is ProcStatus.STOPPED
    assert outcome.error is None
    assert [str(e) for e in outcome.history] == [f"crasher run {n}" for n in range(4, 9)]
