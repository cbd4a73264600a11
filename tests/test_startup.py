"""Start-up: declared order, readiness gating, ready_timeout and start-up failures."""

from __future__ import annotations

import anyio
import pytest

from super_visor import (
    CancellationToken,
    ProcStatus,
    StartupError,
    SupervisorBuilder,
    SupervisorError,
    SupervisorReport,
)

from .fakes import (
    Completes,
    FailsBeforeReady,
    Gate,
    NeverReady,
    Recorder,
    recording_fn,
    serve_until,
)
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes


async def test_procs_start_in_declared_order() -> None:
    # Twenty procs: spawned without waiting, trio would run their first steps in a random
    # order (PITFALLS 17), so this fails almost surely unless start-up is sequential.
    log: list[str] = []
    builder = SupervisorBuilder("app")
    for n in range(20):
        builder.add_proc(Recorder(f"p{n}", log))

    async with builder.build().running():
        assert log == [f"start p{n}" for n in range(20)]


async def test_function_and_object_procs_start_in_declared_order() -> None:
    log: list[str] = []
    sup = (
        SupervisorBuilder("app")
        .add_proc(recording_fn("f1", log), name="f1")
        .add_proc(Recorder("o1", log))
        .add_proc(recording_fn("f2", log), name="f2")
        .add_proc(Recorder("o2", log))
        .build()
    )

    async with sup.running():
        assert log == ["start f1", "start o1", "start f2", "start o2"]


async def test_proc_has_run_up_to_its_first_await_before_the_next_starts() -> None:
    log: list[str] = []

    async def first(token: CancellationToken) -> None:
        log.append("first: entered")
        log.append("first: still before its first await")
        await anyio.lowlevel.checkpoint()
        await token.wait()

    async def second(token: CancellationToken) -> None:
        log.append("second: entered")
        await token.wait()

    sup = SupervisorBuilder("app").add_proc(first).add_proc(second).build()

    async with sup.running():
        pass

    assert log[:3] == ["first: entered", "first: still before its first await", "second: entered"]


async def test_running_enters_only_once_every_proc_has_begun() -> None:
    log: list[str] = []
    procs = [Recorder(f"p{n}", log) for n in range(5)]
    builder = SupervisorBuilder("app")
    for proc in procs:
        builder.add_proc(proc)

    async with builder.build().running():
        assert all(proc.started.is_set() for proc in procs)


async def test_next_proc_is_not_started_until_the_gating_proc_is_ready() -> None:
    log: list[str] = []
    release = anyio.Event()
    gate = Gate("gate", log, value="port 8080", release=release)
    after = Recorder("after", log)
    sup = SupervisorBuilder("app").add_proc(gate, wait_ready=True).add_proc(after).build()
    stop = anyio.Event()
    reports: list[SupervisorReport] = []

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve_until, sup, stop, reports)
        await gate.started.wait()
        await anyio.wait_all_tasks_blocked()
        assert not after.started.is_set()

        release.set()
        await after.started.wait()
        stop.set()

    assert log[:3] == ["start gate", "ready gate", "start after"]
    assert reports[0]["gate"].status is ProcStatus.STOPPED


async def test_non_gating_proc_does_not_hold_up_the_next_one() -> None:
    log: list[str] = []
    never_ready = NeverReady("quiet", log)
    after = Recorder("after", log)
    sup = SupervisorBuilder("app").add_proc(never_ready).add_proc(after).build()

    async with sup.running() as handle:
        assert after.started.is_set()
        assert handle.ready_value("quiet") is None


async def test_ready_timeout_fails_startup_and_stops_started_procs_in_reverse() -> None:
    log: list[str] = []
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("a", log))
        .add_proc(Recorder("b", log))
        .add_proc(NeverReady("slow", log), wait_ready=True, ready_timeout=0.05)
        .add_proc(Recorder("c", log))
        .add_proc(Recorder("d", log))
        .build()
    )

    with pytest.raises(SupervisorError) as info:
        await sup.start(handle_signals=False)

    report = info.value.report
    assert log == [
        "start a",
        "start b",
        "start slow",
        "stopping slow",
        "stopped slow",
        "stopping b",
        "stopped b",
        "stopping a",
        "stopped a",
    ]
    assert [o.status for o in report.outcomes] == [
        ProcStatus.STOPPED,
        ProcStatus.STOPPED,
        ProcStatus.FAILED,
        ProcStatus.NOT_STARTED,
        ProcStatus.NOT_STARTED,
    ]
    error = report["slow"].error
    assert isinstance(error, StartupError)
    assert error.path == "app/slow"
    assert "not ready within 0.05s" in str(error)
    assert info.value.exceptions == (error,)
    assert "app/slow" in report.reason


