"""Operator actions on a running tree (API.md section 10): ``stop``, ``start``, ``restart``,
``abort`` and ``inject_failure`` of any proc at any depth, ``start_child(under=...)``,
``token.supervisor``, and what they must not do (restarts, intensity, significance)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import (
    Backoff,
    CancellationToken,
    Event,
    EventKind,
    ProcOutcome,
    ProcStatus,
    Restart,
    RunHandle,
    RunState,
    StartupError,
    Strategy,
    Supervisor,
    SupervisorBuilder,
    SupervisorControls,
    SupervisorError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

from .clock import ManualClock, with_clock
from .fakes import Boom, Gate, Recorder, Stubborn, Worker, trio_worker_thread

__all__ = ("trio_worker_thread",)


def _deep(log: list[str]) -> SupervisorBuilder:
    """app/{web, a/{b/{consumer}}}: a proc two supervisors down."""
    b = SupervisorBuilder("b").add_proc(Recorder("consumer", log))
    a = SupervisorBuilder("a").add_proc(b)
    return SupervisorBuilder("app").add_proc(Recorder("web", log)).add_proc(a)


# ----------------------------------------------------------------- stop and start


@pytest.mark.parametrize("path", ["web", "app/web", "a/b/consumer", "app/a/b/consumer"])
async def test_stop_is_graceful_and_the_proc_stays_in_the_tree_as_stopped(path: str) -> None:
    log: list[str] = []
    async with _deep(log).build().running() as handle:
        outcome = await handle.stop(path)

        name = path.rpartition("/")[2]
        assert log[-1] == f"stopped {name}"  # its clean-up ran before stop() returned
        assert outcome.status is ProcStatus.STOPPED
        assert handle.status()[path].state is RunState.STOPPED
        assert not handle.is_running(path)
        assert handle.ready  # the tree runs on

    assert handle.report[path].status is ProcStatus.STOPPED


@pytest.mark.parametrize("path", ["web", "a/b/consumer"])
async def test_start_runs_a_stopped_proc_again_without_counting_a_restart(path: str) -> None:
    log: list[str] = []
    async with _deep(log).build().running() as handle:
        await handle.stop(path)
        await handle.start(path)

        assert handle.is_running(path)
        assert handle.status()[path].state is RunState.RUNNING
        assert handle.status()[path].restarts == 0
        name = path.rpartition("/")[2]
        assert log.count(f"start {name}") == 2

    assert handle.report[path].restarts == 0


async def test_start_of_a_gating_proc_waits_until_it_is_ready_and_returns_its_value() -> None:
    release = anyio.Event()
    release.set()
    sup = SupervisorBuilder("app").add_proc(Gate("db", [], value=5432), wait_ready=True).build()
    async with sup.running() as handle:
        await handle.stop("db")
        assert await handle.start("db") == 5432
        assert handle.status()["db"].ready


async def test_restart_stops_and_starts_that_one_proc_only() -> None:
    log: list[str] = []
    sup = (
        SupervisorBuilder("app", strategy=Strategy.ONE_FOR_ALL)
        .add_proc(Recorder("db", log))
        .add_proc(Recorder("web", log))
        .build()
    )
    async with sup.running() as handle:
        log.clear()
        await handle.restart("db")

        assert log == ["stopping db", "stopped db", "start db"]  # not its group (web)
        assert handle.status()["db"].restarts == 0


async def test_a_failed_start_is_raised_and_the_tree_runs_on() -> None:
    attempts = 0

    async def flaky(token: CancellationToken) -> None:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            raise Boom("no database")
        token.ready()
        await token.wait()

    sup = (
        SupervisorBuilder("app")
        .add_proc(flaky, name="db", wait_ready=True)
        .add_proc(Recorder("web", []))
        .build()
    )
    errors: list[StartupError] = []

    async def body(handle: RunHandle) -> None:
        await handle.stop("db")
        with pytest.raises(StartupError, match="app/db") as caught:
            await handle.start("db")
        errors.append(caught.value)
        assert handle.ready
        assert handle.is_running("web")
        assert handle.status()["db"].state is RunState.FAILED

    # Its failure stays its outcome (until a start succeeds), so the report says so.
    with pytest.raises(SupervisorError) as failed:
        await _run(sup, body)

    assert isinstance(errors[0].__cause__, Boom)
    assert failed.value.report["db"].error is errors[0]


async def test_a_start_that_times_out_its_gate_is_raised_and_the_proc_is_stopped() -> None:
    runs: list[int] = []

    async def slow(token: CancellationToken) -> None:
        runs.append(len(runs))
        if len(runs) != 2:  # only the second run is never ready
            token.ready()
        await token.wait()

    sup = SupervisorBuilder("app").add_proc(slow, wait_ready=True, ready_timeout=0.05).build()

    async def body(handle: RunHandle) -> None:
        await handle.stop("slow")
        with pytest.raises(StartupError, match="ready_timeout"):
            await handle.start("slow")
        assert not handle.is_running("slow")
        assert handle.status().state is RunState.RUNNING
        await handle.start("slow")  # a second chance: it passes this time

    await _run(sup, body)


# ----------------------------------------------------------------- what it must not do


async def test_stopping_a_significant_proc_does_not_shut_the_supervisor_down() -> None:
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("main", []), significant=True)
        .add_proc(Recorder("web", []))
        .build()
    )
    async with sup.running() as handle:
        await handle.stop("main")
        await anyio.wait_all_tasks_blocked()

        assert handle.status().state is RunState.RUNNING
        await handle.start("main")
        assert handle.is_running("main")

    assert handle.report.reason == "running() block exited"


async def test_stopping_the_last_proc_does_not_count_as_no_procs_left() -> None:
    sup = SupervisorBuilder("app").add_proc(Recorder("only", [])).build()
    async with sup.running() as handle:
        await handle.stop("only")
        await anyio.wait_all_tasks_blocked()

        assert handle.status().state is RunState.RUNNING
        await handle.start("only")
        assert handle.is_running("only")


async def test_a_parked_proc_keeps_the_supervisor_running_when_the_others_end() -> None:
    done = anyio.Event()

    async def finishes(token: CancellationToken) -> None:
        await done.wait()

    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("db", []))
        .add_proc(finishes, restart=Restart.TEMPORARY, significant=False)
        .build()
    )
    async with sup.running() as handle:
        await handle.stop("db")
        done.set()
        await anyio.wait_all_tasks_blocked()

        assert handle.status()["finishes"].state is RunState.COMPLETED
        assert handle.status().state is RunState.RUNNING  # db may still be started


async def test_operator_restarts_never_count_toward_the_restart_intensity() -> None:
    sup = SupervisorBuilder("app", max_restarts=0).add_proc(Recorder("web", [])).build()
    async with sup.running() as handle:
        for _ in range(5):
            await handle.restart("web")
            await handle.stop("web")
            await handle.start("web")

        assert handle.status()["web"].restarts == 0
        assert not handle.status().restart_limit_reached

    assert handle.report["web"].status is ProcStatus.STOPPED


async def test_a_group_restart_leaves_a_parked_sibling_alone() -> None:
    log: list[str] = []
    crasher = Worker("crasher", log)
    sup = (
        SupervisorBuilder("app", strategy=Strategy.ONE_FOR_ALL)
        .add_proc(Recorder("db", log))
        .add_proc(crasher, restart=Restart.PERMANENT)
        .build()
    )
    async with sup.running() as handle:
        await handle.stop("db")
        crasher.crash(Boom("crash"))
        await crasher.wait_run(2)

        assert handle.status()["db"].state is RunState.STOPPED
        assert log.count("start db") == 1


# ----------------------------------------------------------------- dynamic children


async def test_stop_of_a_dynamic_child_removes_it_and_returns_its_outcome() -> None:
    sup = SupervisorBuilder("app").add_proc(Recorder("db", [])).build()
    async with sup.running() as handle:
        await handle.start_child(Recorder("conn", []))
        outcome = await handle.stop("conn")

        assert outcome.status is ProcStatus.STOPPED
        with pytest.raises(KeyError, match="conn"):
            handle.is_running("conn")


async def test_a_dynamic_child_that_failed_while_stopped_stays_in_the_report() -> None:
    async def fails_on_stop(token: CancellationToken) -> None:
        await token.wait()
        raise Boom("flush failed")

    sup = SupervisorBuilder("app").add_proc(Recorder("db", [])).build()
    outcomes: list[ProcOutcome] = []

    async def body(handle: RunHandle) -> None:
        await handle.start_child(fails_on_stop, name="conn")
        outcomes.append(await handle.stop("conn"))

    with pytest.raises(SupervisorError) as caught:
        await _run(sup, body)

    assert outcomes[0].status is ProcStatus.FAILED
    assert caught.value.report["conn"].status is ProcStatus.FAILED


async def test_restart_of_a_dynamic_child_keeps_it() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("db", log)).build()
    async with sup.running() as handle:
        await handle.start_child(Recorder("conn", log))
        await handle.restart("conn")

        assert handle.is_running("conn")
        assert log.count("start conn") == 2


@pytest.mark.parametrize("under", ["a/b", "app/a/b"])
async def test_start_child_under_a_nested_supervisor(under: str) -> None:
    log: list[str] = []
    async with _deep(log).build().running() as handle:
        await handle.start_child(Recorder("conn", log), under=under)

        assert handle.is_running("a/b/conn")
        assert handle.status()["a/b/conn"].dynamic
        outcome = await handle.stop("a/b/conn")
        assert outcome.path == "app/a/b/conn"


async def test_start_child_under_a_plain_proc_is_refused() -> None:
    async with _deep([]).build().running() as handle:
        with pytest.raises(KeyError, match="not a running supervisor"):
            await handle.start_child(Recorder("conn", []), under="web")


async def test_at_shutdown_dynamic_children_stop_newest_first_then_static_in_reverse() -> None:
    log: list[str] = []
    inner = SupervisorBuilder("inner").add_proc(Recorder("i1", log)).add_proc(Recorder("i2", log))
    builder = SupervisorBuilder("app").add_proc(Recorder("s1", log)).add_proc(inner)
    sup = builder.add_proc(Recorder("s2", log)).build()
    async with sup.running() as handle:
        await handle.start_child(Recorder("d1", log))
        await handle.start_child(Recorder("d2", log))
        await handle.start_child(Recorder("n1", log), under="inner")
        await handle.start_child(Recorder("n2", log), under="inner")

    stops = [line.removeprefix("stopped ") for line in log if line.startswith("stopped")]
    assert stops == ["d2", "d1", "s2", "n2", "n1", "i2", "i1", "s1"]


# ----------------------------------------------------------------- token.supervisor


async def test_a_proc_controls_its_own_supervisor_with_relative_paths() -> None:
    log: list[str] = []
    seen: list[SupervisorControls] = []

    async def dispatcher(token: CancellationToken) -> None:
        controls = token.supervisor
        seen.append(controls)
        await controls.start_child(Recorder("job", log))
        await controls.stop("sibling")
        token.ready(controls.is_running("job"))
        await token.wait()

    inner = (
        SupervisorBuilder("pipeline")
        .add_proc(Recorder("sibling", log))
        .add_proc(dispatcher, wait_ready=True)
    )
    sup = SupervisorBuilder("app").add_proc(inner).build()
    async with sup.running() as handle:
        assert handle.ready_value("pipeline/dispatcher") is True
        assert handle.is_running("pipeline/job")
        assert handle.status()["pipeline/sibling"].state is RunState.STOPPED
        assert [p.name for p in seen[0].status()] == ["sibling", "dispatcher", "job"]


def test_a_token_made_by_hand_has_no_supervisor() -> None:
    with pytest.raises(RuntimeError, match="made by hand"):
        _ = CancellationToken().supervisor


# ----------------------------------------------------------------- abort


@pytest.mark.hang_guard(20)
async def test_abort_cuts_a_stop_short_during_its_grace() -> None:
    log: list[str] = []
    stubborn = Stubborn("stubborn", log)
    sup = SupervisorBuilder("app").add_proc(stubborn, grace=60).add_proc(Recorder("web", []))
    async with sup.build().running() as handle:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(handle.stop, "stubborn")
            await stubborn.stopping.wait()
            handle.abort("stubborn")

        assert log[-1] == "forced stubborn"
        assert handle.status()["stubborn"].state is RunState.FORCED
        assert handle.is_running("web")

    assert handle.report["stubborn"].status is ProcStatus.FORCED


@pytest.mark.hang_guard(20)
async def test_abort_during_the_shutdown_skips_the_rest_of_the_grace() -> None:
    log: list[str] = []
    stubborn = Stubborn("stubborn", log)
    sup = SupervisorBuilder("app").add_proc(stubborn, grace=60).add_proc(Recorder("web", log))
    async with sup.build().running() as handle:
        handle.shutdown("maintenance")
        await stubborn.stopping.wait()
        handle.abort("stubborn")
        report = await handle.wait_stopped()

    assert report["stubborn"].status is ProcStatus.FORCED
    assert report.reason == "maintenance"


async def test_abort_of_a_running_proc_forces_it_now_and_parks_it() -> None:
    log: list[str] = []
    builder = SupervisorBuilder("app").add_proc(Stubborn("s", log), grace=60)
    sup = builder.add_proc(Recorder("web", [])).build()
    async with sup.running() as handle:
        handle.abort("s")
        await anyio.wait_all_tasks_blocked()

        assert handle.status()["s"].state is RunState.FORCED
        assert handle.status().state is RunState.RUNNING
        await handle.start("s")
        assert handle.is_running("s")
        handle.abort("s")


# ----------------------------------------------------------------- inject_failure


@pytest.mark.parametrize("policy", [Restart.PERMANENT, Restart.TRANSIENT])
async def test_inject_failure_restarts_a_permanent_or_transient_proc(policy: Restart) -> None:
    worker = Worker("w", [])
    sup = SupervisorBuilder("app").add_proc(worker, restart=policy).add_proc(Recorder("db", []))
    async with sup.build().running() as handle:
        handle.inject_failure("w", Boom("injected"))
        await worker.wait_run(2)

        assert handle.status()["w"].restarts == 1
        assert handle.status()["w"].state is RunState.RUNNING


async def test_inject_failure_ends_a_temporary_proc_failed_with_that_error() -> None:
    worker = Worker("w", [])
    builder = SupervisorBuilder("app").add_proc(worker, restart=Restart.TEMPORARY)
    sup = builder.add_proc(Recorder("db", [])).build()
    error = Boom("injected")

    async def body(handle: RunHandle) -> None:
        handle.inject_failure("w", error)
        await worker.wait_ended(1)
        await anyio.wait_all_tasks_blocked()
        assert handle.status()["w"].state is RunState.FAILED
        assert handle.is_running("db")

    with pytest.raises(SupervisorError) as caught:
        await _run(sup, body)

    outcome = caught.value.report["w"]
    assert outcome.error is error
    assert "super_visor: raised by proc app/w" in error.__notes__
    assert outcome.restarts == 0


async def test_inject_failure_reaches_a_proc_that_swallows_the_cancellation() -> None:
    async def swallows(token: CancellationToken) -> str:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            return "carried on"
        return "unreachable"

    builder = SupervisorBuilder("app").add_proc(swallows, restart=Restart.TEMPORARY)
    sup = builder.add_proc(Recorder("db", [])).build()
    with pytest.raises(SupervisorError) as caught:
        await _run(sup, lambda handle: _inject(handle, "swallows", Boom("injected")))

    assert caught.value.report["swallows"].status is ProcStatus.FAILED
    assert caught.value.report["swallows"].result is None


async def test_inject_failure_into_a_nested_supervisor_fails_it_with_that_error() -> None:
    log: list[str] = []
    inner = SupervisorBuilder("inner").add_proc(Recorder("i1", log))
    builder = SupervisorBuilder("app").add_proc(inner, restart=Restart.TEMPORARY)
    sup = builder.add_proc(Recorder("db", [])).build()
    error = Boom("injected")
    with pytest.raises(SupervisorError) as caught:
        await _run(sup, lambda handle: _inject(handle, "inner", error))

    outcome = caught.value.report["inner"]
    assert outcome.status is ProcStatus.FAILED
    assert outcome.error is error
    assert caught.value.report["inner/i1"].status is ProcStatus.STOPPED  # stopped first


async def test_inject_failure_into_a_proc_that_is_not_running_is_refused() -> None:
    sup = SupervisorBuilder("app").add_proc(Recorder("db", [])).add_proc(Recorder("web", []))
    async with sup.build().running() as handle:
        await handle.stop("db")
        with pytest.raises(RuntimeError, match="app/db: cannot inject a failure"):
            handle.inject_failure("db", Boom("late"))


# ----------------------------------------------------------------- events and errors


async def test_every_action_is_an_event_naming_who_asked() -> None:
    events: list[Event] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("web", [])).add_proc(Recorder("db", []))
    async with sup.on_event(events.append).build().running() as handle:
        await handle.stop("web")
        await handle.start("web", _by="socket")
        await handle.restart("web")
        handle.abort("db", _by="socket")

    control = [(e.path, e.detail) for e in events if e.kind is EventKind.CONTROL]
    assert control == [
        ("app/web", "stop requested by API"),
        ("app/web", "start requested by socket"),
        ("app/web", "restart requested by API"),
        ("app/db", "abort requested by socket"),
    ]
    stopping = [e.detail for e in events if e.kind is EventKind.STOPPING and e.path == "app/web"]
    assert stopping[:2] == ["stopped by API", "restarted by API"]


async def test_an_action_is_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    sup = SupervisorBuilder("app").add_proc(Recorder("web", [])).add_proc(Recorder("db", []))
    with caplog.at_level("INFO", logger="super_visor"):
        async with sup.build().running() as handle:
            await handle.stop("web", _by="socket")

    assert any("stop requested by socket" in r.getMessage() for r in caplog.records)


async def test_an_unknown_path_is_a_key_error_naming_it() -> None:
    async with _deep([]).build().running() as handle:
        for action in (handle.stop, handle.start, handle.restart):
            with pytest.raises(KeyError, match="no proc 'a/nope'"):
                await action("a/nope")
        with pytest.raises(KeyError, match="no proc 'nope'"):
            handle.abort("nope")


async def test_start_of_a_running_proc_is_refused() -> None:
    async with _deep([]).build().running() as handle:
        with pytest.raises(RuntimeError, match="app/web: cannot start it, it is running"):
            await handle.start("web")


async def test_actions_after_the_run_has_ended_are_refused() -> None:
    async with _deep([]).build().running() as handle:
        pass

    with pytest.raises(RuntimeError, match="app: the supervisor has stopped"):
        await handle.stop("web")
    with pytest.raises(RuntimeError, match="has stopped"):
        await handle.start("web")
    with pytest.raises(RuntimeError, match="has stopped"):
        handle.abort("web")
    with pytest.raises(RuntimeError, match="has stopped"):
        handle.inject_failure("web", Boom("late"))


async def _run(sup: Supervisor, body: Callable[[RunHandle], Awaitable[None]]) -> None:
    async with sup.running() as handle:
        await body(handle)


async def _inject(handle: RunHandle, path: str, error: BaseException) -> None:
    handle.inject_failure(path, error)
    await anyio.wait_all_tasks_blocked()


async def test_restart_does_not_start_the_proc_again_once_a_shutdown_began() -> None:
    async def asks_on_stop(token: CancellationToken) -> None:
        await token.wait()
        token.request_shutdown("maintenance")  # while its restart stops it

    sup = SupervisorBuilder("app").add_proc(asks_on_stop).add_proc(Recorder("web", [])).build()

    async def body(handle: RunHandle) -> None:
        with pytest.raises(RuntimeError, match="is shutting down"):
            await handle.restart("asks_on_stop")
        await handle.wait_stopped()

    await _run(sup, body)


@pytest.mark.parametrize("action", ["stop", "abort"])
async def test_a_proc_stopped_in_its_backoff_is_not_restarted(action: str) -> None:
    log: list[str] = []
    worker = Worker("w", log)
    clock = ManualClock()
    builder = SupervisorBuilder("app").add_proc(Recorder("db", []))
    builder = builder.add_proc(worker, restart=Restart.PERMANENT, backoff=Backoff(initial=1.0))
    sup = with_clock(builder.build(), clock)
    errors: list[BaseException] = []

    async def body(handle: RunHandle) -> None:
        worker.crash(error := Boom("crash"))
        errors.append(error)
        await clock.wait_sleeper()  # its backoff began
        if action == "stop":
            await handle.stop("w")
        else:
            handle.abort("w")
        clock.advance(10)
        await anyio.wait_all_tasks_blocked()
        assert worker.runs == 1
        assert handle.status()["w"].state is RunState.FAILED  # its last run stands
        await handle.start("w")
        assert worker.runs == 2

    await _run(sup, body)


async def test_stopping_a_stopped_proc_just_returns_its_outcome() -> None:
    events: list[Event] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("web", [])).add_proc(Recorder("db", []))
    async with sup.on_event(events.append).build().running() as handle:
        first = await handle.stop("web")
        second = await handle.stop("web")

        assert second == first
        assert [e.kind for e in events if e.path == "app/web"].count(EventKind.STOPPED) == 1


async def test_inject_failure_reaches_a_proc_blocked_in_a_stream_inside_its_cancel_scope() -> None:
    send, receive = anyio.create_memory_object_stream[int]()

    async def consumer(token: CancellationToken) -> None:
        with token.cancel_scope():
            async for _item in receive:
                pass

    builder = SupervisorBuilder("app").add_proc(consumer, restart=Restart.PERMANENT)
    sup = builder.add_proc(Recorder("db", [])).build()
    with send, receive:
        async with sup.running() as handle:
            handle.inject_failure("consumer", Boom("injected"))
            await anyio.wait_all_tasks_blocked()

            assert handle.status()["consumer"].restarts == 1
            assert handle.is_running("consumer")


@pytest.mark.parametrize(
    ("first", "second", "final"),
    [
        ("restart", "restart", RunState.RUNNING),
        ("restart", "stop", RunState.STOPPED),
        ("stop", "restart", RunState.RUNNING),
        ("stop", "stop", RunState.STOPPED),
    ],
)
async def test_two_actions_on_one_proc_at_once_take_turns(
    first: str, second: str, final: RunState
) -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("w", log)).add_proc(Recorder("x", log))
    async with sup.build().running() as handle:
        async with anyio.create_task_group() as tg:
            tg.start_soon(getattr(handle, first), "w")
            await anyio.lowlevel.checkpoint()  # the first one has begun: the second waits
            tg.start_soon(getattr(handle, second), "w")
        state = handle.status()["w"].state

    assert state is final
    starts = {"restart": 1, "stop": 0}
    assert log.count("start w") == 1 + starts[first] + starts[second]
