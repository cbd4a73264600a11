"""SupervisorRun: one run of one supervisor — ordered start, reverse stop, outcomes.

Concurrency structure (STYLE.md, "Concurrency structure"):

- The run owns one task group. Each proc runs in its own task, inside its own cancel scope,
  so forcing one proc never touches its siblings.
- A proc's runner turns the proc's ``Exception`` into an outcome and never lets it into the
  task group: a task group would cancel every sibling at once, in no order, and break the
  reverse-order stop. The run decides when shutdown happens.
- Start-up is sequential: a proc is spawned, and the next one only once the previous has begun
  (or, when it gates, said it is ready). Runs of procs that do not gate start as a chain, each
  task spawning the next (see `_start_group`), so a large tree does not wake the supervisor
  once per proc; a gating proc is waited for with its ``ready_timeout``.
- Shutdown walks the procs in reverse declared order, one at a time: cancel the token, wait
  the grace, force-cancel the task, then wait (logging the stuck proc's stack every few
  seconds) until its task has really ended. A proc that returns at once costs no deadline:
  it has ended after at most two trips through the scheduler.
- Restarts are carried out by the supervisor's own task between start-up and shutdown, one
  at a time (`_supervise`), as an OTP supervisor handles one exit at a time.

Nested supervisors are found by their private ``_open_run`` method, so this module never
imports ``_supervisor`` (imports point one way).
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Protocol, final

import anyio

from ._errors import ConfigError, RestartLimitExceeded, StartupError, SupervisorError
from ._events import DEBUG, EventHub, EventKind
from ._factory import ResourceScope, call_factory, check_product
from ._lifecycle import ProcState, classify
from ._outcome import ProcOutcome, ProcStatus, SupervisorReport
from ._proc import FunctionProc
from ._restart import IntensityWindow, Restart, restart_group
from ._slot import Slot
from ._stacks import format_coroutine_stack
from ._token import CancellationToken

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from anyio import TaskHandle

    from ._proc import SupportsRunProc
    from ._spec import ProcSpec, SupervisorConfig

__all__ = ("NestedRun", "SupervisorRun")


class NestedRun(Protocol):
    """What a nested supervisor hands its parent's runner: something to run and to report."""

    async def run(self) -> SupervisorReport: ...

    def outcomes(self) -> tuple[ProcOutcome, ...]: ...

    def live_slots(self) -> Iterator[Slot]: ...


