"""Nested supervisors: start and stop as one step of the parent, reported and failing as a tree."""

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

from .fakes import (
    Completes,
    FailsBeforeReady,
    FailsLater,
    Lingerer,
    Recorder,
    Stubborn,
    recording_fn,
)
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes


class PaymentDeclined(Exception):
    """A user's own exception type."""


async def test_nested_supervisor_starts_its_children_in_order_as_its_step() -> None:
    log: list[str] = []
    inner = SupervisorBuilder("inner").add_proc(Recorder("x", log)).add_proc(Recorder("y", log))
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("a", log))
        .add_proc(inner.build())
        .add_proc(Recorder("b", log))
        .build()
    )

    async with sup.running():
        assert log == ["start a", "start x", "start y", "start b"]


async def test_nested_supervisor_stops_its_children_in_reverse_as_its_step() -> None:
    log: list[str] = []
    inner = SupervisorBuilder("inner").add_proc(Lingerer("x", log)).add_proc(Lingerer("y", log))
    sup = (
        SupervisorBuilder("app")
        .add_proc(Lingerer("a", log))
        .add_proc(inner.build())
        .add_proc(Lingerer("b", log))
        .build()
    )

    async with sup.running():
        pass

    assert log[4:] == [
        "stopping b",
        "stopped b",
        "stopping y",
        "stopped y",
        "stopping x",
        "stopped x",
        "stopping a",
        "stopped a",
    ]


async def test_three_levels_start_in_pre_order_and_stop_in_reverse() -> None:
    log: list[str] = []
    deepest = SupervisorBuilder("c").add_proc(Recorder("c1", log)).build()
    middle = (
        SupervisorBuilder("b")
        .add_proc(Recorder("b1", log))
        .add_proc(deepest)
        .add_proc(Recorder("b2", log))
        .build()
    )
    sup = SupervisorBuilder("app").add_proc(Recorder("a1", log)).add_proc(middle).build()

    async with sup.running() as handle:
        pass

    starts = [line for line in log if line.startswith("start ")]
    stops = [line for line in log if line.startswith("stopped ")]
    assert starts == ["start a1", "start b1", "start c1", "start b2"]
    assert stops == ["stopped b2", "stopped c1", "stopped b1", "stopped a1"]
    assert handle.report["b/c/c1"].path == "app/b/c/c1"
    assert handle.report["b/c/c1"].status is ProcStatus.STOPPED


async def test_nested_children_are_reported_as_a_tree() -> None:
    log: list[str] = []
    inner = (
        SupervisorBuilder("inner")
        .add_proc(Recorder("x", log, result="x done"))
        .add_proc(Recorder("y", log))
        .build()
    )
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).add_proc(inner).build()

    async with sup.running() as handle:
        pass

    report = handle.report
    assert [o.name for o in report.outcomes] == ["a", "inner"]
    assert report["inner"].status is ProcStatus.STOPPED
    assert [child.path for child in report["inner"].children] == ["app/inner/x", "app/inner/y"]
    assert report["inner/x"] is report["inner"].children[0]
    assert report["inner/x"].result == "x done"
    assert report["app/inner/y"].status is ProcStatus.STOPPED
    assert [o.path for o in report.walk()] == ["app/a", "app/inner", "app/inner/x", "app/inner/y"]


async def test_nested_failure_is_a_nested_supervisor_error_in_the_parents_error() -> None:
    log: list[str] = []
    trigger = anyio.Event()
    original = PaymentDeclined("card expired")
    inner = (
        SupervisorBuilder("inner")
        .add_proc(Recorder("w", log))
        .add_proc(FailsLater("x", log, original, trigger))
        .build()
    )
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).add_proc(inner).build()

    with pytest.raises(SupervisorError) as info:  # noqa: PT012
        async with sup.running():
            trigger.set()
            await anyio.sleep_forever()

    outer = info.value
    assert len(outer.exceptions) == 1
    nested = outer.exceptions[0]
    assert isinstance(nested, SupervisorError)
    assert nested.exceptions == (original,)
    assert "app/inner" in str(nested)
    assert any("app/inner" in note for note in getattr(nested, "__notes__", []))
    assert any("app/inner/x" in note for note in getattr(original, "__notes__", []))
    report = outer.report
    assert report["inner"].status is ProcStatus.FAILED
    assert report["inner/x"].status is ProcStatus.FAILED
    assert report["inner/x"].error is original
    assert report["inner/w"].status is ProcStatus.STOPPED
    assert report["a"].status is ProcStatus.STOPPED
    assert nested.report["x"].error is original


async def test_nested_startup_failure_fails_the_parents_startup() -> None:
    log: list[str] = []
    original = ConnectionRefusedError("db down")
    inner = (
        SupervisorBuilder("inner")
        .add_proc(Recorder("x", log))
        .add_proc(FailsBeforeReady("db", log, original), wait_ready=True)
        .add_proc(Recorder("z", log))
        .build()
    )
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("a", log))
        .add_proc(inner)
        .add_proc(Recorder("b", log))
        .build()
    )

    with pytest.raises(SupervisorError) as info:
        await sup.start(handle_signals=False)

    report = info.value.report
    startup_error = report["inner/db"].error
    assert isinstance(startup_error, StartupError)
    assert startup_error.__cause__ is original
    assert report["inner/z"].status is ProcStatus.NOT_STARTED
    assert report["inner"].status is ProcStatus.FAILED
    assert report["b"].status is ProcStatus.NOT_STARTED
    assert report["a"].status is ProcStatus.STOPPED
    assert log == [
        "start a",
        "start x",
        "start db",
        "stopping x",
        "stopped x",
        "stopping a",
        "stopped a",
    ]


