"""Restarts at runtime (API.md section 6): policies x strategies, intensity, escalation,
backoff, outcomes, factories and resource scopes.

Procs are `Worker` fakes the test crashes or completes on demand; each writes ``"<event>
<name>"`` lines into a shared log, so a test reads the order of stops and starts of a whole
restart from one list. Synchronisation is by events (`Worker.wait_run`) and
`anyio.wait_all_tasks_blocked`; sleeps appear only where time is what is tested (backoff),
with lower-bound asserts only.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from itertools import pairwise
from typing import TYPE_CHECKING, Final

import anyio
import pytest

from super_visor import (
    Backoff,
    CancellationToken,
    ProcStatus,
    Restart,
    RestartLimitExceeded,
    StartupError,
    Strategy,
    Supervisor,
    SupervisorBuilder,
    SupervisorError,
)

from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Collection

    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from super_visor import ProcOutcome


class Boom(Exception):
    """The error a `Worker` raises when crashed."""


def _set(waits: dict[int, anyio.Event], n: int) -> None:
    waits.setdefault(n, anyio.Event()).set()


class Worker:
    """A proc that runs until stopped, crashed (`crash`) or completed (`complete`).

    Counts its runs and how many run at once (``max_active`` must stay 1). Runs listed in
    *fail_runs* raise `Boom` at once, before their first await.
    """

    def __init__(self, name: str, log: list[str], *, fail_runs: Collection[int] = ()) -> None:
        self.name = name
        self.log = log
        self.fail_runs = fail_runs
        self.runs = 0
        self.active = 0
        self.max_active = 0
        self.started_at: list[float] = []
        self.tokens: list[CancellationToken] = []
        self._trigger: anyio.Event | None = None
        self._action: tuple[str, object] | None = None
        self._run_waits: dict[int, anyio.Event] = {}
        self._end_waits: dict[int, anyio.Event] = {}

    async def run_proc(self, token: CancellationToken) -> object:
        self.runs += 1
        run = self.runs
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.started_at.append(anyio.current_time())
        self.tokens.append(token)
        self.log.append(f"start {self.name}")
        try:
            _set(self._run_waits, run)
            if run in self.fail_runs:
                self.log.append(f"crash {self.name}")
                raise Boom(f"{self.name} run {run}")
            return await self._until_triggered(token)
        finally:
            self.active -= 1
            _set(self._end_waits, run)

    async def _until_triggered(self, token: CancellationToken) -> object:
        trigger = self._trigger = anyio.Event()
        self._action = None
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(_relay, token, trigger)
            await trigger.wait()
            task_group.cancel_scope.cancel()
        action, self._action = self._action, None
        if action is None:
            self.log.append(f"stop {self.name}")
            return None
        kind, value = action
        self.log.append(f"{kind} {self.name}")
        if kind == "crash":
            assert isinstance(value, BaseException)
            raise value
        return value

    def crash(self, error: Exception | None = None) -> None:
        """Make the current run raise *error* (a `Boom` by default)."""
        assert self._trigger is not None, f"{self.name} is not running"
        self._action = ("crash", error or Boom(f"{self.name} run {self.runs}"))
        self._trigger.set()

    def complete(self, result: object = None) -> None:
        """Make the current run return *result* on its own."""
        assert self._trigger is not None, f"{self.name} is not running"
        self._action = ("complete", result)
        self._trigger.set()

    async def wait_run(self, n: int) -> None:
        """Return once run number *n* has begun."""
        if self.runs < n:
            await self._run_waits.setdefault(n, anyio.Event()).wait()

    async def wait_ended(self, n: int) -> None:
        """Return once run number *n* has ended."""
        await self._end_waits.setdefault(n, anyio.Event()).wait()


async def _relay(token: CancellationToken, trigger: anyio.Event) -> None:
    await token.wait()
    trigger.set()


class LogEvent(logging.Handler):
    """Sets an `anyio.Event` when a super_visor log line contains *text*."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@asynccontextmanager
