"""Erlang/OTP's ``lib/stdlib/test/supervisor_SUITE.erl``, translated to super_visor.

Each test is named after the OTP case it mirrors and says how it maps. The mapping:

- an OTP child exiting ``normal`` is a proc returning on its own (COMPLETED); exiting
  ``abnormal`` is a proc raising (FAILED);
- ``{Strategy, MaxR, MaxT}`` is ``SupervisorBuilder(strategy=, max_restarts=, within=)``;
- a child whose start function returns ``{error, _}`` at a restart is a proc that raises at once
  in that run (non-gating, so it is an ordinary run outcome and counts as a restart);
- ``supervisor:start_child``/``terminate_child`` are ``handle.start_child``/``stop_child``, and
  ``simple_one_for_one`` is dynamic children (always restarted one-for-one);
- OTP's ``auto_shutdown = any_significant`` is our default: a significant proc that is not
  restarted stops its supervisor.

Cases about OTP-only machinery (``ignore`` returns, child-spec maps, ``code_change``, global
names, ``count_children``, exit reason ``shutdown``) have no counterpart and are left out.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Final

import anyio
import pytest

from super_visor import (
    Backoff,
    ProcStatus,
    Restart,
    RestartLimitExceeded,
    Strategy,
    SupervisorBuilder,
    SupervisorError,
)

from .clock import ManualClock, with_clock
from .fakes import Boom, Worker
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from super_visor import RunHandle, Supervisor

TIMEOUT: Final = 10


def sup_test(
    *children: Worker,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    max_restarts: int = 2,
    within: float = 3600.0,
    restart: Restart = Restart.PERMANENT,
    significant: bool = True,
) -> Supervisor:
    """OTP's ``start_link({ok, {{Strategy, MaxR, MaxT}, Children}})``."""
    builder = SupervisorBuilder(
        "sup_test", strategy=strategy, max_restarts=max_restarts, within=within
    )
    for child in children:
        builder.add_proc(child, restart=restart, significant=significant)
    return builder.build()


async def exits_with_restart_limit(
    sup: Supervisor, scenario: Callable[[RunHandle], Awaitable[None]]
) -> RestartLimitExceeded:
    """Run *scenario* on the running tree; the tree must die of its restart intensity."""

    async def run() -> None:
        async with sup.running() as handle:
            await scenario(handle)
            await handle.wait_stopped()

    with anyio.fail_after(TIMEOUT), pytest.raises(SupervisorError) as caught:
        await run()
    limits = [e for e in caught.value.exceptions if isinstance(e, RestartLimitExceeded)]
    assert len(limits) == 1, caught.value.exceptions
    return limits[0]


# ----------------------------------------------------------------------------- normal / abnormal


async def test_permanent_normal() -> None:
    """A permanent child is restarted even when it exits normally."""
    child1 = Worker("child1", [])
    async with sup_test(child1).running() as handle:
        child1.complete()
        await child1.wait_run(2)
        assert not handle.stopped
    assert handle.report["child1"].restarts == 1


async def test_transient_normal() -> None:
    """A transient child is not restarted when it exits normally.

    A PERMANENT keeper runs beside it: a supervisor with no procs left stops ("no procs
    left running"), where OTP's would idle with an empty child list.
    """
    child1 = Worker("child1", [])
    sup = (
        SupervisorBuilder("sup_test")
        .add_proc(Worker("keeper", []), restart=Restart.PERMANENT)
        .add_proc(child1, restart=Restart.TRANSIENT, significant=False)
        .build()
    )
    async with sup.running() as h:
        child1.complete("normal")
        await child1.wait_ended(1)
        await anyio.wait_all_tasks_blocked()
        assert not h.stopped
    assert child1.runs == 1
    assert h.report["child1"].status is ProcStatus.COMPLETED
    assert h.report["child1"].restarts == 0


async def test_temporary_normal() -> None:
    """A temporary child is never restarted."""
    child1 = Worker("child1", [])
    async with sup_test(child1, restart=Restart.TEMPORARY, significant=False).running() as h:
        child1.complete("normal")
        await child1.wait_ended(1)
        await anyio.wait_all_tasks_blocked()
    assert child1.runs == 1
    assert h.report["child1"].status is ProcStatus.COMPLETED


