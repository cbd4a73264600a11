"""Dynamic children at fault (API.md section 8): start-up failures go to the caller and the
tree runs on; stop_child of a name that is not running is a KeyError, also after the run; a
child that failed, also while being stopped, stays in the report."""

from __future__ import annotations

import anyio
import pytest

from super_visor import (
    CancellationToken,
    ProcStatus,
    StartupError,
    SupervisorBuilder,
    SupervisorError,
)

from .fakes import Boom, FailsBeforeReady, Recorder


def nested_that_fails_to_start(log: list[str]) -> SupervisorBuilder:
    return (
        SupervisorBuilder("jobs")
        .add_proc(Recorder("first", log))
        .add_proc(FailsBeforeReady("broken", log, Boom("no disk")), wait_ready=True)
        .add_proc(Recorder("never", log))
    )


async def test_a_nested_supervisor_failing_to_start_raises_to_the_caller_only() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("db", log)).build()
    async with sup.running() as handle:
        with pytest.raises(StartupError) as caught:
            await handle.start_child(nested_that_fails_to_start(log).build())
        assert caught.value.path == "app/jobs"
        assert isinstance(caught.value.__cause__, SupervisorError)
        assert not handle.stopped  # the tree runs on
        assert "stopped first" in log  # what the child had started was stopped
    report = handle.report  # the run did not fail: no SupervisorError from the block
    assert [o.name for o in report.outcomes] == ["db"]
    assert report["db"].status is ProcStatus.STOPPED


async def test_a_gating_child_raising_before_ready_leaves_no_report_entry() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("db", log)).build()
    async with sup.running() as handle:
        with pytest.raises(StartupError):
            await handle.start_child(
                FailsBeforeReady("conn", log, Boom("refused")), wait_ready=True
            )
        assert not handle.stopped
    assert [o.name for o in handle.report.outcomes] == ["db"]


async def test_stop_child_after_the_run_is_a_key_error_naming_it() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("db", log)).build()
    async with sup.running() as handle:
        await handle.start_child(Recorder("conn", log))
    with pytest.raises(KeyError, match=r"'conn'.*the supervisor has stopped"):
        await handle.stop_child("conn")


async def test_stop_child_of_a_child_that_already_ended_is_a_key_error() -> None:
    log: list[str] = []
    ended = anyio.Event()

    async def short(token: CancellationToken) -> None:
        try:
            raise Boom("done for")
        finally:
            ended.set()

    sup = SupervisorBuilder("app").add_proc(Recorder("db", log)).build()
    refused: list[str] = []

    async def body() -> None:
        async with sup.running() as handle:
            await handle.start_child(short)
            await ended.wait()
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(KeyError, match="no running dynamic child 'short'") as caught:
                await handle.stop_child("short")
            refused.append(str(caught.value))

    with pytest.raises(SupervisorError):  # the failed child stays in the report
        await body()
    assert refused


async def test_a_child_failing_while_being_stopped_stays_in_the_report() -> None:
    log: list[str] = []

    async def messy(token: CancellationToken) -> None:
        await token.wait()
        raise Boom("cleanup failed")

    sup = SupervisorBuilder("app").add_proc(Recorder("db", log)).build()
    stopped: list[ProcStatus] = []

    async def body() -> None:
        async with sup.running() as handle:
            await handle.start_child(messy)
            stopped.append((await handle.stop_child("messy")).status)
            await handle.start_child(messy)  # its name is free again

    with pytest.raises(SupervisorError) as caught:
        await body()
    assert stopped == [ProcStatus.FAILED]
    report = caught.value.report
    assert [(o.name, o.status) for o in report.outcomes] == [
        ("db", ProcStatus.STOPPED),
        ("messy", ProcStatus.FAILED),
        ("messy", ProcStatus.FAILED),
    ]


async def test_start_child_takes_abandon_after() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("db", log)).build()
    async with sup.running() as handle:
        await handle.start_child(Recorder("conn", log), abandon_after=0.5)
        slot = handle._run.find("conn")
        assert slot is not None
        assert slot.spec.abandon_after == 0.5