async def log_event(text: str) -> AsyncIterator[LogEvent]:
    logger = logging.getLogger("super_visor")
    handler = LogEvent(text)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def build(
    workers: list[Worker],
    *,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    restart: Restart = Restart.PERMANENT,
    name: str = "app",
    max_restarts: int = 3,
    within: float = 5.0,
) -> Supervisor:
    builder = SupervisorBuilder(
        name, strategy=strategy, max_restarts=max_restarts, within=within, grace=2.0
    )
    for worker in workers:
        builder.add_proc(worker, restart=restart)
    return builder.build()


def statuses(outcomes: tuple[ProcOutcome, ...]) -> dict[str, tuple[ProcStatus, int]]:
    return {o.name: (o.status, o.restarts) for o in outcomes}


# ----------------------------------------------------------------------------- policy x strategy

#: What follows ``b`` ending when it is restarted, by strategy, for procs a, b, c.
RESTART_LINES: Final = {
    Strategy.ONE_FOR_ONE: ["start b"],
    Strategy.ONE_FOR_ALL: ["stop c", "stop a", "start a", "start b", "start c"],
    Strategy.REST_FOR_ONE: ["stop c", "start b", "start c"],
}
#: Who is restarted with b, by strategy.
RESTARTED: Final = {
    Strategy.ONE_FOR_ONE: {"b"},
    Strategy.ONE_FOR_ALL: {"a", "b", "c"},
    Strategy.REST_FOR_ONE: {"b", "c"},
}


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("policy", list(Restart))
@pytest.mark.parametrize("ending", ["crash", "complete"])
async def test_policy_times_strategy(strategy: Strategy, policy: Restart, ending: str) -> None:
    """b (under test) ends; a and c are PERMANENT bystanders. b is not significant, so a
    policy that does not restart it leaves the tree running without it."""
    log: list[str] = []
    a, b, c = Worker("a", log), Worker("b", log), Worker("c", log)
    sup = (
        SupervisorBuilder("app", strategy=strategy)
        .add_proc(a, restart=Restart.PERMANENT)
        .add_proc(b, restart=policy, significant=False)
        .add_proc(c, restart=Restart.PERMANENT)
        .build()
    )
    failed = ending == "crash"
    restarted = policy.wants_restart(failed=failed)
    # b failing for good makes its final outcome FAILED: running() raises at the end.
    expectation: AbstractContextManager[object] = (
        pytest.raises(SupervisorError) if failed and not restarted else nullcontext()
    )
    with expectation:
        async with sup.running() as handle:
            assert log == ["start a", "start b", "start c"]
            if failed:
                b.crash()
            else:
                b.complete("done")
            if restarted:
                await b.wait_run(2)
            await anyio.wait_all_tasks_blocked()
            assert log[3] == f"{ending} b"
            assert log[4:] == (RESTART_LINES[strategy] if restarted else [])
            assert not handle.stopped
    report = handle.report
    assert log[-3:] == ["stop c", "stop b", "stop a"] if restarted else ["stop c", "stop a"]
    assert {n: report[n].restarts for n in "abc"} == {
        n: int(restarted and n in RESTARTED[strategy]) for n in "abc"
    }
    if restarted:
        assert report["b"].status is ProcStatus.STOPPED
        assert len(report["b"].history) == int(failed)
    else:
        assert report["b"].status is (ProcStatus.FAILED if failed else ProcStatus.COMPLETED)
        assert report["b"].result == (None if failed else "done")
    assert max(w.max_active for w in (a, b, c)) == 1


# ----------------------------------------------------------------------------- OTP group rules


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_temporary_sibling_stopped_for_a_restart_is_not_restarted(
    strategy: Strategy,
) -> None:
    log: list[str] = []
    a, t, c = Worker("a", log), Worker("t", log), Worker("c", log)
    sup = (
        SupervisorBuilder("app", strategy=strategy)
        .add_proc(a, restart=Restart.PERMANENT)
        .add_proc(t, restart=Restart.TEMPORARY)
        .add_proc(c, restart=Restart.PERMANENT)
        .build()
    )
    async with sup.running() as handle:
        a.crash()
        await c.wait_run(2)
        await anyio.wait_all_tasks_blocked()
        assert log[3:] == ["crash a", "stop c", "stop t", "start a", "start c"]
        assert not handle.stopped  # t stopped by us is not "a significant proc ending"
    assert t.runs == 1
    report = handle.report
    assert report["t"].status is ProcStatus.STOPPED
    assert report["t"].restarts == 0
    assert (report["a"].restarts, report["c"].restarts) == (1, 1)
    assert log[-2:] == ["stop c", "stop a"]