async def test_permanent_abnormal() -> None:
    child1 = Worker("child1", [])
    async with sup_test(child1).running() as handle:
        child1.crash()
        await child1.wait_run(2)
    assert handle.report["child1"].restarts == 1
    assert handle.report["child1"].status is ProcStatus.STOPPED


async def test_transient_abnormal() -> None:
    """A transient child is restarted when it exits abnormally."""
    child1 = Worker("child1", [])
    async with sup_test(child1, restart=Restart.TRANSIENT).running() as handle:
        child1.crash()
        await child1.wait_run(2)
    assert handle.report["child1"].restarts == 1


async def test_temporary_abnormal() -> None:
    """A temporary child is not restarted, even after a crash; its failure is reported."""
    child1 = Worker("child1", [])
    keeper = Worker("keeper", [])
    sup = (
        SupervisorBuilder("sup_test")
        .add_proc(keeper, restart=Restart.PERMANENT)
        .add_proc(child1, restart=Restart.TEMPORARY, significant=False)
        .build()
    )

    async def scenario() -> None:
        async with sup.running() as handle:
            child1.crash()
            await child1.wait_ended(1)
            await anyio.wait_all_tasks_blocked()
            assert not handle.stopped

    with pytest.raises(SupervisorError) as caught:
        await scenario()
    assert child1.runs == 1
    assert caught.value.report["child1"].status is ProcStatus.FAILED


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_temporary_bystander(strategy: Strategy) -> None:
    """A temporary child killed as part of a group restart is not restarted, and the
    supervisor does not die trying."""
    log: list[str] = []
    child1, child2 = Worker("child1", log), Worker("child2", log)
    sup = (
        SupervisorBuilder("sup_test", strategy=strategy, max_restarts=2, within=300.0)
        .add_proc(child1, restart=Restart.PERMANENT)
        .add_proc(child2, restart=Restart.TEMPORARY)
        .build()
    )
    async with sup.running() as handle:
        child1.complete("normal")
        await child1.wait_run(2)
        await anyio.wait_all_tasks_blocked()
        assert not handle.stopped
        assert log[2:] == ["complete child1", "stop child2", "start child1"]
    assert child2.runs == 1
    assert handle.report["child2"].status is ProcStatus.STOPPED


# ----------------------------------------------------------------------------- intensity


async def test_multiple_restarts() -> None:
    """Restarts spaced beyond the period never exceed intensity 1.

    OTP uses 1 restart per 1 s and sleeps 2.1 s between kills; we scale it to 0.1 s and
    0.15 s, on the run's clock: the test moves it instead of sleeping.
    """
    child1 = Worker("child1", [])
    clock = ManualClock()
    async with with_clock(sup_test(child1, max_restarts=1, within=0.1), clock).running() as handle:
        child1.crash()
        for run in range(2, 5):
            await child1.wait_run(run)
            clock.advance(0.15)
            child1.crash()
        await child1.wait_run(5)
        assert not handle.stopped
    assert handle.report["child1"].restarts == 4


# ----------------------------------------------------------------------------- one_for_one


async def test_one_for_one() -> None:
    log: list[str] = []
    child1, child2 = Worker("child1", log), Worker("child2", log)
    sup = sup_test(child1, child2, max_restarts=2)

    async def scenario(handle: RunHandle) -> None:
        child1.crash()
        await child1.wait_run(2)
        assert child2.runs == 1  # only the crashed child was restarted
        assert not handle.stopped
        # Restart frequency: two more crashes make three restarts, one more than 2.
        child2.crash()
        await child2.wait_run(2)
        child1.crash()

    limit = await exits_with_restart_limit(sup, scenario)
    assert limit.last_proc == "sup_test/child1"
    assert log[-1] == "stop child2"


async def test_one_for_one_escalation() -> None:
    """child1 fails at every restart: the supervisor gives up and stops child2 too."""
    log: list[str] = []
    child1 = Worker("child1", log, fail_runs=range(2, 100))
    child2 = Worker("child2", log)
    sup = sup_test(child1, child2, max_restarts=4)

    async def scenario(_handle: RunHandle) -> None:
        child1.crash()

    limit = await exits_with_restart_limit(sup, scenario)
    assert limit.last_proc == "sup_test/child1"
    assert child1.runs == 5  # 4 restarts allowed, the 5th crash is one too many
    assert log[-1] == "stop child2"
    assert child2.runs == 1


