"""Shutdown: the procs stop in reverse order, one at a time: token, grace, force.

Stopping one proc: cancel its token (cooperative: its ``finally`` may still await), wait its
grace (plus its ``force_reserve``), then force-cancel its task and wait until the task has
really ended, naming the proc with its stack every ``stuck_report_interval`` seconds while it
survives the force (a shielded scope or a blocking call). After ``abandon_after`` seconds of
that it is abandoned: ABANDONED, a failure. Only then is the previous proc asked to stop.
A proc that returns as soon as its token is cancelled costs no deadline: it has ended after
at most two trips through the scheduler.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, final

import anyio

from ._diagnostics import report_stuck, slot_stack
from ._events import EventKind, record_fields
from ._lifecycle import ProcState
from ._outcome import ProcStatus
from ._slot import wait_run_ended, waiter_of, wake

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from ._context import RunContext
    from ._slot import Attempt, NestedRun, Slot

__all__ = (
    "StopCuts",
    "abandon",
    "abandon_overdue",
    "force",
    "live_in",
    "next_abandon_at",
    "see_through",
    "stop_all",
    "stop_slot",
    "wait_ended",
    "wait_settled",
)


async def stop_all(
    ctx: RunContext, static: Sequence[Slot], dynamic: Sequence[Slot], reason: str | None
) -> None:
    """Dynamic children first, newest first; then the static procs in reverse order."""
    for slot in reversed(dynamic):
        if slot.state is ProcState.RUNNING or slot.state is ProcState.STARTING:
            await stop_slot(ctx, slot, reason)
    for slot in reversed(static):
        if slot.live:
            await stop_slot(ctx, slot, reason)
    for slot in dynamic:
        await wait_settled(slot)  # a stop_child() in flight finishes its own stop


async def stop_slot(ctx: RunContext, slot: Slot, reason: str | None) -> None:
    """Stop one proc: its token, its grace, then force; returns once its task has ended,
    or once it was abandoned (it survived the force for ``abandon_after`` seconds)."""
    attempt = slot.attempt
    assert attempt is not None, f"{slot.path}: a live proc has an attempt"
    if slot.state is ProcState.FORCING or slot.state is ProcState.STOPPING:
        await wait_settled(slot)  # stopped by someone else already (an operator, a signal)
        return
    slot.move(ProcState.STOPPING)
    if ctx.hub.wants(EventKind.STOPPING):
        ctx.hub.emit(EventKind.STOPPING, slot.path, restarts=slot.restarts, detail=reason or "")
    attempt.token.cancel(reason)
    # A proc that returns as soon as its token is cancelled has ended after at most two
    # trips through the scheduler (one on asyncio, whose ready queue is FIFO; trio may
    # run us first in the next batch); only slower ones cost a deadline and a wait.
    for _ in range(2):
        await anyio.lowlevel.checkpoint()
        if not slot.live:
            return
    grace = slot.spec.grace
    with anyio.move_on_after(math.inf if grace is None else grace + attempt.force_reserve):
        await _wait_stopped(slot)
    if slot.live and _abandoned_inside(slot):
        abandon(ctx, slot, "procs inside it were abandoned, so it cannot end")
    elif slot.live:
        await _force(ctx, slot)


async def wait_ended(slot: Slot) -> None:
    """Wait until *slot*'s current run has ended (someone else stops it)."""
    await wait_run_ended(_attempt(slot))


async def wait_settled(slot: Slot) -> None:
    """Wait until *slot*'s run has ended or was abandoned (someone else stops it)."""
    attempt = slot.attempt
    # That run only: once it ended, the slot may be live again with a new run (an
    # operator's start), whose end is not what the caller waits for.
    while attempt is not None and slot.attempt is attempt and slot.live and not attempt.abandoned:
        await waiter_of(attempt).wait()


async def _wait_stopped(slot: Slot) -> None:
    """Until its task ended; for a nested supervisor, also until only procs it abandoned
    are left in it (it then cannot end, and waiting longer would wait forever)."""
    attempt = _attempt(slot)
    nested = attempt.nested
    if nested is not None:
        await nested.leftovers.settled.wait()
        if nested.leftovers.alive:
            return
    await wait_run_ended(attempt)


async def _force(ctx: RunContext, slot: Slot) -> None:
    ctx.hub.logger.warning(
        "%s: still running after its grace of %ss; force-cancelling it",
        slot.path,
        slot.spec.grace,
        extra=record_fields(slot.path, EventKind.FORCED, restarts=slot.restarts),
    )
    force(slot)
    await see_through(ctx, slot)


