"""Slot and Attempt: what a supervisor run knows about one proc, across restarts and per start.

A `Slot` lasts as long as the run: the proc's spec, its place in the declared order, its
lifecycle state, its restart count and the errors of earlier runs. An `Attempt` is one start
of the proc: its token, its cancel scope, whether it began, became ready or was forced, and
how it ended. A restart is simply a new `Attempt`, so nothing of the last run can leak into
the next.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any, Protocol, final

import anyio

from ._lifecycle import LIVE_STATES, SUCCESSORS, ProcState, illegal_move
from ._outcome import ProcOutcome, ProcStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from ._operator import Operator
    from ._outcome import SupervisorReport
    from ._spec import ProcSpec
    from ._tasks import ForceScope
    from ._token import CancellationToken

__all__ = (
    "HISTORY_LIMIT",
    "ONLY_ABANDONED_LEFT",
    "Attempt",
    "Leftovers",
    "NestedRun",
    "Slot",
    "mark_not_started",
    "wait_run_ended",
    "waiter_of",
    "wake",
)

#: Set by ``run()`` around its event loop: what the root run calls, with the report, once
#: only abandoned procs are left (``run()`` then ends the process; ``start()`` keeps waiting).
ONLY_ABANDONED_LEFT: contextvars.ContextVar[Callable[[SupervisorReport], object] | None] = (
    contextvars.ContextVar("super_visor_only_abandoned_left", default=None)
)

#: How many errors of earlier runs an outcome keeps to explain a restart storm.
HISTORY_LIMIT = 5


class NestedRun(Protocol):
    """What a nested supervisor's run offers its parent: run it, report it, look into it."""

    path: str
    #: Its static procs, in declared order (``all_slots()`` adds the dynamic ones).
    slots: list[Slot]
    #: The operator actions on its own procs (``handle.stop()`` and the like reach a proc
    #: at any depth through the operator of the supervisor holding it).
    operator: Operator

    async def run(self) -> SupervisorReport: ...

    def outcomes(self) -> tuple[ProcOutcome, ...]: ...

    def all_slots(self) -> list[Slot]: ...

    @property
    def leftovers(self) -> Leftovers:
        """The procs it abandoned, and whether its stop walk is done."""
        ...

    @property
    def failed_leaves(self) -> list[Exception] | None:
        """Its tree's failed leaves' errors once it has ended (None while it runs)."""
        ...


@final
class Leftovers:
    """The procs one run abandoned, and the moment only they are left.

    Their tasks still run under the run's keeper (``_tasks``: a shielded scope, a blocking
    call), so the run cannot end before they do; its parent, and ``run()`` at the root,
    must not wait for that: `settled` tells them the stop walk is over.
    """

    __slots__ = ("on_only_left", "settled", "slots")

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        #: Set once the stop walk is done, or the run has ended.
        self.settled = anyio.Event()
        #: Called with the report when the walk is done and only abandoned procs are left
        #: (set by ``run()`` for the root: the process may end without them).
        self.on_only_left: Callable[[SupervisorReport], object] | None = None

    @property
    def alive(self) -> bool:
        """Whether procs this run abandoned are still running."""
        return any(slot.live for slot in self.slots)

    def walk_done(self, report: Callable[[], SupervisorReport]) -> None:
        """Every proc was stopped or abandoned (idempotent)."""
        if self.settled.is_set():
            return
        self.settled.set()
        if self.alive and self.on_only_left is not None:
            self.on_only_left(report())