async def test_stop_order_is_reverse_declared_order_after_restarts() -> None:
    """After a, then b were restarted, the start order is c, a, b; the stop is still c, b, a."""
    log: list[str] = []
    a, b, c = Worker("a", log), Worker("b", log), Worker("c", log)
    sup = build([a, b, c])
    async with sup.running():
        a.crash()
        await a.wait_run(2)
        b.crash()
        await b.wait_run(2)
        await anyio.wait_all_tasks_blocked()
        del log[:]
    assert log == ["stop c", "stop b", "stop a"]


async def test_group_restart_stops_in_reverse_and_starts_in_declared_order() -> None:
    log: list[str] = []
    workers = [Worker(n, log) for n in "abcde"]
    sup = build(workers, strategy=Strategy.REST_FOR_ONE)
    async with sup.running():
        workers[1].crash()
        await workers[4].wait_run(2)
        assert log[5:] == [
            "crash b",
            "stop e",
            "stop d",
            "stop c",
            "start b",
            "start c",
            "start d",
            "start e",
        ]


# ----------------------------------------------------------------------------- intensity


async def test_intensity_exceeded_fails_with_restart_limit_exceeded() -> None:
    log: list[str] = []
    first = Worker("first", log)
    crasher = Worker("crasher", log, fail_runs=range(1, 100))
    last = Worker("last", log)
    sup = (
        SupervisorBuilder("app", max_restarts=2, within=60.0)
        .add_proc(first)
        .add_proc(crasher, restart=Restart.PERMANENT)
        .add_proc(last)
        .build()
    )
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    limits = [e for e in caught.value.exceptions if isinstance(e, RestartLimitExceeded)]
    assert len(limits) == 1
    message = str(limits[0])
    assert "app" in message
    assert "app/crasher" in message  # the proc that crashed last
    assert "2 restarts" in message
    assert "60s" in message
    assert limits[0].path == "app"
    assert limits[0].last_proc == "app/crasher"
    assert (limits[0].restarts, limits[0].within) == (2, 60.0)
    assert crasher.runs == 3  # first run and 2 restarts; the third crash is one too many
    # The supervisor stopped its children in reverse order.
    assert log[-2:] == ["stop last", "stop first"]
    report = caught.value.report
    assert report["crasher"].status is ProcStatus.FAILED
    assert report["crasher"].restarts == 2
    assert report["first"].status is ProcStatus.STOPPED


async def test_restarts_within_the_limit_keep_the_tree_running() -> None:
    log: list[str] = []
    w = Worker("w", log)
    sup = build([w], max_restarts=3, within=60.0)
    async with sup.running() as handle:
        for run in range(1, 4):
            w.crash()
            await w.wait_run(run + 1)
        assert not handle.stopped
    assert handle.report["w"].restarts == 3
    assert handle.report["w"].status is ProcStatus.STOPPED  # final outcome: stopped cleanly


async def test_restarts_spread_over_time_do_not_trip_the_intensity() -> None:
    """1 restart allowed within 0.1 s; crashes 0.15 s apart never have two in the window.

    The sleep is what is under test: it spaces the restarts beyond the window.
    """
    log: list[str] = []
    w = Worker("w", log)
    sup = build([w], max_restarts=1, within=0.1)
    async with sup.running() as handle:
        for run in range(1, 5):
            await anyio.sleep(0.15)
            w.crash()
            await w.wait_run(run + 1)
        assert not handle.stopped
    assert handle.report["w"].restarts == 4


# ----------------------------------------------------------------------------- escalation


def nested(crasher: Worker, *, max_restarts: int = 1) -> Supervisor:
    return (
        SupervisorBuilder("inner", max_restarts=max_restarts, within=60.0)
        .add_proc(crasher, restart=Restart.PERMANENT)
        .build()
    )