@final
class SupervisorRun:
    """The runtime of one supervisor for one ``start()`` (or one run as a nested proc)."""

    def __init__(
        self,
        path: str,
        specs: Sequence[ProcSpec],
        settings: SupervisorConfig,
        token: CancellationToken,
        hub: EventHub,
    ) -> None:
        self.path = path
        self.hub = hub
        self.settings = settings
        self.token = token
        self.slots = [Slot(spec, path, i) for i, spec in enumerate(specs)]
        #: Every proc by name, static and dynamic: lookups and name checks stay O(1).
        self._by_name = {slot.spec.name: slot for slot in self.slots}
        self.reason: str | None = None
        self.forced_by_signal: int | None = None
        self.stop_requested = False
        self.all_ready = False
        self._live = 0
        self._starting = True
        # Created here, so a run must be made inside async code (it always is).
        self._stop_event = anyio.Event()
        self._ready_or_done = anyio.Event()
        self._wakeup = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._children: dict[int, NestedRun] = {}
        self._pending_restarts: deque[Slot] = deque()
        self._intensity = IntensityWindow(settings.max_restarts, settings.within)
        self._restart_limit: RestartLimitExceeded | None = None
        #: Children started on the running supervisor, in start order (newest last).
        self._dynamic: dict[str, Slot] = {}
        self._next_index = len(self.slots)
        #: The scopes of waits for a gating proc's readiness: a stop request cuts them short.
        self._gate_waits: set[anyio.CancelScope] = set()

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
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                await self._start_all()
                await self._supervise()
                await self._stop_all()
        finally:
            self.token._on_cancel = None
            self._task_group = None
            self._ready_or_done.set()
            self._mark_not_started()
            self.hub.emit(EventKind.SHUTDOWN_FINISHED, self.path, detail=self.reason or "")
        return self._report()

    def request_stop(self, reason: str | None) -> None:
        """Begin the graceful shutdown (idempotent: the first reason is the report's reason)."""
        if self.stop_requested:
            return
        self.stop_requested = True
        self.reason = reason or "stop requested"
        self.hub.emit(EventKind.SHUTDOWN_BEGUN, self.path, detail=self.reason)
        for scope in self._gate_waits:
            scope.cancel()
        self._stop_event.set()
        self._wakeup.set()

    def force_all(self, signum: int | None, reason: str) -> None:
        """Force-cancel every proc still running, in the whole tree, at once."""
        self.forced_by_signal = signum
        self.request_stop(reason)
        for slot in self.live_slots():
            slot.forced = True
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    async def wait_ready_or_done(self) -> None:
        """Return once every proc is ready, or once the run has ended (start-up failed)."""
        await self._ready_or_done.wait()

    def all_slots(self) -> list[Slot]:
        """Static procs in declared order, then dynamic children in start order."""
        return [*self.slots, *self._dynamic.values()]

    def outcomes(self) -> tuple[ProcOutcome, ...]:
        return tuple(slot.outcome() for slot in self.all_slots())

    def live_slots(self) -> Iterator[Slot]:
        """Every proc whose task may still run, depth-first, nested supervisors included."""
        for slot in self.all_slots():
            if slot.live:
                yield slot
                child = self._children.get(slot.index)
                if child is not None:
                    yield from child.live_slots()

    def find(self, path: str) -> Slot | None:
        """The slot at *path* (relative to this supervisor), looking into nested runs."""
        head, _, rest = path.partition("/")
        slot = self._by_name.get(head)
        if slot is None or not rest:
            return slot
        child = self._children.get(slot.index)
        return child.find(rest) if isinstance(child, SupervisorRun) else None

    # ----------------------------------------------------------------- dynamic children

    async def start_child(self, spec: ProcSpec) -> object:
        """Start a dynamic child; return its ready value or raise why it did not start."""
        if self.stop_requested:
            msg = f"{self.path}: shutting down ({self.reason}); cannot start {spec.name!r}"
            raise RuntimeError(msg)
        if spec.name in self._by_name:
            raise ConfigError(
                f"{self.path}/{spec.name}",
                "a proc with this name is already in this supervisor",
                "give the child a unique name, e.g. name=f'conn-{n}'",
            )
        slot = Slot(spec, self.path, self._next_index)
        self._next_index += 1
        self._dynamic[spec.name] = self._by_name[spec.name] = slot
        await self._start_slot(slot)
        failed_to_start = slot.startup_error is not None or (
            slot.state is ProcState.ENDED
            and (not slot.began or isinstance(slot.error, StartupError))
        )
        if failed_to_start:
            await self._discard_failed_child(slot)
        return slot.ready_value

    async def _discard_failed_child(self, slot: Slot) -> None:
        if slot.live:
            await self._stop_slot(slot, "failed to start")
        self._forget_child(slot)
        error = slot.error
        if isinstance(error, StartupError):
            raise error
        raise StartupError(slot.path, "raised before it was ready") from error

    async def stop_child(self, name: str, reason: str) -> ProcOutcome:
        slot = self._dynamic.get(name)
        if slot is None:
            known = ", ".join(self._dynamic) or "none"
            msg = f"{self.path}: no dynamic child {name!r}; running dynamic children: {known}"
            raise KeyError(msg)
        if slot.state in (ProcState.RUNNING, ProcState.STARTING):
            await self._stop_slot(slot, reason)
        elif slot.task is not None and slot.live:
            await slot.task.wait()  # the shutdown is already stopping it
        self._forget_child(slot)
        if slot.state is ProcState.RESTARTING:  # queued, or in its backoff (see _restart)
            if slot in self._pending_restarts:
                self._pending_restarts.remove(slot)
            slot.move(ProcState.ENDED)
        return slot.outcome()

    def _forget_child(self, slot: Slot) -> None:
        self._dynamic.pop(slot.spec.name, None)
        self._by_name.pop(slot.spec.name, None)

    def _is_dynamic(self, slot: Slot) -> bool:
        return slot.index >= len(self.slots)

    # ----------------------------------------------------------------- start-up

    async def _start_all(self) -> None:
        await self._start_group(self.slots)
        self._starting = False
        if not self.stop_requested:
            self.all_ready = True
            self.token.ready()
            self._ready_or_done.set()
            if self._live == 0 and not self._pending_restarts:
                self.request_stop("no procs left running")

    async def _start_group(self, slots: Sequence[Slot]) -> None:
        """Start *slots* in order, gating as declared; a stop request cuts it short.

        Consecutive procs that neither gate nor come from a factory start as a chain: each
        proc's task spawns the next one's just before it enters run_proc, and the next task
        runs only once this one has yielded, i.e. once its run_proc has begun. Same order
        and the same "begun before the next starts" as one at a time, but without a trip
        through the supervisor's task per proc, which is most of a large tree's start-up.
        """
        index = 0
        while index < len(slots) and not self.stop_requested:
            end = index
            while end < len(slots) and _chainable(slots[end]):
                end += 1
            if end - index > 1:
                await self._start_chain(slots[index:end])
                index = end
            else:
                await self._start_slot(slots[index])
                index += 1

    async def _start_chain(self, chain: Sequence[Slot]) -> None:
        done = anyio.Event()
        self._spawn_chained(chain, 0, done)
        await done.wait()
        self._emit_ready(chain[-1])  # the last one has begun and yielded too

    def _spawn_chained(self, chain: Sequence[Slot], position: int, done: anyio.Event) -> None:
        assert self._task_group is not None
        slot = chain[position]
        slot.task = self._task_group.start_soon(
            self._run_proc, slot, slot.spec.proc, None, (chain, position, done)
        )

    def _next_in_chain(self, link: tuple[Sequence[Slot], int, anyio.Event]) -> bool:
        """In a chained proc's task: spawn the next one (or release the supervisor);
        False when a stop came first, so this proc is not started at all."""
        chain, position, done = link
        if position:
            # The previous proc has begun and yielded by now: READY, unless it already ended.
            self._emit_ready(chain[position - 1])
        if self.stop_requested:
            done.set()
            return False
        if position + 1 < len(chain):
            self._spawn_chained(chain, position + 1, done)
        else:
            done.set()
        return True

    def _prepare(self, slot: Slot, proc: SupportsRunProc | ResourceScope) -> CancellationToken:
        """Make the run's token and count the proc as started (STARTING)."""
        token = slot.token = CancellationToken()
        token._on_ready = slot.mark_ready
        wait_ready = slot.spec.wait_ready
        slot.gates = _gates_by_product(proc) if wait_ready is None else wait_ready
        slot.move(ProcState.STARTING)
        if slot.spec.backoff is not None:
            slot.started_at = anyio.current_time()  # only the backoff's reset rule reads it
        self._live += 1
        if self.hub.wants(EventKind.STARTING):
            self.hub.emit(EventKind.STARTING, slot.path, restarts=slot.restarts)
        return token

    async def _start_slot(self, slot: Slot) -> None:
        proc = self._make_proc(slot)
        if proc is None:
            return
        token = self._prepare(slot, proc)
        assert self._task_group is not None
        slot.task = self._task_group.start_soon(self._run_proc, slot, proc, token, None)
        spec = slot.spec
        if not slot.gates:
            await anyio.lowlevel.checkpoint()
            if not slot.began:
                await _wait_on(slot)
            self._emit_ready(slot)
            return
        with anyio.move_on_after(spec.ready_timeout) as waiting:
            self._gate_waits.add(waiting)
            try:
                if slot.state is ProcState.STARTING:
                    await _wait_on(slot)
            finally:
                self._gate_waits.discard(waiting)
        if slot.state is ProcState.STARTING and not self.stop_requested:
            self._fail_startup(slot, f"not ready within {spec.ready_timeout:g}s (ready_timeout)")
        else:
            self._emit_ready(slot)

    def _emit_ready(self, slot: Slot) -> None:
        if slot.state is ProcState.RUNNING and self.hub.wants(EventKind.READY):
            value = slot.ready_value
            detail = "" if value is None else f"ready value {value!r}"
            self.hub.emit(EventKind.READY, slot.path, restarts=slot.restarts, detail=detail)

    def _make_proc(self, slot: Slot) -> SupportsRunProc | ResourceScope | None:
        spec = slot.spec
        if spec.factory is None:
            assert spec.proc is not None
            return spec.proc
        try:
            return call_factory(slot.path, spec.factory)
        except Exception as exc:  # noqa: BLE001 (the user's factory: its error is the outcome)
            slot.move(ProcState.STARTING)
            self._live += 1
            self._record_end(slot, ProcStatus.FAILED, None, exc)
            self._emit_end(slot)
            if not self._is_dynamic(slot):
                self.request_stop(f"proc '{slot.path}' failed to start")
            return None

    def _fail_startup(self, slot: Slot, problem: str) -> None:
        slot.startup_error = StartupError(slot.path, problem)
        if not self._is_dynamic(slot):
            self.request_stop(f"proc '{slot.path}' {problem}")

    # ----------------------------------------------------------------- one proc's run

    async def _run_proc(
        self,
        slot: Slot,
        proc: SupportsRunProc | ResourceScope | None,
        token: CancellationToken | None,
        link: tuple[Sequence[Slot], int, anyio.Event] | None,
    ) -> None:
        """The body of a proc's task. Its cancel scope is the task handle's own (anyio >=
        4.16), which is what `_force` cancels: one scope per proc, none of our own.

        A chained proc (*link* set, see `_start_group`) makes its own token here."""
        if link is not None:
            if not self._next_in_chain(link):
                return
            assert proc is not None
            token = self._prepare(slot, proc)
        assert proc is not None
        assert token is not None
        result: object = None
        error: Exception | None = None
        try:
            slot.mark_begun()
            try:
                if isinstance(proc, FunctionProc):
                    result = await proc.fn(token)  # one coroutine frame less per proc
                elif isinstance(proc, ResourceScope):
                    result = await self._run_scoped(slot, proc, token)
                elif (open_run := getattr(proc, "_open_run", None)) is not None:
                    result = await self._run_nested(slot, open_run(token, slot.path, self.hub))
                else:
                    result = await proc.run_proc(token)
            except Exception as exc:  # noqa: BLE001 (a proc's failure is its outcome)
                error = exc
        except BaseException as exc:
            # Cancelled: forced by us, or by an enclosing scope forcing the whole tree; or
            # interrupted (KeyboardInterrupt). Record the outcome, then let it propagate.
            cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
            self._proc_ended(slot, None, None if cancelled else exc, cancelled=True)
            raise
        self._proc_ended(slot, result, error, cancelled=False)

    async def _run_scoped(
        self, slot: Slot, scope: ResourceScope, token: CancellationToken
    ) -> object:
        """Enter the factory's resource scope, run the proc it yields, then close the scope."""
        async with scope.manager as product:
            proc = check_product(slot.path, product, "its factory's context manager yielded")
            open_run = getattr(proc, "_open_run", None)
            if slot.spec.wait_ready is None and open_run is None:
                slot.release_gate()  # gated only in case the scope yielded a supervisor
            if open_run is not None:
                return await self._run_nested(slot, open_run(token, slot.path, self.hub))
            return await proc.run_proc(token)

    async def _run_nested(self, slot: Slot, child: NestedRun) -> SupervisorReport:
        self._children[slot.index] = child
        try:
            return await child.run()
        finally:
            # The ended run stays reachable (until a restart replaces it), so
            # handle.ready_value("nested/proc") still answers after the tree stopped.
            slot.children = child.outcomes()

    def _proc_ended(
        self, slot: Slot, result: object, error: BaseException | None, *, cancelled: bool
    ) -> None:
        """Turn how a run ended into the proc's outcome, then decide what happens next."""
        token = slot.token
        assert token is not None
        # Gating and never called ready(): also when its stop was requested meanwhile.
        before_ready = slot.gates and not slot.ready_reached
        startup_error = slot.startup_error
        if startup_error is not None:
            error = startup_error
        elif before_ready and error is not None and not isinstance(error, SupervisorError):
            startup_error = StartupError(slot.path, "raised before it was ready")
            startup_error.__cause__ = error
            error = startup_error
        status = classify(
            failed=error is not None,
            cancelled=cancelled,
            stop_requested=token.cancelled,
            forced=slot.forced,
        )
        stopped_by_us = slot.state in (ProcState.STOPPING, ProcState.FORCING)
        self._record_end(slot, status, result, error)
        if self._is_dynamic(slot) and (
            (before_ready and error is not None) or slot.startup_error is not None
        ):
            return  # start_child() raises it to its caller; the tree runs on
        if stopped_by_us or before_ready or self.stop_requested:
            self._emit_end(slot)
        if before_ready and error is not None:
            self.request_stop(f"proc '{slot.path}' failed to start")
        elif not stopped_by_us:
            self._ended_on_its_own(slot)

    def _record_end(
        self, slot: Slot, status: ProcStatus, result: object, error: BaseException | None
    ) -> None:
        if error is not None:
            error.add_note(f"super_visor: raised by proc {slot.path}")
        slot.record_end(status, result, error)
        self._live -= 1
        slot.wake()

    def _emit_end(self, slot: Slot) -> None:
        status = slot.status
        assert status is not None
        kind = _END_EVENTS[status]
        if self.hub.wants(kind):
            self.hub.emit(kind, slot.path, error=slot.error, restarts=slot.restarts)

    def _ended_on_its_own(self, slot: Slot) -> None:
        if self.stop_requested:
            return
        failed = slot.status is ProcStatus.FAILED
        if slot.spec.restart.wants_restart(failed=failed):
            # One line, no traceback: a crash loop must not flood the log with tracebacks;
            # the errors are kept in the outcome's history for the report.
            if self.hub.wants(EventKind.RESTARTING):
                what = f"failed ({slot.error!r})" if failed else "completed"
                self.hub.emit(
                    EventKind.RESTARTING,
                    slot.path,
                    error=slot.error,
                    restarts=slot.restarts,
                    detail=what,
                )
            slot.move(ProcState.RESTARTING)
            self._pending_restarts.append(slot)
            self._wakeup.set()
            return
        self._emit_end(slot)
        if slot.spec.significant:
            status = slot.status.value if slot.status is not None else "ended"
            self.request_stop(f"proc '{slot.path}' {status}")
        elif self._is_dynamic(slot) and slot.status is not ProcStatus.FAILED:
            self._forget_child(slot)  # ended cleanly: nothing left to report
        elif self._live == 0 and not self._starting and not self._pending_restarts:
            self.request_stop("no procs left running")

    # ----------------------------------------------------------------- restarts

    async def _supervise(self) -> None:
        """Between start-up and shutdown: carry out restarts, one at a time, in order.

        Restarts run here, in the supervisor's own task, never in the ended proc's task: like
        an OTP supervisor handling one exit signal at a time, so two crashes never restart
        overlapping groups concurrently.
        """
        while not self.stop_requested:
            if self._pending_restarts:
                await self._restart(self._pending_restarts.popleft())
                continue
            self._wakeup = anyio.Event()
            await self._wakeup.wait()

    async def _restart(self, trigger: Slot) -> None:
        """Restart *trigger* and its strategy's group: stop the group's running procs in
        reverse order, wait the backoff, start them again in declared order."""
        if not self._intensity.add(anyio.current_time()):
            self._give_up(trigger)
            return
        if self._is_dynamic(trigger):
            group: Sequence[Slot] = (trigger,)  # dynamic children restart one-for-one
        else:
            group = restart_group(self.settings.strategy, self.slots, trigger.index)
        if len(group) == 1:
            comeback = [trigger]
        else:
            comeback = [s for s in group if s is trigger or self._comes_back(s)]
        for slot in reversed(group):
            if slot.live:
                await self._stop_slot(slot, f"restarting: sibling '{trigger.path}' ended")
        if trigger.spec.backoff is not None:
            await self._backoff(trigger)
        if self.stop_requested:
            return  # the shutdown came first: the last outcomes stand
        # A dynamic child stopped (stop_child) during the backoff stays stopped; a sibling
        # that ended on its own meanwhile comes back with this group, not a second time.
        await self._start_again([s for s in comeback if self._still_here(s)])

    def _give_up(self, trigger: Slot) -> None:
        """The restart intensity is exceeded: fail this supervisor (OTP's shutdown)."""
        settings = self.settings
        limit = self._restart_limit = RestartLimitExceeded(
            self.path, trigger.path, settings.max_restarts, settings.within
        )
        limit.add_note(f"super_visor: raised by supervisor {self.path}")
        trigger.move(ProcState.ENDED)
        self.hub.emit(EventKind.RESTART_LIMIT, self.path, error=limit, detail=str(limit))
        self.request_stop(f"restart limit exceeded (last ended: '{trigger.path}')")

    async def _start_again(self, comeback: list[Slot]) -> None:
        for slot in comeback:
            if slot in self._pending_restarts:
                self._pending_restarts.remove(slot)
            slot.prepare_restart()
        if self.hub.logger.isEnabledFor(DEBUG):
            names = ", ".join(s.path for s in comeback)
            self.hub.logger.debug("%s: restarting %s", self.path, names)
        await self._start_group(comeback)
        for slot in comeback:
            if self._is_dynamic(slot) and slot.startup_error is not None and slot.live:
                await self._stop_slot(slot, "failed to become ready after a restart")

    def _still_here(self, slot: Slot) -> bool:
        return not self._is_dynamic(slot) or self._dynamic.get(slot.spec.name) is slot

    def _comes_back(self, slot: Slot) -> bool:
        """Whether a sibling in a restart group is started again (OTP's rules)."""
        if slot in self._pending_restarts:
            self._pending_restarts.remove(slot)
            return True
        return slot.live and slot.spec.restart is not Restart.TEMPORARY

    async def _backoff(self, trigger: Slot) -> None:
        """Wait the trigger's backoff delay; a stop request ends the wait at once."""
        backoff = trigger.spec.backoff
        assert backoff is not None
        ran_for = anyio.current_time() - trigger.started_at
        if ran_for >= backoff.maximum:
            trigger.backoff_attempt = 0  # it was stable for the longest delay: healthy again
        delay = backoff.delay(trigger.backoff_attempt)
        trigger.backoff_attempt += 1
        if self.hub.logger.isEnabledFor(DEBUG):
            self.hub.logger.debug("%s: restarting in %.3gs (backoff)", trigger.path, delay)
        with anyio.move_on_after(delay):
            await self._stop_event.wait()

    # ----------------------------------------------------------------- shutdown

    async def _stop_all(self) -> None:
        """Dynamic children first, newest first; then the static procs in reverse order."""
        for slot in reversed([*self._dynamic.values()]):
            if slot.state in (ProcState.RUNNING, ProcState.STARTING):
                await self._stop_slot(slot, self.reason)
        for slot in reversed(self.slots):
            if slot.live:
                await self._stop_slot(slot, self.reason)
        for slot in self._dynamic.values():
            if slot.live and slot.task is not None:
                await slot.task.wait()  # a stop_child() in flight finishes its own stop

    async def _stop_slot(self, slot: Slot, reason: str | None) -> None:
        token = slot.token
        assert token is not None
        slot.move(ProcState.STOPPING)
        if self.hub.wants(EventKind.STOPPING):
            self.hub.emit(
                EventKind.STOPPING, slot.path, restarts=slot.restarts, detail=reason or ""
            )
        token.cancel(reason)
        # A proc that returns as soon as its token is cancelled has ended after at most two
        # trips through the scheduler (one on asyncio, whose ready queue is FIFO; trio may
        # run us first in the next batch); only slower ones cost a deadline and a wait.
        for _ in range(2):
            await anyio.lowlevel.checkpoint()
            if not slot.live:
                return
        grace = slot.spec.grace
        task = slot.task
        assert task is not None
        with anyio.move_on_after(math.inf if grace is None else grace):
            await task.wait()
        if slot.live:
            await self._force(slot, task)

    async def _force(self, slot: Slot, task: TaskHandle[None]) -> None:
        self.hub.logger.warning(
            "%s: still running after its grace of %ss; force-cancelling it",
            slot.path,
            slot.spec.grace,
        )
        slot.forced = True
        slot.move(ProcState.FORCING)
        task.cancel()
        interval = self.settings.stuck_report_interval
        while slot.live:
            with anyio.move_on_after(interval):
                await task.wait()
            if slot.live:
                report_stuck(self.hub, slot)

    # ----------------------------------------------------------------- the report

    def _mark_not_started(self) -> None:
        for slot in self.all_slots():
            if slot.state is ProcState.PENDING:
                slot.move(ProcState.ENDED)
                slot.status = ProcStatus.NOT_STARTED
            elif slot.state is ProcState.RESTARTING:
                slot.move(ProcState.ENDED)  # shutdown came first: its last outcome stands

    def report_so_far(self) -> SupervisorReport:
        """The report as of now, failed or not (for a run that was forced from outside)."""
        return SupervisorReport(
            self.path,
            self.outcomes(),
            self.reason or "stopped",
            self.forced_by_signal,
            restart_limit_hit=self._restart_limit is not None,
        )

    def _report(self) -> SupervisorReport:
        failed = [s for s in self.all_slots() if s.status is ProcStatus.FAILED]
        errors = [s.error for s in failed if isinstance(s.error, Exception)]
        for slot in self.all_slots():
            if slot.status is not ProcStatus.FAILED:
                # A nested supervisor that was forced still had procs that failed first.
                errors.extend(_failed_leaf_errors(slot.children))
        if self._restart_limit is not None:
            errors.insert(0, self._restart_limit)
        report = self.report_so_far()
        if not errors:
            return report
        what = ", ".join(s.path for s in failed) or "none"
        message = f"{self.path}: {len(failed)} proc(s) failed: {what}"
        if self._restart_limit is not None:
            message = f"{self.path}: restart limit exceeded; failed procs: {what}"
        raise SupervisorError(message, errors, report)


