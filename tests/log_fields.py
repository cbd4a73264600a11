"""The structured fields of a log record (API.md section 9), read without mypy's complaint
that `logging.LogRecord` has no such attributes (they come from ``extra``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

__all__ = ("sv_fields",)


def sv_fields(record: logging.LogRecord) -> tuple[object, object]:
    """``(sv_path, sv_event)`` of *record*; a missing field reads as ``"<missing>"``."""
    return getattr(record, "sv_path", "<missing>"), getattr(record, "sv_event", "<missing>")
