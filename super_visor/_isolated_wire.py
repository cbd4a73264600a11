"""The wire between an `Isolated` proc and its child process: frames, values, errors, outcomes.

Protocol version 1, over one Unix stream socket (a socket pair; the child's end is an
inherited file descriptor, so the child's stdout and stderr stay free for the application).
Each frame is a 4-byte big-endian length, then a UTF-8 JSON object whose ``"t"`` names it:

- parent to child: ``start`` (version, target, path, backend, the parent's ``sys.path`` and
  main script), then at most one ``stop`` (the reason);
- child to parent: ``ready`` (the ready value), ``event`` (one lifecycle event of the child's
  tree, with its real path), ``log`` (a log record), ``shutdown`` (``token.request_shutdown``),
  ``restart_limit``, then one ``end`` (result, error, the child's outcomes).

Why JSON frames: everything the protocol itself needs is names, paths, numbers and text, and
JSON cannot run code when it is read. Only the values the user chose to send across are
pickled (base64 inside the JSON): the ready value and the result, which must be picklable (a
value that is not is a `TypeError` in the child, naming the path, never a hang), and the
child's exceptions, so that the parent can raise the same class. Exceptions are unpickled
only from modules the parent has already imported; anything else comes back as an
`IsolatedError` naming the child's error type and message. The child is the same program
as the parent, run by the same user: isolation here is about faults, not about trust.
"""

from __future__ import annotations

import base64
import json
import pickle
import struct
import sys
import traceback
from typing import TYPE_CHECKING, Protocol, final

from ._outcome import ProcOutcome, ProcStatus

if TYPE_CHECKING:
    import socket

__all__ = (
    "PROTOCOL",
    "FrameReader",
    "IsolatedError",
    "dump_error",
    "dump_outcomes",
    "dump_value",
    "encode",
    "load_error",
    "load_outcomes",
    "load_value",
    "read_frame_blocking",
)

#: Bumped whenever a frame changes meaning; the child refuses a ``start`` of another version.
PROTOCOL = 1
#: A frame larger than this is a broken peer, not a message: the reader gives up.
MAX_FRAME = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")

Frame = dict[str, object]


class IsolatedError(Exception):
    """An `Isolated` proc's child failed in a way that has no exception of its own here.

    Raised as the proc's error when the child process died without reporting an outcome
    (killed by a signal, ``os._exit``), and as a stand-in for an exception raised in the
    child whose class cannot be rebuilt in the parent (its module is not imported here, it
    does not unpickle, or it is a `BaseException` such as ``SystemExit(3)``, which must not
    end the parent). ``str()`` names the child's error type and message; the child's
    traceback text is in ``__notes__``. Fields: ``path``, ``type_name`` (the child's
    exception type, None when the process died) and ``returncode`` (None when it reported).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        path: str,
        problem: str,
        *,
        type_name: str | None = None,
        returncode: int | None = None,
    ) -> None:
        self.path = path
        self.problem = problem
        self.type_name = type_name
        self.returncode = returncode
        super().__init__(f"{path}: {problem}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_isolated_error, (self.path, self.problem, self.type_name, self.returncode))


# Public as super_visor.procs.IsolatedError (defined here so the child needs no adapter).
IsolatedError.__module__ = "super_visor.procs"


def _rebuild_isolated_error(
    path: str, problem: str, type_name: str | None, returncode: int | None
) -> IsolatedError:
    """Unpickle an `IsolatedError` (its ``__init__`` takes keywords)."""
    return IsolatedError(path, problem, type_name=type_name, returncode=returncode)


# ---------------------------------------------------------------------------- frames


def encode(frame: Frame) -> bytes:
    """One frame on the wire: its length, then its JSON."""
    body = json.dumps(frame, separators=(",", ":")).encode()
    return _HEADER.pack(len(body)) + body


class ByteSource(Protocol):
    """Where frames are read from: an anyio byte stream, or the child's own socket link."""

    async def receive(self, max_bytes: int = 65536) -> bytes: ...


@final
class FrameReader:
    """Reads frames from a byte stream; a cancelled read loses nothing.

    The length and the partial body are kept here between calls, so the reader can be
    cancelled in the middle of a frame (the proc being forced) and resumed by the clean-up.
    """

    def __init__(self, stream: ByteSource) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def receive(self) -> Frame | None:
        """The next frame, or None once the peer closed its end (or died)."""
        while True:
            frame = self._take()
            if frame is not None:
                return frame
            try:
                chunk = await self._stream.receive()
            except Exception:  # noqa: BLE001 (EOF, reset, closed: the peer is gone either way)
                return None
            self._buffer += chunk

    def _take(self) -> Frame | None:
        if len(self._buffer) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self._buffer)
        if size > MAX_FRAME:
            msg = f"a frame of {size} bytes from the other process (limit {MAX_FRAME})"
            raise ValueError(msg)
        end = _HEADER.size + size
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[_HEADER.size : end])
        del self._buffer[:end]
        frame = json.loads(body)
        if not isinstance(frame, dict):
            msg = f"a frame that is not a JSON object: {body[:80]!r}"
            raise ValueError(msg)
        return frame


def read_frame_blocking(sock: socket.socket) -> Frame:
    """One frame read with blocking calls: the child's ``start``, before any event loop."""
    (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size))
    frame = json.loads(_recv_exactly(sock, size))
    if not isinstance(frame, dict):
        msg = "the first frame from the parent is not a JSON object"
        raise ValueError(msg)
    return frame


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            msg = "the parent closed the connection before sending its start frame"
            raise EOFError(msg)
        data += chunk
    return bytes(data)


