"""How ``run()`` and the CLI write log records to stderr: plain lines or one JSON object each.

`stderr_logging` is the one place where ``run()`` (and so the CLI) sets up logging.

Imported only by ``run()``'s logging set-up, never by ``import super_visor``: it imports
`logging` and `json`, which a library that is only imported must not pay for.

- ``json``: one object per line, ``{"ts", "level", "logger", "message", "sv_path", ...,
  "exc"}``, so a log pipeline (Loki, Elasticsearch, CloudWatch) indexes the proc path and
  the event kind instead of parsing prose. Standard library only: the formatter is a few
  lines, and a JSON-logging dependency would be one more thing to install everywhere.
- ``plain``: ``<time> <LEVEL> <logger>: <message>``. Under systemd, when stderr is the
  journal (``JOURNAL_STREAM`` names it), the time is left out, since journald stamps each
  line itself, and each line starts with its syslog priority (``<3>`` for an error), which
  journald reads as the line's priority, so ``journalctl -p warning`` works.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Literal, TextIO, final, get_args

from ._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._console import LiveConsole

__all__ = (
    "LOG_FORMATS",
    "SERVER_LOGGERS",
    "SV_FIELDS",
    "JsonFormatter",
    "LogFormat",
    "check_log_format",
    "formatter_for",
    "stderr_logging",
    "under_journald",
)

LogFormat = Literal["plain", "json"]
#: Every log format: the one list that ``_config`` (``SUPER_VISOR_LOG_FORMAT``) and the CLI
#: (``--log-format``) check against.
LOG_FORMATS: tuple[LogFormat, ...] = get_args(LogFormat)

#: The ``extra`` fields super_visor puts on its records (see ``_eventlog.log_fields``).
SV_FIELDS = ("sv_path", "sv_event", "sv_restarts", "sv_status")

_PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: logging level -> syslog priority, for journald's ``<N>`` line prefix.
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def check_log_format(value: object, where: str) -> LogFormat:
    """*value* if it names a format, else a `ConfigError` naming *where* it came from."""
    for known in LOG_FORMATS:
        if value == known:
            return known
    raise ConfigError(
        where,
        f"unknown log format {value!r}",
        "use 'plain' (lines for people) or 'json' (one JSON object per line)",
    )


@final
class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is escaped inside ``exc``).

    Keys: ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``, the
    ``sv_*`` fields the record carries, and ``exc`` / ``stack`` when it has them. A value
    JSON cannot hold is written as its ``str()``: a log line must never fail.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": _iso_utc(record.created, record.msecs),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in SV_FIELDS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _iso_utc(created: float, msecs: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(msecs):03d}Z"


@final
class _JournalFormatter(logging.Formatter):
    """The plain line without the time, prefixed with its syslog priority for journald."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        priority = next((p for level, p in _PRIORITIES if record.levelno >= level), 7)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def formatter_for(
    log_format: LogFormat, stream: TextIO, environ: Mapping[str, str] | None = None
) -> logging.Formatter:
    """The formatter for records written to *stream* in *log_format*."""
    if log_format == "json":
        return JsonFormatter()
    if under_journald(stream, os.environ if environ is None else environ):
        return _JournalFormatter()
    return logging.Formatter(_PLAIN)


def under_journald(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether *stream* is connected to the journal.

    systemd sets ``JOURNAL_STREAM=<device>:<inode>`` for a service whose stdout or stderr
    goes to the journal; the variable is inherited by children whose output goes elsewhere,
    so the stream's own device and inode are compared (as sd_journal_stream_fd(3) advises).
    """
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        stat = os.fstat(stream.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (OSError, ValueError, AttributeError):
        return False  # no such variable, a malformed one, or a stream without a descriptor


#: Loggers of the servers the adapters wrap. Their records propagate to the root; under
#: ``run()`` they are shown from INFO on (start-up and access lines), as Uvicorn's and
#: Hypercorn's own command lines show them, unless the app set their level.
SERVER_LOGGERS = ("uvicorn", "hypercorn")


@final
class stderr_logging:
    """``run()``'s logging set-up: one handler on stderr, unless the app configured logging.

    The handler goes on the *root* logger, not on ``super_visor``'s: records of super_visor,
    of Uvicorn and Hypercorn, and of the app's loggers all reach it once. On
    ``super_visor`` it would print our records a second time as soon as anything gave the
    root a handler during the run (``logging.warning()`` in any library calls
    ``basicConfig()`` when the root has none); on the root, such a ``basicConfig()`` finds
    a handler and does nothing.

    With log format ``json`` and logging already configured, one WARNING says the app's
    handlers win and how to get JSON, rather than the format silently doing nothing.

    The ``super_visor`` level is *level* when given (``SUPER_VISOR_LOG_LEVEL``; it applies
    even when the app configured logging: the operator asked for it), else INFO, or
    WARNING under the live console, whose tree already shows what the INFO lines say.
    Everything is put back on exit.
    """

    def __init__(self, level: str | None, log_format: LogFormat, live: LiveConsole | None) -> None:
        self._level_name = level
        self._format = log_format
        self._live = live
        self._handler: logging.Handler | None = None
        #: Logger -> its level before the run, to put back.
        self._saved: dict[logging.Logger, int] = {}

    def __enter__(self) -> None:
        ours = logging.getLogger("super_visor")
        self._set_level(ours, self._level_name)
        root = logging.getLogger()
        if root.handlers or ours.handlers:
            # The app configured logging: its handlers and formats decide. Rewriting its
            # handlers' formatters would override a choice the app made on purpose.
            if self._format == "json":
                _warn_json_not_applied(ours)
            return
        self._handler = self._make_handler()
        root.addHandler(self._handler)
        if ours.level == logging.NOTSET:
            self._set_level(ours, "WARNING" if self._live is not None else "INFO")
        for name in SERVER_LOGGERS:
            server = logging.getLogger(name)
            if server.level == logging.NOTSET:
                self._set_level(server, "INFO")

    def _make_handler(self) -> logging.Handler:
        if self._live is not None:
            return self._live.log_handler()
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter_for(self._format, sys.stderr))
        return handler

    def _set_level(self, logger: logging.Logger, level: str | None) -> None:
        if level is not None:
            self._saved.setdefault(logger, logger.level)
            logger.setLevel(level)

    def __exit__(self, *exc_info: object) -> None:
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
        for logger, level in self._saved.items():
            logger.setLevel(level)


def _warn_json_not_applied(ours: logging.Logger) -> None:
    """Say that ``json`` was asked for and is not applied, through the app's own handlers.

    The record is about the run's set-up, not about a proc: ``sv_path`` and ``sv_event``
    are null."""
    ours.warning(
        "log format 'json' (log_format=, SUPER_VISOR_LOG_FORMAT or --log-format) is not "
        "applied: the app configured logging itself (the root or 'super_visor' logger has "
        "handlers), and its own handlers and formats win. For super_visor's JSON lines on "
        "stderr, configure no logging handler before run(); or give your handler a JSON "
        "formatter reading the sv_* fields of each record's extra",
        extra={"sv_path": None, "sv_event": None},
    )
