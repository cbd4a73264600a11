"""The body of one proc's task: enter its run_proc, and report how it ended.

The task catches the proc's ``Exception`` and turns it into an outcome; it never lets it into
the run's task group, which would cancel every sibling at once, in no order, and break the
reverse-order stop. A ``BaseException`` (the backend's cancellation, KeyboardInterrupt) is
recorded too and then propagates.

The task runs inside the attempt's cancel scope (`_tasks` spawns it without anyio's task
handle): the shutdown forces a proc by cancelling that scope, and once the task is about to
end it says so (``Attempt.ended``) to whoever waits for it.
``handle.inject_failure()`` cancels it the same way, wherever the proc waits; the run then
ends with the injected error instead of the cancellation (or of whatever the proc returned).
"""

from __future__ import annotations

import contextvars
import math
from typing import TYPE_CHECKING, Protocol

import anyio

from ._errors import StartupError, SupervisorError
from ._events import EventKind
from ._factory import ResourceScope, check_product
from ._lifecycle import EndFacts, ProcState, classify
from ._outcome import ProcStatus
from ._proc import FunctionProc
from ._slot import wake

if TYPE_CHECKING:
    from ._context import RunContext
    from ._events import EventHub
    from ._proc import SupportsRunProc
    from ._slot import Attempt, NestedRun, Slot
    from ._token import CancellationToken

__all__ = (
    "ChainStart",
    "clean_exit_or",
    "emit_ready",
    "open_nested_run",
    "ready_if_current",
    "run_proc_task",
    "settle",
)


class ChainStart(Protocol):
    """A run of procs started as a chain (see ``_startup``): each task admits the next."""

    def enter(self, position: int) -> bool:
        """Called first thing in the task of the proc at *position*; False: do not start it."""
        ...


async def run_proc_task(
    ctx: RunContext,
    slot: Slot,
    attempt: Attempt,
    proc: SupportsRunProc | ResourceScope,
    chain: ChainStart | None,
    position: int,
) -> None:
    """Run the proc in *slot* inside its attempt's scope and report how it ended to *ctx*;
    run it again in this task when the run restarts it here (`Restarter.restart`).

    One coroutine, with the proc's own awaited directly in it: the task's frames are the
    proc's stack with one frame of ours on top, and each idle proc costs one coroutine.
    """
    next_run: Attempt | None = attempt
    again = False
    found = contextvars.copy_context()  # what a restart in place must find again
    while next_run is not None:
        attempt, next_run = next_run, None
        with attempt.scope:
            try:
                if chain is not None and not chain.enter(position):
                    return
                chain = None
                result: object = None
                error: BaseException | None = None
                try:
                    if again:
                        await _begin_again(ctx, slot, attempt)
                    slot.mark_begun(attempt)
                    try:
                        if isinstance(proc, FunctionProc):
                            result = await proc.fn(attempt.token)  # no frame of ours between
                        else:
                            result = await _enter(ctx, slot, attempt, proc)
                    except Exception as exc:  # noqa: BLE001 (a proc's failure is its outcome)
                        error = exc
                except BaseException as exc:
                    if _ended_by_base_exception(ctx, slot, attempt, exc):
                        raise
                    return
                if attempt.injected is not None:  # it caught the cancel and returned
                    result, error = None, attempt.injected
                next_run = ctx.proc_ended(slot, attempt, result, error, cancelled=False, here=found)
            finally:
                attempt.ended = True
                wake(attempt)
        again = True


async def _begin_again(ctx: RunContext, slot: Slot, attempt: Attempt) -> None:
    """Before a restart in this task: let the other tasks run (a crash loop must not starve
    them), then say READY once the proc has begun and yielded, as a start in a new task does
    (`emit_ready` after the supervisor's checkpoint)."""
    await ctx.proc_tasks.checkpoint()
    hub = ctx.hub
    if hub.wants(EventKind.READY) and not hub.ready_goes_unheard(slot.path):
        ctx.proc_tasks.soon(ready_if_current, ctx, slot, attempt)