# ---------------------------------------------------------------------------- values


def dump_value(value: object, what: str, path: str) -> str:
    """*value* pickled, as base64 text; a `TypeError` naming *what* and *path* if it cannot be."""
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # pickle raises many types; all mean "cannot cross"
        msg = (
            f"{path}: the {what} ({type(value).__name__}) cannot cross to the parent process: "
            f"it is not picklable ({exc}); pass a picklable value such as a number, a string "
            "or a dict of them"
        )
        raise TypeError(msg) from exc
    return base64.b64encode(data).decode("ascii")


def load_value(text: object) -> object:
    """The value `dump_value` sent (None stays None)."""
    if text is None:
        return None
    assert isinstance(text, str), f"a pickled value is sent as text, got {text!r}"
    return pickle.loads(base64.b64decode(text))  # our own child: see the module doc


# ---------------------------------------------------------------------------- errors


def dump_error(error: BaseException) -> Frame:
    """What crosses for an exception: its type, message, traceback text, and the pickled
    exception when it pickles (only an `Exception` is ever rebuilt)."""
    pickled: str | None = None
    if isinstance(error, Exception):
        try:
            pickled = base64.b64encode(pickle.dumps(error)).decode("ascii")
        except Exception:  # noqa: BLE001 (an exception that does not pickle goes as text)
            pickled = None
    cls = type(error)
    return {
        "type": f"{cls.__module__}.{cls.__qualname__}",
        "name": cls.__name__,
        # A group's own message, without the " (2 sub-exceptions)" that str() adds.
        "message": error.message if isinstance(error, BaseExceptionGroup) else _safe_str(error),
        "traceback": "".join(traceback.format_exception(error)),
        "pickled": pickled,
    }


def load_error(info: Frame, path: str, pid: int) -> Exception:
    """The child's exception, rebuilt when its class is already imported here, else an
    `IsolatedError`; either way with the child's traceback text as a note."""
    error = _unpickle_error(info)
    if error is None:
        name = str(info["name"])
        message = str(info["message"])
        problem = f"the isolated child raised {name}: {message}" if message else name
        error = IsolatedError(path, problem, type_name=str(info["type"]))
    error.add_note(f"Traceback in the isolated child (pid {pid}) of {path}:\n{info['traceback']}")
    return error


@final
class _KnownClassesOnly(pickle.Unpickler):
    """Loads classes only from modules the parent has already imported: rebuilding a child's
    exception must never import (run) code in the parent."""

    def find_class(self, module: str, name: str, /) -> object:
        if module not in sys.modules:
            msg = f"{module} is not imported in the parent"
            raise pickle.UnpicklingError(msg)
        return super().find_class(module, name)


def _unpickle_error(info: Frame) -> Exception | None:
    pickled = info.get("pickled")
    if not isinstance(pickled, str):
        return None
    import io

    try:
        error = _KnownClassesOnly(io.BytesIO(base64.b64decode(pickled))).load()
    except Exception:  # noqa: BLE001 (any failure to rebuild: the stand-in carries the facts)
        return None
    cls = type(error)
    if not isinstance(error, Exception) or f"{cls.__module__}.{cls.__qualname__}" != info["type"]:
        return None
    return error


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # noqa: BLE001 (a broken __str__ must not lose the error)
        return ""


# ---------------------------------------------------------------------------- outcomes


def dump_outcomes(outcomes: tuple[ProcOutcome, ...], path: str) -> list[Frame]:
    """The child's outcomes as JSON-ready dicts (a result that does not pickle is left out)."""
    return [_dump_outcome(outcome, path) for outcome in outcomes]


def _dump_outcome(outcome: ProcOutcome, path: str) -> Frame:
    try:
        result: str | None = dump_value(outcome.result, "result", outcome.path)
    except TypeError:
        result = None
    return {
        "name": outcome.name,
        "path": outcome.path,
        "status": outcome.status.value,
        "result": result,
        "error": None if outcome.error is None else dump_error(outcome.error),
        "restarts": outcome.restarts,
        "children": dump_outcomes(outcome.children, path),
        "history": [dump_error(error) for error in outcome.history],
    }


def load_outcomes(infos: object, pid: int) -> tuple[ProcOutcome, ...]:
    """The outcomes `dump_outcomes` sent, rebuilt (errors as `load_error` rebuilds them)."""
    assert isinstance(infos, list), f"outcomes are sent as a list, got {infos!r}"
    return tuple(_load_outcome(info, pid) for info in infos)


def _load_outcome(info: Frame, pid: int) -> ProcOutcome:
    path = str(info["path"])
    error = info.get("error")
    history = info.get("history")
    assert isinstance(history, list), "history is sent as a list"
    return ProcOutcome(
        name=str(info["name"]),
        path=path,
        status=ProcStatus(info["status"]),
        result=_load_quietly(info.get("result")),
        error=None if not isinstance(error, dict) else load_error(error, path, pid),
        restarts=int(str(info["restarts"])),
        children=load_outcomes(info["children"], pid),
        history=tuple(load_error(item, path, pid) for item in history),
    )


def _load_quietly(text: object) -> object:
    """A child proc's result, or None when it cannot be unpickled here (a report entry)."""
    try:
        return load_value(text)
    except Exception:  # noqa: BLE001 (a nested result is informative only)
        return None