async def test_except_star_with_the_users_exception_type_works_through_the_tree() -> None:
    log: list[str] = []
    trigger = anyio.Event()
    trigger.set()
    original = PaymentDeclined("card expired")
    inner = SupervisorBuilder("inner").add_proc(FailsLater("x", log, original, trigger)).build()
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).add_proc(inner).build()
    caught: list[BaseExceptionGroup[PaymentDeclined]] = []

    try:
        await sup.start(handle_signals=False)
    except* PaymentDeclined as group:
        caught.append(group)

    assert len(caught) == 1
    matched = caught[0]
    assert isinstance(matched, SupervisorError)
    assert matched.report["inner/x"].error is original
    leaves: list[BaseException] = []
    pending: list[BaseException] = [matched]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    assert leaves == [original]


async def test_nested_builder_is_built_with_the_parent_and_runs() -> None:
    log: list[str] = []
    inner = (
        SupervisorBuilder("inner")
        .add_proc(recording_fn("x", log), name="x")
        .add_proc(recording_fn("y", log), name="y")
    )
    sup = SupervisorBuilder("app").add_proc(Recorder("a", log)).add_proc(inner).build()

    async with sup.running() as handle:
        assert log == ["start a", "start x", "start y"]

    assert log[3:] == ["stopped y", "stopped x", "stopping a", "stopped a"]
    assert handle.report["inner/x"].status is ProcStatus.STOPPED


async def test_nested_builder_with_proc_objects_runs_as_a_tree() -> None:
    log: list[str] = []
    inner = SupervisorBuilder("inner").add_proc(Recorder("x", log)).add_proc(Recorder("y", log))
    sup = SupervisorBuilder("app").add_proc(inner).add_proc(Recorder("b", log)).build()

    async with sup.running() as handle:
        assert log == ["start x", "start y", "start b"]

    assert [child.path for child in handle.report["inner"].children] == [
        "app/inner/x",
        "app/inner/y",
    ]


async def test_nested_supervisor_renamed_with_name_keyword_uses_the_new_path() -> None:
    log: list[str] = []
    inner = SupervisorBuilder("inner").add_proc(Recorder("x", log)).build()
    sup = SupervisorBuilder("app").add_proc(inner, name="payments").build()

    async with sup.running() as handle:
        assert handle.ready_value("payments/x") is None

    assert handle.report["payments/x"].path == "app/payments/x"


async def test_nested_supervisor_without_grace_waits_for_its_childrens_graces() -> None:
    log: list[str] = []
    inner = SupervisorBuilder("inner").add_proc(Stubborn("x", log), grace=0.1).build()
    # The parent's default grace is far shorter than the child's: the nested supervisor must
    # not take it, or it would be forced before its child's grace ran out.
    sup = SupervisorBuilder("app", grace=0.001).add_proc(inner).build()

    async with sup.running() as handle:
        pass

    assert handle.report["inner/x"].status is ProcStatus.FORCED
    assert handle.report["inner"].status is ProcStatus.STOPPED


async def test_nested_supervisor_with_its_own_grace_is_forced_after_it() -> None:
    log: list[str] = []
    inner = SupervisorBuilder("inner").add_proc(Stubborn("x", log), grace=5.0).build()
    sup = SupervisorBuilder("app").add_proc(inner, grace=0.05).build()

    async with sup.running() as handle:
        pass

    assert handle.report["inner"].status is ProcStatus.FORCED
    assert handle.report["inner/x"].status is ProcStatus.FORCED
    assert "forced x" in log


async def test_nested_significant_child_completing_ends_the_nested_supervisor() -> None:
    log: list[str] = []
    trigger = anyio.Event()
    inner = SupervisorBuilder("inner").add_proc(Completes("x", log, trigger=trigger)).build()
    keeper = Recorder("keeper", log)
    sup = SupervisorBuilder("app").add_proc(keeper).add_proc(inner).build()

    async with sup.running() as handle:
        trigger.set()
        report = await handle.wait_stopped()

    assert report.reason == "proc 'app/inner' completed"
    assert report["inner/x"].status is ProcStatus.COMPLETED
    assert report["keeper"].status is ProcStatus.STOPPED


async def test_stop_reason_reaches_nested_procs_tokens() -> None:
    log: list[str] = []
    deep = Recorder("x", log)
    inner = SupervisorBuilder("inner").add_proc(deep).build()
    sup = SupervisorBuilder("app").add_proc(inner).build()

    async with sup.running() as handle:
        handle.shutdown("deploy")

    assert deep.reason_seen == "deploy"


async def test_supervisor_runs_as_a_plain_proc_given_a_token() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("inner").add_proc(Recorder("x", log)).build()
    token = CancellationToken()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sup.run_proc, token)
        await anyio.wait_all_tasks_blocked()
        assert log == ["start x"]
        token.cancel("done")

    assert log == ["start x", "stopping x", "stopped x"]
