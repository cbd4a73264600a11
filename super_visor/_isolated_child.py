"""The child side of ``super_visor.procs.Isolated``: ``python -m super_visor._isolated_child``.

A fresh interpreter of the parent's environment (spawned, never forked: forking a process
with a running event loop and threads copies their state half-way). Its arguments are the
file descriptor of its end of the socket pair and the parent's pid. It reads the ``start``
frame (see ``_isolated_wire``) with blocking calls, takes the parent's ``sys.path``,
imports the target and runs it in its main thread on the backend it was told, then sends
its ``end`` frame and exits.

How it dies with its parent, also when the parent is SIGKILLed, is `_isolated_stopper`'s
part; SIGTERM (the parent's force, after the grace) forces the target the same way, and the
``end`` frame still reports the child's outcomes.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import socket
import sys
import types
from typing import TYPE_CHECKING, NoReturn, cast, final

import anyio

from ._builder import SupervisorBuilder
from ._errors import SupervisorError
from ._eventlog import logger_name
from ._events import EventHub
from ._isolated_stopper import Stopper
from ._isolated_wire import (
    PROTOCOL,
    FrameReader,
    dump_error,
    dump_outcomes,
    dump_value,
    encode,
    read_frame_blocking,
)
from ._restart import Restart
from ._slot import Slot
from ._spec import ProcSpec
from ._supervisor import Supervisor
from ._token import CancellationToken
from ._validate import Problem, check_proc

if TYPE_CHECKING:
    from ._context import RunContext
    from ._events import Event
    from ._isolated_wire import Frame
    from ._outcome import ProcOutcome
    from ._proc import SupportsRunProc

__all__ = ("main",)


def main(argv: list[str]) -> None:
    """``_isolated_child FD PARENT_PID``: serve one `Isolated` run, then exit."""
    fd, parent_pid = int(argv[1]), int(argv[2])
    sock = socket.socket(fileno=fd)
    stopper = Stopper(parent_pid)
    start = read_frame_blocking(sock)
    if start.get("v") != PROTOCOL:
        sys.exit(f"super_visor: isolated child speaks protocol {PROTOCOL}, got {start.get('v')}")
    sys.path[:] = [str(entry) for entry in _as_list(start["sys_path"])]
    link = _Link(sock)
    _forward_logs(link, start.get("log_level"))
    try:
        anyio.run(_serve, link, start, stopper, backend=str(start["backend"]))
    except BaseException:
        if not link.ended:
            raise
        # The outcome was reported; what breaks after it (a server's native asyncio code
        # that miscounted a cancellation, say) concerns nobody any more.
    sock.close()


def _as_list(value: object) -> list[object]:
    assert isinstance(value, list), f"expected a list in the start frame, got {value!r}"
    return value


@final
class _LogForwarder(logging.Handler):
    """Sends each log record of the child to the parent, which hands it to its own handlers
    under the same logger name: a server's access log in a replica lands where the parent's
    logs go, formatted by the parent's configuration (plain, JSON, under systemd)."""

    def __init__(self, link: _Link) -> None:
        super().__init__()
        self._link = link
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            exc = record.exc_text
            if record.exc_info and not exc:
                exc = self._formatter.formatException(record.exc_info)
            fields = {
                key: value
                for key, value in record.__dict__.items()
                if key.startswith("sv_") and isinstance(value, (str, int, float, bool))
            }
            self._link.put(
                {
                    "t": "log",
                    "name": record.name,
                    "level": record.levelno,
                    "message": record.getMessage(),
                    "exc": exc,
                    "created": record.created,
                    "fields": fields,
                }
            )
        except Exception:  # noqa: BLE001 (logging's own rule: a handler never raises)
            self.handleError(record)


def _forward_logs(link: _Link, level: object) -> None:
    """Forward the child's log records at the parent's level, instead of printing them."""
    root = logging.getLogger()
    root.addHandler(_LogForwarder(link))
    root.setLevel(level if isinstance(level, int) else logging.WARNING)


