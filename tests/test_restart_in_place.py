"""Restarts in place (``Restarter.restart``, ``_proc_task.run_proc_task``): a one-for-one proc
that does not gate, has no backoff and no factory, ending once start-up is over with no other
restart queued, runs again at once in its own task instead of via the supervisor's task.

Its semantics must be those of the queued path. A zero backoff (``Backoff(initial=0.0, ...)``)
forces the queued path with no delay, so most tests run the same proc both ways and compare
the events. Procs that crash "later" wait for their own READY first: the crash is then after
the READY on both paths and both backends, whatever the scheduling.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel
import pytest
import trio.lowlevel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from super_visor import (
    Backoff,
    CancellationToken,
    Event,
    EventKind,
    ProcStatus,
    Restart,
    RestartLimitExceeded,
    SupervisorBuilder,
    SupervisorError,
)

from .fakes import Boom
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

if TYPE_CHECKING:
    from super_visor import Supervisor

K = EventKind
#: A backoff that waits nothing but sends every restart through the supervisor's queue.
QUEUED: Final = Backoff(initial=0.0, maximum=0.0, jitter=0.0)
ENDS: Final = frozenset({K.RESTARTING, K.FAILED, K.COMPLETED, K.STOPPED, K.FORCED})
PATH: Final = "app/p"


async def idle_sibling(token: CancellationToken) -> None:
    await token.wait()


class Script:
    """A proc whose run *n* does ``steps[n]`` (then waits for its stop once they run out):

    - ``"crash_now"``: raises before any await;
    - ``"crash_later"`` / ``"complete_later"``: waits for its own READY, then raises / returns.

    It records every event of its path, each run's task, and the context marker it found
    (with *mark_context*, each run sets it for the next to find, or not).
    """

    def __init__(self, steps: list[str], *, mark_context: bool = False) -> None:
        self.steps = steps
        self.mark_context = mark_context
        self.events: list[Event] = []
        self.runs = 0
        self.tasks: list[object] = []
        self.inherited: list[int | None] = []
        self._ready: dict[int, anyio.Event] = {}
        self.reached: dict[tuple[EventKind, int], anyio.Event] = {}

    def ready_of(self, run: int) -> anyio.Event:
        return self._ready.setdefault(run, anyio.Event())

    def on(self, kind: EventKind, restarts: int) -> anyio.Event:
        """An event set once this proc emitted *kind* with *restarts*."""
        return self.reached.setdefault((kind, restarts), anyio.Event())

    def on_event(self, event: Event) -> None:
        if event.path != PATH:
            return
        self.events.append(event)
        if event.kind is K.READY:
            self.ready_of(event.restarts).set()
        self.on(event.kind, event.restarts).set()

    async def __call__(self, token: CancellationToken) -> None:
        run = self.runs
        self.runs += 1
        self.tasks.append(current_task())
        self.inherited.append(MARKER.get(None))
        if self.mark_context:
            MARKER.set(run)
        step = self.steps[run] if run < len(self.steps) else "wait"
        if step == "crash_now":
            raise Boom(run)
        await self.ready_of(run).wait()
        if step == "crash_later":
            raise Boom(run)
        if step == "wait":
            await token.wait()

    def kinds(self) -> list[tuple[EventKind, int]]:
        return [(e.kind, e.restarts) for e in self.events]


#: Set by each run of a `Script`: what the next run sees tells whether it shares the context.
MARKER: contextvars.ContextVar[int] = contextvars.ContextVar("MARKER")


def current_task() -> object:
    """The backend's task object (kept, so no id is reused while the test holds it)."""
    try:
        return trio.lowlevel.current_task()
    except RuntimeError:
        import asyncio

        return asyncio.current_task()


def build(
    script: Script,
    *,
    backoff: Backoff | None = None,
    restart: Restart = Restart.PERMANENT,
    max_restarts: int = 100,
    sibling: bool = True,
) -> Supervisor:
    builder = SupervisorBuilder("app", max_restarts=max_restarts, within=60.0)
    if sibling:
        builder.add_proc(idle_sibling, name="sibling")
    return (
        builder.add_proc(script, name="p", restart=restart, backoff=backoff, significant=False)
        .on_event(script.on_event)
        .build()
    )


