"""Render the stack a coroutine is suspended in, portably across asyncio and trio.

Used to name what a stuck proc is waiting on. We walk the ``cr_await`` chain of the proc's own
coroutine instead of asking the backend for its task, so no backend is ever imported.
"""

from __future__ import annotations

import types

__all__ = ("format_coroutine_stack",)


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
