"""Dynamic children: ``handle.start_child()`` / ``handle.stop_child()`` on a running tree
(OTP ``start_child`` / ``terminate_child``, Elixir's DynamicSupervisor)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import (
    CancellationToken,
    ConfigError,
    ProcStatus,
    Restart,
    StartupError,
    Strategy,
    SupervisorBuilder,
    SupervisorError,
)

from .fakes import Boom, FailsBeforeReady, Gate, NeverReady, Recorder, Worker, recording_fn
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

if TYPE_CHECKING:
    from super_visor import Supervisor


def static_tree(log: list[str], strategy: Strategy = Strategy.ONE_FOR_ONE) -> Supervisor:
    return (
        SupervisorBuilder("app", strategy=strategy)
        .add_proc(Recorder("a", log))
        .add_proc(Recorder("b", log))
        .build()
    )


async def test_thousand_children_started_and_stopped_while_static_procs_run() -> None:
    log: list[str] = []
    live = 0
    peak = 0

    async def conn(token: CancellationToken) -> None:
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        try:
            await token.wait()
        finally:
            live -= 1

    sup = static_tree(log)
    async with sup.running() as handle:
        for batch in range(10):  # 100 at a time, stopped oldest first
            names = [f"conn-{batch}-{i}" for i in range(100)]
            for name in names:
                await handle.start_child(conn, name=name)
            assert live == 100
            for name in names:
                outcome = await handle.stop_child(name)
                assert outcome.status is ProcStatus.STOPPED
            assert live == 0
        assert log == ["start a", "start b"]  # the static procs were never touched
        assert not handle.stopped
    assert peak == 100
    assert [o.name for o in handle.report.outcomes] == ["a", "b"]  # stopped children left
    assert log[2:] == ["stopping b", "stopped b", "stopping a", "stopped a"]


async def test_dynamic_children_stop_before_static_procs_newest_first() -> None:
    log: list[str] = []
    sup = static_tree(log)
    async with sup.running() as handle:
        for name in ("d1", "d2", "d3"):
            await handle.start_child(recording_fn(name, log), name=name)
    assert log == [
        "start a",
        "start b",
        "start d1",
        "start d2",
        "start d3",
        "stopped d3",
        "stopped d2",
        "stopped d1",
        "stopping b",
        "stopped b",
        "stopping a",
        "stopped a",
    ]
    assert [o.name for o in handle.report.outcomes] == ["a", "b", "d1", "d2", "d3"]
    assert handle.report["d2"].path == "app/d2"
    assert handle.report["d2"].status is ProcStatus.STOPPED


async def test_stopped_child_is_not_stopped_again_at_shutdown() -> None:
    log: list[str] = []
    sup = static_tree(log)
    async with sup.running() as handle:
        await handle.start_child(recording_fn("d1", log), name="d1")
        await handle.start_child(recording_fn("d2", log), name="d2")
        outcome = await handle.stop_child("d1", "job cancelled")
        assert outcome.path == "app/d1"
        assert outcome.status is ProcStatus.STOPPED
    assert log.count("stopped d1") == 1
    assert log[5:] == ["stopped d2", "stopping b", "stopped b", "stopping a", "stopped a"]


@pytest.mark.parametrize("taken", ["a", "dyn"])
async def test_duplicate_name_is_a_config_error(taken: str) -> None:
    log: list[str] = []
    sup = static_tree(log)
    async with sup.running() as handle:
        await handle.start_child(recording_fn("dyn", log), name="dyn")
        with pytest.raises(ConfigError, match=f"app/{taken}"):
            await handle.start_child(recording_fn("again", log), name=taken)
        assert not handle.stopped
    assert "start again" not in log


async def test_invalid_child_is_a_config_error() -> None:
    log: list[str] = []
    sup = static_tree(log)
    async with sup.running() as handle:
        with pytest.raises(ConfigError):
            await handle.start_child(42, name="x")
        with pytest.raises(ConfigError, match="grace"):
            await handle.start_child(recording_fn("y", log), name="y", grace=-1.0)


async def test_gating_child_failing_before_ready_is_a_startup_error() -> None:
    log: list[str] = []
    sup = static_tree(log)
    cause = ValueError("no connection")
    async with sup.running() as handle:
        with pytest.raises(StartupError, match="app/job") as caught:
            await handle.start_child(FailsBeforeReady("job", log, cause), wait_ready=True)
        assert caught.value.__cause__ is cause
        assert not handle.stopped  # the tree keeps running
        # The name is free again: the failed child was removed.
        value = await handle.start_child(Gate("job", log, value=7), wait_ready=True)
        assert value == 7
    assert handle.report["a"].status is ProcStatus.STOPPED


async def test_gating_child_ready_timeout_is_a_startup_error() -> None:
    log: list[str] = []
    sup = static_tree(log)
    async with sup.running() as handle:
        with pytest.raises(StartupError, match="ready_timeout"):
            await handle.start_child(NeverReady("slow", log), wait_ready=True, ready_timeout=0.05)
        assert "stopped slow" in log  # stopped before start_child raised, not leaked
        assert not handle.stopped


async def test_start_child_returns_the_ready_value() -> None:
    log: list[str] = []
    sup = static_tree(log)
    async with sup.running() as handle:
        port = await handle.start_child(Gate("srv", log, value=8080), wait_ready=True)
        assert port == 8080
        assert handle.ready_value("srv") == 8080


async def test_dynamic_child_restarts_one_for_one_whatever_the_strategy() -> None:
    log: list[str] = []
    sup = static_tree(log, Strategy.ONE_FOR_ALL)
    worker = Worker("dyn", log)
    async with sup.running() as handle:
        await handle.start_child(worker, restart=Restart.PERMANENT)
        worker.crash()
        await worker.wait_run(2)
        await anyio.wait_all_tasks_blocked()
        assert log == ["start a", "start b", "start dyn", "crash dyn", "start dyn"]
        assert not handle.stopped
    assert handle.report["dyn"].restarts == 1
    assert handle.report["dyn"].status is ProcStatus.STOPPED
    assert isinstance(handle.report["dyn"].history[0], Boom)


async def test_dynamic_child_is_not_significant_by_default() -> None:
    log: list[str] = []
    sup = static_tree(log)
    job = Worker("job", log)
    async with sup.running() as handle:
        await handle.start_child(job)
        job.complete("done")
        await job.wait_ended(1)
        await anyio.wait_all_tasks_blocked()
        assert not handle.stopped
        # A child that ended cleanly left the supervisor: its name is free again.
        await handle.start_child(Worker("job", log))
    assert [o.name for o in handle.report.outcomes] == ["a", "b", "job"]


async def test_significant_dynamic_child_ending_stops_the_tree() -> None:
    log: list[str] = []
    sup = static_tree(log)
    job = Worker("job", log)
    async with sup.running() as handle:
        await handle.start_child(job, significant=True)
        job.complete("done")
        await handle.wait_stopped()
    assert handle.report.reason == "proc 'app/job' completed"


async def test_failed_dynamic_child_fails_the_tree_at_the_end() -> None:
    log: list[str] = []
    sup = static_tree(log)
    job = Worker("job", log)

    async def scenario() -> None:
        async with sup.running() as handle:
            await handle.start_child(job)
            job.crash()
            await job.wait_ended(1)
            await anyio.wait_all_tasks_blocked()
            assert not handle.stopped  # not significant: the tree runs on ...

    with pytest.raises(SupervisorError) as caught:
        await scenario()
    assert caught.value.report["job"].status is ProcStatus.FAILED  # ... and reports it


async def test_stop_child_unknown_name_is_a_key_error() -> None:
    log: list[str] = []
    sup = static_tree(log)
    async with sup.running() as handle:
        with pytest.raises(KeyError, match="nope"):
            await handle.stop_child("nope")
        with pytest.raises(KeyError, match="'a'"):
            await handle.stop_child("a")  # static procs cannot be stopped alone
        assert not handle.stopped


async def test_start_child_after_shutdown_began_is_refused() -> None:
    log: list[str] = []
    sup = static_tree(log)
    async with sup.running() as handle:
        handle.shutdown("closing")
        with pytest.raises(RuntimeError, match="shutting down"):
            await handle.start_child(recording_fn("late", log), name="late")
    assert "start late" not in log
