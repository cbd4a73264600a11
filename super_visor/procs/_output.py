"""A child's output: forwarded line by line to logging and kept in a bounded ring.

The ring is what makes a failure readable: `CommandFailed` and start-up errors quote its last
lines, so "exited with code 1" comes with the traceback the child printed. Watchers (the
log-line readiness probe) see each line as it arrives, without polling.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import TYPE_CHECKING, final

import anyio

from .._eventlog import record_fields

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator

    from anyio.abc import ByteReceiveStream

__all__ = ("MAX_LINE", "OutputRing")

#: A "line" longer than this is cut and logged in pieces, so a child that never prints a
#: newline cannot make us buffer without bound.
MAX_LINE = 64 * 1024


@final
class OutputRing:
    """The last *keep* lines a child printed on stdout and stderr, in arrival order."""

    def __init__(self, logger: logging.Logger, keep: int, *, path: str = "") -> None:
        self.logger = logger
        #: The proc's full path (``token.path``) for the records about it; else the logger's name.
        self.path = path or logger.name
        #: Each line's ``extra``: which stream, and the ``sv_*`` fields naming the proc.
        self._fields = record_fields(self.path, None)
        self.lines: deque[str] = deque(maxlen=keep)
        self._watchers: list[Callable[[str], None]] = []
        self._open = 0
        #: Set once every pumped stream reached end of file: no process still holds them.
        self.closed = anyio.Event()

    def tail(self, prefix: str = "  ") -> str:
        """The kept lines, indented, or a note that there were none."""
        if not self.lines:
            return f"{prefix}(no output)"
        return "\n".join(f"{prefix}{line}" for line in self.lines)

    @contextlib.contextmanager
    def watch(self, callback: Callable[[str], None]) -> Iterator[None]:
        """Call ``callback(line)`` for every line from now on, while the block runs."""
        self._watchers.append(callback)
        try:
            yield
        finally:
            self._watchers.remove(callback)

    def add(self, line: str, stream: str) -> None:
        self.lines.append(line)
        self.logger.info("%s", line, extra={"stream": stream, **self._fields})
        for callback in list(self._watchers):
            callback(line)

    def expect(self, count: int) -> None:
        """Announce *count* streams that `pump` will read (``closed`` waits for them all)."""
        self._open += count
        if self._open == 0:
            self.closed.set()

    async def pump(self, stream: ByteReceiveStream, name: str) -> None:
        """Read *stream* to its end, one line at a time; a partial last line counts too."""
        pending = b""
        try:
            async for chunk in stream:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    self._add_raw(raw, name)
                while len(pending) > MAX_LINE:
                    self._add_raw(pending[:MAX_LINE], name)
                    pending = pending[MAX_LINE:]
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # our own clean-up closed the pipe: the child is gone
        finally:
            if pending:
                self._add_raw(pending, name)
            self._open -= 1
            if self._open == 0:
                self.closed.set()

    def _add_raw(self, raw: bytes, stream: str) -> None:
        self.add(raw.decode("utf-8", errors="replace").rstrip("\r"), stream)