@final
class Attempt:
    """One start of a proc: created when it is started, finished when its run ends (its
    task may go on to run the next start: a restart in place)."""

    __slots__ = (
        "abandoned",
        "began",
        "children",
        "coro",
        "ended",
        "error",
        "force_reserve",
        "forced",
        "forced_at",
        "gates",
        "injected",
        "nested",
        "operator_start",
        "operator_stop",
        "ready_reached",
        "ready_value",
        "result",
        "scope",
        "started_at",
        "startup_error",
        "status",
        "token",
        "waiter",
    )

    def __init__(
        self,
        token: CancellationToken,
        scope: ForceScope,
        *,
        gates: bool,
        force_reserve: float = 0.0,
    ) -> None:
        self.token = token
        #: Seconds the supervisor waits after the grace before forcing (``ProcSpec``'s, or
        #: a factory product's own: it is known only now).
        self.force_reserve = force_reserve
        #: Whether this start holds start-up until the proc is ready.
        self.gates = gates
        #: The cancel scope its task runs it in: cancelling it forces the proc (`_tasks`).
        self.scope = scope
        #: Its task's coroutine, once spawned: its frames are the proc's stack.
        self.coro: Coroutine[Any, Any, None] | None = None
        #: This run has ended: its task has returned, or goes on with the next run (a restart
        #: in place).
        self.ended = False
        #: Set by the supervisor while it waits for this run to begin, be ready, or end.
        self.waiter: anyio.Event | None = None
        #: Its run_proc was entered.
        self.began = False
        #: It became ready (also when it called ready() while being stopped).
        self.ready_reached = False
        self.forced = False
        #: When it was force-cancelled (the event loop's clock), for ``abandon_after``.
        self.forced_at = 0.0
        #: It survived its force-cancel for ``abandon_after`` seconds: ABANDONED, for good.
        self.abandoned = False
        self.ready_value: object = None
        #: Set when start-up gave up on it (ready_timeout); becomes its error.
        self.startup_error: BaseException | None = None
        #: When it started (the run's clock): the backoff's stability rule, the status.
        self.started_at = 0.0
        #: The run of a nested supervisor (kept after it ended: its procs stay reachable).
        self.nested: NestedRun | None = None
        #: ``handle.inject_failure()``: the error this run ends with, whatever it raises.
        self.injected: BaseException | None = None
        #: An operator started this run (``handle.start()``): a failure to start is theirs.
        self.operator_start = False
        #: An operator asked for its stop (``handle.stop()``, ``abort()``): it is parked.
        self.operator_stop = False
        self.status: ProcStatus | None = None
        self.result: object = None
        self.error: BaseException | None = None
        self.children: tuple[ProcOutcome, ...] = ()


@final
class Slot:
    """One proc of a supervisor run; mutated only by that run and by the proc's task."""

    __slots__ = (
        "_path",
        "attempt",
        "backoff_attempt",
        "history",
        "index",
        "parent_path",
        "restarts",
        "spec",
        "state",
    )

    def __init__(self, spec: ProcSpec, parent_path: str, index: int) -> None:
        self.spec = spec
        #: The supervisor's path, shared by its slots; ``path`` is built only when needed.
        self.parent_path = parent_path
        self._path: str | None = None
        #: Position in declared order; stop order and restart groups are derived from it.
        self.index = index
        self.state = ProcState.PENDING
        #: The current (or last) start; None before the first and between restarts.
        self.attempt: Attempt | None = None
        self.restarts = 0
        self.backoff_attempt = 0
        self.history: tuple[BaseException, ...] = ()

    def __repr__(self) -> str:
        return f"<Slot {self.path} {self.state.name}>"

    @property
    def path(self) -> str:
        """``app/pipeline/consumer``; built on first use (a quiet tree never needs it)."""
        if self._path is None:
            self._path = f"{self.parent_path}/{self.spec.name}"
        return self._path

    @property
    def live(self) -> bool:
        """Whether a run of this proc may still be executing (its task not finished)."""
        return self.state in LIVE_STATES

    @property
    def status(self) -> ProcStatus | None:
        """How the last run ended; None while it runs or before any run."""
        attempt = self.attempt
        return None if attempt is None else attempt.status

    @property
    def ready_value(self) -> object:
        """The value the current run passed to ``token.ready()`` (None until then)."""
        attempt = self.attempt
        return None if attempt is None else attempt.ready_value

    def move(self, new: ProcState) -> None:
        """The only way a proc's state changes: checked against the lifecycle table."""
        if new not in SUCCESSORS[self.state._name_]:  # is_legal(), inlined: every move
            raise illegal_move(self.path, self.state, new)
        self.state = new

    def mark_begun(self, attempt: Attempt) -> None:
        """Its run_proc is being entered; a proc that does not gate is ready from now on.

        The supervisor is woken here, before the proc runs, yet resumes only once this task
        yields, i.e. after run_proc reached its first await: "begun" as API.md defines it.
        """
        attempt.began = True
        if not attempt.gates:
            self.release_gate(attempt)

    def release_gate(self, attempt: Attempt) -> None:
        """Ready from now on (without a ready value of its own)."""
        attempt.ready_reached = True
        if self.state is ProcState.STARTING:
            self.move(ProcState.RUNNING)
            wake(attempt)

    def mark_ready(self, value: object) -> None:
        """The proc called ``token.ready(value)``: keep the value, release a gate."""
        attempt = self.attempt
        if attempt is not None:
            attempt.ready_value = value
            self.release_gate(attempt)

    def record_end(
        self, attempt: Attempt, status: ProcStatus, result: object, error: BaseException | None
    ) -> None:
        """Store how this run ended."""
        self.move(ProcState.ENDED)
        attempt.status = status
        attempt.result = result
        attempt.error = error

    def prepare_restart(self) -> None:
        """Forget the last run (keeping its error in the history) before starting again."""
        self.forget_run()
        self.restarts += 1

    def forget_run(self) -> None:
        """Forget the last run, keeping its error in the history; not a restart (an
        operator's ``handle.start()`` does not count)."""
        attempt = self.attempt
        if attempt is not None and attempt.error is not None:
            self.history = (*self.history, attempt.error)[-HISTORY_LIMIT:]
        self.attempt = None

    def outcome(self) -> ProcOutcome:
        attempt = self.attempt
        if attempt is None or attempt.status is None:
            return ProcOutcome(
                name=self.spec.name,
                path=self.path,
                status=ProcStatus.NOT_STARTED,
                restarts=self.restarts,
                children=not_started_children(self.path, self.spec),
                history=self.history,
            )
        return ProcOutcome(
            name=self.spec.name,
            path=self.path,
            status=attempt.status,
            result=attempt.result,
            error=attempt.error,
            restarts=self.restarts,
            children=attempt.children,
            history=self.history,
        )