async def test_ready_timeout_is_not_applied_to_a_proc_that_became_ready() -> None:
    log: list[str] = []
    sup = (
        SupervisorBuilder("app")
        .add_proc(Gate("gate", log, value=1), wait_ready=True, ready_timeout=0.01)
        .build()
    )

    async with sup.running() as handle:
        await anyio.sleep(0.05)  # longer than ready_timeout: the thing under test

    assert handle.report["gate"].status is ProcStatus.STOPPED


@pytest.mark.parametrize("checkpoint_first", [False, True], ids=["at-once", "after-await"])
async def test_gating_proc_raising_before_ready_is_a_startup_error_caused_by_it(
    checkpoint_first: bool,
) -> None:
    log: list[str] = []
    original = ConnectionRefusedError("db down")
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("a", log))
        .add_proc(
            FailsBeforeReady("db", log, original, checkpoint_first=checkpoint_first),
            wait_ready=True,
        )
        .add_proc(Recorder("c", log))
        .build()
    )

    with pytest.raises(SupervisorError) as info:
        await sup.start(handle_signals=False)

    report = info.value.report
    error = report["db"].error
    assert isinstance(error, StartupError)
    assert error.__cause__ is original
    assert error.path == "app/db"
    assert report["db"].status is ProcStatus.FAILED
    assert report["a"].status is ProcStatus.STOPPED
    assert report["c"].status is ProcStatus.NOT_STARTED
    assert log == ["start a", "start db", "stopping a", "stopped a"]
    assert info.value.exceptions == (error,)


async def test_gating_proc_returning_before_ready_releases_the_gate() -> None:
    log: list[str] = []
    after = Recorder("after", log)
    sup = (
        SupervisorBuilder("app")
        .add_proc(Completes("early", log, result="done"), wait_ready=True, significant=False)
        .add_proc(after)
        .build()
    )

    async with sup.running() as handle:
        assert after.started.is_set()
        assert handle.ready_value("early") is None

    assert log[:3] == ["start early", "complete early", "start after"]
    assert handle.report["early"].status is ProcStatus.COMPLETED
    assert handle.report["early"].result == "done"
    assert handle.report["after"].status is ProcStatus.STOPPED


async def test_non_gating_proc_failing_at_once_fails_with_its_own_error() -> None:
    log: list[str] = []
    original = ValueError("bad config value")
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("a", log))
        .add_proc(FailsBeforeReady("b", log, original))
        .add_proc(Recorder("c", log))
        .build()
    )

    with pytest.raises(SupervisorError) as info:
        await sup.start(handle_signals=False)

    report = info.value.report
    assert report["b"].status is ProcStatus.FAILED
    assert report["b"].error is original
    assert info.value.exceptions == (original,)
    assert report["a"].status is ProcStatus.STOPPED
    assert report["c"].status is ProcStatus.NOT_STARTED
    assert log == ["start a", "start b", "stopping a", "stopped a"]
    assert report.reason == "proc 'app/b' failed"


async def test_ready_values_are_available_by_name_and_nested_path() -> None:
    log: list[str] = []
    inner = (
        SupervisorBuilder("inner")
        .add_proc(Gate("x", log, value={"port": 5432}), wait_ready=True)
        .add_proc(Recorder("y", log))
        .build()
    )
    sup = (
        SupervisorBuilder("app")
        .add_proc(Gate("web", log, value=8080), wait_ready=True)
        .add_proc(inner)
        .build()
    )

    async with sup.running() as handle:
        assert handle.ready_value("web") == 8080
        assert handle.ready_value("inner/x") == {"port": 5432}
        assert handle.ready_value("inner/y") is None


async def test_ready_value_of_an_unknown_proc_raises_key_error_naming_known_procs() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("web", log)).build()

    async with sup.running() as handle:
        with pytest.raises(KeyError, match=r"nope") as info:
            handle.ready_value("nope")

    assert "web" in str(info.value)


async def test_non_gating_proc_calling_ready_still_records_its_value() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Gate("g", log, value="v")).build()

    async with sup.running() as handle:
        await anyio.wait_all_tasks_blocked()
        assert handle.ready_value("g") == "v"


async def test_nested_supervisor_gates_the_parent_until_its_children_are_ready() -> None:
    log: list[str] = []
    release = anyio.Event()
    inner_gate = Gate("x", log, release=release)
    after = Recorder("after", log)
    inner = SupervisorBuilder("inner").add_proc(inner_gate, wait_ready=True).build()
    sup = SupervisorBuilder("app").add_proc(inner).add_proc(after).build()
    stop = anyio.Event()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve_until, sup, stop)
        await inner_gate.started.wait()
        await anyio.wait_all_tasks_blocked()
        assert not after.started.is_set()

        release.set()
        await after.started.wait()
        stop.set()

    assert log[:3] == ["start x", "ready x", "start after"]