@final
class _ParentTree:
    """Stands in, in the child, for the parent's root run (``token._run.root``): what the
    child's procs ask of the whole tree crosses to the parent.

    ``token.request_shutdown(reason)`` shuts the *parent's* tree down, as API.md says it
    must ("the whole tree"), and a supervisor of the child's tree that gives up restarting
    marks the parent's tree past its restart limit (the liveness probe, the watchdog).
    Being the root of the child's run also keeps that run from emitting a READY of its own:
    the parent emits the Isolated proc's READY.
    """

    def __init__(self, link: _Link) -> None:
        self.root = self
        self._link = link
        self._limit_hit = False

    def request_stop(self, reason: str | None) -> None:
        self._link.put({"t": "shutdown", "reason": reason})

    @property
    def operator(self) -> NoReturn:
        """``token.supervisor`` of a proc target: its supervisor runs in the parent."""
        msg = (
            "token.supervisor: the supervisor of an Isolated proc runs in the parent process, "
            "so its controls are not reachable from the child; control the Isolated proc from "
            "the parent, or isolate a Supervisor (its procs then have controls of their own)"
        )
        raise RuntimeError(msg)

    @property
    def restart_limit_reached(self) -> bool:
        return self._limit_hit

    @restart_limit_reached.setter
    def restart_limit_reached(self, value: bool) -> None:
        if value and not self._limit_hit:
            self._link.put({"t": "restart_limit"})
        self._limit_hit = value


@final
class _Link:
    """The child's end of the socket: frames out with blocking sends, frames in by waiting.

    Sends are synchronous on purpose: ``token.ready(value)`` and event callbacks are sync,
    and their frame must leave at once, even when the target then blocks the event loop
    (a ready value queued for a task would never cross). The socket stays in blocking mode
    for that; reads do not block it, they wait for readability and use ``MSG_DONTWAIT``.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        #: The ``end`` frame was sent: the run is over as far as the parent is concerned.
        self.ended = False

    def put(self, frame: Frame) -> None:
        self.ended = self.ended or frame.get("t") == "end"
        with contextlib.suppress(OSError):  # the parent is gone: the EOF watch acts on it
            self.sock.sendall(encode(frame))

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """For `FrameReader`: the next bytes from the parent; `EOFError` at its end."""
        while True:
            await anyio.wait_readable(self.sock)
            try:
                data = self.sock.recv(max_bytes, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            if not data:
                raise EOFError
            return data


async def _serve(link: _Link, start: Frame, stopper: Stopper) -> None:
    token = CancellationToken()
    token._run = cast("RunContext", _ParentTree(link))
    path = str(start["path"])
    async with anyio.create_task_group() as tasks:
        force = anyio.CancelScope()  # the target runs in it
        tasks.start_soon(stopper.watch, force)
        tasks.start_soon(_listen, FrameReader(link), token, stopper)
        end = await _run_target(start, path, token, link, force)
        link.put(end)
        tasks.cancel_scope.cancel()


async def _listen(reader: FrameReader, token: CancellationToken, stopper: Stopper) -> None:
    """The parent's ``stop`` cancels the token; EOF means the parent is gone: force."""
    while True:
        frame = await reader.receive()
        if frame is None:
            stopper.force()  # the parent is gone (or closed its end)
            return
        if frame.get("t") == "stop":
            reason = frame.get("reason")
            token.cancel(reason if isinstance(reason, str) else None)


async def _run_target(
    start: Frame, path: str, token: CancellationToken, link: _Link, force: anyio.CancelScope
) -> Frame:
    """Import and run the target; the ``end`` frame saying how it went."""
    try:
        target = _import(str(start["target"]), start.get("main_path"))
    except Exception as exc:  # noqa: BLE001 (a failed import is the run's outcome)
        return _end(error=exc)
    if isinstance(target, SupervisorBuilder):
        try:
            target = target.build()
        except Exception as exc:  # noqa: BLE001 (a ConfigError is the run's outcome)
            return _end(error=exc)
    if isinstance(target, Supervisor):
        return await _run_tree(target, path, token, link, force)
    return await _run_proc(start, target, path, token, link, force)


