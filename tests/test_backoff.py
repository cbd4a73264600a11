"""Backoff between restarts: the delays grow, reset after a stable run, are logged, and a stop
requested during a backoff ends it at once.

Sleeps appear only where time is what is tested, with lower-bound asserts only.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from itertools import pairwise
from typing import TYPE_CHECKING, Final

import anyio
import pytest

from super_visor import (
    Backoff,
    CancellationToken,
    ProcStatus,
    Restart,
    SupervisorBuilder,
    SupervisorError,
)

from .clock import ManualClock, with_clock
from .fakes import Boom, Worker
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class LogEvent(logging.Handler):
    """Sets an `anyio.Event` when a super_visor log line contains *text*."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@asynccontextmanager
async def log_event(text: str) -> AsyncIterator[LogEvent]:
    logger = logging.getLogger("super_visor")
    handler = LogEvent(text)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def backoff_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "restarting in" in r.getMessage()]


async def test_backoff_delays_grow_and_are_waited(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="super_visor")
    log: list[str] = []
    w = Worker("w", log, fail_runs={1, 2, 3})
    backoff = Backoff(initial=0.05, maximum=1.0, factor=2.0, jitter=0.0)
    sup = (
        SupervisorBuilder("app", max_restarts=10)
        .add_proc(w, restart=Restart.PERMANENT, backoff=backoff)
        .build()
    )
    async with sup.running():
        await w.wait_run(4)
    assert backoff_messages(caplog) == [
        "app/w: restarting in 0.05s (backoff)",
        "app/w: restarting in 0.1s (backoff)",
        "app/w: restarting in 0.2s (backoff)",
    ]
    gaps = [later - earlier for earlier, later in pairwise(w.started_at)]
    for gap, delay in zip(gaps, (0.05, 0.1, 0.2), strict=True):
        assert gap >= delay * 0.9  # lower bounds only: a slow CI may wait longer


async def test_supervisor_default_backoff_applies(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="super_visor")
    log: list[str] = []
    w = Worker("w", log, fail_runs={1})
    sup = (
        SupervisorBuilder("app", backoff=Backoff(initial=0.02, jitter=0.0))
        .add_proc(w, restart=Restart.PERMANENT)
        .build()
    )
    async with sup.running():
        await w.wait_run(2)
    assert backoff_messages(caplog) == ["app/w: restarting in 0.02s (backoff)"]


async def test_backoff_resets_after_a_stable_run(caplog: pytest.LogCaptureFixture) -> None:
    """The attempt counter resets once the proc ran for ``maximum`` seconds.

    Runs 1 and 2 crash at once (0.05 s, 0.1 s); run 3 runs 0.25 s (> maximum 0.2 s) before
    crashing, so its restart waits the initial 0.05 s again, not 0.2 s. Time is the run's
    clock: backoffs jump it on, the stable run moves it; nothing sleeps.
    """
    caplog.set_level(logging.DEBUG, logger="super_visor")
    runs: list[float] = []
    fourth = anyio.Event()
    clock = ManualClock(autojump=True)

    async def flaky(token: CancellationToken) -> None:
        runs.append(clock.now())
        if len(runs) == 3:
            clock.advance(0.25)  # the stable run under test
        if len(runs) == 4:
            fourth.set()
            await token.wait()
            return
        raise Boom(f"run {len(runs)}")

    backoff = Backoff(initial=0.05, maximum=0.2, factor=2.0, jitter=0.0)
    sup = (
        SupervisorBuilder("app", max_restarts=10)
        .add_proc(flaky, restart=Restart.PERMANENT, backoff=backoff)
        .build()
    )
    async with with_clock(sup, clock).running():
        await fourth.wait()
    assert backoff_messages(caplog) == [
        "app/flaky: restarting in 0.05s (backoff)",
        "app/flaky: restarting in 0.1s (backoff)",
        "app/flaky: restarting in 0.05s (backoff)",
    ]


async def test_backoff_keeps_growing_without_a_stable_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="super_visor")
    log: list[str] = []
    w = Worker("w", log, fail_runs={1, 2, 3, 4})
    backoff = Backoff(initial=0.01, maximum=0.04, factor=2.0, jitter=0.0)
    sup = (
        SupervisorBuilder("app", max_restarts=10)
        .add_proc(w, restart=Restart.PERMANENT, backoff=backoff)
        .build()
    )
    async with sup.running():
        await w.wait_run(5)
    delays = [m.split("restarting in ")[1] for m in backoff_messages(caplog)]
    assert delays == ["0.01s (backoff)", "0.02s (backoff)", "0.04s (backoff)", "0.04s (backoff)"]


LONG_BACKOFF: Final = Backoff(initial=30.0, maximum=60.0, jitter=0.0)


async def test_stop_request_during_a_long_backoff_ends_at_once() -> None:
    log: list[str] = []
    w = Worker("w", log)
    sup = (
        SupervisorBuilder("app")
        .add_proc(Worker("other", log))
        .add_proc(w, restart=Restart.PERMANENT, backoff=LONG_BACKOFF)
        .build()
    )
    with anyio.fail_after(5):  # far below the 30 s backoff
        async with log_event("restarting in 30s") as waiting, sup.running() as handle:
            w.complete("first run done")
            await waiting.seen.wait()
            handle.shutdown("stop during backoff")
    assert w.runs == 1  # the restart never happened
    assert log[-1] == "stop other"
    assert handle.report.reason == "stop during backoff"
    assert handle.report["other"].status is ProcStatus.STOPPED


@pytest.mark.parametrize("ending", ["complete", "crash"])
async def test_stop_during_backoff_keeps_the_last_outcome(ending: str) -> None:
    log: list[str] = []
    w = Worker("w", log)
    sup = (
        SupervisorBuilder("app")
        .add_proc(Worker("other", log))
        .add_proc(w, restart=Restart.PERMANENT, backoff=LONG_BACKOFF)
        .build()
    )
    failed = ending == "crash"
    expectation: AbstractContextManager[object] = (
        pytest.raises(SupervisorError) if failed else nullcontext()
    )
    with anyio.fail_after(5), expectation:  # far below the 30 s backoff
        async with log_event("restarting in 30s") as waiting, sup.running() as handle:
            if failed:
                w.crash()
            else:
                w.complete("first run done")
            await waiting.seen.wait()
            handle.shutdown("stop during backoff")
    outcome = handle.report["w"]
    assert outcome.restarts == 0
    if failed:
        assert outcome.status is ProcStatus.FAILED
        assert isinstance(outcome.error, Boom)
    else:
        assert outcome.status is ProcStatus.COMPLETED
        assert outcome.result == "first run done"
