"""Start-up: procs start in declared order, each once the previous has begun or is ready.

A proc that does not gate counts as ready once its run_proc has begun (run up to its first
await); a gating proc (``wait_ready``) once it called ``token.ready()``, waited for at most its
``ready_timeout``, after which start-up fails with `StartupError`. A stop request cuts every
wait short, and the procs not reached stay PENDING (their outcome: NOT_STARTED).

Runs of consecutive procs that neither gate nor come from a factory start as a chain: each
proc's task spawns the next one's just before it enters run_proc, and the next task runs only
once this one has yielded, i.e. once its run_proc has begun. Same order and the same "begun
before the next starts" as one at a time, but without a trip through the supervisor's task
per proc, which is most of a large tree's start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import anyio

from ._errors import StartupError
from ._events import EventKind
from ._factory import ResourceScope, call_factory
from ._lifecycle import ProcState
from ._proc_task import emit_ready, ready_if_current, run_proc_task
from ._slot import Attempt, waiter_of
from ._token import CancellationToken
from ._validate import is_seconds

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._context import RunContext
    from ._proc import SupportsRunProc
    from ._slot import Slot

__all__ = ("restart_in_place", "start_group", "start_slot")


async def start_group(ctx: RunContext, slots: Sequence[Slot]) -> None:
    """Start *slots* in order, gating as declared; a stop request cuts it short."""
    index = 0
    while index < len(slots) and not ctx.stopping:
        end = index
        while end < len(slots) and _chainable(slots[end]):
            end += 1
        if end - index > 1:
            await _Chain(ctx, slots[index:end]).run()
            index = end
        else:
            await start_slot(ctx, slots[index])
            index += 1


async def start_slot(ctx: RunContext, slot: Slot, *, by_operator: bool = False) -> None:
    """Start one proc and wait until it has begun (or, when it gates, is ready).

    *by_operator*: ``handle.start()`` asked for it, so a failure to start is the
    operator's to hear about (see ``_operator``), never the supervisor's start-up failure.
    """
    proc = _make_proc(ctx, slot, by_operator=by_operator)
    if proc is None:
        return
    attempt = _new_attempt(ctx, slot, proc)
    attempt.operator_start = by_operator
    _count_started(ctx, slot, attempt)
    attempt.coro = ctx.proc_tasks.spawn(
        attempt.scope, run_proc_task, ctx, slot, attempt, proc, None, 0
    )
    if not attempt.gates:
        await anyio.lowlevel.checkpoint()
        if not attempt.began:
            await _wait_on(attempt)
        ready_if_current(ctx, slot, attempt)  # it may have been restarted in place since
        return
    await _wait_for_gate(ctx, slot, attempt)


async def _wait_for_gate(ctx: RunContext, slot: Slot, attempt: Attempt) -> None:
    timeout = slot.spec.ready_timeout
    with ctx.cut_short_on_stop(timeout):
        if slot.state is ProcState.STARTING:
            await _wait_on(attempt)
    if slot.state is ProcState.STARTING and not ctx.stopping:
        problem = f"not ready within {timeout:g}s (ready_timeout)"
        attempt.startup_error = StartupError(slot.path, problem)
        if not (ctx.is_dynamic(slot) or attempt.operator_start):
            ctx.request_stop(f"proc '{slot.path}' {problem}")
    else:
        emit_ready(ctx, slot)


@final
class _Chain:
    """Consecutive procs that do not gate, started by each other's tasks (module doc)."""

    __slots__ = ("_ctx", "_done", "_slots")

    def __init__(self, ctx: RunContext, slots: Sequence[Slot]) -> None:
        self._ctx = ctx
        self._slots = slots
        self._done = anyio.Event()

    async def run(self) -> None:
        self._spawn(0)
        await self._done.wait()
        emit_ready(self._ctx, self._slots[-1])  # the last one has begun and yielded too

    def _spawn(self, position: int) -> None:
        slot = self._slots[position]
        proc = slot.spec.proc
        assert proc is not None, "a chained proc never comes from a factory"
        attempt = _new_attempt(self._ctx, slot, proc)
        attempt.coro = self._ctx.proc_tasks.spawn(
            attempt.scope, run_proc_task, self._ctx, slot, attempt, proc, self, position
        )

    def enter(self, position: int) -> bool:
        """In a chained proc's task: spawn the next one (or release the supervisor) and
        count this one as started; False when a stop came first: it is not started at all."""
        ctx = self._ctx
        if position:
            # The previous proc has begun and yielded by now: READY, unless it already ended.
            emit_ready(ctx, self._slots[position - 1])
        if ctx.stopping:
            self._done.set()
            return False
        if position + 1 < len(self._slots):
            self._spawn(position + 1)
        else:
            self._done.set()
        slot = self._slots[position]
        attempt = slot.attempt
        assert attempt is not None, "spawned with its attempt"
        _count_started(ctx, slot, attempt)
        return True


