"""From events to log records: the ``sv_*`` fields, the per-proc loggers, the message.

`EventHub` (``_events``) decides *whether* an event is logged and at which level; this module
says *how* a record about a proc looks, so the adapters' own records (`record_fields`) and the
events' lines (`log_fields`) carry the same structured fields. Nothing here knows the event
kinds as objects: they are read by name (``kind._name_``), so this module needs no runtime
import of ``_events`` and ``_events`` can import it (no cycle).

Importing it does not import `logging`: `get_logger` does, on first use (with traceback,
threading and textwrap, logging is a third of ``import super_visor``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import SupervisorError

if TYPE_CHECKING:
    import logging

    from ._events import Event, EventKind

__all__ = (
    "LOGGER_DEPTH",
    "event_message",
    "get_logger",
    "log_fields",
    "log_record",
    "logger_name",
    "own_traceback",
    "record_fields",
    "traceback_of",
)

#: ``logging.ERROR``, without importing logging.
_ERROR = 40

#: The most path segments a logger name has (see `logger_name`); configuring deeper procs'
#: loggers one by one is not a real need.
LOGGER_DEPTH = 32


def get_logger(name: str = "super_visor") -> logging.Logger:
    """The ``super_visor`` logger (or a child); logging is imported on first use."""
    import logging  # lazy, see the module docstring

    return logging.getLogger(name)


def log_record(
    logger: logging.Logger,
    level: int,
    event: Event,
    message: str,
    error: BaseException | None,
) -> None:
    """What ``logger.log(level, ..., extra=log_fields(event))`` does, minus its search of
    the stack for the caller (which would always be `EventHub._log`): the ``sv_*`` fields
    cost less than the search they replace, so structured records keep the hot path as
    fast as before. Filters, handlers and a custom record factory apply as usual."""
    exc_info = None if error is None else (type(error), error, error.__traceback__)
    record = logger.makeRecord(
        logger.name, level, __file__, 0, "%s: %s", (event.path, message), exc_info, "_log"
    )
    record.__dict__.update(log_fields(event))
    logger.handle(record)


#: Kinds whose records are about a supervisor as a whole: they carry no restart count.
_SUPERVISOR_KINDS = frozenset(
    {"RESTART_LIMIT", "SIGNAL_RECEIVED", "SHUTDOWN_BEGUN", "SHUTDOWN_FINISHED"}
)
#: The ``sv_status`` of the records that end a run (a `ProcStatus` value).
_STATUS_OF = {
    "COMPLETED": "completed",
    "STOPPED": "stopped",
    "FAILED": "failed",
    "FORCED": "forced",
    "ABANDONED": "abandoned",
}


def log_fields(event: Event) -> dict[str, object]:
    """The ``extra`` of *event*'s log record: ``sv_path``, ``sv_event`` and, where they
    apply, ``sv_restarts`` (every record about one proc) and ``sv_status`` (how a run
    ended: on the end records and on RESTARTING, failed or completed).

    Structured, so a JSON formatter or a log pipeline filters on them instead of parsing
    the message. Built only for a record that is logged (`EventHub._log` checks first).
    """
    name = event.kind._name_
    fields: dict[str, object] = {"sv_path": event.path, "sv_event": event.kind.value}
    if name not in _SUPERVISOR_KINDS and "/" in event.path:  # the root's path has no "/"
        fields["sv_restarts"] = event.restarts
    status = _STATUS_OF.get(name)
    if name == "RESTARTING":
        status = "completed" if event.error is None else "failed"
    if status is not None:
        fields["sv_status"] = status
    return fields


def record_fields(
    path: str, kind: EventKind | None, *, restarts: int | None = None
) -> dict[str, object]:
    """The ``extra`` of a record that is not an event's own line (a debug note, a warning
    about a proc, a tree dump): the same ``sv_*`` names as `log_fields`. *kind* is the
    transition the record is about; None for a record about none (``sv_event`` is null)."""
    fields: dict[str, object] = {"sv_path": path, "sv_event": None if kind is None else kind.value}
    if restarts is not None:
        fields["sv_restarts"] = restarts
    return fields


def logger_name(path: str) -> str:
    """``app/pipeline/consumer`` -> ``super_visor.app.pipeline.consumer``; a path deeper
    than `LOGGER_DEPTH` logs to the logger of its first `LOGGER_DEPTH` segments.

    `logging` gives each logger a parent per dotted prefix, found by walking the name
    (``_fixupParents``): a logger 10,000 levels deep would cost O(depth) to create, each of
    them, O(depth²) for a deep tree. The record's message still starts with the full path.
    """
    parts = path.split("/", LOGGER_DEPTH)
    return "super_visor." + ".".join(parts[:LOGGER_DEPTH])


def own_traceback(error: BaseException | None) -> bool:
    """Whether *error* brings a traceback of its own to log.

    A nested supervisor fails with a `SupervisorError` holding its procs' errors, each
    logged with its traceback where it happened. Logging the group again would repeat them
    once per level: a failure 10,000 levels down would write 10,000 copies of it.
    """
    return error is not None and not isinstance(error, SupervisorError)


def event_message(event: Event, note: str) -> str:
    """The message of an event's record; *note* says what lines were left out before it."""
    message = event.kind.value.replace("_", " ")
    if event.detail:
        message = f"{message}: {event.detail}"
    if event.restarts:
        message = f"{message} (restarts: {event.restarts})"
    return message + note


def traceback_of(event: Event) -> BaseException | None:
    """The error whose traceback an event's record carries: a crash's, at ERROR and above."""
    error = event.error
    return error if event.level >= _ERROR and own_traceback(error) else None