async def test_escalation_parent_restarts_the_nested_supervisor() -> None:
    """The inner limit trips (2 crashes, 1 allowed); the root restarts the whole subtree."""
    log: list[str] = []
    crasher = Worker("crasher", log, fail_runs={1, 2})
    keeper = Worker("keeper", log)
    sup = (
        SupervisorBuilder("app", max_restarts=1, within=60.0)
        .add_proc(keeper)
        .add_proc(nested(crasher), restart=Restart.PERMANENT)
        .build()
    )
    async with sup.running() as handle:
        await crasher.wait_run(3)
        await anyio.wait_all_tasks_blocked()
        assert not handle.stopped
        assert keeper.runs == 1  # ONE_FOR_ONE at the root: the keeper was left alone
    report = handle.report
    inner = report["inner"]
    assert inner.restarts == 1
    assert inner.status is ProcStatus.STOPPED
    assert len(inner.history) == 1
    assert isinstance(inner.history[0], SupervisorError)
    assert inner.history[0].subgroup(RestartLimitExceeded) is not None
    # The fresh inner run reports its own children: the crasher has not crashed in it.
    assert report["inner/crasher"].restarts == 0
    assert crasher.max_active == 1


async def test_escalation_root_fails_when_its_own_limit_trips() -> None:
    log: list[str] = []
    crasher = Worker("crasher", log, fail_runs=range(1, 100))
    keeper = Worker("keeper", log)
    sup = (
        SupervisorBuilder("app", max_restarts=1, within=60.0)
        .add_proc(keeper)
        .add_proc(nested(crasher), restart=Restart.PERMANENT)
        .build()
    )
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    # Limits multiply: 2 inner runs x 2 crasher runs each before the root gives up.
    assert crasher.runs == 4
    root_limit = [e for e in caught.value.exceptions if isinstance(e, RestartLimitExceeded)]
    assert len(root_limit) == 1
    assert root_limit[0].path == "app"
    assert root_limit[0].last_proc == "app/inner"
    inner_error = caught.value.report["inner"].error
    assert isinstance(inner_error, SupervisorError)
    inner_limits = inner_error.subgroup(RestartLimitExceeded)
    assert inner_limits is not None
    assert "app/inner" in str(inner_limits.exceptions[0])
    assert "app/inner/crasher" in str(inner_limits.exceptions[0])
    assert caught.value.report["inner"].restarts == 1
    assert log[-1] == "stop keeper"


# ----------------------------------------------------------------------------- backoff


def backoff_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "restarting in" in r.getMessage()]


async def test_backoff_delays_grow_and_are_waited(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="super_visor")
    log: list[str] = []
    w = Worker("w", log, fail_runs={1, 2, 3})
    backoff = Backoff(initial=0.05, maximum=1.0, factor=2.0, jitter=0.0)
    sup = (
        SupervisorBuilder("app", max_restarts=10)
        .add_proc(w, restart=Restart.PERMANENT, backoff=backoff)
        .build()
    )
    async with sup.running():
        await w.wait_run(4)
    assert backoff_messages(caplog) == [
        "app/w: restarting in 0.05s (backoff)",
        "app/w: restarting in 0.1s (backoff)",
        "app/w: restarting in 0.2s (backoff)",
    ]
    gaps = [later - earlier for earlier, later in pairwise(w.started_at)]
    for gap, delay in zip(gaps, (0.05, 0.1, 0.2), strict=True):
        assert gap >= delay * 0.9  # lower bounds only: a slow CI may wait longer


async def test_supervisor_default_backoff_applies(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="super_visor")
    log: list[str] = []
    w = Worker("w", log, fail_runs={1})
    sup = (
        SupervisorBuilder("app", backoff=Backoff(initial=0.02, jitter=0.0))
        .add_proc(w, restart=Restart.PERMANENT)
        .build()
    )
    async with sup.running():
        await w.wait_run(2)
    assert backoff_messages(caplog) == ["app/w: restarting in 0.02s (backoff)"]