def ready_if_current(ctx: RunContext, slot: Slot, attempt: Attempt) -> None:
    """`emit_ready` for *attempt*, unless the proc has been started again since."""
    if slot.attempt is attempt:
        emit_ready(ctx, slot)


def emit_ready(ctx: RunContext, slot: Slot) -> None:
    """The READY event of a proc that is running (not one that already ended)."""
    if slot.state is ProcState.RUNNING and ctx.hub.wants(EventKind.READY):
        value = slot.ready_value
        detail = "" if value is None else f"ready value {value!r}"
        ctx.hub.emit(EventKind.READY, slot.path, restarts=slot.restarts, detail=detail)


def _ended_by_base_exception(
    ctx: RunContext, slot: Slot, attempt: Attempt, exc: BaseException
) -> bool:
    """Record the end of a run that raised *exc*; True when it must propagate (a real
    cancellation, which the task's scope or an enclosing one absorbs)."""
    if attempt.injected is not None:  # handle.inject_failure() cancelled it: the cancel
        ctx.proc_ended(slot, attempt, None, attempt.injected, cancelled=False)  # was ours
        return False
    if _really_cancelled(exc, attempt):
        ctx.proc_ended(slot, attempt, None, None, cancelled=True)
        return True
    # KeyboardInterrupt, SystemExit, another BaseException, or a cancellation nobody asked
    # for (a bug in the proc, e.g. a leaked cancel scope): an outcome like any error, kept
    # out of the task, whose escape would cancel every sibling at once and break the
    # reverse-order stop (API.md section 8). The run decides what follows.
    ctx.proc_ended(slot, attempt, None, _as_failure(slot, exc), cancelled=False)
    return False


def _as_failure(slot: Slot, exc: BaseException) -> BaseException:
    """A stray cancellation becomes a `RuntimeError` caused by it: the backend's cancellation
    exception must not travel on as an error object (trio forbids re-raising it elsewhere)
    and cannot sit in an ExceptionGroup. Anything else is kept as it is."""
    if not isinstance(exc, anyio.get_cancelled_exc_class()):
        return exc
    error = RuntimeError(
        f"{slot.path}: raised the backend's cancellation although no stop was requested and "
        "nothing forced it; a cancel scope leaked out of the proc? Catch the cancellation "
        "only inside the scope that was cancelled"
    )
    error.__cause__ = exc
    return error


def _really_cancelled(exc: BaseException, attempt: Attempt) -> bool:
    """Whether *exc* is a real cancellation of this task: our force, or an enclosing scope
    (a parent forcing the whole tree). A cancel scope that is cancelled shows as an
    effective deadline of -inf; a stray cancellation exception does not."""
    if not isinstance(exc, anyio.get_cancelled_exc_class()):
        return False
    return attempt.forced or anyio.current_effective_deadline() == -math.inf


async def _enter(
    ctx: RunContext, slot: Slot, attempt: Attempt, proc: SupportsRunProc | ResourceScope
) -> object:
    token = attempt.token
    if isinstance(proc, ResourceScope):
        return await _run_scoped(ctx, slot, attempt, proc)
    nested = open_nested_run(proc, token, slot.path, ctx)
    if nested is not None:
        return await _run_nested(attempt, nested)
    return await _run_leaf(attempt, proc)


def open_nested_run(
    proc: object, token: CancellationToken, path: str, ctx: RunContext
) -> NestedRun | None:
    """A run of *proc* as a nested supervisor of *ctx*'s run, or None if it is not one.

    Found by its private ``_open_run`` method, so the engine never imports ``_supervisor``.
    """
    open_run = getattr(proc, "_open_run", None)
    if open_run is None:
        return None
    hub: EventHub = ctx.hub
    run: NestedRun = open_run(token, path, hub, ctx.clock)
    return run


