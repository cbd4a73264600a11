"""Supervisor.running() and RunHandle: entering, leaving, failures, and running twice."""

from __future__ import annotations

import signal

import anyio
import pytest

from super_visor import ProcStatus, SupervisorBuilder, SupervisorError

from .fakes import Completes, FailsBeforeReady, FailsLater, Gate, Recorder
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes


class BodyError(Exception):
    """Raised by a test's own ``async with`` block."""


async def test_running_enters_once_every_proc_is_ready() -> None:
    log: list[str] = []
    release = anyio.Event()
    gate = Gate("gate", log, value="v", release=release)
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("a", log))
        .add_proc(gate, wait_ready=True)
        .add_proc(Recorder("b", log))
        .build()
    )
    entered = False
    entered_before_release: list[bool] = []

    async def release_when_blocked() -> None:
        await gate.started.wait()
        await anyio.wait_all_tasks_blocked()
        entered_before_release.append(entered)
        release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_when_blocked)
        async with sup.running() as handle:
            entered = True
            assert log == ["start a", "start gate", "ready gate", "start b"]
            assert handle.ready_value("gate") == "v"
            assert not handle.stopped

    assert entered_before_release == [False]


async def test_leaving_the_block_shuts_everything_down() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).add_proc(Recorder("b", log)).build()

    async with sup.running() as handle:
        assert not handle.stopped

    assert handle.stopped
    assert log == ["start a", "start b", "stopping b", "stopped b", "stopping a", "stopped a"]
    assert [o.status for o in handle.report.outcomes] == [ProcStatus.STOPPED] * 2


async def test_wait_stopped_returns_the_report_after_shutdown() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).build()

    async with sup.running() as handle:
        handle.shutdown("early")
        report = await handle.wait_stopped()
        assert handle.stopped
        assert log[-1] == "stopped a"

    assert report.reason == "early"
    assert handle.report is report


async def test_proc_failure_cancels_the_block_and_raises_supervisor_error() -> None:
    log: list[str] = []
    trigger = anyio.Event()
    error = RuntimeError("boom")
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("a", log))
        .add_proc(FailsLater("x", log, error, trigger))
        .build()
    )
    reached_after_sleep = False

    with pytest.raises(SupervisorError) as info:  # noqa: PT012
        async with sup.running():
            trigger.set()
            await anyio.sleep_forever()
            reached_after_sleep = True

    assert not reached_after_sleep
    assert info.value.exceptions == (error,)
    assert info.value.report["a"].status is ProcStatus.STOPPED
    assert "stopped a" in log


async def test_startup_failure_makes_the_async_with_raise_supervisor_error() -> None:
    log: list[str] = []
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("a", log))
        .add_proc(FailsBeforeReady("db", log, OSError("refused")), wait_ready=True)
        .build()
    )

    with pytest.raises(SupervisorError) as info:
        async with sup.running():
            pass

    assert info.value.report["db"].status is ProcStatus.FAILED
    assert info.value.report["a"].status is ProcStatus.STOPPED


async def test_startup_failure_raises_without_entering_the_block() -> None:
    log: list[str] = []
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("a", log))
        .add_proc(FailsBeforeReady("db", log, OSError("refused")), wait_ready=True)
        .build()
    )
    entered = False

    with pytest.raises(SupervisorError):
        async with sup.running():
            entered = True

    assert not entered


async def test_exception_raised_in_the_block_propagates_unchanged_after_shutdown() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).build()
    error = BodyError("test failed")

    with pytest.raises(BodyError) as info:
        async with sup.running() as handle:
            raise error

    assert info.value is error
    assert type(info.value) is BodyError
    assert handle.stopped
    assert log == ["start a", "stopping a", "stopped a"]


async def test_report_before_stop_raises_runtime_error() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).build()

    async with sup.running() as handle:
        with pytest.raises(RuntimeError, match=r"still running"):
            _ = handle.report

    assert handle.report["a"].status is ProcStatus.STOPPED


async def test_starting_an_already_running_supervisor_raises_runtime_error() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).build()

    async with sup.running():
        with pytest.raises(RuntimeError, match=r"already running"):
            await sup.start(handle_signals=False)
        with pytest.raises(RuntimeError, match=r"already running"):
            async with sup.running():
                pass

    assert log == ["start a", "stopping a", "stopped a"]


async def test_supervisor_can_be_started_again_after_it_stopped() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).build()

    async with sup.running() as first:
        first.shutdown("first run")
    async with sup.running() as second:
        second.shutdown("second run")

    assert first.report.reason == "first run"
    assert second.report.reason == "second run"
    assert first.report is not second.report
    assert log == ["start a", "stopping a", "stopped a"] * 2


async def test_supervisor_can_be_started_again_after_it_failed() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(FailsBeforeReady("db", log, OSError("x"))).build()

    for _ in range(2):
        with pytest.raises(SupervisorError):
            await sup.start(handle_signals=False)

    assert log == ["start db", "start db"]


async def test_running_installs_no_signal_handlers_by_default() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).build()
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    async with sup.running():
        during = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    assert during == before


async def test_start_with_signal_handling_returns_the_report() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Completes("job", log, result=7)).build()

    report = await sup.start()

    assert report["job"].result == 7
    assert report.reason == "proc 'app/job' completed"


async def test_start_with_signal_handling_raises_supervisor_error_unwrapped() -> None:
    log: list[str] = []
    error = OSError("refused")
    sup = SupervisorBuilder("app").add_proc(FailsBeforeReady("db", log, error)).build()

    with pytest.raises(SupervisorError) as info:
        await sup.start()

    assert type(info.value) is SupervisorError
    assert info.value.exceptions == (error,)


async def test_block_left_by_outer_cancellation_still_stops_procs_gracefully() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).add_proc(Recorder("b", log)).build()

    with anyio.CancelScope() as outer:
        async with sup.running():
            outer.cancel()
            await anyio.sleep_forever()

    assert log == ["start a", "start b", "stopping b", "stopped b", "stopping a", "stopped a"]


async def test_report_exists_after_the_block_was_left_by_outer_cancellation() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).build()

    with anyio.CancelScope() as outer:
        async with sup.running() as handle:
            outer.cancel()
            await anyio.sleep_forever()

    assert handle.stopped
    assert handle.report["a"].status in (ProcStatus.STOPPED, ProcStatus.FORCED)