def mark_not_started(slots: list[Slot]) -> None:
    """At the end of a run: a proc never started is NOT_STARTED; one waiting for its restart
    keeps its last outcome."""
    for slot in slots:
        if slot.state is ProcState.PENDING or slot.state is ProcState.RESTARTING:
            slot.move(ProcState.ENDED)


def waiter_of(attempt: Attempt) -> anyio.Event:
    """The event `wake` sets next: shared, so several parts may wait on one run at once
    (an operator's stop and the shutdown's, say) and each is woken."""
    waiter = attempt.waiter
    if waiter is None:
        waiter = attempt.waiter = anyio.Event()
    return waiter


async def wait_run_ended(attempt: Attempt) -> None:
    """Until the run of *attempt* has ended (its task returned, or goes on with the next)."""
    while not attempt.ended:
        await waiter_of(attempt).wait()


def wake(attempt: Attempt) -> None:
    """Wake the supervisor if it waits on this run (to begin, be ready, or end)."""
    waiter = attempt.waiter
    if waiter is not None:
        attempt.waiter = None
        waiter.set()


def not_started_children(path: str, spec: ProcSpec) -> tuple[ProcOutcome, ...]:
    """For a nested supervisor start-up never reached: its procs, all NOT_STARTED, so the
    report still names every proc of the tree exactly once.

    Built bottom-up without recursion (children before their parent), so a tree nested
    thousands of levels deep needs no frame per level.
    """
    if spec.nested is None:
        return ()
    order: list[tuple[str, ProcSpec]] = []  # parents before children
    pending = [(path, spec)]
    while pending:
        where, current = pending.pop()
        order.append((where, current))
        if current.nested is not None:
            pending.extend((f"{where}/{child.name}", child) for child in current.nested.specs)
    built: dict[str, tuple[ProcOutcome, ...]] = {}
    for where, current in reversed(order):  # children first
        nested = current.nested
        built[where] = (
            ()
            if nested is None
            else tuple(
                ProcOutcome(
                    name=child.name,
                    path=f"{where}/{child.name}",
                    status=ProcStatus.NOT_STARTED,
                    children=built.pop(f"{where}/{child.name}"),
                )
                for child in nested.specs
            )
        )
    return built[path]
