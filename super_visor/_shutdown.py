"""Shutdown: the procs stop in reverse order, one at a time: token, grace, force.

Stopping one proc: cancel its token (cooperative: its ``finally`` may still await), wait its
grace, then force-cancel its task and wait until the task has really ended, naming the proc
with its stack every ``stuck_report_interval`` seconds while it survives the force (a shielded
scope or a blocking call). Only then is the previous proc asked to stop. A proc that returns
as soon as its token is cancelled costs no deadline: it has ended after at most two trips
through the scheduler.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import anyio

from ._diagnostics import report_stuck
from ._events import EventKind
from ._lifecycle import ProcState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyio import TaskHandle

    from ._context import RunContext
    from ._slot import Slot

__all__ = ("stop_all", "stop_slot")


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
        if slot.live:
            await wait_ended(slot)  # a stop_child() in flight finishes its own stop


async def stop_slot(ctx: RunContext, slot: Slot, reason: str | None) -> None:
    """Stop one proc: its token, its grace, then force; returns once its task has ended."""
    attempt = slot.attempt
    assert attempt is not None, f"{slot.path}: a live proc has an attempt"
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
    spec = slot.spec
    task = _task(slot)
    with anyio.move_on_after(math.inf if spec.grace is None else spec.grace + spec.force_reserve):
        await task.wait()
    if slot.live:
        await _force(ctx, slot, task)


async def wait_ended(slot: Slot) -> None:
    """Wait until the task of *slot*'s current run has ended (someone else stops it)."""
    await _task(slot).wait()


async def _force(ctx: RunContext, slot: Slot, task: TaskHandle[None]) -> None:
    ctx.hub.logger.warning(
        "%s: still running after its grace of %ss; force-cancelling it",
        slot.path,
        slot.spec.grace,
    )
    force(slot)
    interval = ctx.config.stuck_report_interval
    while slot.live:
        with anyio.move_on_after(interval):
            await task.wait()
        if slot.live:
            report_stuck(ctx.hub, slot)


def force(slot: Slot) -> None:
    """Force-cancel the proc's task now (FORCING); its outcome will be FORCED."""
    attempt = slot.attempt
    assert attempt is not None, f"{slot.path}: a live proc has an attempt"
    attempt.forced = True
    if slot.state is not ProcState.FORCING:
        slot.move(ProcState.FORCING)
    if attempt.task is not None:
        attempt.task.cancel()


def _task(slot: Slot) -> TaskHandle[None]:
    attempt = slot.attempt
    assert attempt is not None, f"{slot.path}: a live proc has an attempt"
    assert attempt.task is not None, f"{slot.path}: a live proc has a task"
    return attempt.task