async def _run_scoped(
    ctx: RunContext, slot: Slot, attempt: Attempt, scope: ResourceScope
) -> object:
    """Enter the factory's resource scope, run the proc it yields, then close the scope."""
    async with scope.manager as product:
        proc = check_product(slot.path, product, "its factory's context manager yielded")
        nested = open_nested_run(proc, attempt.token, slot.path, ctx)
        if nested is not None:
            return await _run_nested(attempt, nested)
        if slot.spec.wait_ready is None:
            slot.release_gate(attempt)  # gated only in case the scope yielded a supervisor
        return await _run_leaf(attempt, proc)


async def _run_leaf(attempt: Attempt, proc: SupportsRunProc) -> object:
    """Run a proc that is not a nested supervisor. One that runs a tree elsewhere (an
    ``Isolated`` child process) hands that tree's outcomes over through its private
    ``_outcomes_below()``, so the report shows them under its path, as for a nested one."""
    outcomes_below = getattr(proc, "_outcomes_below", None)
    if outcomes_below is None:
        return await proc.run_proc(attempt.token)
    try:
        return await proc.run_proc(attempt.token)
    finally:
        attempt.children = outcomes_below()


async def _run_nested(attempt: Attempt, nested: NestedRun) -> object:
    attempt.nested = nested
    try:
        return await nested.run()
    finally:
        attempt.children = nested.outcomes()


def settle(
    slot: Slot,
    attempt: Attempt,
    result: object,
    error: BaseException | None,
    *,
    cancelled: bool,
    dynamic: bool,
    stopping: bool,
    last_one: bool,
    fatal: bool,
) -> EndFacts:
    """Record how this run ended in *attempt* (ENDED); return every fact `after_end` needs
    (the run's own facts, *dynamic* to *fatal*, are passed in).

    The error gets a note naming the proc's path; a gating proc that raised before it was
    ready, or that start-up gave up on, fails with a `StartupError`.
    """
    # Gating and never called ready(): also when its stop was requested meanwhile.
    before_ready = attempt.gates and not attempt.ready_reached
    stopped_by_us = slot.state is ProcState.STOPPING or slot.state is ProcState.FORCING
    if attempt.abandoned:  # ended at last: it was reported ABANDONED, and that stands
        status, error, stopped_by_us = ProcStatus.ABANDONED, attempt.error, True
    else:
        if attempt.startup_error is not None or (before_ready and error is not None):
            error = _startup_error(slot, attempt, error)
        status = classify(
            failed=error is not None,
            cancelled=cancelled,
            stop_requested=attempt.token.cancelled,
            forced=attempt.forced,
        )
        if error is not None:
            error.add_note(f"super_visor: raised by proc {slot.path}")
    slot.record_end(attempt, status, result, error)
    spec = slot.spec
    return EndFacts(
        status=status,
        stopped_by_us=stopped_by_us,
        before_ready=before_ready,
        startup_failed=attempt.startup_error is not None or (before_ready and error is not None),
        dynamic=dynamic,
        stopping=stopping,
        wants_restart=spec.restart.wants_restart(failed=status is ProcStatus.FAILED),
        significant=spec.significant,
        last_one=last_one,
        fatal=fatal,
        operator_stop=attempt.operator_stop,
        operator_start=attempt.operator_start,
    )


def clean_exit_or(error: BaseException | None) -> BaseException | None:
    """None for ``sys.exit()`` / ``SystemExit(0)`` (a request for a clean stop), else *error*."""
    if isinstance(error, SystemExit) and error.code in (0, None):
        return None
    return error


def _startup_error(
    slot: Slot, attempt: Attempt, error: BaseException | None
) -> BaseException | None:
    """The error of a run that start-up gave up on, or that raised before it was ready: a
    `StartupError` (the original error is the cause)."""
    if attempt.startup_error is not None:
        return attempt.startup_error
    if not isinstance(error, SupervisorError):
        startup_error = StartupError(slot.path, "raised before it was ready")
        startup_error.__cause__ = error
        return startup_error
    return error