async def test_backoff_resets_after_a_stable_run(caplog: pytest.LogCaptureFixture) -> None:
    """The attempt counter resets once the proc ran for ``maximum`` seconds.

    Runs 1 and 2 crash at once (0.05 s, 0.1 s); run 3 runs 0.25 s (> maximum 0.2 s) before
    crashing, so its restart waits the initial 0.05 s again, not 0.2 s.
    """
    caplog.set_level(logging.DEBUG, logger="super_visor")
    runs: list[float] = []
    fourth = anyio.Event()

    async def flaky(token: CancellationToken) -> None:
        runs.append(anyio.current_time())
        if len(runs) == 3:
            await anyio.sleep(0.25)  # the stable run under test
        if len(runs) == 4:
            fourth.set()
            await token.wait()
            return
        raise Boom(f"run {len(runs)}")

    backoff = Backoff(initial=0.05, maximum=0.2, factor=2.0, jitter=0.0)
    sup = (
        SupervisorBuilder("app", max_restarts=10)
        .add_proc(flaky, restart=Restart.PERMANENT, backoff=backoff)
        .build()
    )
    async with sup.running():
        await fourth.wait()
    assert backoff_messages(caplog) == [
        "app/flaky: restarting in 0.05s (backoff)",
        "app/flaky: restarting in 0.1s (backoff)",
        "app/flaky: restarting in 0.05s (backoff)",
    ]


async def test_backoff_keeps_growing_without_a_stable_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="super_visor")
    log: list[str] = []
    w = Worker("w", log, fail_runs={1, 2, 3, 4})
    backoff = Backoff(initial=0.01, maximum=0.04, factor=2.0, jitter=0.0)
    sup = (
        SupervisorBuilder("app", max_restarts=10)
        .add_proc(w, restart=Restart.PERMANENT, backoff=backoff)
        .build()
    )
    async with sup.running():
        await w.wait_run(5)
    delays = [m.split("restarting in ")[1] for m in backoff_messages(caplog)]
    assert delays == ["0.01s (backoff)", "0.02s (backoff)", "0.04s (backoff)", "0.04s (backoff)"]


LONG_BACKOFF: Final = Backoff(initial=30.0, maximum=60.0, jitter=0.0)


async def test_stop_request_during_a_long_backoff_ends_at_once() -> None:
    log: list[str] = []
    w = Worker("w", log)
    sup = (
        SupervisorBuilder("app")
        .add_proc(Worker("other", log))
        .add_proc(w, restart=Restart.PERMANENT, backoff=LONG_BACKOFF)
        .build()
    )
    with anyio.fail_after(5):  # far below the 30 s backoff
        async with log_event("restarting in 30s") as waiting, sup.running() as handle:
            w.complete("first run done")
            await waiting.seen.wait()
            handle.shutdown("stop during backoff")
    assert w.runs == 1  # the restart never happened
    assert log[-1] == "stop other"
    assert handle.report.reason == "stop during backoff"
    assert handle.report["other"].status is ProcStatus.STOPPED


@pytest.mark.parametrize("ending", ["complete", "crash"])
async def test_stop_during_backoff_keeps_the_last_outcome(ending: str) -> None:
    log: list[str] = []
    w = Worker("w", log)
    sup = (
        SupervisorBuilder("app")
        .add_proc(Worker("other", log))
        .add_proc(w, restart=Restart.PERMANENT, backoff=LONG_BACKOFF)
        .build()
    )
    failed = ending == "crash"
    expectation: AbstractContextManager[object] = (
        pytest.raises(SupervisorError) if failed else nullcontext()
    )
    with anyio.fail_after(5), expectation:  # far below the 30 s backoff
        async with log_event("restarting in 30s") as waiting, sup.running() as handle:
            if failed:
                w.crash()
            else:
                w.complete("first run done")
            await waiting.seen.wait()
            handle.shutdown("stop during backoff")
    outcome = handle.report["w"]
    assert outcome.restarts == 0
    if failed:
        assert outcome.status is ProcStatus.FAILED
        assert isinstance(outcome.error, Boom)
    else:
        assert outcome.status is ProcStatus.COMPLETED
        assert outcome.result == "first run done"


# ----------------------------------------------------------------------------- outcomes


async def test_outcome_counts_restarts_and_keeps_the_last_five_errors() -> None:
    log: list[str] = []
    crasher = Worker("crasher", log, fail_runs=range(1, 9))  # 8 crashes, then stable
    sup = build([crasher], max_restarts=20, within=60.0)
    async with sup.running() as handle:
        await crasher.wait_run(9)
    outcome = handle.report["crasher"]
    assert outcome.restarts == 8
    assert outcome.status is ProcStatus.STOPPED
    assert outcome.error is None
    assert [str(e) for e in outcome.history] == [f"crasher run {n}" for n in range(4, 9)]


# ----------------------------------------------------------------------------- factories


