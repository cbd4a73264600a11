"""Lifecycle events: what happened to which proc, delivered to subscribers and to logging.

An `Event` is built only when someone will see it (a callback, an ``events()`` stream, or a
logger enabled for its level), so a large tree with nobody watching pays one check per
transition. Delivery never blocks the supervisor and never breaks it:

- a callback that raises is logged with its traceback and the tree carries on;
- an ``events()`` stream is bounded; when its reader falls behind, the *newest* events are
  dropped (the reader keeps a consistent prefix) and counted in ``EventStream.dropped``.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, final

from ._event_stream import EventStream
from ._eventlog import (
    event_message,
    get_logger,
    log_fields,
    log_record,
    logger_name,
    record_fields,
    traceback_of,
)
from ._outcome import ProcStatus
from ._rationing import LineBudget

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Sequence

__all__ = (
    "Event",
    "EventHub",
    "EventKind",
    "EventStream",
    "get_logger",
    "log_fields",
    "narrate_end",
    "narrate_restart",
    "record_fields",
)

# The stdlib logging levels, spelled out so that importing this module does not import
# logging (with traceback, threading and textwrap, a third of ``import super_visor``).
DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40

# How a record about a proc looks (the sv_* fields, its logger) is ``_eventlog``'s; its
# names used across the package (get_logger, record_fields, log_fields) are re-exported
# here, where the modules that emit events already import from.


class EventKind(enum.Enum):
    """Which lifecycle transition an `Event` reports.

    .. versionadded:: 0.1
    """

    #: A proc's task was spawned (start-up or restart).
    STARTING = "starting"
    #: A proc is ready (it called ``token.ready()``, or began when it does not gate).
    READY = "ready"
    #: Its token was cancelled by its supervisor; its grace runs.
    STOPPING = "stopping"
    #: It returned after its token was cancelled, within its grace.
    STOPPED = "stopped"
    #: It returned on its own.
    COMPLETED = "completed"
    #: It raised.
    FAILED = "failed"
    #: Its grace ran out and it was force-cancelled.
    FORCED = "forced"
    #: It survived force-cancellation and is still running (repeated every few seconds).
    STUCK = "stuck"
    #: It survived its force-cancel for ``abandon_after`` seconds: the shutdown moves on
    #: without it (its outcome: ABANDONED, a failure). ``detail`` holds its stack.
    ABANDONED = "abandoned"
    #: It ended and will be started again (after its backoff, if any).
    RESTARTING = "restarting"
    #: Its supervisor exceeded its restart intensity and gives up.
    RESTART_LIMIT = "restart_limit"
    #: The root received SIGINT/SIGTERM.
    SIGNAL_RECEIVED = "signal_received"
    #: A supervisor began its shutdown (``detail`` says why).
    SHUTDOWN_BEGUN = "shutdown_begun"
    #: A supervisor finished its shutdown: all its procs have ended.
    SHUTDOWN_FINISHED = "shutdown_finished"
    #: An operator acted on a proc (``handle.stop()``, ``start()``, ``restart()``,
    #: ``abort()``, ``inject_failure()``); ``detail`` says what and who asked ("stop
    #: requested by API", "... by socket").
    CONTROL = "control"


# Keyed by member name: a str hash is cached, while Enum.__hash__ runs Python code, and this
# lookup happens on every transition of every proc.
_LEVELS = {
    kind._name_: level
    for kind, level in {
        EventKind.STARTING: DEBUG,
        EventKind.READY: INFO,
        EventKind.STOPPING: DEBUG,
        EventKind.STOPPED: INFO,
        EventKind.COMPLETED: INFO,
        EventKind.FAILED: ERROR,
        EventKind.FORCED: WARNING,
        EventKind.STUCK: WARNING,
        EventKind.ABANDONED: ERROR,
        EventKind.RESTARTING: WARNING,
        EventKind.RESTART_LIMIT: ERROR,
        EventKind.SIGNAL_RECEIVED: INFO,  # a normal stop; a forcing one is WARNING
        EventKind.SHUTDOWN_BEGUN: INFO,
        EventKind.SHUTDOWN_FINISHED: INFO,
        EventKind.CONTROL: INFO,
    }.items()
}


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One lifecycle transition.

    ``path`` is the proc's path (a supervisor's own path for shutdown and signal events);
    ``time`` is wall-clock seconds (``time.time()``); ``restarts`` is the proc's restart
    count so far; ``detail`` is a short human text (a reason, a signal name, a stack).

    .. versionadded:: 0.1
    """

    kind: EventKind
    path: str
    time: float
    error: BaseException | None = None
    restarts: int = 0
    detail: str = ""
    #: The level where the emitter knows better than the kind (a forcing signal: WARNING);
    #: set by `EventHub.emit`, not a constructor argument.
    _level: int | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def level(self) -> int:
        """The `logging` level this event is logged at (a restart after a crash: ERROR; a
        stop signal: INFO for the first request, WARNING for the one that forces)."""
        if self._level is not None:
            return self._level
        return event_level(self.kind, self.error)


