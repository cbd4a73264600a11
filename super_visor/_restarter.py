"""Restarts: carried out one at a time (OTP's semantics).

Like an OTP supervisor handling one exit signal at a time, two crashes never restart
overlapping groups concurrently: restarts are queued and carried out by the supervisor's own
task, in order. Each restart is counted against the intensity (``max_restarts`` within
``within`` seconds, on the run's clock); one more fails the supervisor with
`RestartLimitExceeded`. The strategy's group is stopped in reverse order, the backoff is
waited, and the group is started again in declared order.

One case skips the queue: when restarting a proc alone, at once, is all the supervisor would
do (nothing queued or under way, no backoff, no gate, ...), the ended proc's own task starts
it again (`Restarter.restart`). The decision and its bookkeeping are synchronous, so the
one-at-a-time rule still holds, and a crash loop costs neither a task nor a wake-up.
"""

from __future__ import annotations

import contextvars
from collections import deque
from typing import TYPE_CHECKING, final

import anyio

from ._errors import RestartLimitExceeded
from ._events import DEBUG, EventKind, narrate_end, record_fields
from ._lifecycle import ProcState, RunPhase
from ._restart import IntensityWindow, Restart, restart_group
from ._shutdown import stop_slot
from ._startup import restart_in_place, start_group

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._context import RunContext
    from ._slot import Attempt, Slot

__all__ = ("Restarter",)


