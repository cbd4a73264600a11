"""The lifecycle of a proc and of a supervisor run, as pure state machines; no I/O.

One truth per proc: its `ProcState` changes only through `Slot.move`, which checks every move
against the table below, so an illegal move (always a bug of ours) fails loudly instead of
corrupting the report. What happens *after* a proc's run ends (restart it, shut the
supervisor down, forget it, nothing) is decided by `after_end`, a pure function of the facts,
so the rules are tested on their own, exhaustively, without running anything.

A proc::

    PENDING --> STARTING --> RUNNING --> STOPPING --> FORCING --> ENDED --> RESTARTING
                    |  \\________|___________|____________________/^  ^         |
                    |                                                |  \\________/
                    +-- (gating: stays STARTING until token.ready()) |   STARTING again

A supervisor run (`RunPhase`): STARTING -> RUNNING -> STOPPING -> STOPPED, or STARTING ->
STOPPING when the stop comes first.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from ._outcome import ProcStatus

__all__ = (
    "LIVE_STATES",
    "SUCCESSORS",
    "Action",
    "EndFacts",
    "ProcState",
    "RunPhase",
    "after_end",
    "classify",
    "end_is_reported",
    "illegal_move",
    "is_legal",
)


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
    #: Its grace ran out (or a second signal came) and its task was force-cancelled.
    FORCING = "forcing"
    #: Waiting (queued, or in its backoff) to be started again after it ended.
    RESTARTING = "restarting"
    #: It has an outcome; final unless a restart policy moves it to RESTARTING.
    ENDED = "ended"


S = ProcState
#: The legal moves: each state's successors, keyed by the state's name. Tuples, because ``in``
#: on a tuple compares enum members by identity in C, while a set would call Enum.__hash__
#: (Python code) on every move of every proc.
SUCCESSORS: dict[str, tuple[ProcState, ...]] = {
    "PENDING": (S.STARTING, S.ENDED),
    "STARTING": (S.RUNNING, S.STOPPING, S.FORCING, S.ENDED),
    "RUNNING": (S.STOPPING, S.FORCING, S.ENDED),
    "STOPPING": (S.FORCING, S.ENDED),
    "FORCING": (S.ENDED,),
    "RESTARTING": (S.STARTING, S.ENDED),
    "ENDED": (S.RESTARTING, S.STARTING),
}

#: The states in which a run of the proc may still be executing (its task not finished).
LIVE_STATES = (S.STARTING, S.RUNNING, S.STOPPING, S.FORCING)


def is_legal(old: ProcState, new: ProcState) -> bool:
    """Whether the lifecycle allows moving from *old* to *new*."""
    return new in SUCCESSORS[old._name_]


def illegal_move(path: str, old: ProcState, new: ProcState) -> AssertionError:
    """The error for a move the lifecycle does not allow (always a bug of ours)."""
    msg = f"{path}: illegal lifecycle move {old.name} -> {new.name} (a super_visor bug)"
    return AssertionError(msg)


class RunPhase(enum.Enum):
    """Where one supervisor run is; error messages are chosen by it."""

    #: Starting its procs in declared order.
    STARTING = "starting"
    #: Every proc was started and is ready; restarts are carried out.
    RUNNING = "running"
    #: A stop was requested; the procs are being stopped in reverse order.
    STOPPING = "stopping"
    #: Every proc has ended; the report exists.
    STOPPED = "stopped"


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


class Action(enum.Enum):
    """What the supervisor does after a proc's run ended (`after_end`)."""

    #: Nothing more: the supervisor stopped it, or is shutting down anyway.
    NOTHING = "nothing"
    #: Queue a restart (its policy wants one).
    RESTART = "restart"
    #: A gating proc failed before it was ready: start-up fails, the supervisor stops.
    FAIL_STARTUP = "fail_startup"
    #: A dynamic child failed to start: ``start_child()`` raises it to its caller.
    HAND_TO_CALLER = "hand_to_caller"
    #: A significant proc ended for good, or a proc raised a BaseException (KeyboardInterrupt,
    #: SystemExit, ...): the supervisor shuts down.
    SHUT_DOWN = "shut_down"
    #: A dynamic child ended cleanly: it leaves the supervisor, nothing to report.
    FORGET = "forget"
    #: It was the last proc running and nothing will restart: the supervisor stops.
    STOP_EMPTY = "stop_empty"
    #: An operator stopped it (``handle.stop()``, ``abort()``, ``restart()``): it stays in
    #: the tree, stopped, until started again, and counts as neither ended nor running.
    PARK = "park"


class EndFacts(NamedTuple):
    """Everything `after_end` needs to know about one ended run and its supervisor.

    A NamedTuple, not a frozen dataclass: one is built at every end of every proc, and a
    frozen dataclass's ``__init__`` costs a Python-level setattr per field.
    """

    #: The run's status (`classify`).
    status: ProcStatus
    #: The supervisor was stopping it (STOPPING or FORCING) when it ended.
    stopped_by_us: bool
    #: It gates start-up and never became ready.
    before_ready: bool
    #: Start-up gave up on it (ready_timeout), or it raised before it was ready.
    startup_failed: bool
    #: It was started with ``start_child()``.
    dynamic: bool
    #: Its supervisor is shutting down.
    stopping: bool
    #: Its restart policy wants a restart after this end.
    wants_restart: bool
    significant: bool
    #: No other proc of the supervisor runs, starts or waits for a restart.
    last_one: bool
    #: It raised a BaseException that is not a cancellation (``sys.exit()`` included): a
    #: request to end the whole application, never restarted.
    fatal: bool = False
    #: An operator asked for this stop (``handle.stop()``, ``abort()``, ``restart()``).
    operator_stop: bool = False
    #: An operator started this run (``handle.start()``, ``restart()``): a failure to start
    #: is raised to the operator, never a start-up failure of the supervisor.
    operator_start: bool = False


def after_end(facts: EndFacts) -> Action:
    """Decide what follows the end of one proc's run (OTP's handling of an exit signal)."""
    if facts.fatal:
        return Action.NOTHING if facts.stopping else Action.SHUT_DOWN
    if facts.startup_failed:
        by_caller = facts.dynamic or facts.operator_start
        return Action.HAND_TO_CALLER if by_caller else Action.FAIL_STARTUP
    if facts.stopping:
        return Action.NOTHING
    if facts.operator_stop:
        return Action.PARK
    if facts.stopped_by_us:
        return Action.NOTHING
    if facts.wants_restart:
        return Action.RESTART
    if facts.significant:
        return Action.SHUT_DOWN
    if facts.dynamic and facts.status is not ProcStatus.FAILED:
        return Action.FORGET
    return Action.STOP_EMPTY if facts.last_one else Action.NOTHING


def end_is_reported(action: Action) -> bool:
    """Whether the proc's end event (STOPPED, FAILED, ...) is emitted for *action*.

    A restarted proc is reported by its RESTARTING event instead, and a dynamic child that
    failed to start by the error ``start_child()`` raises.
    """
    return action is not Action.RESTART and action is not Action.HAND_TO_CALLER