async def test_factory_gives_fresh_state_at_every_restart() -> None:
    log: list[str] = []
    made: list[Worker] = []

    def make_worker() -> Worker:
        worker = Worker("w", log)
        made.append(worker)
        return worker

    sup = SupervisorBuilder("app").add_factory("w", make_worker, restart=Restart.PERMANENT).build()
    async with sup.running() as handle:
        for n in range(1, 4):
            made[-1].crash()
            await made[-1].wait_ended(1)
            await anyio.wait_all_tasks_blocked()  # the restart has run to completion
            assert len(made) == n + 1
            assert made[-1].runs == 1
    assert len(made) == 4
    assert len({id(w) for w in made}) == 4
    assert [w.runs for w in made] == [1, 1, 1, 1]  # no object ever ran twice
    assert handle.report["w"].restarts == 3


async def test_factory_may_build_a_fresh_nested_supervisor() -> None:
    log: list[str] = []
    made: list[Worker] = []

    def make_subtree() -> Supervisor:
        worker = Worker(f"w{len(made) + 1}", log)
        made.append(worker)
        return SupervisorBuilder("sub").add_proc(worker, name="w").build()

    sup = (
        SupervisorBuilder("app")
        # wait_ready: a factory's product is unknown until start, so say it gates (see
        # test_factory_nested_supervisor_gates_start_up below).
        .add_factory("sub", make_subtree, restart=Restart.TRANSIENT, wait_ready=True)
        .build()
    )
    async with sup.running() as handle:
        made[0].crash()  # TEMPORARY and significant in sub: sub fails, app restarts it
        await made[0].wait_ended(1)
        await anyio.wait_all_tasks_blocked()
        assert len(made) == 2
        await made[1].wait_run(1)
    assert log == ["start w1", "crash w1", "start w2", "stop w2"]
    assert handle.report["sub"].restarts == 1
    assert handle.report["sub/w"].restarts == 0


async def test_factory_nested_supervisor_gates_start_up() -> None:
    log: list[str] = []
    release = anyio.Event()

    async def slow_gate(token: CancellationToken) -> None:
        await release.wait()
        log.append("gate ready")
        token.ready()
        await token.wait()

    async def after(token: CancellationToken) -> None:
        log.append("after started")
        await token.wait()

    def make_subtree() -> Supervisor:
        return SupervisorBuilder("sub").add_proc(slow_gate, wait_ready=True).build()

    sup = SupervisorBuilder("app").add_factory("sub", make_subtree).add_proc(after).build()

    async def open_tree() -> None:
        async with sup.running():
            log.append("running() entered")

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(open_tree)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert log == ["gate ready", "after started", "running() entered"]