@final
class EventHub:
    """Delivers the events of one tree: callbacks, streams and logging."""

    __slots__ = ("_callbacks", "_lines", "_proc_loggers", "_streams", "logger")

    def __init__(self, callbacks: Sequence[Callable[[Event], object]] = ()) -> None:
        self._callbacks = tuple(callbacks)
        self._streams: set[EventStream] = set()
        #: The ``super_visor`` logger; events go to its children, one per proc path.
        self.logger = get_logger()
        # Child loggers by proc path: logging.getLogger takes a module lock on every call,
        # and a restart storm logs one line per restart.
        self._proc_loggers: dict[str, logging.Logger] = {}
        #: Shared by the hubs of one tree: the rationing is per proc and per tree.
        self._lines = LineBudget()

    def with_callbacks(self, callbacks: Sequence[Callable[[Event], object]]) -> EventHub:
        """A hub for a nested supervisor: the parent's subscribers plus its own callbacks."""
        if not callbacks:
            return self
        hub = EventHub((*self._callbacks, *callbacks))
        hub._streams = self._streams
        hub._proc_loggers = self._proc_loggers  # one set: a stream opened at the root sees it all
        hub._lines = self._lines
        return hub

    def open_stream(self, buffer: int) -> EventStream:
        stream = EventStream(self, buffer)
        self._streams.add(stream)
        return stream

    def close_streams(self) -> None:
        """End every reader's iteration (the tree has stopped)."""
        for stream in list(self._streams):
            stream._send.close()
        self._streams.clear()

    def wants(self, kind: EventKind, level: int | None = None) -> bool:
        """Whether an event of *kind* would reach anyone; cheap, checked before building it.

        *level* is the event's own level where it differs from its kind's (`event_level`).
        """
        if self._callbacks or self._streams:
            return True
        return self.logger.isEnabledFor(_LEVELS[kind._name_] if level is None else level)

    def emit(
        self,
        kind: EventKind,
        path: str,
        *,
        error: BaseException | None = None,
        restarts: int = 0,
        detail: str = "",
        level: int | None = None,
    ) -> None:
        """Deliver one event; *level* overrides its kind's logging level (`Event.level`)."""
        if not self.wants(kind, level):
            return
        event = Event(
            kind=kind,
            path=path,
            time=time.time(),
            error=error,
            restarts=restarts,
            detail=detail,
        )
        if level is not None:
            object.__setattr__(event, "_level", level)  # frozen: set once, before anyone sees it
        self._log(event)
        for callback in self._callbacks:
            try:
                callback(event)
            except Exception:
                self.logger.exception(
                    "an on_event callback raised on %s; the tree goes on",
                    event,
                    extra=log_fields(event),
                )
        for stream in list(self._streams):
            stream._offer(event)

    def _log(self, event: Event) -> None:
        """Log *event* to ``super_visor.<path with dots>`` (a child logger per proc path).

        A crash is logged with its traceback. Storms are rationed (`LineBudget`): at most
        one RESTARTING line per proc per second, and while the whole tree stops, its first
        STOPPED lines only; what was left out is counted in a later line.
        """
        kind, path, level = event.kind, event.path, event.level
        tree_note = self._lines.follow_tree_stop(kind._name_, path)
        if kind is EventKind.SHUTDOWN_FINISHED and "/" not in path:
            self._log_unsaid()
        if not self.logger.isEnabledFor(level):
            return
        note = tree_note or self._lines.ration(event)
        if note is not None:
            self._write(event, event_message(event, note))

    def _write(self, event: Event, message: str) -> None:
        path = event.path
        proc_logger = self._proc_loggers.get(path)
        if proc_logger is None:
            proc_logger = self._proc_loggers[path] = get_logger(logger_name(path))
        log_record(proc_logger, event.level, event, message, traceback_of(event))

    def _log_unsaid(self) -> None:
        """Before the root's last line: each proc whose last RESTARTING lines were left out
        and never followed by a line (a stop came before its restart), with the last one's
        traceback: a final failure is never silent in the log."""
        for path, count, error, restarts in self._lines.unsaid():
            event = Event(
                kind=EventKind.RESTARTING,
                path=path,
                time=time.time(),
                error=error,
                restarts=restarts,
                detail="",
            )
            if self.logger.isEnabledFor(event.level):
                last = f"failed ({_safe_repr(error)})" if error is not None else "completed"
                self._write(event, f"{count} restarts of it not logged; the last after it {last}")

    def ready_goes_unheard(self, path: str) -> bool:
        """Whether the READY event of a restarted run of *path* would reach nobody: no
        callback or stream, and its RESTARTING line was left out (so is this one)."""
        return not (self._callbacks or self._streams) and self._lines.restart_left_out(path)

    def stop_goes_unheard(self) -> bool:
        """Whether a STOPPED event would reach nobody now: no callback or stream, and the
        whole tree is stopping with its STOPPED lines used up (then it is counted here)."""
        lines = self._lines
        if self._callbacks or self._streams or not lines.stopped_lines_used_up():
            return False
        lines.stopped_line_due()  # counts it
        return True

    def restart_goes_unheard(self, path: str, error: BaseException | None, restarts: int) -> bool:
        """Whether a RESTARTING event of *path* would reach nobody now: no callback or
        stream, and its log line is not due (then it is counted as left out here)."""
        if self._callbacks or self._streams or self._lines.restart_line_due(path):
            return False
        self._lines.leave_out_restart(path, error, restarts)
        return True