async def _run_proc(
    start: Frame,
    target: object,
    path: str,
    token: CancellationToken,
    link: _Link,
    force: anyio.CancelScope,
) -> Frame:
    checked = check_proc(target, None)
    if isinstance(checked, Problem):
        error = TypeError(
            f"{path}: the target {target!r} is not a proc ({checked.what}); an Isolated "
            "target must name a proc, an async function, a Supervisor or a SupervisorBuilder"
        )
        return _end(error=error)
    token._slot = _slot_at(path, checked, start)
    token._grace = token._slot.spec.grace
    token._on_ready = lambda value: link.put(
        {"t": "ready", "value": dump_value(value, "ready value", path)}
    )
    result: object = None
    failure: BaseException | None = None
    with force:
        try:
            result = await checked.run_proc(token)
        except Exception as exc:  # noqa: BLE001 (the proc's failure is its outcome)
            failure = exc
        except (KeyboardInterrupt, SystemExit) as exc:
            failure = None if isinstance(exc, SystemExit) and exc.code in (0, None) else exc
    return _end(result=result, error=failure, path=path)


async def _run_tree(
    sup: Supervisor, path: str, token: CancellationToken, link: _Link, force: anyio.CancelScope
) -> Frame:
    """Run *sup* as if nested at *path*: its events carry their real paths, and go to the
    parent (the child logs none of them itself: the parent does, once)."""
    logging.getLogger(logger_name(path)).setLevel(logging.CRITICAL + 1)
    token._on_ready = lambda _value: link.put({"t": "ready", "value": None})
    hub = EventHub((lambda event: link.put(_event_frame(event)),))
    run = sup._open_run(token, path, hub)
    error: BaseException | None = None
    with force:
        try:
            await run.run()
        except SupervisorError as exc:
            error = exc
    return _end(error=error, children=run.outcomes())


def _slot_at(path: str, proc: SupportsRunProc, start: Frame) -> Slot:
    """A slot for the target proc at the Isolated proc's own path, so that its token's
    ``name`` and ``path`` are the ones the parent's report shows."""
    parent, _, name = path.rpartition("/")
    grace = start.get("grace")
    spec = ProcSpec(
        name=name,
        proc=proc,
        factory=None,
        grace=float(grace) if isinstance(grace, (int, float)) else None,
        wait_ready=True,
        ready_timeout=None,
        restart=Restart.TEMPORARY,
        significant=True,
        backoff=None,
    )
    return Slot(spec, parent, 0)


def _event_frame(event: Event) -> Frame:
    return {
        "t": "event",
        "kind": event.kind.value,
        "path": event.path,
        "restarts": event.restarts,
        "detail": event.detail,
        "error": None if event.error is None else dump_error(event.error),
    }


def _end(
    *,
    result: object = None,
    error: BaseException | None = None,
    children: tuple[ProcOutcome, ...] = (),
    path: str = "",
) -> Frame:
    value: str | None = None
    if error is None:
        try:
            value = dump_value(result, "result", path)
        except TypeError as exc:
            error = exc
    return {
        "t": "end",
        "result": value,
        "error": None if error is None else dump_error(error),
        "children": dump_outcomes(children, path),
    }


def _import(target: str, main_path: object) -> object:
    """``"module:attr"`` (attr may be dotted); ``__main__`` is the parent's main script,
    run again here as ``__mp_main__``, as multiprocessing's spawn does."""
    module_name, _, attribute = target.partition(":")
    if module_name == "__main__":
        module = _parent_main(main_path)
    else:
        module = importlib.import_module(module_name)
    found: object = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            msg = f"module {module_name!r} has no attribute {attribute!r} (target {target!r})"
            raise AttributeError(msg) from None
    return found


def _parent_main(main_path: object) -> types.ModuleType:
    import runpy

    if not isinstance(main_path, str):
        msg = "the target names __main__, but the parent has no main script to import"
        raise ImportError(msg)
    module = types.ModuleType("__mp_main__")
    module.__file__ = main_path
    sys.modules["__mp_main__"] = module
    module.__dict__.update(runpy.run_path(main_path, run_name="__mp_main__"))
    return module


if __name__ == "__main__":
    main(sys.argv)