# ----------------------------------------------------------------------------- one_for_all


async def test_one_for_all() -> None:
    log: list[str] = []
    child1, child2 = Worker("child1", log), Worker("child2", log)
    sup = sup_test(child1, child2, strategy=Strategy.ONE_FOR_ALL, max_restarts=2)

    async def scenario(handle: RunHandle) -> None:
        child1.crash()
        await child2.wait_run(2)  # child2 was stopped and restarted with it
        assert log[2:] == ["crash child1", "stop child2", "start child1", "start child2"]
        assert child1.tokens[0].cancelled is False  # child1 crashed; it was not stopped
        assert child2.tokens[0].cancelled  # the old child2 was stopped ...
        assert child2.max_active == 1  # ... before the new one started
        assert not handle.stopped
        child1.crash()
        await child2.wait_run(3)
        child2.crash()

    await exits_with_restart_limit(sup, scenario)


async def test_one_for_all_escalation() -> None:
    log: list[str] = []
    child1 = Worker("child1", log)
    child2 = Worker("child2", log, fail_runs=range(2, 100))
    sup = sup_test(child1, child2, strategy=Strategy.ONE_FOR_ALL, max_restarts=4)

    async def scenario(_handle: RunHandle) -> None:
        child1.crash()

    limit = await exits_with_restart_limit(sup, scenario)
    assert limit.last_proc == "sup_test/child2"
    assert child2.runs == 5
    assert child1.runs == 5  # restarted with child2 every time
    assert log[-1] == "stop child1"


async def test_one_for_all_other_child_fails_restart() -> None:
    """When child2 fails during the group restart, the restarted child1 is stopped again."""
    log: list[str] = []
    child1 = Worker("child1", log)
    child2 = Worker("child2", log, fail_runs={2})
    sup = sup_test(child1, child2, strategy=Strategy.ONE_FOR_ALL, max_restarts=3)
    async with sup.running() as handle:
        child1.crash()
        await child2.wait_run(3)
        await anyio.wait_all_tasks_blocked()
        assert not handle.stopped
    assert log[2:9] == [
        "crash child1",
        "stop child2",
        "start child1",
        "start child2",
        "crash child2",
        "stop child1",  # the restarting child is terminated
        "start child1",
    ]
    assert child1.runs == 3
    assert child1.max_active == 1
    assert handle.report["child2"].restarts == 2


# ----------------------------------------------------------------------------- rest_for_one


async def test_rest_for_one() -> None:
    log: list[str] = []
    child1, child2, child3 = (Worker(f"child{n}", log) for n in (1, 2, 3))
    sup = sup_test(child1, child2, child3, strategy=Strategy.REST_FOR_ONE, max_restarts=2)

    async def scenario(handle: RunHandle) -> None:
        child2.crash()
        await child3.wait_run(2)
        assert log[3:] == ["crash child2", "stop child3", "start child2", "start child3"]
        assert child1.runs == 1  # declared before child2: untouched
        assert not handle.stopped
        child3.crash()
        await child3.wait_run(3)
        assert child2.runs == 2  # declared before child3: untouched
        child2.crash()

    await exits_with_restart_limit(sup, scenario)
    assert log[-1] == "stop child1"


async def test_rest_for_one_escalation() -> None:
    log: list[str] = []
    child1 = Worker("child1", log)
    child2 = Worker("child2", log, fail_runs=range(2, 100))
    sup = sup_test(child1, child2, strategy=Strategy.REST_FOR_ONE, max_restarts=4)

    async def scenario(_handle: RunHandle) -> None:
        child1.crash()

    limit = await exits_with_restart_limit(sup, scenario)
    assert limit.last_proc == "sup_test/child2"
    assert child1.runs == 2  # child2's own crashes restart only child2
    assert child2.runs == 5  # restarted with child1 (1 restart), then 3 more of its own
    assert log[-1] == "stop child1"