def event_level(kind: EventKind, error: BaseException | None) -> int:
    """The logging level of an event: its kind's, except that a restart after a crash is a
    failure (ERROR, with a traceback), while a restart after a clean end is a WARNING."""
    if kind is EventKind.RESTARTING and error is not None:
        return ERROR
    return _LEVELS[kind._name_]


_END_EVENTS = {
    ProcStatus.COMPLETED: EventKind.COMPLETED,
    ProcStatus.STOPPED: EventKind.STOPPED,
    ProcStatus.FAILED: EventKind.FAILED,
    ProcStatus.FORCED: EventKind.FORCED,
}


def narrate_end(
    hub: EventHub,
    path: str,
    status: ProcStatus | None,
    error: BaseException | None,
    restarts: int,
) -> None:
    """The event saying how a proc's run ended (COMPLETED, STOPPED, FAILED or FORCED)."""
    assert status is not None, f"{path}: narrated before its run ended"
    kind = _END_EVENTS.get(status)
    if kind is None:
        return  # ABANDONED: reported when it was abandoned, not again when its task ends
    if kind is EventKind.STOPPED and hub.stop_goes_unheard():
        return
    if hub.wants(kind):
        hub.emit(kind, path, error=error, restarts=restarts)


def narrate_restart(
    hub: EventHub,
    path: str,
    status: ProcStatus | None,
    error: BaseException | None,
    restarts: int,
) -> None:
    """The RESTARTING event of a proc that ended and will be started again.

    Every restart is an event for callbacks and ``events()`` readers. The log gets at most
    one RESTARTING line per proc per second, at ERROR with the traceback after a crash (see
    `EventHub._log`); the errors are also kept in the outcome's history for the report.
    """
    level = event_level(EventKind.RESTARTING, error)
    if not hub.wants(EventKind.RESTARTING, level) or hub.restart_goes_unheard(
        path, error, restarts
    ):
        return  # built for nobody: not even its repr() is made
    what = f"failed ({_safe_repr(error)})" if status is ProcStatus.FAILED else "completed"
    hub.emit(EventKind.RESTARTING, path, error=error, restarts=restarts, detail=what)


def _safe_repr(error: BaseException | None) -> str:
    """``repr(error)``, or its type's name when its ``repr`` itself raises (a log line about
    a failure must never fail; `describe_error` is the ``str()`` counterpart)."""
    try:
        return repr(error)
    except Exception:  # noqa: BLE001 (the error is the user's; its repr is untrusted)
        return f"<{type(error).__name__} (its repr raised)>"
