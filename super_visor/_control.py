"""The control socket: a running tree's controls, for an operator's shell (``super-visor ctl``).

Opt-in (``run(..., control=path)``, ``SUPER_VISOR_CONTROL``, ``--control``). The security model
is the file system's plus the kernel's: the socket is created with mode 0600 (the umask is
narrowed around ``bind`` so there is no moment when it is wider, then ``chmod`` makes sure),
and every connection's peer credentials are checked against our own uid (``SO_PEERCRED`` on
Linux and OpenBSD, ``LOCAL_PEEREID`` on NetBSD, ``LOCAL_PEERCRED`` on macOS, FreeBSD and
DragonFly: `PEER_CREDENTIALS`; elsewhere every client is refused: we fail closed). There is no
other authentication: whoever runs as our user may stop, start, restart and abort any proc and
shut the tree down, which that user could do with ``kill`` anyway. root is not let in either,
unless the tree itself runs as root.

The protocol is one JSON object per line each way (``_control_protocol``); this module is the
server (the sockets themselves are ``_transport``'s). Nothing a client sends can disturb the
tree: each client is served in its own task, with a bounded line (`MAX_LINE`), a deadline per
request line (`READ_TIMEOUT`), a deadline per reply, and a bounded number of clients at once;
every exception a request raises is caught and answered. A client that sends nothing, or half a
line, holds up only its own connection.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

from ._attached import attached_run, drive
from ._control_protocol import answer, error_reply
from ._errors import ConfigError
from ._events import get_logger, record_fields
from ._notify import with_systemd_notify
from ._taskgroups import run_beside
from ._transport import LineProblem, receive_line, serve_connections

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._handle import RunHandle
    from ._outcome import SupervisorReport
    from ._supervisor import Supervisor
    from ._transport import Connection

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
def bound_control_socket(
    path: str | os.PathLike[str], *, tree: str = "control socket"
) -> Iterator[socket.socket]:
    """A listening Unix socket at *path* (mode 0600), removed from the file system on exit.
    *tree* is the root's name, for the errors.

    Raises:
        ConfigError: *path* is a live socket, is not a socket, or cannot be bound.
    """
    where = os.fspath(path)
    _clear_stale(where, tree)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        _bind_private(sock, where)
        sock.listen(MAX_CLIENTS)
        identity = _identity(where)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            tree, f"control socket: cannot listen on {where!r}: {exc}", _OTHER_PATH
        ) from None
    try:
        yield sock
    finally:
        sock.close()
        if _identity(where) == identity:  # still ours: a successor may have replaced it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(where)


#: The fix of every error about the control socket's path.
_OTHER_PATH: Final = (
    "give another path (run(control=...), SUPER_VISOR_CONTROL or --control) in a directory "
    "this user may write to"
)


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


def _clear_stale(path: str, tree: str) -> None:
    """Remove a socket left at *path* by a process that died; refuse anything else."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        problem = f"control socket: {path!r} exists and is not a socket; refusing to replace it"
        raise ConfigError(tree, problem, f"{_OTHER_PATH}, or remove that file if it is yours")
    if _in_use(path, tree):
        problem = f"control socket: {path!r} is in use by a running process"
        raise ConfigError(tree, problem, f"stop that process first, or {_OTHER_PATH}")
    os.unlink(path)  # nobody listens: a leftover of a killed run