async def test_rest_for_one_other_child_fails_restart() -> None:
    """child2 failing during the group restart does not restart child1 again."""
    log: list[str] = []
    child1 = Worker("child1", log)
    child2 = Worker("child2", log, fail_runs={2})
    sup = sup_test(child1, child2, strategy=Strategy.REST_FOR_ONE, max_restarts=3)
    async with sup.running() as handle:
        child1.crash()
        await child2.wait_run(3)
        await anyio.wait_all_tasks_blocked()
        assert not handle.stopped
    assert log[2:8] == [
        "crash child1",
        "stop child2",
        "start child1",
        "start child2",
        "crash child2",
        "start child2",
    ]
    assert child1.runs == 2


# ----------------------------------------------------------------------------- simple_one_for_one


async def test_simple_one_for_one() -> None:
    """Dynamic children of one kind, each restarted on its own."""
    log: list[str] = []
    sup = SupervisorBuilder("sup_test", strategy=Strategy.ONE_FOR_ALL).add_proc(
        Worker("static", log)
    )
    workers = [Worker(f"w{n}", log) for n in range(3)]
    async with sup.build().running() as handle:
        for worker in workers:
            await handle.start_child(worker, restart=Restart.PERMANENT)
        workers[1].crash()
        await workers[1].wait_run(2)
        await anyio.wait_all_tasks_blocked()
        assert [w.runs for w in workers] == [1, 2, 1]
    assert handle.report["w1"].restarts == 1


async def test_simple_one_for_one_escalation() -> None:
    log: list[str] = []
    sup = sup_test(Worker("static", log), max_restarts=4)
    child = Worker("child", log, fail_runs=range(2, 100))

    async def scenario(handle: RunHandle) -> None:
        await handle.start_child(child, restart=Restart.PERMANENT)
        child.crash()

    limit = await exits_with_restart_limit(sup, scenario)
    assert limit.last_proc == "sup_test/child"
    assert child.runs == 5
    assert log[-1] == "stop static"


# ----------------------------------------------------------------------------- administration


async def test_child_adm() -> None:
    """start_child / terminate_child: a terminated child is not restarted, even PERMANENT."""
    log: list[str] = []
    sup = sup_test(Worker("static", log))
    child = Worker("child1", log)
    async with sup.running() as handle:
        await handle.start_child(child, restart=Restart.PERMANENT)
        outcome = await handle.stop_child("child1")
        assert outcome.status is ProcStatus.STOPPED
        await anyio.wait_all_tasks_blocked()
        assert child.runs == 1
        with pytest.raises(KeyError):
            await handle.stop_child("child1")
        # The id is free again (OTP: delete_child, then start_child).
        await handle.start_child(Worker("child1", log))


async def test_temporary_shutdown() -> None:
    """A temporary child terminated by the supervisor is forgotten: the same spec starts again."""
    log: list[str] = []
    sup = sup_test(Worker("static", log))
    async with sup.running() as handle:
        for _ in range(2):
            await handle.start_child(Worker("child1", log), restart=Restart.TEMPORARY)
            await handle.stop_child("child1")
    assert [o.name for o in handle.report.outcomes] == ["static"]


# ----------------------------------------------------------------------------- trees


async def test_tree() -> None:
    """A supervision tree: a nested supervisor that exceeds its intensity is restarted, with
    its siblings, by a one_for_all parent."""
    log: list[str] = []
    child1, child2 = Worker("child1", log), Worker("child2", log)
    child3 = Worker("child3", log, fail_runs={2, 3, 4, 5})
    supchild1 = sup_test(child1, child2, max_restarts=4)
    supchild2 = (
        SupervisorBuilder("supchild2", max_restarts=4, within=3600.0)
        .add_proc(child3, restart=Restart.PERMANENT)
        .build()
    )
    top = (
        SupervisorBuilder("top", strategy=Strategy.ONE_FOR_ALL, max_restarts=4, within=3600.0)
        .add_proc(supchild1, name="supchild1", restart=Restart.PERMANENT)
        .add_proc(supchild2, restart=Restart.PERMANENT)
        .build()
    )
    async with top.running() as handle:
        child3.crash()
        await child3.wait_run(6)
        await anyio.wait_all_tasks_blocked()
        assert not handle.stopped
    assert (child1.runs, child2.runs, child3.runs) == (2, 2, 6)
    report = handle.report
    assert report["supchild1"].restarts == 1
    assert report["supchild2"].restarts == 1
    assert report["supchild2/child3"].restarts == 0  # a fresh run of the subtree
    (earlier,) = report["supchild2"].history
    assert isinstance(earlier, SupervisorError)
    assert earlier.subgroup(RestartLimitExceeded) is not None