class Pipeline:
    """A factory of resource scopes: each scope creates a fresh stream and a nested
    supervisor whose consumer and producer share it, and closes the stream once the
    subtree has stopped. The first consumer crashes after three items."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.scopes = 0
        self.streams: list[tuple[MemoryObjectSendStream[int], MemoryObjectReceiveStream[int]]] = []
        self.received: list[list[int]] = []
        self.healthy = anyio.Event()

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[Supervisor]:
        self.scopes += 1
        n = self.scopes
        send, receive = anyio.create_memory_object_stream[int]()
        self.streams.append((send, receive))
        got: list[int] = []
        self.received.append(got)
        self.log.append(f"open scope {n}")
        try:
            async with send, receive:
                yield (
                    SupervisorBuilder("pipeline")
                    .add_proc(self._consumer(n, receive, got), name="consumer")
                    .add_proc(self._producer(n, send), name="producer")
                    .build()
                )
        finally:
            self.log.append(f"close scope {n}")

    def _consumer(
        self, n: int, receive: MemoryObjectReceiveStream[int], got: list[int]
    ) -> Callable[[CancellationToken], Awaitable[None]]:
        async def consumer(token: CancellationToken) -> None:
            self.log.append(f"start consumer {n}")
            with token.cancel_scope():
                async for item in receive:
                    got.append(item)
                    if n == 1 and len(got) == 3:
                        self.log.append(f"crash consumer {n}")
                        raise Boom("consumer choked")
                    if len(got) == 3:
                        self.healthy.set()
            self.log.append(f"stop consumer {n}")

        return consumer

    def _producer(
        self, n: int, send: MemoryObjectSendStream[int]
    ) -> Callable[[CancellationToken], Awaitable[None]]:
        async def producer(token: CancellationToken) -> None:
            self.log.append(f"start producer {n}")
            with token.cancel_scope():
                item = 0
                while True:
                    item += 1
                    await send.send(item)
            self.log.append(f"stop producer {n}")

        return producer


async def test_resource_scope_pipeline_recovers_with_fresh_streams() -> None:
    log: list[str] = []
    pipeline = Pipeline(log)
    sup = (
        SupervisorBuilder("app")
        .add_factory("pipeline", pipeline.scope, restart=Restart.TRANSIENT, wait_ready=True)
        .build()
    )
    async with sup.running() as handle:
        await pipeline.healthy.wait()
    assert log == [
        "open scope 1",
        "start consumer 1",
        "start producer 1",
        "crash consumer 1",
        "stop producer 1",
        "close scope 1",  # closed only after the whole subtree stopped
        "open scope 2",
        "start consumer 2",
        "start producer 2",
        "stop producer 2",
        "stop consumer 2",
        "close scope 2",
    ]
    assert pipeline.received[0] == [1, 2, 3]
    assert pipeline.received[1][:3] == [1, 2, 3]  # a fresh producer on a fresh stream
    (send1, receive1), (send2, receive2) = pipeline.streams
    assert send1 is not send2
    assert receive1 is not receive2
    for stream in (send1, send2):
        with pytest.raises(anyio.ClosedResourceError):
            stream.send_nowait(0)
    report = handle.report
    assert report["pipeline"].restarts == 1
    assert report["pipeline"].status is ProcStatus.STOPPED
    assert report["pipeline/consumer"].status is ProcStatus.STOPPED
    (earlier,) = report["pipeline"].history
    assert isinstance(earlier, SupervisorError)
    assert earlier.subgroup(Boom) is not None


@pytest.mark.parametrize("product", [42, "worker", None])
async def test_bad_factory_product_is_a_startup_error(product: object) -> None:
    log: list[str] = []
    first = Worker("first", log)
    sup = SupervisorBuilder("app").add_proc(first).add_factory("bad", lambda: product).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    startup = caught.value.subgroup(StartupError)
    assert startup is not None
    (error,) = startup.exceptions
    assert isinstance(error, StartupError)
    assert "app/bad" in str(error)
    assert "not a proc" in str(error)
    assert caught.value.report["bad"].status is ProcStatus.FAILED
    assert log == ["start first", "stop first"]


async def test_factory_returning_a_class_is_a_startup_error() -> None:
    sup = SupervisorBuilder("app").add_factory("bad", lambda: Worker).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    assert isinstance(caught.value.report["bad"].error, StartupError)


async def test_factory_may_return_an_async_function() -> None:
    runs: list[int] = []

    def make() -> Callable[[CancellationToken], Awaitable[None]]:
        async def fresh(token: CancellationToken) -> None:
            runs.append(len(runs) + 1)
            await token.wait()

        return fresh

    sup = SupervisorBuilder("app").add_factory("fresh", make).build()
    async with sup.running():
        assert runs == [1]


async def test_scope_yielding_a_non_proc_is_a_startup_error() -> None:
    @asynccontextmanager
    async def bad_scope() -> AsyncIterator[object]:
        yield 42

    sup = SupervisorBuilder("app").add_factory("bad", bad_scope).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    error = caught.value.report["bad"].error
    assert isinstance(error, StartupError)
    assert "app/bad" in str(error)


async def test_bad_factory_product_at_a_restart_is_a_startup_error() -> None:
    log: list[str] = []
    first = Worker("w", log)
    products: list[object] = [first, "not a proc"]
    sup = (
        SupervisorBuilder("app")
        .add_factory("w", lambda: products.pop(0), restart=Restart.PERMANENT)
        .build()
    )

    async def complete_once() -> None:
        async with sup.running() as handle:
            first.complete()
            await handle.wait_stopped()  # the restart fails and stops the tree

    with pytest.raises(SupervisorError) as caught:
        await complete_once()
    startup = caught.value.subgroup(StartupError)
    assert startup is not None
    assert "app/w" in str(startup.exceptions[0])
