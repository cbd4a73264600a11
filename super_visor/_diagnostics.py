"""What a supervisor says about procs that do not stop: stacks, stuck reports, tree dumps.

Stacks are read by walking the ``cr_await`` chain of the proc's own coroutine instead of
asking the backend for its task, so no backend is ever imported. ``traceback`` is imported
only when a stack is shown: a healthy run never pays for it.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING

from ._events import EventKind

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._events import EventHub
    from ._slot import Slot

__all__ = ("format_coroutine_stack", "format_tree_dump", "report_stuck", "slot_stack")


def format_coroutine_stack(coro: object, limit: int = 30) -> str:
    """The frames of *coro* and of everything it awaits, innermost last."""
    frames: list[types.FrameType] = []
    current: object = coro
    while current is not None and len(frames) < limit:
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if isinstance(frame, types.FrameType):
            frames.append(frame)
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
    import traceback  # lazy: only a stuck proc pays for it, not the import

    if not frames:
        return "  (no Python frames: the proc is not suspended in a coroutine)"
    summary = traceback.StackSummary.extract((f, f.f_lineno) for f in frames)
    return "".join(summary.format()).rstrip()


def slot_stack(slot: Slot) -> str:
    """The stack the task of *slot*'s current run is suspended in."""
    attempt = slot.attempt
    return format_coroutine_stack(None if attempt is None else attempt.coro)


def report_stuck(hub: EventHub, slot: Slot) -> None:
    """Name a proc that survived force-cancellation, with the stack it is stuck in."""
    hub.emit(
        EventKind.STUCK,
        slot.path,
        restarts=slot.restarts,
        detail="still running after it was force-cancelled (a shielded scope or a blocking "
        f"call?); shutdown waits for it. Its stack:\n{slot_stack(slot)}",
    )


def format_tree_dump(title: str, root: str, slots: Iterable[Slot], live: Iterable[Slot]) -> str:
    """The root's procs in declared order, each followed by the live procs nested in it.

    *slots* are the root's own procs; *live* is ``run.live_slots()`` (depth-first), which is
    how the procs of nested supervisors are reached. Every proc that is not a supervisor shows
    the stack its task is suspended in: what it is waiting on right now.
    """
    lines = [title]
    pending = list(live)
    position = 0
    for slot in slots:
        lines.extend(_dump_slot(slot, root))
        if position < len(pending) and pending[position] is slot:
            position += 1
            while position < len(pending) and pending[position].path.startswith(f"{slot.path}/"):
                lines.extend(_dump_slot(pending[position], root))
                position += 1
    return "\n".join(lines)


def _dump_slot(slot: Slot, root: str) -> list[str]:
    indent = "  " * slot.path[len(root) :].count("/")
    parts = [f"{indent}{slot.path}: {slot.state.name}"]
    status = slot.status
    if not slot.live and status is not None:
        parts[0] += f" ({status.value})"
    if slot.restarts:
        parts.append(f"restarts {slot.restarts}")
    lines = [", ".join(parts)]
    if slot.live and slot.spec.nested is None:
        lines.extend(f"{indent}    {line}" for line in slot_stack(slot).splitlines())
    return lines
