"""The control socket: a running tree's controls, for an operator's shell (``super-visor ctl``).

Opt-in (``run(..., control=path)``, ``SUPER_VISOR_CONTROL``, ``--control``). The security
model is the file system's plus the kernel's: the socket is created with mode 0600 (the umask
is narrowed around ``bind`` so there is no moment when it is wider, then ``chmod`` makes sure),
and every connection's peer credentials are checked against our own uid (``SO_PEERCRED`` on
Linux, ``LOCAL_PEERCRED`` on macOS and the BSDs; where neither exists, every client is
refused: we fail closed). There is no other authentication: whoever runs as our user may
stop, start, restart and abort any proc and shut the tree down, which that user could do
with ``kill`` anyway. root is not let in either, unless the tree itself runs as root.

The protocol is one JSON object per line each way (``_control_protocol``); this module is
the transport. Nothing a client sends can disturb the tree: each client is served in its
own task, with a bounded line (`MAX_LINE`), a deadline per request line (`READ_TIMEOUT`),
a deadline per reply, and a bounded number of clients at once; every exception a request
raises is caught and answered. A client that sends nothing, or half a line, holds up only its
own connection.

The socket is bound before the event loop starts (a path that cannot be used is a
`ConfigError`, reported like any other, before any proc runs) and removed when the run ends,
also after a failure or a forced stop. A path that already exists is reused only if it is a
socket nobody listens on (left by a process that was killed); a live socket or any other file
is refused, never clobbered.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import socket
import stat
import struct
import sys
from typing import TYPE_CHECKING, Final, final

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.buffered import BufferedByteReceiveStream

from ._attached import attached_run, drive
from ._control_protocol import answer, error_reply
from ._errors import ConfigError
from ._events import get_logger
from ._notify import with_systemd_notify
from ._taskgroups import run_beside

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._handle import RunHandle
    from ._outcome import SupervisorReport
    from ._supervisor import Supervisor

__all__ = (
    "MAX_CLIENTS",
    "MAX_LINE",
    "READ_TIMEOUT",
    "ControlServer",
    "bound_control_socket",
    "peer_refusal",
    "peer_uid",
    "start_with_control",
)

#: The longest request line accepted, in bytes; a longer one is answered and the connection
#: closed (a line is a command and a path: a few hundred bytes).
MAX_LINE: Final = 64 * 1024
#: Seconds a client may take to send one whole request line.
READ_TIMEOUT: Final = 10.0
#: Seconds a reply may take to be taken by the client (one that never reads is dropped).
SEND_TIMEOUT: Final = 5.0
#: Clients served at once; one more is answered with an error and closed.
MAX_CLIENTS: Final = 64
#: How long, and how many bytes, a refused client's input is drained before we close.
LINGER: Final = 1.0
LINGER_BYTES: Final = 4 * MAX_LINE
#: The permissions of the socket file: its owner only.
SOCKET_MODE: Final = 0o600

_log = get_logger("super_visor.control")


@contextlib.contextmanager
def bound_control_socket(path: str | os.PathLike[str]) -> Iterator[socket.socket]:
    """A listening Unix socket at *path* (mode 0600), removed from the file system on exit.

    Raises:
        ConfigError: *path* is a live socket, is not a socket, or cannot be bound.
    """
    where = os.fspath(path)
    _clear_stale(where)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        _bind_private(sock, where)
        sock.listen(MAX_CLIENTS)
        identity = _identity(where)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            "control socket", f"cannot listen on {where!r}: {exc}", "choose another path"
        ) from None
    try:
        yield sock
    finally:
        sock.close()
        if _identity(where) == identity:  # still ours: a successor may have replaced it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(where)


def _bind_private(sock: socket.socket, path: str) -> None:
    """Bind with the umask narrowed, so the socket is never reachable by others, not even
    between ``bind`` and ``chmod``; the ``chmod`` covers a file system that ignores it."""
    previous = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(previous)
    os.chmod(path, SOCKET_MODE)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _clear_stale(path: str) -> None:
    """Remove a socket left at *path* by a process that died; refuse anything else."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ConfigError(
            "control socket",
            f"{path!r} exists and is not a socket; refusing to replace it",
            "choose another path, or remove that file if it is yours to remove",
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)  # a live server with a full backlog would block a plain connect
    try:
        probe.connect(path)
    except TimeoutError:
        pass  # someone listens, too busy to accept: in use
    except OSError as exc:
        if exc.errno != errno.ECONNREFUSED:
            raise ConfigError(
                "control socket", f"cannot check {path!r}: {exc}", "choose another path"
            ) from None
        os.unlink(path)  # nobody listens: a leftover of a killed run
        return
    finally:
        probe.close()
    raise ConfigError(
        "control socket",
        f"{path!r} is in use by a running process",
        "stop that process first, or choose another path",
    )


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected Unix socket; None when this
    platform offers no way to know it."""
    if hasattr(socket, "SO_PEERCRED"):  # Linux: struct ucred {pid, uid, gid}
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", raw)[1])
    if sys.platform == "darwin" or "bsd" in sys.platform:  # pragma: no cover (not Linux)
        # getpeereid() is not in the socket module; LOCAL_PEERCRED (level 0, option 1)
        # returns struct xucred {u_int version; uid_t uid; ...}, which is what it reads.
        raw = sock.getsockopt(0, 1, 76)
        return int(struct.unpack_from("2I", raw)[1])
    return None  # pragma: no cover (no platform we run on)


def peer_refusal(sock: socket.socket, expected_uid: int) -> str | None:
    """Why the peer of *sock* may not use the socket, or None when it runs as
    *expected_uid* (the tree's own uid)."""
    try:
        uid = peer_uid(sock)
    except OSError as exc:
        return f"cannot read the peer's credentials ({exc}); refused"
    if uid is None:  # pragma: no cover (every platform we run on has a way)
        return "this platform cannot tell who connected; refused"
    if uid != expected_uid:
        return f"permission denied: uid {uid} is not the uid this tree runs as"
    return None


class ControlServer:
    """Serves the control socket's clients for one run, each in its own task."""

    def __init__(
        self,
        handle: RunHandle,
        *,
        read_timeout: float = READ_TIMEOUT,
        max_clients: int = MAX_CLIENTS,
        uid: int | None = None,
    ) -> None:
        self._handle = handle
        self._read_timeout = read_timeout
        self._max_clients = max_clients
        self._uid = os.geteuid() if uid is None else uid
        self._clients = 0

    async def serve(self, listening: socket.socket) -> None:
        """Accept clients on *listening* until cancelled (the run is over); never raises an
        `Exception`. The socket stays the caller's (`bound_control_socket` closes it)."""
        listening.setblocking(False)
        async with anyio.create_task_group() as task_group:
            while True:
                try:
                    client, _ = listening.accept()
                except BlockingIOError:
                    await anyio.wait_readable(listening)
                    continue
                except OSError as exc:  # e.g. EMFILE: keep serving the clients we have
                    _log.warning("control socket: accept failed: %s", exc)
                    await anyio.sleep(0.1)  # not a synchronisation: a pause before retrying
                    continue
                client.setblocking(False)
                task_group.start_soon(self._serve_client, client)

    async def _serve_client(self, client: socket.socket) -> None:
        self._clients += 1
        try:
            with client:
                await self._converse(client)
        except Exception as exc:  # noqa: BLE001 (one client's trouble is not the tree's)
            _log.debug("control socket: client dropped: %r", exc)
        finally:
            self._clients -= 1

    async def _converse(self, client: socket.socket) -> None:
        stream = _Connection(client)
        refusal = peer_refusal(client, self._uid)
        if refusal is None and self._clients > self._max_clients:
            refusal = f"too many clients (at most {self._max_clients} at once); try again"
        if refusal is not None:
            _log.warning("control socket: client refused: %s", refusal)
            await _send(stream, error_reply(refusal))
            await _hang_up(stream)
            return
        reader = BufferedByteReceiveStream(stream)
        while True:
            line = await self._read_line(reader, stream)
            if line is None:
                return
            reply = await answer(self._handle, line)
            if reply is not None and not await _send(stream, reply, shielded=_is_shutdown(reply)):
                return

    async def _read_line(
        self, reader: BufferedByteReceiveStream, stream: _Connection
    ) -> bytes | None:
        """The next request line; None once the connection is to be closed."""
        problem: str
        try:
            with anyio.fail_after(self._read_timeout):
                return await reader.receive_until(b"\n", MAX_LINE)
        except TimeoutError:
            problem = f"no complete request line within {self._read_timeout:g} s; closing"
        except anyio.DelimiterNotFound:
            problem = f"request line longer than {MAX_LINE} bytes; closing"
        except (anyio.IncompleteRead, anyio.EndOfStream):
            return None  # the client is gone (a last line without newline is dropped)
        await _send(stream, error_reply(problem))
        await _hang_up(stream)
        return None


async def _hang_up(stream: _Connection) -> None:
    """End a conversation we refuse so that the client reads our error reply: closing with
    its unread bytes still queued would reset the connection and destroy the reply in
    flight. So: no more writes, then discard what it sends (bounded) until it hangs up."""
    discarded = 0
    with anyio.move_on_after(LINGER):
        try:
            await stream.send_eof()
            while discarded < LINGER_BYTES:
                discarded += len(await stream.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            return


@final
class _Connection(anyio.abc.ByteStream):
    """One client's socket, read and written through ``anyio.wait_readable``/``wait_writable``.

    Not through anyio's socket streams and listener: on asyncio (anyio 4.16) a ``receive()``
    or ``accept()`` cancelled in the loop iteration in which its socket became ready has its
    future completed after the cancel, and the loop logs ``InvalidStateError`` (a client that
    connects or writes just as the run ends would do it). ``wait_readable`` tolerates that.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

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
        """Nothing: `ControlServer` owns the socket and closes it."""


def _is_shutdown(reply: dict[str, object]) -> bool:
    return reply.get("cmd") == "shutdown" and reply.get("ok") is True


async def _send(stream: _Connection, reply: dict[str, object], *, shielded: bool = False) -> bool:
    """Send one reply line; False when the client did not take it in time.

    The reply to ``shutdown`` is shielded (within the same deadline): the shutdown it began
    may end the run, and with it this server, before the client has read it.
    """
    data = json.dumps(reply, default=str).encode() + b"\n"
    with anyio.move_on_after(SEND_TIMEOUT, shield=shielded) as scope:
        await stream.send(data)
    return not scope.cancelled_caught


async def start_with_control(
    sup: Supervisor, sock: socket.socket, *, handle_signals: bool, notify: bool = True
) -> SupervisorReport:
    """Run *sup* as ``start()`` does (systemd notify included), serving the control socket
    *sock* beside it."""
    with attached_run(sup) as (run, handle):
        _log.info("control socket: listening on %s", sock.getsockname())
        server = ControlServer(handle)
        main = functools.partial(drive, run, handle, handle_signals=handle_signals)
        if notify:
            main = functools.partial(with_systemd_notify, run, sup, main)
        return await run_beside(main, functools.partial(server.serve, sock))