async def run_until(script: Script, sup: Supervisor, kind: EventKind, restarts: int) -> None:
    """Run *sup* until *script*'s proc emitted *kind* with *restarts*, then shut it down."""
    async with sup.running() as handle:
        await script.on(kind, restarts).wait()
        handle.shutdown("test over")


def crash_runs(n: int) -> list[tuple[EventKind, int]]:
    """The events of a proc crashing *n* times after READY, then running until stopped."""
    each = [[(K.STARTING, r), (K.READY, r), (K.RESTARTING, r)] for r in range(n)]
    tail = [(K.STARTING, n), (K.READY, n), (K.STOPPING, n), (K.STOPPED, n)]
    return [pair for run in each for pair in run] + tail


# ------------------------------------------------------------------- same as the queue


@pytest.mark.parametrize("backoff", [None, QUEUED], ids=["in_place", "queued"])
async def test_a_proc_crashing_after_ready_gets_each_event_once_per_run(
    backoff: Backoff | None,
) -> None:
    script = Script(["crash_later"] * 4)
    await run_until(script, build(script, backoff=backoff), K.READY, 4)
    assert script.kinds() == crash_runs(4)


async def test_a_proc_restarted_in_place_runs_again_in_its_own_task() -> None:
    script = Script(["crash_later"] * 3)
    await run_until(script, build(script), K.READY, 3)
    assert all(task is script.tasks[0] for task in script.tasks)


async def test_a_proc_with_a_backoff_runs_again_in_a_new_task() -> None:
    script = Script(["crash_later"] * 3)
    await run_until(script, build(script, backoff=QUEUED), K.READY, 3)
    assert len({id(task) for task in script.tasks}) == 4


async def test_a_run_that_set_a_context_var_is_restarted_from_a_fresh_context() -> None:
    script = Script(["crash_later"] * 2, mark_context=True)
    await run_until(script, build(script), K.READY, 2)
    assert script.inherited == [None, None, None]
    assert len({id(task) for task in script.tasks}) == 3  # each in a new task


async def test_a_queued_restart_starts_from_a_fresh_context() -> None:
    script = Script(["crash_later"] * 2, mark_context=True)
    await run_until(script, build(script, backoff=QUEUED), K.READY, 2)
    assert script.inherited == [None, None, None]


# ------------------------------------------------------------------- crash loops


@pytest.mark.parametrize("backoff", [None, QUEUED], ids=["in_place", "queued"])
async def test_a_synchronous_crash_loop_never_gets_ready_and_hits_the_limit(
    backoff: Backoff | None,
) -> None:
    script = Script(["crash_now"] * 100)
    sup = build(script, backoff=backoff, max_restarts=3)
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    assert caught.value.subgroup(RestartLimitExceeded) is not None
    assert script.runs == 4
    runs = [[(K.STARTING, r), (K.RESTARTING, r)] for r in range(4)]
    assert script.kinds() == [pair for run in runs for pair in run] + [(K.FAILED, 3)]
    outcome = caught.value.report["p"]
    assert (outcome.status, outcome.restarts) == (ProcStatus.FAILED, 3)


async def test_a_crash_loop_does_not_starve_other_tasks() -> None:
    counted: list[int] = []
    counter = [0]

    async def counts(token: CancellationToken) -> None:
        while not token.cancelled:
            await anyio.lowlevel.checkpoint()
            counter[0] += 1

    def note_count(event: Event) -> None:
        script.on_event(event)
        if event.kind is K.RESTARTING and event.restarts in (100, 300):
            counted.append(counter[0])

    script = Script(["crash_now"] * 10_000)
    sup = (
        SupervisorBuilder("app", max_restarts=100_000, within=60.0)
        .add_proc(counts)
        .add_proc(script, name="p", restart=Restart.PERMANENT)
        .on_event(note_count)
        .build()
    )
    with pytest.raises(SupervisorError):  # its last crash is its final outcome
        await run_until(script, sup, K.RESTARTING, 300)
    assert len(counted) == 2
    assert counted[1] > counted[0]


async def test_a_shutdown_during_a_crash_loop_ends_it_and_reports_every_proc() -> None:
    script = Script(["crash_now"] * 10_000)
    sup = build(script, max_restarts=100_000)
    with pytest.raises(SupervisorError) as caught:
        await run_until(script, sup, K.RESTARTING, 50)
    report = caught.value.report
    assert caught.value.exceptions == (report["p"].error,)
    assert isinstance(report["p"].error, Boom)
    assert report["p"].status is ProcStatus.FAILED
    assert report["sibling"].status is ProcStatus.STOPPED
    assert report["p"].restarts == script.runs - 1 >= 50
    assert script.kinds()[-1] == (K.FAILED, script.runs - 1)


