"""SupervisorRun: one run of one supervisor, coordinating its parts.

The parts, each in its own module, and what the run keeps for itself:

- ``_startup``: ordered start, chains, gates; ``_shutdown``: reverse stop, grace, force;
  ``_restarter``: the restart queue and intensity; ``_dynamic``: ``start_child``/``stop_child``;
  ``_operator``: an operator's stop/start/restart/abort; ``_proc_task``: the body of each
  proc's task. They reach the run through `RunContext`.
- The run owns the task group (its procs' tasks run under it, see ``_tasks``), the phase
  (`RunPhase`), the registry of procs by name, and the decision after a proc's end
  (`after_end`, applied in `proc_ended`). Shutdown is decided here, never by the task
  group: a proc's exception is an outcome, and the stop walks the procs in reverse order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import anyio

from ._controls import locate
from ._dynamic import DynamicChildren
from ._errors import SupervisorError
from ._events import EventKind, narrate_end, narrate_restart
from ._gc import StartupPause
from ._lifecycle import Action, RunPhase, after_end, end_is_reported
from ._operator import Operator
from ._outcome import ProcOutcome, SupervisorReport
from ._proc_task import clean_exit_or, settle
from ._reporting import failed_leaves, failure_errors, failure_message
from ._restarter import Restarter
from ._shutdown import StopCuts, force, live_in, stop_all
from ._slot import Leftovers, Slot, mark_not_started, wake
from ._startup import start_group
from ._tasks import ProcTasks, open_proc_tasks

if TYPE_CHECKING:
    import contextvars
    from collections.abc import Iterator, Sequence
    from contextlib import AbstractContextManager

    from ._clock import Clock
    from ._context import RunContext
    from ._events import EventHub
    from ._operator import ChildSpecFactory
    from ._slot import Attempt
    from ._spec import ProcSpec, SupervisorConfig
    from ._status import TreeStatus
    from ._token import CancellationToken

__all__ = ("SupervisorRun",)


@final
class SupervisorRun:
    """The runtime of one supervisor for one ``start()`` (or one run as a nested proc)."""

    operator: Operator
    #: Where its procs' tasks run (`_tasks`); set once the run has begun.
    proc_tasks: ProcTasks

    def __init__(
        self,
        path: str,
        specs: Sequence[ProcSpec],
        config: SupervisorConfig,
        token: CancellationToken,
        hub: EventHub,
        clock: Clock,
        *,
        child_spec: ChildSpecFactory | None = None,
    ) -> None:
        self.path = path
        self.hub = hub
        self.config = config
        self.clock = clock
        self.token = token
        parent = token._run
        #: The root run of the tree (this one, unless it runs as a nested proc): what
        #: ``token.request_shutdown()`` stops and where tree-wide facts are kept.
        self.root: RunContext = self if parent is None else parent.root
        #: On the root: some supervisor of the tree gave up (restart limit) during this run.
        self.restart_limit_reached = False
        self.slots = [Slot(spec, path, i) for i, spec in enumerate(specs)]
        #: Every proc by name, static and dynamic: lookups and name checks stay O(1).
        self._by_name = {slot.spec.name: slot for slot in self.slots}
        self.phase = RunPhase.STARTING
        #: Every proc was started and became ready (stays True once reached).
        self.all_ready = False
        self.reason: str | None = None
        self.forced_by_signal: int | None = None
        #: The first BaseException a proc raised (KeyboardInterrupt, SystemExit(n), ...).
        self.fatal: BaseException | None = None
        self.live = 0
        self.leftovers = Leftovers()
        #: Once the run has ended: the failed leaves' errors of its tree, for its parent.
        self.failed_leaves: list[Exception] | None = None
        #: Set once every proc is ready, or once the run has ended (start-up failed). Made
        #: here, so a run must be made inside async code (it always is).
        self.ready_or_done = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._stop_cuts = StopCuts()
        self._restarter = Restarter(self)
        self._dynamic = DynamicChildren(self, self._restarter, self._by_name)
        self.operator = Operator(self, self._restarter, self._dynamic, self._by_name, child_spec)

    # ----------------------------------------------------------------- the whole run

    async def run(self) -> SupervisorReport:
        """Start every proc in order, wait for a stop, stop them in reverse; report.

        Raises `SupervisorError` when any proc's final outcome is FAILED. When an enclosing
        scope cancels the run (a parent forcing this nested supervisor), every proc is
        force-cancelled at once and the cancellation propagates after outcomes are recorded.
        """
        self.token._on_cancel = self.request_stop
        if self.token.cancelled:
            self.request_stop(self.token.reason)
        gc_pause = StartupPause.begin() if self.root is self else None
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                self.proc_tasks = await open_proc_tasks(self.path, task_group)
                await self._start_all()
                if gc_pause is not None:
                    gc_pause.started()
                await self._restarter.supervise()
                await stop_all(self, self.slots, [*self._dynamic.children.values()], self.reason)
                self.leftovers.walk_done(self.report_so_far)
                self.proc_tasks.close()
        finally:
            if gc_pause is not None:
                gc_pause.end()
            self.leftovers.settled.set()
            self.token._on_cancel = None
            self._task_group = None
            self.phase = RunPhase.STOPPED
            self.ready_or_done.set()
            mark_not_started(self.all_slots())
            self.failed_leaves = failed_leaves(self.all_slots())
            self.hub.emit(EventKind.SHUTDOWN_FINISHED, self.path, detail=self.reason or "")
        return self._report()

    async def _start_all(self) -> None:
        await start_group(self, self.slots)
        if self.stopping:
            return
        self.phase = RunPhase.RUNNING
        self.all_ready = True
        self.token.ready()
        if self.root is self:  # a nested run's READY is its parent's to emit, as a proc's
            self.hub.emit(EventKind.READY, self.path, detail="the whole tree is ready")
        self.ready_or_done.set()
        if self._nothing_left():
            self.request_stop("no procs left running")

    def _nothing_left(self) -> bool:
        """No proc runs, none waits for a restart, none waits for an operator's start."""
        return self.live == 0 and self._restarter.idle and not self.operator.parked

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested (the run is stopping or has stopped)."""
        return self.phase is RunPhase.STOPPING or self.phase is RunPhase.STOPPED

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        task_group = self._task_group
        if task_group is None:
            msg = f"{self.path}: the run is not active (phase {self.phase.value})"
            raise RuntimeError(msg)
        return task_group

    def request_stop(self, reason: str | None) -> None:
        """Begin the graceful shutdown (idempotent: the first reason is the report's reason)."""
        if self.stopping:
            return
        self.phase = RunPhase.STOPPING
        self.reason = reason or "stop requested"
        self.hub.emit(EventKind.SHUTDOWN_BEGUN, self.path, detail=self.reason)
        self._stop_cuts.cut()
        self._restarter.wake()

    def force_all(self, signum: int | None, reason: str) -> None:
        """Force-cancel every proc still running, in the whole tree, at once."""
        self.forced_by_signal = signum
        self.request_stop(reason)
        for slot in self.live_slots():
            force(slot)
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    def cut_short_on_stop(self, timeout: float | None = None) -> AbstractContextManager[object]:
        return self._stop_cuts.scope(timeout, cut=self.stopping)

    # ----------------------------------------------------------------- the procs

    def all_slots(self) -> list[Slot]:
        """Static procs in declared order, then dynamic children in start order."""
        return [*self.slots, *self._dynamic.listed()]

    def status(self) -> TreeStatus:
        """A snapshot of this run's tree now (see `TreeStatus`)."""
        from ._status import tree_status  # lazy: `import super_visor` stays cheap

        return tree_status(self)

    def outcomes(self) -> tuple[ProcOutcome, ...]:
        return tuple(slot.outcome() for slot in self.all_slots())

    def live_slots(self) -> Iterator[Slot]:
        """Every proc whose task may still run, depth-first, nested supervisors included."""
        return live_in(self.all_slots())

    def find(self, path: str) -> Slot | None:
        """The slot at *path* (relative to this supervisor), looking into nested runs."""
        found = locate(self.operator, path)
        return None if found is None else found[1]

    def is_dynamic(self, slot: Slot) -> bool:
        return self._dynamic.is_dynamic(slot)

    # ----------------------------------------------------------------- a proc's end

    def proc_ended(
        self,
        slot: Slot,
        attempt: Attempt,
        result: object,
        error: BaseException | None,
        *,
        cancelled: bool,
        here: contextvars.Context | None = None,
    ) -> Attempt | None:
        """Record how a run ended (see `settle`), then carry out what follows; a restart
        the caller's task is to run itself is returned (`Restarter.restart`). *here*: the
        caller is the task the proc ran in, and that is the context it began with."""
        fatal = error is not None and _is_fatal(error)
        if fatal:
            error = clean_exit_or(error)
            self.fatal = self.fatal or error
        self.live -= 1
        last_one = self.live == 0 and self.phase is not RunPhase.STARTING and self._nothing_left()
        facts = settle(
            slot,
            attempt,
            result,
            error,
            cancelled=cancelled,
            dynamic=slot.index >= len(self.slots),
            stopping=self.stopping,
            last_one=last_one,
            fatal=fatal,
        )
        action = after_end(facts)
        wake(attempt)
        if end_is_reported(action):
            narrate_end(self.hub, slot.path, attempt.status, attempt.error, slot.restarts)
        if action is Action.RESTART:
            narrate_restart(self.hub, slot.path, attempt.status, attempt.error, slot.restarts)
            return self._restarter.restart(slot, here=here)
        if action is not Action.NOTHING:
            self._carry_out(action, slot, attempt)
        return None

    def _carry_out(self, action: Action, slot: Slot, attempt: Attempt) -> None:
        if action is Action.FAIL_STARTUP:
            self.request_stop(f"proc '{slot.path}' failed to start")
        elif action is Action.SHUT_DOWN:
            status = attempt.status.value if attempt.status is not None else "ended"
            self.request_stop(f"proc '{slot.path}' {status}")
        elif action is Action.FORGET:
            self._dynamic.forget(slot)
        elif action is Action.STOP_EMPTY:
            self.request_stop("no procs left running")
        elif action is Action.PARK:
            self.operator.park(slot)

    # ----------------------------------------------------------------- the report

    def report_so_far(self) -> SupervisorReport:
        """The report as of now, failed or not (for a run that was forced from outside)."""
        return SupervisorReport(
            self.path,
            self.outcomes(),
            self.reason or "stopped",
            self.forced_by_signal,
            restart_limit_hit=self._restarter.limit is not None,
        )

    def _report(self) -> SupervisorReport:
        slots = self.all_slots()
        limit = self._restarter.limit
        errors = failure_errors(slots, limit)
        report = self.report_so_far()
        if self.fatal is not None:
            self.fatal.__super_visor_report__ = report  # type: ignore[attr-defined]
            raise self.fatal
        if not errors:
            return report
        message = failure_message(self.path, slots, limit_hit=limit is not None)
        raise SupervisorError(message, errors, report)


def _is_fatal(error: BaseException) -> bool:
    """Whether a proc's *error* asks to end the whole application: anything but an
    ``Exception`` (a stray cancellation arrives as a RuntimeError, see ``_proc_task``)."""
    return not isinstance(error, Exception)