async def see_through(ctx: RunContext, slot: Slot) -> None:
    """After its force-cancel: until the proc's task has ended, name it with its stack every
    ``stuck_report_interval`` seconds; abandon it after ``abandon_after`` seconds."""
    spec = slot.spec
    interval = ctx.config.stuck_report_interval
    with anyio.move_on_after(spec.abandon_after):
        while slot.live and not _abandoned_inside(slot):
            with anyio.move_on_after(interval):
                await _wait_stopped(slot)
            if slot.live and not _abandoned_inside(slot):
                report_stuck(ctx.hub, slot)
    if slot.live:
        abandon(ctx, slot, f"still running {spec.abandon_after:g}s after its force-cancel")


def force(slot: Slot) -> None:
    """Force-cancel the proc's task now (FORCING); its outcome will be FORCED."""
    attempt = slot.attempt
    assert attempt is not None, f"{slot.path}: a live proc has an attempt"
    if not attempt.forced:
        attempt.forced = True
        attempt.forced_at = anyio.current_time()
    if slot.state is not ProcState.FORCING:
        slot.move(ProcState.FORCING)
    attempt.scope.cancel()


def abandon(ctx: RunContext, slot: Slot, why: str) -> None:
    """Give up on a proc that does not end: ABANDONED (a failure), and the stop moves on.

    Its task still runs (a shielded scope or a blocking call); the run's task group waits
    for it at the very end, unless ``run()`` ends the process first (API.md section 8).
    """
    attempt = slot.attempt
    assert attempt is not None, f"{slot.path}: a live proc has an attempt"
    attempt.abandoned = True
    error = RuntimeError(f"{slot.path}: {why} (a shielded scope or a blocking call?); abandoned")
    error.add_note(f"super_visor: raised by proc {slot.path}")
    nested = _nested(slot)
    if nested is not None:
        attempt.children = nested.outcomes()
    attempt.status, attempt.error = ProcStatus.ABANDONED, error
    ctx.leftovers.slots.append(slot)
    detail = why if nested is not None else f"{why}; its stack:\n{slot_stack(slot)}"
    ctx.hub.emit(EventKind.ABANDONED, slot.path, error=error, restarts=slot.restarts, detail=detail)
    wake(attempt)


@final
class StopCuts:
    """The waits (a gate, a backoff) that a stop request ends at once."""

    __slots__ = ("_scopes",)

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()

    @contextlib.contextmanager
    def scope(self, timeout: float | None, *, cut: bool) -> Iterator[anyio.CancelScope]:
        """A wait bounded by *timeout*; cancelled at once when *cut* (already stopping)."""
        with anyio.move_on_after(timeout) as scope:
            if cut:
                scope.cancel()
            self._scopes.add(scope)
            try:
                yield scope
            finally:
                self._scopes.discard(scope)

    def cut(self) -> None:
        """A stop was requested: end every wait now."""
        for scope in self._scopes:
            scope.cancel()


def abandon_overdue(ctx: RunContext, live: list[Slot]) -> bool:
    """After a forcing signal (the stop walk was cancelled with everything else): abandon
    each forced proc of *live* that survived its force for its ``abandon_after``. True
    once every proc still running is abandoned."""
    now = anyio.current_time()
    for slot in live:
        attempt = slot.attempt
        if attempt is None or attempt.abandoned or not attempt.forced:
            continue
        if now - attempt.forced_at >= slot.spec.abandon_after:
            abandon(ctx, slot, "still running after the forcing signal's force-cancel")
    return all(s.attempt is not None and s.attempt.abandoned for s in live if s.live)


def next_abandon_at(live: list[Slot]) -> float | None:
    """The earliest moment a forced, not yet abandoned proc of *live* is due (event loop
    time), or None."""
    due = [
        slot.attempt.forced_at + slot.spec.abandon_after
        for slot in live
        if slot.attempt is not None and slot.attempt.forced and not slot.attempt.abandoned
    ]
    return min(due, default=None)


def live_in(slots: list[Slot]) -> Iterator[Slot]:
    """The procs of *slots* whose task may still run, depth-first into nested supervisors
    (iterative: a tree nested thousands of levels deep needs no frame per level)."""
    stack = [iter(slots)]
    while stack:
        slot = next(stack[-1], None)
        if slot is None:
            stack.pop()
        elif slot.live:
            yield slot
            nested = None if slot.attempt is None else slot.attempt.nested
            if nested is not None:
                stack.append(iter(nested.all_slots()))


def _abandoned_inside(slot: Slot) -> bool:
    nested = _nested(slot)
    if nested is None:
        return False
    return nested.leftovers.settled.is_set() and nested.leftovers.alive


def _nested(slot: Slot) -> NestedRun | None:
    attempt = slot.attempt
    return None if attempt is None else attempt.nested


def _attempt(slot: Slot) -> Attempt:
    attempt = slot.attempt
    assert attempt is not None, f"{slot.path}: a live proc has an attempt"
    return attempt
