"""The values ``SUPER_VISOR_*`` variables may take: one parser per field, and what it expects.

Each parser takes the raw text (from ``.env``, the environment or a flag) and returns the
value, or raises `ValueError` (or `KeyError`); ``_config`` turns that into a `ConfigError`
naming the variable, the value, its source and the expected form listed in `FIELDS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ._logformat import LOG_FORMATS
from ._validate import is_count, is_seconds

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._logformat import LogFormat

__all__ = ("FIELDS", "LOG_LEVELS", "ConsoleMode")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_CONSOLE_WORDS: dict[str, bool | None] = {
    "auto": None,
    **dict.fromkeys(("1", "on", "true", "yes"), True),
    **dict.fromkeys(("0", "off", "false", "no"), False),
}

ConsoleMode = bool | Literal["auto"]


def _seconds(raw: str) -> float:
    value = float(raw)
    if not is_seconds(value):
        raise ValueError(raw)
    return value


def _positive_seconds(raw: str) -> float:
    value = float(raw)
    if not is_seconds(value, positive=True):
        raise ValueError(raw)
    return value


def _timeout(raw: str) -> float | None:
    return None if raw.strip().lower() == "none" else _seconds(raw)


def _count(raw: str) -> int:
    value = int(raw)
    if not is_count(value):
        raise ValueError(raw)
    return value


def _console(raw: str) -> ConsoleMode:
    word = _CONSOLE_WORDS[raw.strip().lower()]  # KeyError -> malformed
    return "auto" if word is None else word


def _log_format(raw: str) -> LogFormat:
    word = raw.strip().lower()
    for known in LOG_FORMATS:
        if word == known:
            return known
    raise ValueError(raw)


def _level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(raw)
    return level


def _socket_path(raw: str) -> str:
    if not raw.strip():
        raise ValueError(raw)
    return raw


#: The field a variable sets -> (what is expected, an example value, the parser).
FIELDS: dict[str, tuple[str, str, Callable[[str], object]]] = {
    "grace": ("a finite number of seconds >= 0", "5", _seconds),
    "ready_timeout": ("a finite number of seconds >= 0, or 'none'", "10", _timeout),
    "max_restarts": ("a whole number >= 0", "3", _count),
    "within": ("a finite number of seconds > 0", "5", _positive_seconds),
    "abandon_after": ("a finite number of seconds >= 0", "10", _seconds),
    "console": ("one of auto, on, off (or true/false, 1/0, yes/no)", "auto", _console),
    "log_level": ("one of " + ", ".join(LOG_LEVELS), "INFO", _level),
    "log_format": ("one of " + ", ".join(LOG_FORMATS), "json", _log_format),
    "control": ("the path of the control socket", "/run/app/control.sock", _socket_path),
}
