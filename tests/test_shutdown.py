"""Shutdown: reverse order one proc at a time, grace then force, reasons, what triggers a stop."""

from __future__ import annotations

import logging

import anyio
import pytest

from super_visor import CancellationToken, ProcStatus, SupervisorBuilder, SupervisorError

from .fakes import Completes, FailsLater, Lingerer, Recorder, Shielded, Stubborn
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

STUCK = "still running after it was force-cancelled"


async def test_stop_runs_in_reverse_start_order_one_proc_at_a_time() -> None:
    log: list[str] = []
    sup = (
        SupervisorBuilder("app")
        .add_proc(Lingerer("a", log))
        .add_proc(Lingerer("b", log))
        .add_proc(Lingerer("c", log))
        .build()
    )

    async with sup.running():
        pass

    # A Lingerer lets every other task run before it logs "stopped": were two procs asked to
    # stop together, the second one's "stopping" would come before the first one's "stopped".
    assert log == [
        "start a",
        "start b",
        "start c",
        "stopping c",
        "stopped c",
        "stopping b",
        "stopped b",
        "stopping a",
        "stopped a",
    ]


async def test_every_started_proc_is_stopped_exactly_once() -> None:
    log: list[str] = []
    builder = SupervisorBuilder("app")
    for n in range(10):
        builder.add_proc(Recorder(f"p{n}", log))

    async with builder.build().running() as handle:
        handle.shutdown("once")
        handle.shutdown("twice")

    for n in range(10):
        assert log.count(f"stopping p{n}") == 1
    assert [o.status for o in handle.report.outcomes] == [ProcStatus.STOPPED] * 10


async def test_returned_value_is_kept_in_the_outcome() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log, result={"flushed": 3})).build()

    async with sup.running() as handle:
        pass

    assert handle.report["a"].result == {"flushed": 3}
    assert handle.report["a"].error is None


async def test_grace_expiry_marks_proc_forced_and_start_still_returns_a_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="super_visor")
    log: list[str] = []
    stubborn = Stubborn("stubborn", log)
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("before", log))
        .add_proc(stubborn, grace=0.05)
        .add_proc(Completes("trigger", log))
        .build()
    )

    report = await sup.start(handle_signals=False)

    assert report["stubborn"].status is ProcStatus.FORCED
    assert report["stubborn"].error is None
    assert report["before"].status is ProcStatus.STOPPED
    assert report.exit_code == 0
    # "before" is asked to stop only after the forced proc has ended.
    assert log.index("forced stubborn") < log.index("stopping before")
    assert stubborn.reason_seen == "proc 'app/trigger' completed"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("app/stubborn" in r.getMessage() for r in warnings)


async def test_proc_returning_within_its_grace_is_stopped_not_forced() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app", grace=0).add_proc(Recorder("quick", log)).build()

    async with sup.running() as handle:
        pass

    assert handle.report["quick"].status is ProcStatus.STOPPED


async def test_shutdown_reason_reaches_every_token_and_the_report() -> None:
    log: list[str] = []
    procs = [Recorder(name, log) for name in ("a", "b", "c")]
    builder = SupervisorBuilder("app")
    for proc in procs:
        builder.add_proc(proc)

    async with builder.build().running() as handle:
        handle.shutdown("test over")

    assert [proc.reason_seen for proc in procs] == ["test over"] * 3
    assert handle.report.reason == "test over"


async def test_first_shutdown_reason_wins() -> None:
    log: list[str] = []
    proc = Recorder("a", log)
    sup = SupervisorBuilder("app").add_proc(proc).build()

    async with sup.running() as handle:
        handle.shutdown("first")
        handle.shutdown("second")

    assert proc.reason_seen == "first"
    assert handle.report.reason == "first"


async def test_significant_proc_completing_stops_everything() -> None:
    log: list[str] = []
    trigger = anyio.Event()
    first = Recorder("first", log)
    last = Recorder("last", log)
    sup = (
        SupervisorBuilder("app")
        .add_proc(first)
        .add_proc(Completes("x", log, result=42, trigger=trigger))
        .add_proc(last)
        .build()
    )

    async with sup.running() as handle:
        trigger.set()
        report = await handle.wait_stopped()

    assert report.reason == "proc 'app/x' completed"
    assert report["x"].status is ProcStatus.COMPLETED
    assert report["x"].result == 42
    assert report["first"].status is ProcStatus.STOPPED
    assert report["last"].status is ProcStatus.STOPPED
    assert first.reason_seen == last.reason_seen == "proc 'app/x' completed"
    assert log[-4:] == ["stopping last", "stopped last", "stopping first", "stopped first"]


async def test_significant_proc_failing_stops_everything_and_raises() -> None:
    log: list[str] = []
    trigger = anyio.Event()
    error = RuntimeError("crashed")
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("first", log))
        .add_proc(FailsLater("x", log, error, trigger))
        .build()
    )

    with pytest.raises(SupervisorError) as info:  # noqa: PT012
        async with sup.running():
            trigger.set()
            await anyio.sleep_forever()

    report = info.value.report
    assert report.reason == "proc 'app/x' failed"
    assert report["x"].error is error
    assert report["first"].status is ProcStatus.STOPPED


