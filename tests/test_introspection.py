"""What a proc knows of itself, and what a handle shows of the tree (API.md sections 9-10):
``token.name``/``path``/``request_shutdown()``, the root's READY, ``handle.ready``,
``wait_ready()``, ``status()`` and ``is_running()``."""

from __future__ import annotations

import anyio
import pytest

from super_visor import (
    CancellationToken,
    Event,
    EventKind,
    ProcStatus,
    Restart,
    RunHandle,
    RunState,
    SupervisorBuilder,
    SupervisorError,
    TreeStatus,
)

from .fakes import Boom, Completes, FailsLater, Gate, Recorder


async def test_token_knows_its_name_and_full_path_at_every_depth() -> None:
    seen: dict[str, tuple[str, str]] = {}

    async def proc(token: CancellationToken) -> None:
        seen[token.path] = (token.name, token.path)
        await token.wait()

    inner = SupervisorBuilder("pipeline").add_proc(proc, name="consumer").build()
    sup = SupervisorBuilder("app").add_proc(proc, name="web").add_proc(inner).build()
    async with sup.running():
        pass

    assert seen == {
        "app/web": ("web", "app/web"),
        "app/pipeline/consumer": ("consumer", "app/pipeline/consumer"),
    }


def test_a_token_made_by_hand_has_no_name_and_cannot_stop_a_tree() -> None:
    token = CancellationToken()

    assert (token.name, token.path) == ("", "")
    with pytest.raises(RuntimeError, match="made by hand"):
        token.request_shutdown("nobody listens")


async def test_request_shutdown_from_a_nested_proc_stops_the_whole_tree_in_reverse() -> None:
    log: list[str] = []

    async def asks_to_stop(token: CancellationToken) -> str:
        token.request_shutdown("maintenance window")
        log.append("asked")
        await token.wait()  # it does not end first: it is stopped like the others
        log.append(f"stopped asker, reason {token.reason}")
        return "done"

    inner = (
        SupervisorBuilder("pipeline")
        .add_proc(Recorder("consumer", log))
        .add_proc(asks_to_stop, name="asker")
        .build()
    )
    sup = SupervisorBuilder("app").add_proc(Recorder("web", log)).add_proc(inner).build()

    report = await sup.start(handle_signals=False)

    assert report.reason == "maintenance window"
    assert [line for line in log if line.startswith("stopped")] == [
        "stopped asker, reason maintenance window",
        "stopped consumer",
        "stopped web",
    ]
    assert report["pipeline/asker"].status is ProcStatus.STOPPED
    assert report["pipeline/asker"].result == "done"


async def test_request_shutdown_without_a_reason_names_the_proc() -> None:
    async def asks(token: CancellationToken) -> None:
        token.request_shutdown()
        await token.wait()

    report = await SupervisorBuilder("app").add_proc(asks).build().start(handle_signals=False)

    assert report.reason == "proc 'app/asks' requested the shutdown"


async def test_root_ready_comes_once_after_every_proc_is_ready() -> None:
    events: list[Event] = []
    inner = SupervisorBuilder("pipeline").add_proc(Recorder("consumer", [])).build()
    sup = (
        SupervisorBuilder("app")
        .add_proc(Gate("db", [], value=5432), wait_ready=True)
        .add_proc(inner)
        .on_event(events.append)
        .build()
    )
    async with sup.running() as handle:
        assert handle.ready

    ready = [event.path for event in events if event.kind is EventKind.READY]
    assert ready == ["app/db", "app/pipeline/consumer", "app/pipeline", "app"]


async def test_ready_drops_the_moment_the_shutdown_begins() -> None:
    sup = SupervisorBuilder("app").add_proc(Recorder("web", [])).build()
    async with sup.running() as handle:
        assert await handle.wait_ready()
        assert handle.ready
        handle.shutdown("draining")
        assert not handle.ready
        report = await handle.wait_stopped()

    assert report.reason == "draining"
    assert not handle.ready


async def test_cut_short_start_up_enters_the_block_after_the_stop_with_ready_false() -> None:
    async def stops_before_ready(token: CancellationToken) -> None:
        token.request_shutdown("no config")
        await token.wait()

    sup = (
        SupervisorBuilder("app")
        .add_proc(stops_before_ready, wait_ready=True)
        .add_proc(Recorder("never", []))
        .build()
    )
    async with sup.running() as handle:
        assert handle.stopped
        assert not handle.ready
        assert not await handle.wait_ready()

    assert handle.report["never"].status is ProcStatus.NOT_STARTED


async def test_status_walks_the_tree_depth_first_with_live_states() -> None:
    inner = (
        SupervisorBuilder("pipeline")
        .add_proc(Recorder("consumer", []))
        .add_proc(Recorder("producer", []))
        .build()
    )
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("web", []))
        .add_proc(Gate("db", []), wait_ready=True)
        .add_proc(inner)
        .build()
    )
    async with sup.running() as handle:
        status = handle.status()
        await handle.start_child(Recorder("job", []), name="job")
        with_child = handle.status()

    assert status.state is RunState.RUNNING
    assert status.ready
    assert [(p.path, p.state) for p in status.walk()] == [
        ("app/web", RunState.RUNNING),
        ("app/db", RunState.RUNNING),
        ("app/pipeline", RunState.RUNNING),
        ("app/pipeline/consumer", RunState.RUNNING),
        ("app/pipeline/producer", RunState.RUNNING),
    ]
    assert [p.name for p in status] == ["web", "db", "pipeline"]
    assert all(p.ready and p.started_at is not None for p in status.walk())
    assert status["pipeline/producer"] is status["app/pipeline/producer"]
    assert [(p.name, p.dynamic) for p in with_child] == [
        ("web", False),
        ("db", False),
        ("pipeline", False),
        ("job", True),
    ]
    final = handle.status()
    assert final.state is RunState.STOPPED
    assert not final.ready
    assert {p.state for p in final.walk()} == {RunState.STOPPED}