def restart_in_place(ctx: RunContext, slot: Slot, now: float) -> Attempt:
    """A new start of *slot* for the task its last run ended in (`Restarter.restart`),
    counted as started at *now*; that task enters it after a checkpoint."""
    last = slot.attempt
    assert last is not None, f"{slot.path}: restarted after a run"
    proc = slot.spec.proc
    assert proc is not None, "a proc restarted in place never comes from a factory"
    slot.prepare_restart()
    attempt = _new_attempt(ctx, slot, proc)
    attempt.coro = last.coro
    ctx.proc_tasks.rescope(attempt.scope)
    _count_started(ctx, slot, attempt, now)
    return attempt


def _new_attempt(ctx: RunContext, slot: Slot, proc: SupportsRunProc | ResourceScope) -> Attempt:
    token = CancellationToken()
    token._on_ready = slot.mark_ready
    token._grace = slot.spec.grace
    token._slot = slot
    token._run = ctx
    wait_ready = slot.spec.wait_ready
    gates = _gates_by_product(proc) if wait_ready is None else wait_ready
    scope = ctx.proc_tasks.new_scope()
    attempt = Attempt(token, scope, gates=gates, force_reserve=_reserve(slot, proc))
    slot.attempt = attempt
    return attempt


def _reserve(slot: Slot, proc: SupportsRunProc | ResourceScope) -> float:
    """The proc's ``force_reserve``: its spec's, or a factory product's own attribute (an
    adapter such as ``Command`` made at each start asks for its reserve like a static one)."""
    spec = slot.spec
    if spec.factory is None:
        return spec.force_reserve
    reserve = getattr(proc, "force_reserve", None)
    return float(reserve) if is_seconds(reserve) else spec.force_reserve


def _count_started(ctx: RunContext, slot: Slot, attempt: Attempt, now: float | None = None) -> None:
    """Count the proc as started (STARTING) at *now* (the run's clock, read if None): from
    here on it is stopped exactly once."""
    slot.move(ProcState.STARTING)
    attempt.started_at = ctx.clock.now() if now is None else now
    ctx.live += 1
    if ctx.hub.wants(EventKind.STARTING):
        ctx.hub.emit(EventKind.STARTING, slot.path, restarts=slot.restarts)


def _make_proc(
    ctx: RunContext, slot: Slot, *, by_operator: bool
) -> SupportsRunProc | ResourceScope | None:
    """The proc to start; a factory's product is made now. None when the factory failed."""
    spec = slot.spec
    if spec.factory is None:
        assert spec.proc is not None, "a spec has a proc or a factory"
        return spec.proc
    try:
        return call_factory(slot.path, spec.factory)
    except Exception as exc:  # noqa: BLE001 (the user's factory: its error is the outcome)
        _factory_failed(ctx, slot, exc, by_operator=by_operator)
        return None


def _factory_failed(ctx: RunContext, slot: Slot, error: Exception, *, by_operator: bool) -> None:
    """A start that failed before any task: its error is a start-up failure, never a restart."""
    attempt = Attempt(CancellationToken(), ctx.proc_tasks.new_scope(), gates=False)
    slot.attempt = attempt
    attempt.startup_error = error
    attempt.operator_start = by_operator
    slot.move(ProcState.STARTING)
    ctx.live += 1
    ctx.proc_ended(slot, attempt, None, None, cancelled=False)


def _chainable(slot: Slot) -> bool:
    """Whether a proc can start in a chain: it does not gate and needs no factory call."""
    spec = slot.spec
    return spec.wait_ready is False and spec.factory is None


def _gates_by_product(proc: object) -> bool:
    """Whether a factory's product gates: a nested supervisor does, and so does a resource
    scope until it shows what it yields (``_proc_task`` releases the gate otherwise)."""
    return isinstance(proc, ResourceScope) or hasattr(proc, "_open_run")


async def _wait_on(attempt: Attempt) -> None:
    await waiter_of(attempt).wait()
