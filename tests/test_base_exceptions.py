"""A proc raising a BaseException or a cancellation nobody asked for (API.md section 8).

KeyboardInterrupt, SystemExit and other BaseExceptions are FAILED (``sys.exit()`` is a clean
stop), never restarted, and stop the whole tree gracefully in reverse order; ``start()`` then
raises the exception itself, noting the proc's path and carrying the report. A stray
cancellation exception is an ordinary failure: its restart policy applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import (
    CancellationToken,
    ProcStatus,
    Restart,
    SupervisorBuilder,
    SupervisorError,
    SupervisorReport,
)

from .fakes import Recorder

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


class Custom(BaseException):
    pass


def raiser(error: BaseException, log: list[str]) -> Callable[[CancellationToken], Awaitable[None]]:
    async def boom(token: CancellationToken) -> None:
        log.append("start boom")
        await anyio.wait_all_tasks_blocked()  # the procs after it have begun
        raise error

    return boom


def report_of(error: BaseException) -> SupervisorReport:
    report = getattr(error, "__super_visor_report__", None)
    assert isinstance(report, SupervisorReport)
    return report


@pytest.mark.parametrize(
    "error", [KeyboardInterrupt(), SystemExit(3), SystemExit("bye"), Custom("mine")]
)
async def test_a_base_exception_stops_the_tree_in_reverse_and_is_raised(
    error: BaseException,
) -> None:
    log: list[str] = []
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("first", log))
        .add_proc(raiser(error, log), restart=Restart.PERMANENT)
        .add_proc(Recorder("last", log))
        .build()
    )
    with pytest.raises(type(error)) as caught:
        await sup.start(handle_signals=False)
    assert caught.value is error
    assert "super_visor: raised by proc app/boom" in getattr(error, "__notes__", [])
    assert log[-4:] == ["stopping last", "stopped last", "stopping first", "stopped first"]
    report = report_of(error)
    assert report["boom"].status is ProcStatus.FAILED
    assert report["boom"].restarts == 0  # never restarted, whatever its policy
    assert report["first"].status is ProcStatus.STOPPED
    assert report["last"].status is ProcStatus.STOPPED
    assert report.reason == "proc 'app/boom' failed"


@pytest.mark.parametrize("code", [0, None])
async def test_sys_exit_in_a_proc_is_a_clean_stop_of_the_whole_tree(code: int | None) -> None:
    log: list[str] = []
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("first", log))
        .add_proc(raiser(SystemExit(code), log), restart=Restart.PERMANENT, significant=False)
        .build()
    )
    report = await sup.start(handle_signals=False)
    assert report["boom"].status is ProcStatus.COMPLETED
    assert report["boom"].restarts == 0
    assert report["first"].status is ProcStatus.STOPPED
    assert log[-2:] == ["stopping first", "stopped first"]


async def test_a_base_exception_in_a_nested_supervisor_stops_every_level() -> None:
    log: list[str] = []
    inner = (
        SupervisorBuilder("inner")
        .add_proc(Recorder("worker", log))
        .add_proc(raiser(KeyboardInterrupt(), log))
        .build()
    )
    sup = SupervisorBuilder("app").add_proc(Recorder("db", log)).add_proc(inner).build()
    with pytest.raises(KeyboardInterrupt) as caught:
        await sup.start(handle_signals=False)
    report = report_of(caught.value)
    assert report["inner/boom"].status is ProcStatus.FAILED
    assert report["inner/worker"].status is ProcStatus.STOPPED
    assert report["db"].status is ProcStatus.STOPPED
    assert log.index("stopped worker") < log.index("stopping db")


async def test_a_cancellation_nobody_asked_for_is_a_failure_and_restarts() -> None:
    runs: list[int] = []
    again = anyio.Event()

    async def leaky(token: CancellationToken) -> None:
        runs.append(len(runs) + 1)
        if len(runs) > 1:
            again.set()
            await token.wait()
            return
        stray: BaseException | None = None
        with anyio.CancelScope() as scope:
            scope.cancel()
            try:
                await anyio.sleep(1)
            except anyio.get_cancelled_exc_class() as exc:
                stray = exc
                raise
        assert stray is not None
        raise stray  # outside its scope: a cancellation this proc's supervisor never asked for

    sup = SupervisorBuilder("app").add_proc(leaky, restart=Restart.TRANSIENT).build()
    async with sup.running() as handle:
        await again.wait()
    outcome = handle.report["leaky"]
    assert outcome.restarts == 1
    assert outcome.status is ProcStatus.STOPPED
    assert isinstance(outcome.history[0], RuntimeError)
    assert "no stop was requested and nothing forced it" in str(outcome.history[0])
    assert isinstance(outcome.history[0].__cause__, anyio.get_cancelled_exc_class())


async def test_a_stray_cancellation_of_a_temporary_proc_fails_the_run() -> None:
    async def leaky(token: CancellationToken) -> None:
        with anyio.CancelScope() as scope:
            scope.cancel()
            try:
                await anyio.sleep(1)
            except anyio.get_cancelled_exc_class() as exc:
                stray = exc
        raise stray

    sup = SupervisorBuilder("app").add_proc(leaky).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    assert caught.value.report["leaky"].status is ProcStatus.FAILED