async def test_status_of_a_nested_supervisor_never_started_lists_its_procs() -> None:
    async def gives_up_before_ready(token: CancellationToken) -> None:
        token.request_shutdown("no config")
        await token.wait()

    inner = SupervisorBuilder("pipeline").add_proc(Recorder("consumer", [])).build()
    sup = (
        SupervisorBuilder("app")
        .add_proc(gives_up_before_ready, name="db", wait_ready=True)
        .add_proc(inner)
        .build()
    )
    async with sup.running() as handle:  # entered once the cut-short start-up has stopped
        status = handle.status()

    assert [(p.path, p.state, p.started_at is None) for p in status.walk()] == [
        ("app/db", RunState.STOPPED, False),
        ("app/pipeline", RunState.NOT_STARTED, True),
        ("app/pipeline/consumer", RunState.NOT_STARTED, True),
    ]


async def test_status_counts_restarts_and_shows_failed_and_completed_procs() -> None:
    runs: list[int] = []

    async def fails_once(token: CancellationToken) -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise Boom("once")
        await token.wait()

    sup = (
        SupervisorBuilder("app")
        .add_proc(fails_once, name="flaky", restart=Restart.TRANSIENT)
        .add_proc(Completes("job", []), significant=False)
        .add_proc(Recorder("web", []))
        .build()
    )
    restarted = anyio.Event()

    def on_event(event: Event) -> None:
        if event.kind is EventKind.READY and event.path == "app/flaky" and event.restarts:
            restarted.set()

    async with sup.with_callbacks(on_event).running() as handle:
        await restarted.wait()
        status = handle.status()
        assert not handle.is_running("job")
        assert handle.is_running("app/web")

    assert status["job"].state is RunState.COMPLETED
    assert status["job"].started_at is not None
    assert status["flaky"].restarts == 1
    assert status["flaky"].state is RunState.RUNNING
    assert not handle.is_running("web")


async def test_is_running_and_status_name_an_unknown_path() -> None:
    sup = SupervisorBuilder("app").add_proc(Recorder("web", [])).build()
    async with sup.running() as handle:
        with pytest.raises(KeyError, match=r"no proc 'nope'.*web"):
            handle.is_running("nope")
        with pytest.raises(KeyError, match="no proc 'nope'"):
            handle.status()["nope"]


async def test_restart_limit_reached_stays_set_after_a_nested_supervisor_gave_up() -> None:
    trigger = anyio.Event()
    fragile = (
        SupervisorBuilder("fragile", max_restarts=0, within=60.0)
        .add_proc(FailsLater("worker", [], Boom("down"), trigger), restart=Restart.PERMANENT)
        .build()
    )
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("web", []))
        .add_proc(fragile, significant=False)
        .build()
    )
    gave_up = anyio.Event()

    def on_event(event: Event) -> None:
        if event.kind is EventKind.SHUTDOWN_FINISHED and event.path == "app/fragile":
            gave_up.set()

    seen: list[TreeStatus] = []
    handles: list[RunHandle] = []

    async def give_up_and_look() -> None:
        async with sup.with_callbacks(on_event).running() as handle:
            handles.append(handle)
            seen.append(handle.status())
            trigger.set()
            await gave_up.wait()
            await anyio.wait_all_tasks_blocked()
            seen.append(handle.status())
            assert handle.is_running("web")

    with pytest.raises(SupervisorError, match="fragile"):
        await give_up_and_look()

    before, after = seen
    final = handles[0].status()
    assert not before.restart_limit_reached
    assert after.restart_limit_reached
    assert after.state is RunState.RUNNING  # the tree goes on: fragile is not significant
    assert after["fragile"].state is RunState.FAILED
    assert final.restart_limit_reached


async def test_a_tree_that_stops_on_its_own_cancels_the_running_block() -> None:
    async def asks(token: CancellationToken) -> None:
        await anyio.wait_all_tasks_blocked()
        token.request_shutdown("done here")
        await token.wait()

    sup = SupervisorBuilder("app").add_proc(Recorder("web", [])).add_proc(asks).build()
    reached_the_end = False
    async with sup.running() as handle:
        await anyio.sleep_forever()
        reached_the_end = True

    assert not reached_the_end
    assert handle.report.reason == "done here"


async def test_a_significant_proc_ending_cancels_the_running_block() -> None:
    release = anyio.Event()
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("web", []))
        .add_proc(Completes("job", [], trigger=release))
        .build()
    )
    async with sup.running() as handle:
        release.set()
        await anyio.sleep_forever()

    assert handle.report["job"].status is ProcStatus.COMPLETED
    assert handle.report.reason == "proc 'app/job' completed"