# ------------------------------------------------------------------- operator, force


async def test_an_injected_failure_ends_a_run_restarted_in_place_and_it_restarts() -> None:
    script = Script(["crash_later"])
    injected = Boom("injected")
    async with build(script).running() as handle:
        await script.on(K.READY, 1).wait()
        handle.inject_failure(PATH, injected)
        await script.on(K.READY, 2).wait()
        handle.shutdown("test over")
    restarting = [e for e in script.events if e.kind is K.RESTARTING]
    assert [e.restarts for e in restarting] == [0, 1]
    assert restarting[1].error is injected
    assert handle.report["p"].status is ProcStatus.STOPPED
    assert handle.report["p"].restarts == 2


async def test_a_stuck_proc_restarted_in_place_is_reported_with_its_own_stack() -> None:
    runs: list[None] = []
    release = anyio.Event()
    ready = anyio.Event()
    restarted = anyio.Event()
    stuck: list[Event] = []

    async def stuck_after_a_crash(token: CancellationToken) -> None:
        runs.append(None)
        await ready.wait()
        if len(runs) == 1:
            raise Boom
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.move_on_after(5.0, shield=True):
                await release.wait()

    def on_event(event: Event) -> None:
        if event.kind is K.READY and event.path == "app/p":
            ready.set()  # the first run crashes once ready; the second waits
            if event.restarts == 1:
                restarted.set()
        if event.kind is K.STUCK:
            stuck.append(event)
            release.set()

    sup = (
        SupervisorBuilder("app", stuck_report_interval=0.05)
        .add_proc(stuck_after_a_crash, name="p", restart=Restart.PERMANENT, grace=0.05)
        .on_event(on_event)
        .build()
    )
    async with sup.running() as handle:
        await restarted.wait()
        handle.shutdown("test over")
    assert handle.report["p"].status is ProcStatus.FORCED
    assert handle.report["p"].restarts == 1
    assert "in stuck_after_a_crash" in stuck[0].detail


# ------------------------------------------------------------------- property

RUN_STEPS: Final = st.lists(
    st.sampled_from(["crash_now", "crash_later", "complete_later"]), max_size=8
)


def check_run_events(kinds: list[tuple[EventKind, int]]) -> None:
    """Every STARTING is followed by exactly one end before the next STARTING; STARTING's
    and RESTARTING's counts run 0, 1, ... without gaps or repeats."""
    starts = [r for k, r in kinds if k is K.STARTING]
    assert starts == list(range(len(starts)))
    restarting = [r for k, r in kinds if k is K.RESTARTING]
    assert restarting == list(range(len(restarting)))
    assert kinds[0][0] is K.STARTING
    runs: list[list[EventKind]] = []
    for kind, _ in kinds:
        if kind is K.STARTING:
            runs.append([])
        else:
            runs[-1].append(kind)
    for run in runs:
        assert sum(kind in ENDS for kind in run) == 1, run


def expected_restarts(steps: list[str], restart: Restart) -> int:
    """How often the proc is restarted before it waits for its stop or ends for good."""
    for n, step in enumerate(steps):
        if step == "complete_later" and restart is Restart.TRANSIENT:
            return n
    return len(steps)


@pytest.mark.hang_guard(10.0)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=RUN_STEPS, restart=st.sampled_from([Restart.PERMANENT, Restart.TRANSIENT]))
async def test_random_run_endings_number_restarts_without_gaps(
    steps: list[str], restart: Restart
) -> None:
    by_path: list[list[tuple[EventKind, int]]] = []
    for backoff in (None, QUEUED):
        script = Script(steps)
        restarts = expected_restarts(steps, restart)
        sup = build(script, backoff=backoff, restart=restart)
        done = K.COMPLETED if restarts < len(steps) else K.READY
        await run_until(script, sup, done, restarts)
        check_run_events(script.kinds())
        assert [r for k, r in script.kinds() if k is K.RESTARTING] == list(range(restarts))
        by_path.append(script.kinds())
    in_place, queued = by_path
    assert in_place == queued