async def test_insignificant_proc_completing_does_not_stop_the_others() -> None:
    log: list[str] = []
    trigger = anyio.Event()
    keeper = Recorder("keeper", log)
    sup = (
        SupervisorBuilder("app")
        .add_proc(keeper)
        .add_proc(Completes("migrate", log, trigger=trigger), significant=False)
        .build()
    )

    async with sup.running() as handle:
        trigger.set()
        await anyio.wait_all_tasks_blocked()
        assert "complete migrate" in log
        assert not handle.stopped
        assert not keeper.stopping.is_set()
        handle.shutdown("test over")

    assert handle.report.reason == "test over"
    assert handle.report["migrate"].status is ProcStatus.COMPLETED
    assert handle.report["keeper"].status is ProcStatus.STOPPED


async def test_insignificant_proc_failing_keeps_the_others_running_but_fails_the_run() -> None:
    log: list[str] = []
    trigger = anyio.Event()
    keeper = Recorder("keeper", log)
    error = OSError("job failed")
    sup = (
        SupervisorBuilder("app")
        .add_proc(keeper)
        .add_proc(FailsLater("job", log, error, trigger), significant=False)
        .build()
    )

    with pytest.raises(SupervisorError) as info:  # noqa: PT012
        async with sup.running() as handle:
            trigger.set()
            await anyio.wait_all_tasks_blocked()
            assert "fail job" in log
            assert not handle.stopped
            assert not keeper.stopping.is_set()
            handle.shutdown("test over")

    assert info.value.report["job"].error is error
    assert info.value.report["keeper"].status is ProcStatus.STOPPED


async def test_supervisor_stops_when_no_procs_are_left_running() -> None:
    log: list[str] = []
    first, second = anyio.Event(), anyio.Event()
    sup = (
        SupervisorBuilder("app")
        .add_proc(Completes("a", log, trigger=first), significant=False)
        .add_proc(Completes("b", log, trigger=second), significant=False)
        .build()
    )

    async with sup.running() as handle:
        first.set()
        await anyio.wait_all_tasks_blocked()
        assert not handle.stopped
        second.set()
        report = await handle.wait_stopped()

    assert report.reason == "no procs left running"
    assert [o.status for o in report.outcomes] == [ProcStatus.COMPLETED] * 2


async def test_supervisor_whose_procs_all_end_during_startup_stops() -> None:
    log: list[str] = []
    sup = (
        SupervisorBuilder("app")
        .add_proc(Completes("a", log), significant=False)
        .add_proc(Completes("b", log), significant=False)
        .build()
    )

    report = await sup.start(handle_signals=False)

    assert report.reason == "no procs left running"
    assert [o.status for o in report.outcomes] == [ProcStatus.COMPLETED] * 2


async def test_proc_failing_while_stopping_is_failed_and_the_rest_still_stop() -> None:
    log: list[str] = []
    error = RuntimeError("flush failed")

    async def fails_on_stop(token: CancellationToken) -> None:
        await token.wait()
        log.append("failing on stop")
        raise error

    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("a", log))
        .add_proc(fails_on_stop)
        .add_proc(Recorder("c", log))
        .build()
    )

    with pytest.raises(SupervisorError) as info:
        async with sup.running() as handle:
            handle.shutdown("test over")

    report = info.value.report
    assert report["fails_on_stop"].status is ProcStatus.FAILED
    assert report["fails_on_stop"].error is error
    assert info.value.exceptions == (error,)
    assert [report["a"].status, report["c"].status] == [ProcStatus.STOPPED] * 2
    assert log[-5:] == ["stopping c", "stopped c", "failing on stop", "stopping a", "stopped a"]
    assert report.reason == "test over"


class _StuckWatcher(logging.Handler):
    """Counts stuck-proc warnings and sets *reached* once *wanted* of them were logged."""

    def __init__(self, wanted: int, reached: anyio.Event) -> None:
        super().__init__(logging.WARNING)
        self.wanted = wanted
        self.reached = reached
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if STUCK in record.getMessage():
            self.count += 1
            if self.count >= self.wanted:
                self.reached.set()


async def test_proc_surviving_force_is_reported_with_its_stack_until_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="super_visor")
    log: list[str] = []
    release = anyio.Event()
    sup = (
        SupervisorBuilder("app", stuck_report_interval=0.05)
        .add_proc(Recorder("before", log))
        # The shield is bounded (5 s) so a broken stuck report cannot hang the test.
        .add_proc(Shielded("stuck", log, release, limit=5.0), grace=0.05)
        .build()
    )
    watcher = _StuckWatcher(wanted=3, reached=release)
    logger = logging.getLogger("super_visor")
    logger.addHandler(watcher)
    try:
        async with sup.running() as handle:
            handle.shutdown("test over")
    finally:
        logger.removeHandler(watcher)

    stuck = [r.getMessage() for r in caplog.records if STUCK in r.getMessage()]
    assert len(stuck) == 3  # repeated every interval until released, then no more
    for message in stuck:
        assert message.startswith("app/stuck: ")
        assert "fakes.py" in message
        assert "in run_proc" in message
    assert handle.report["stuck"].status is ProcStatus.FORCED
    assert log.index("unshielded stuck") < log.index("stopping before")
    assert handle.report["before"].status is ProcStatus.STOPPED
