"""One proc's lifecycle as a small state machine; pure, no I/O.

The runtime (``_slot.py``) moves a proc through these states; a restart policy drives the
ENDED -> RESTARTING -> STARTING loop. Keeping the legal moves in one table makes an illegal
one (a bug of ours) fail loudly instead of corrupting the report.
"""

from __future__ import annotations

import enum

from ._outcome import ProcStatus

__all__ = ("ProcState", "check_transition", "classify")


class ProcState(enum.Enum):
    """Where one proc is in its life."""

    #: Declared, not started yet.
    PENDING = "pending"
    #: Its task was spawned; it has not said it is ready (gating procs only stay here).
    STARTING = "starting"
    #: Running and ready (a proc that does not gate is ready once it has begun).
    RUNNING = "running"
    #: Its token was cancelled by the supervisor; its grace is running.
    STOPPING = "stopping"
    #: Its grace ran out and its task was force-cancelled; waiting for it to unwind.
    FORCING = "forcing"
    #: Waiting (backoff) to be started again after it ended.
    RESTARTING = "restarting"
    #: It has an outcome; final unless a restart policy moves it to RESTARTING.
    ENDED = "ended"


S = ProcState
# Successors per state, as tuples: ``in`` on a tuple compares enum members by identity in C,
# while a set would call Enum.__hash__ (Python code) on every move of every proc.
_SUCCESSORS: dict[str, tuple[ProcState, ...]] = {
    "PENDING": (S.STARTING, S.ENDED),
    "STARTING": (S.RUNNING, S.STOPPING, S.FORCING, S.ENDED),
    "RUNNING": (S.STOPPING, S.FORCING, S.ENDED),
    "STOPPING": (S.FORCING, S.ENDED),
    "FORCING": (S.ENDED,),
    "RESTARTING": (S.STARTING, S.ENDED),
    "ENDED": (S.RESTARTING, S.STARTING),
}


def check_transition(path: str, old: ProcState, new: ProcState) -> None:
    """Raise AssertionError for a move the lifecycle does not allow (always our bug)."""
    if new not in _SUCCESSORS[old._name_]:
        msg = f"{path}: illegal lifecycle move {old.name} -> {new.name} (a super_visor bug)"
        raise AssertionError(msg)


def classify(*, failed: bool, cancelled: bool, stop_requested: bool, forced: bool) -> ProcStatus:
    """The status of one run from how it ended.

    *failed*: it raised an exception. *cancelled*: the backend cancelled it (our force, or an
    enclosing scope). *stop_requested*: its token was cancelled. *forced*: its grace ran out.
    A failure wins over everything (an error raised while being forced is still an error);
    a proc that returned only after its grace ran out counts as forced.
    """
    if failed:
        return ProcStatus.FAILED
    if cancelled or forced:
        return ProcStatus.FORCED
    return ProcStatus.STOPPED if stop_requested else ProcStatus.COMPLETED