def _failed_leaf_errors(outcomes: tuple[ProcOutcome, ...]) -> list[Exception]:
    return [
        outcome.error
        for root in outcomes
        for outcome in root.walk()
        if outcome.failed and not outcome.children and isinstance(outcome.error, Exception)
    ]


def _chainable(slot: Slot) -> bool:
    """Whether a proc can start in a chain: it does not gate and needs no factory call."""
    spec = slot.spec
    return spec.wait_ready is False and spec.factory is None


def _gates_by_product(proc: object) -> bool:
    """Whether a factory's product gates: a nested supervisor does, and so does a resource
    scope until it shows what it yields (`_run_scoped` releases the gate otherwise)."""
    return isinstance(proc, ResourceScope) or hasattr(proc, "_open_run")


_END_EVENTS = {
    ProcStatus.COMPLETED: EventKind.COMPLETED,
    ProcStatus.STOPPED: EventKind.STOPPED,
    ProcStatus.FAILED: EventKind.FAILED,
    ProcStatus.FORCED: EventKind.FORCED,
}


async def _wait_on(slot: Slot) -> None:
    event = slot.waiter = anyio.Event()
    await event.wait()


def report_stuck(hub: EventHub, slot: Slot) -> None:
    """Name a proc that survived force-cancellation, with the stack it is stuck in."""
    stack = format_coroutine_stack(slot.task.coro if slot.task is not None else None)
    hub.emit(
        EventKind.STUCK,
        slot.path,
        restarts=slot.restarts,
        detail="still running after it was force-cancelled (a shielded scope or a blocking "
        f"call?); shutdown waits for it. Its stack:\n{stack}",
    )