async def test_hanging_restart_loop() -> None:
    """A supervisor in a restart loop (child failing at every start) can still be shut down."""
    child1 = Worker("child1", [], fail_runs=range(2, 10_000))
    sup = (
        SupervisorBuilder("sup_test", max_restarts=10_000, within=10.0)
        .add_proc(child1, restart=Restart.PERMANENT, backoff=Backoff(initial=0.01, maximum=0.05))
        .build()
    )
    with suppress(SupervisorError):
        # The backoffs pass on a virtual clock, at once: no real waiting between the runs.
        async with with_clock(sup, ManualClock(autojump=True)).running() as handle:
            child1.crash()
            await child1.wait_run(5)
            handle.shutdown("leave the loop")
            runs = child1.runs
    assert child1.runs <= runs + 1  # nothing restarted once the stop was requested


async def test_order_of_children() -> None:
    """Children keep their declared order across restarts: stop order stays reversed."""
    log: list[str] = []
    children = [Worker(f"child{n}", log) for n in range(1, 5)]
    sup = sup_test(*children, max_restarts=10)
    async with sup.running():
        for child in (children[2], children[0], children[3], children[1]):
            child.crash()
            await child.wait_run(2)
        await anyio.wait_all_tasks_blocked()
        del log[:]
    assert log == ["stop child4", "stop child3", "stop child2", "stop child1"]


# ----------------------------------------------------------------------------- significant


async def test_significant_temporary() -> None:
    """A significant temporary child exiting shuts the supervisor down (auto_shutdown)."""
    log: list[str] = []
    child1, child2 = Worker("child1", log), Worker("child2", log)
    sup = (
        SupervisorBuilder("sup_test")
        .add_proc(child1, restart=Restart.PERMANENT)
        .add_proc(child2, restart=Restart.TEMPORARY, significant=True)
        .build()
    )
    async with sup.running() as handle:
        child2.complete("normal")
        await handle.wait_stopped()
    assert handle.report.reason == "proc 'sup_test/child2' completed"
    assert log[-1] == "stop child1"


async def test_significant_transient() -> None:
    """A significant transient child is restarted after a crash and shuts the supervisor down
    once it exits normally."""
    log: list[str] = []
    child1, child2 = Worker("child1", log), Worker("child2", log)
    sup = (
        SupervisorBuilder("sup_test")
        .add_proc(child1, restart=Restart.PERMANENT)
        .add_proc(child2, restart=Restart.TRANSIENT, significant=True)
        .build()
    )
    async with sup.running() as handle:
        child2.crash()
        await child2.wait_run(2)
        assert not handle.stopped
        child2.complete("normal")
        await handle.wait_stopped()
    assert handle.report.reason == "proc 'sup_test/child2' completed"
    assert handle.report["child2"].restarts == 1


async def test_significant_bystander() -> None:
    """A significant child stopped by its supervisor for a sibling's restart does not count
    as exiting: no auto-shutdown."""
    log: list[str] = []
    child1, child2 = Worker("child1", log), Worker("child2", log)
    sup = (
        SupervisorBuilder("sup_test", strategy=Strategy.ONE_FOR_ALL)
        .add_proc(child1, restart=Restart.PERMANENT)
        .add_proc(child2, restart=Restart.TEMPORARY, significant=True)
        .build()
    )
    async with sup.running() as handle:
        child1.crash()
        await child1.wait_run(2)
        await anyio.wait_all_tasks_blocked()
        assert not handle.stopped
    assert child2.runs == 1


async def test_significant_simple() -> None:
    """A significant dynamic child exiting shuts the supervisor down."""
    log: list[str] = []
    sup = sup_test(Worker("static", log))
    child = Worker("child", log)

    async def scenario() -> None:
        async with sup.running() as handle:
            await handle.start_child(child, restart=Restart.TEMPORARY, significant=True)
            child.crash(Boom("abnormal"))
            await handle.wait_stopped()

    with pytest.raises(SupervisorError) as caught:
        await scenario()
    assert caught.value.report.reason == "proc 'sup_test/child' failed"
    assert log[-1] == "stop static"
