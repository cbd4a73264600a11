"""The servers' transport: accept and talk on raw non-blocking sockets, read bounded lines.

The control socket and `HealthServer` both serve through it. Not through anyio's socket
streams and listeners: on asyncio (anyio 4.16) a ``receive()`` or ``accept()`` cancelled in
the loop iteration in which its socket became ready has its future completed after the
cancel, and the loop logs ``InvalidStateError`` (a client that connects or writes just as
the run ends would do it). ``anyio.wait_readable``/``wait_writable`` tolerate that.
"""

from __future__ import annotations

import enum
import socket
from typing import TYPE_CHECKING, Final, final

import anyio
import anyio.abc
import anyio.lowlevel

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from anyio.streams.buffered import BufferedByteReceiveStream

__all__ = ("Connection", "LineProblem", "receive_line", "serve_connections")

#: Seconds to pause after a failed ``accept`` (e.g. EMFILE) before trying again.
ACCEPT_PAUSE: Final = 0.1


@final
class Connection(anyio.abc.ByteStream):
    """One client's socket, read and written through ``wait_readable``/``wait_writable``.

    `serve_connections` owns the socket and closes it; `aclose` does nothing.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    @property
    def socket(self) -> socket.socket:
        """The client's socket (e.g. for its peer's credentials); still the server's."""
        return self._sock

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await anyio.lowlevel.checkpoint()
        while True:
            try:
                data = self._sock.recv(max_bytes)
            except BlockingIOError:
                await anyio.wait_readable(self._sock)
                continue
            except OSError as exc:  # e.g. ECONNRESET
                raise anyio.BrokenResourceError from exc
            if not data:
                raise anyio.EndOfStream
            return data

    async def send(self, item: bytes) -> None:
        await anyio.lowlevel.checkpoint()
        view = memoryview(item)
        while view:
            try:
                view = view[self._sock.send(view) :]
            except BlockingIOError:
                await anyio.wait_writable(self._sock)
            except OSError as exc:  # e.g. EPIPE: the client is gone
                raise anyio.BrokenResourceError from exc

    async def send_eof(self) -> None:
        self._sock.shutdown(socket.SHUT_WR)

    async def aclose(self) -> None:
        """Nothing: `serve_connections` owns the socket and closes it."""


async def serve_connections(
    listening: Sequence[socket.socket],
    talk: Callable[[Connection], Awaitable[None]],
    on_accept_error: Callable[[OSError], None],
) -> None:
    """Accept clients on every socket of *listening* until cancelled, each one talked to by
    ``talk(connection)`` in its own task and closed after it. *talk* must not raise; a
    failed ``accept`` is given to *on_accept_error* and serving goes on. The listening
    sockets stay the caller's."""
    async with anyio.create_task_group() as task_group:
        for sock in listening:
            sock.setblocking(False)
            task_group.start_soon(_accept_loop, sock, talk, on_accept_error, task_group)


async def _accept_loop(
    listening: socket.socket,
    talk: Callable[[Connection], Awaitable[None]],
    on_accept_error: Callable[[OSError], None],
    task_group: anyio.abc.TaskGroup,
) -> None:
    while True:
        try:
            client, _ = listening.accept()
        except BlockingIOError:
            await anyio.wait_readable(listening)
            continue
        except OSError as exc:  # e.g. EMFILE: keep serving the clients we have
            on_accept_error(exc)
            await anyio.sleep(ACCEPT_PAUSE)  # not a synchronisation: a pause before retrying
            continue
        client.setblocking(False)
        task_group.start_soon(_talk, client, talk)


async def _talk(client: socket.socket, talk: Callable[[Connection], Awaitable[None]]) -> None:
    with client:
        await talk(Connection(client))


class LineProblem(enum.Enum):
    """Why `receive_line` has no line to give."""

    TIMEOUT = "timeout"  #: no whole line within the deadline
    TOO_LONG = "too_long"  #: more than the allowed bytes without the delimiter
    CLOSED = "closed"  #: the client closed (or reset) before a whole line came


async def receive_line(
    reader: BufferedByteReceiveStream, delimiter: bytes, max_bytes: int, timeout: float
) -> bytes | LineProblem:
    """The next line up to *delimiter* (left out), at most *max_bytes*, within *timeout*
    seconds; otherwise why not."""
    try:
        with anyio.fail_after(timeout):
            line = await reader.receive_until(delimiter, max_bytes)
    except TimeoutError:
        return LineProblem.TIMEOUT
    except anyio.DelimiterNotFound:
        return LineProblem.TOO_LONG
    except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError):
        return LineProblem.CLOSED
    return LineProblem.TOO_LONG if len(line) > max_bytes else line  # it came whole, in one read
