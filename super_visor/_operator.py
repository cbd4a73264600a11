"""Operator actions: stop, start, restart, abort or fail one proc of a running supervisor on
request (OTP's ``terminate_child``/``restart_child``), and start or stop dynamic children.

An operator's action is never one of the supervisor's own reactions:

- A proc an operator stopped is *parked*: it stays in the tree, STOPPED (or however its run
  ended), until started again. It is not an ended proc (`after_end`'s PARK), so it neither
  shuts down the supervisor of a significant proc nor leaves it "with no procs left
  running", and a restart of its group does not bring it back.
- Starting it again is not a restart: ``restarts`` and the restart intensity are untouched.
  A failure to start is raised to the operator (as by ``start_child``); the tree runs on.
- A stop is the shutdown's stop (token, grace, force, see ``_shutdown``); ``abort`` skips the
  rest of the grace. ``inject_failure`` cancels the proc's task and its run ends with the
  given error, as if it had raised it (``_proc_task``): its restart policy applies.
- Every action is a CONTROL event, and so a log line, naming who asked ("API", "socket").
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, final

import anyio

from ._controls import SupervisorControls
from ._dynamic import failed_to_start, start_failure
from ._events import EventKind
from ._lifecycle import ProcState, RunPhase
from ._shutdown import force, see_through, stop_slot
from ._startup import start_slot

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from ._context import RunContext
    from ._dynamic import DynamicChildren
    from ._outcome import ProcOutcome
    from ._restarter import Restarter
    from ._slot import Slot
    from ._spec import ProcSpec

    #: Validates a dynamic child (proc, options) into a spec; made by the builder.
    ChildSpecFactory = Callable[[object, dict[str, object]], ProcSpec]

__all__ = ("Operator",)


@final
class Operator:
    """The operator actions on one supervisor run's own procs (paths are resolved above, in
    ``_controls``, which reaches a nested supervisor's procs through its run's operator)."""

    __slots__ = (
        "_acting",
        "_by_name",
        "_ctx",
        "_dynamic",
        "_restarter",
        "child_spec",
        "parked",
    )

    def __init__(
        self,
        ctx: RunContext,
        restarter: Restarter,
        dynamic: DynamicChildren,
        by_name: dict[str, Slot],
        child_spec: ChildSpecFactory | None,
    ) -> None:
        self._ctx = ctx
        self._restarter = restarter
        self._dynamic = dynamic
        #: The run's registry of every proc by name (static and dynamic).
        self._by_name = by_name
        #: Validates this supervisor's dynamic children (its own defaults); None for a run
        #: made without its builder's (then ``start_child`` cannot be used on it).
        self.child_spec = child_spec
        #: Procs an operator stopped and nobody started since.
        self.parked: set[Slot] = set()
        #: One lock per proc an action is under way on (see `_one_at_a_time`).
        self._acting: dict[Slot, anyio.Lock] = {}

    @property
    def ctx(self) -> RunContext:
        return self._ctx

    def controls(self) -> SupervisorControls:
        """This supervisor's public controls (``token.supervisor``)."""
        return SupervisorControls(self)

    def named(self, name: str) -> Slot | None:
        """This supervisor's own proc (static or dynamic) called *name*."""
        return self._by_name.get(name)

    def park(self, slot: Slot) -> None:
        """An operator stopped *slot* (`after_end`'s PARK): it waits to be started."""
        self.parked.add(slot)

    def may_restart(self, slot: Slot) -> bool:
        """Whether a restart of its group may start *slot* again: it is still here, not
        running (an operator may have started it meanwhile), and not parked."""
        here = self._by_name.get(slot.spec.name) is slot
        return here and not slot.live and slot not in self.parked

    # ----------------------------------------------------------------- the actions

    async def stop(self, slot: Slot, by: str) -> ProcOutcome:
        """Stop *slot* gracefully; a dynamic child then leaves the supervisor."""
        async with self._one_at_a_time(slot):
            self._refuse_when("stop", slot, RunPhase.STOPPED)
            self._announce(slot, "stop", by)
            if self._ctx.is_dynamic(slot):
                return await self._remove(slot, f"stopped by {by}")
            await self._stop_in_place(slot, f"stopped by {by}")
            return slot.outcome()

    async def start(self, slot: Slot, by: str) -> object:
        """Start *slot* again (it is stopped or ended); return its ready value."""
        async with self._one_at_a_time(slot):
            self._refuse_when("start", slot, RunPhase.STOPPING, RunPhase.STOPPED)
            _refuse_running(slot, "use restart() to stop it and start it again")
            self._announce(slot, "start", by)
            return await self._start(slot)

    async def restart(self, slot: Slot, by: str) -> object:
        """Stop *slot* (if it runs), then start it again; return its ready value."""
        async with self._one_at_a_time(slot):
            self._refuse_when("restart", slot, RunPhase.STOPPING, RunPhase.STOPPED)
            self._announce(slot, "restart", by)
            await self._stop_in_place(slot, f"restarted by {by}")
            _refuse_running(slot, "it survived its stop (abandoned?)")
            return await self._start(slot)

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, slot: Slot) -> AsyncIterator[None]:
        """Actions on one proc take turns: two operators restarting it (or one stopping
        while the other restarts) each see the other's action complete, never half of it."""
        lock = self._acting.get(slot)
        if lock is None:
            lock = self._acting[slot] = anyio.Lock()
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                del self._acting[slot]

    def abort(self, slot: Slot, by: str) -> None:
        """Force-cancel *slot* now, skipping the rest of its grace (FORCED, then parked)."""
        self._refuse_when("abort", slot, RunPhase.STOPPED)
        self._announce(slot, "abort", by)
        if slot.state is ProcState.RESTARTING:
            self._park_waiting(slot)
        attempt = slot.attempt
        if not slot.live or attempt is None:
            return
        watched = slot.state is ProcState.STOPPING or slot.state is ProcState.FORCING
        attempt.operator_stop = True
        attempt.token.cancel(f"aborted by {by}")
        force(slot)
        if not watched:  # nobody is stopping it: name it if it survives, then abandon it
            self._ctx.task_group.start_soon(see_through, self._ctx, slot)

    def inject_failure(self, slot: Slot, error: BaseException, by: str) -> None:
        """End *slot*'s current run with *error*, as if it had raised it."""
        self._refuse_when("inject a failure into", slot, RunPhase.STOPPED)
        attempt = slot.attempt
        if not slot.live or attempt is None or attempt.coro is None:
            msg = (
                f"{slot.path}: cannot inject a failure, it is not running (it is "
                f"{slot.state.value}); inject it while the proc runs"
            )
            raise RuntimeError(msg)
        self._announce(slot, f"failure injection ({error!r})", by)
        if attempt.injected is None:  # the first one stands
            attempt.injected = error
        if attempt.nested is not None:  # it stops its procs in reverse, then fails
            attempt.token.cancel(f"failure injected by {by}")
        else:
            attempt.scope.cancel()

    async def start_child(self, spec: ProcSpec) -> object:
        """Start a dynamic child; return its ready value or raise why it did not start."""
        ctx = self._ctx
        return await self._dynamic.start_child(spec, ctx.phase, ctx.reason)

    async def stop_child(self, name: str, reason: str) -> ProcOutcome:
        """Stop a running dynamic child and remove it (``handle.stop_child()``)."""
        return await self._dynamic.stop_child(name, reason, self._ctx.phase)

    # ----------------------------------------------------------------- how

    async def _stop_in_place(self, slot: Slot, reason: str) -> None:
        """Stop *slot* and park it (it stays in the tree)."""
        attempt = slot.attempt
        if slot.live and attempt is not None:
            attempt.operator_stop = True
            await stop_slot(self._ctx, slot, reason)  # its end parks it (after_end)
        elif slot.state is ProcState.RESTARTING:
            self._park_waiting(slot)
        elif slot.state is ProcState.ENDED:
            self.park(slot)  # so a restart of its group leaves it alone

    def _park_waiting(self, slot: Slot) -> None:
        """Park a proc waiting for its restart (queued, or in its backoff)."""
        self._restarter.discard(slot)
        slot.move(ProcState.ENDED)
        self.park(slot)

    async def _start(self, slot: Slot) -> object:
        """Start *slot* as at start-up (gating rules apply); not a restart."""
        ctx = self._ctx
        self._refuse_when("start", slot, RunPhase.STOPPING, RunPhase.STOPPED)  # after a stop
        slot.forget_run()
        await start_slot(ctx, slot, by_operator=True)
        if failed_to_start(slot):
            self.park(slot)
            if slot.live:
                await stop_slot(ctx, slot, "failed to start")
            raise start_failure(slot)
        self.parked.discard(slot)
        return slot.ready_value

    async def _remove(self, slot: Slot, reason: str) -> ProcOutcome:
        """Stop a dynamic child and remove it (a parked one is removed at once)."""
        self.parked.discard(slot)
        if slot.live or slot.state is ProcState.RESTARTING:
            return await self._dynamic.stop_child(slot.spec.name, reason, self._ctx.phase)
        self._dynamic.depart(slot)
        return slot.outcome()

    def _refuse_when(self, action: str, slot: Slot, *phases: RunPhase) -> None:
        """Raise `RuntimeError` when the supervisor is in one of *phases*, or when *slot*
        was never started (start-up has not reached it yet)."""
        ctx = self._ctx
        if ctx.phase in phases:
            state = "has stopped" if ctx.phase is RunPhase.STOPPED else "is shutting down"
            msg = f"{ctx.path}: the supervisor {state} ({ctx.reason}); cannot {action} {slot.path}"
            raise RuntimeError(msg)
        if slot.state is ProcState.PENDING:
            msg = f"{slot.path}: not started yet; cannot {action} it before start-up reaches it"
            raise RuntimeError(msg)

    def _announce(self, slot: Slot, action: str, by: str) -> None:
        detail = f"{action} requested by {by}"
        self._ctx.hub.emit(EventKind.CONTROL, slot.path, restarts=slot.restarts, detail=detail)


def _refuse_running(slot: Slot, fix: str) -> None:
    """Raise `RuntimeError` when *slot* runs or waits for its restart: it cannot start."""
    if slot.live or slot.state is ProcState.RESTARTING:
        msg = f"{slot.path}: cannot start it, it is {slot.state.value}; {fix}"
        raise RuntimeError(msg)