@final
class Restarter:
    """The queue of procs waiting to be restarted, and the loop that restarts them."""

    __slots__ = ("_busy", "_ctx", "_intensity", "_last_step_of", "_pending", "_wakeup", "limit")

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self._pending: deque[Slot] = deque()
        self._intensity = IntensityWindow(ctx.config.max_restarts, ctx.config.within)
        self._wakeup = anyio.Event()
        #: The supervisor's task is restarting a group (`_restart` awaits).
        self._busy = False
        #: The proc whose start is all that is left of that restart (see `_start_again`).
        self._last_step_of: Slot | None = None
        #: Set when the supervisor gave up (its intensity was exceeded).
        self.limit: RestartLimitExceeded | None = None

    @property
    def idle(self) -> bool:
        """Whether no proc waits to be restarted."""
        return not self._pending

    def restart(self, slot: Slot, *, here: contextvars.Context | None) -> Attempt | None:
        """*slot* ended and its policy wants it back.

        When the caller is the task the proc ran in (*here*: the context that task began
        with) and restarting it alone, right now, is all `_restart` would do, it is done at
        once: the intensity is counted, and the new start is returned for that task to run.
        No task is spawned and the supervisor is not woken, so a crash loop costs little
        more than a ``while`` loop. Otherwise it is queued for the supervisor's task; None.
        """
        if here is None or not (self._same_in_place(slot) and _left_as_found(here)):
            self.queue(slot)
            return None
        slot.move(ProcState.RESTARTING)
        now = self._ctx.clock.now()
        if not self._intensity.add(now):
            self._give_up(slot)
            return None
        self._say_restarting([slot])
        return restart_in_place(self._ctx, slot, now)

    def _same_in_place(self, slot: Slot) -> bool:
        """Whether restarting *slot* now, in its own task, is what `supervise` would do:
        start-up is over and no stop was asked, no other restart is queued or under way,
        its group is itself, it has no backoff, it starts without a gate or a factory, and
        no operator holds it back."""
        spec = slot.spec
        return (
            not self._pending
            and (not self._busy or self._last_step_of is slot)
            and spec.backoff is None
            and spec.wait_ready is False
            and spec.factory is None
            and self._ctx.phase is RunPhase.RUNNING
            and len(self._group(slot)) == 1
            and self._ctx.operator.may_restart(slot)
        )

    def queue(self, slot: Slot) -> None:
        """*slot* ended and its policy wants it back: RESTARTING until its turn."""
        slot.move(ProcState.RESTARTING)
        self._pending.append(slot)
        self._wakeup.set()

    def discard(self, slot: Slot) -> None:
        """*slot* leaves the supervisor (``stop_child``) before its restart."""
        if slot in self._pending:
            self._pending.remove(slot)

    def wake(self) -> None:
        """Let `supervise` notice a stop request."""
        self._wakeup.set()

    async def supervise(self) -> None:
        """Between start-up and shutdown: carry out restarts, one at a time, in order."""
        while not self._ctx.stopping:
            if self._pending:
                self._busy = True
                try:
                    await self._restart(self._pending.popleft())
                finally:
                    self._busy, self._last_step_of = False, None
                continue
            self._wakeup = anyio.Event()
            await self._wakeup.wait()

    async def _restart(self, trigger: Slot) -> None:
        """Restart *trigger* and its strategy's group: stop the group's running procs in
        reverse order, wait the backoff, start them again in declared order."""
        ctx = self._ctx
        if not self._intensity.add(ctx.clock.now()):
            self._give_up(trigger)
            return
        group = self._group(trigger)
        comeback = [trigger] if len(group) == 1 else self._comeback(group, trigger)
        for slot in reversed(group):
            if slot.live:
                await stop_slot(ctx, slot, f"restarting: sibling '{trigger.path}' ended")
        if trigger.spec.backoff is not None:
            await self._backoff(trigger)
        if ctx.stopping:
            return  # the shutdown came first: the last outcomes stand
        # A dynamic child stopped (stop_child) or a proc an operator stopped or started during
        # the backoff is left alone; a sibling that ended on its own meanwhile comes back
        # with this group, not a second time.
        await self._start_again([s for s in comeback if ctx.operator.may_restart(s)])

    def _group(self, trigger: Slot) -> Sequence[Slot]:
        ctx = self._ctx
        if ctx.is_dynamic(trigger):
            return (trigger,)  # dynamic children restart one-for-one
        return restart_group(ctx.config.strategy, ctx.slots, trigger.index)

    def _comeback(self, group: Sequence[Slot], trigger: Slot) -> list[Slot]:
        """The procs of a group that are started again (OTP's rules): the trigger, those
        waiting for their own restart, and the running ones that are not TEMPORARY."""
        comeback = []
        for slot in group:
            if slot is trigger or slot in self._pending:
                self.discard(slot)
                comeback.append(slot)
            elif slot.live and slot.spec.restart is not Restart.TEMPORARY:
                comeback.append(slot)
        return comeback

    def _give_up(self, trigger: Slot) -> None:
        """The restart intensity is exceeded: fail this supervisor (OTP's shutdown)."""
        ctx = self._ctx
        config = ctx.config
        limit = self.limit = RestartLimitExceeded(
            ctx.path, trigger.path, config.max_restarts, config.within
        )
        limit.add_note(f"super_visor: raised by supervisor {ctx.path}")
        trigger.move(ProcState.ENDED)
        attempt = trigger.attempt
        if attempt is not None:  # its end is final after all: say so, with its traceback
            narrate_end(ctx.hub, trigger.path, attempt.status, attempt.error, trigger.restarts)
        ctx.root.restart_limit_reached = True
        ctx.hub.emit(EventKind.RESTART_LIMIT, ctx.path, error=limit, detail=str(limit))
        ctx.request_stop(f"restart limit exceeded (last ended: '{trigger.path}')")

    async def _start_again(self, comeback: list[Slot]) -> None:
        ctx = self._ctx
        for slot in comeback:
            self.discard(slot)
            slot.prepare_restart()
        self._say_restarting(comeback)
        if len(comeback) == 1:  # all that is left is its start: a crash of it may be
            self._last_step_of = comeback[0]  # restarted in place, as after this restart
        await start_group(ctx, comeback)
        for slot in comeback:
            attempt = slot.attempt
            failed_gate = attempt is not None and attempt.startup_error is not None
            if ctx.is_dynamic(slot) and failed_gate and slot.live:
                await stop_slot(ctx, slot, "failed to become ready after a restart")

    def _say_restarting(self, comeback: Sequence[Slot]) -> None:
        ctx = self._ctx
        if ctx.hub.logger.isEnabledFor(DEBUG):
            names = ", ".join(s.path for s in comeback)
            extra = record_fields(ctx.path, EventKind.RESTARTING)
            ctx.hub.logger.debug("%s: restarting %s", ctx.path, names, extra=extra)

    async def _backoff(self, trigger: Slot) -> None:
        """Wait the trigger's backoff delay; a stop request ends the wait at once."""
        ctx = self._ctx
        backoff = trigger.spec.backoff
        assert backoff is not None, "only called for a proc with a backoff"
        attempt = trigger.attempt
        started_at = 0.0 if attempt is None else attempt.started_at
        if ctx.clock.now() - started_at >= backoff.maximum:
            trigger.backoff_attempt = 0  # it was stable for the longest delay: healthy again
        delay = backoff.delay(trigger.backoff_attempt)
        trigger.backoff_attempt += 1
        if ctx.hub.logger.isEnabledFor(DEBUG):
            extra = record_fields(trigger.path, EventKind.RESTARTING, restarts=trigger.restarts)
            ctx.hub.logger.debug(
                "%s: restarting in %.3gs (backoff)", trigger.path, delay, extra=extra
            )
        with ctx.cut_short_on_stop():
            await ctx.clock.sleep(delay)


_MISSING = object()


def _left_as_found(found: contextvars.Context) -> bool:
    """Whether the calling task's context holds what it held when the task began.

    A new task starts from a copy of its spawner's context; a run that set a ContextVar
    (a request id, a logging context) must not pass it on to the next run, so such a proc
    is restarted in a new task.
    """
    now = contextvars.copy_context()
    return len(now) == len(found) and all(
        found.get(var, _MISSING) is value for var, value in now.items()
    )