def _in_use(path: str, tree: str) -> bool:
    """Whether a process listens on the socket at *path*."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)  # a live server with a full backlog would block a plain connect
    try:
        probe.connect(path)
    except TimeoutError:
        return True  # someone listens, too busy to accept
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return False
        problem = f"control socket: cannot check {path!r}: {exc}"
        raise ConfigError(tree, problem, _OTHER_PATH) from None
    finally:
        probe.close()
    return True


@final
@dataclass(frozen=True, slots=True)
class PeerCredentials:
    """Where a platform keeps the uid of a Unix socket's peer: the ``getsockopt`` *level*
    and *option*, the struct's *size* and the `struct` *layout* of its head, and which of
    its fields is the uid."""

    level: int
    option: int
    size: int
    layout: str
    uid_field: int

    def uid_from(self, raw: bytes) -> int:
        """The uid in *raw*, the bytes ``getsockopt`` returned."""
        return int(struct.unpack_from(self.layout, raw)[self.uid_field])


#: ``LOCAL_PEERCRED`` (level 0, option 1): struct xucred {u_int version; uid_t uid; ...}.
_XUCRED: Final = PeerCredentials(0, 1, 76, "2I", 1)

#: By ``sys.platform`` prefix. ``socket`` has no ``getpeereid()``, so the option is read.
PEER_CREDENTIALS: Final[tuple[tuple[str, PeerCredentials], ...]] = (
    # SO_PEERCRED (17 on most architectures): struct ucred {pid_t pid; uid_t uid; gid_t gid}
    ("linux", PeerCredentials(socket.SOL_SOCKET, getattr(socket, "SO_PEERCRED", 17), 12, "iIi", 1)),
    # SO_PEERCRED (0xffff, 0x1022): struct sockpeercred {uid_t uid; gid_t gid; pid_t pid}
    ("openbsd", PeerCredentials(0xFFFF, 0x1022, 12, "IIi", 0)),
    # LOCAL_PEEREID (level 0, option 3): struct unpcbid {pid_t pid; uid_t euid; gid_t egid}
    ("netbsd", PeerCredentials(0, 3, 12, "iII", 1)),
    ("freebsd", _XUCRED),
    ("dragonfly", _XUCRED),
    ("darwin", _XUCRED),
)


def peer_credentials(platform: str) -> PeerCredentials | None:
    """How *platform* (a ``sys.platform`` value) tells a peer's uid; None if it cannot."""
    for prefix, credentials in PEER_CREDENTIALS:
        if platform.startswith(prefix):
            return credentials
    return None


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected Unix socket; None when this
    platform offers no way to know it."""
    credentials = peer_credentials(sys.platform)
    if credentials is None:  # pragma: no cover (no platform we run on)
        return None
    raw = sock.getsockopt(credentials.level, credentials.option, credentials.size)
    return credentials.uid_from(raw)


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
        self._path = handle.status().name

    async def serve(self, listening: socket.socket) -> None:
        """Accept clients on *listening* until cancelled (the run is over); never raises an
        `Exception`: a bug here is logged once, the socket stops serving and the tree goes
        on. The socket stays the caller's (`bound_control_socket` closes it)."""
        try:
            await serve_connections([listening], self._serve_client, self._accept_failed)
        except Exception:  # noqa: BLE001 (the control socket's bug is not the tree's)
            _log.exception(
                "%s: the control socket failed and no longer answers; the tree goes on "
                "without it (a bug in super_visor: please report it with this traceback)",
                self._path,
                extra=record_fields(self._path, None),
            )

    def _accept_failed(self, exc: OSError) -> None:
        _log.warning(
            "%s: control socket: accept failed: %s; still serving the clients already "
            "connected (raise the open-files limit if it is EMFILE)",
            self._path,
            exc,
            extra=record_fields(self._path, None),
        )

    async def _serve_client(self, client: Connection) -> None:
        self._clients += 1
        try:
            await self._converse(client)
        except Exception as exc:  # noqa: BLE001 (one client's trouble is not the tree's)
            _log.debug(
                "%s: control socket: client dropped: %r",
                self._path,
                exc,
                extra=record_fields(self._path, None),
            )
        finally:
            self._clients -= 1

    async def _converse(self, stream: Connection) -> None:
        refusal = peer_refusal(stream.socket, self._uid)
        if refusal is None and self._clients > self._max_clients:
            refusal = f"too many clients (at most {self._max_clients} at once); try again"
        if refusal is not None:
            _log.warning(
                "%s: control socket: client refused: %s",
                self._path,
                refusal,
                extra=record_fields(self._path, None),
            )
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
        self, reader: BufferedByteReceiveStream, stream: Connection
    ) -> bytes | None:
        """The next request line; None once the connection is to be closed (a last line
        without its newline is dropped)."""
        line = await receive_line(reader, b"\n", MAX_LINE, self._read_timeout)
        if isinstance(line, bytes):
            return line
        if line is LineProblem.CLOSED:
            return None
        if line is LineProblem.TIMEOUT:
            problem = f"no complete request line within {self._read_timeout:g} s; closing"
        else:
            problem = f"request line longer than {MAX_LINE} bytes; closing"
        await _send(stream, error_reply(problem))
        await _hang_up(stream)
        return None


async def _hang_up(stream: Connection) -> None:
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


def _is_shutdown(reply: dict[str, object]) -> bool:
    return reply.get("cmd") == "shutdown" and reply.get("ok") is True


async def _send(stream: Connection, reply: dict[str, object], *, shielded: bool = False) -> bool:
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
        _log.info(
            "%s: control socket: listening on %s",
            run.path,
            sock.getsockname(),
            extra=record_fields(run.path, None),
        )
        server = ControlServer(handle)
        main = functools.partial(drive, run, handle, handle_signals=handle_signals)
        if notify:
            main = functools.partial(with_systemd_notify, run, sup, main)
        return await run_beside(main, functools.partial(server.serve, sock))
