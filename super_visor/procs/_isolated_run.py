"""One run of an `Isolated` proc's child process: spawn, talk, stop, force, reap, verdict.

The stop, in order (the proc's grace is the supervisor's, as for any proc):

1. the proc's token is cancelled: a ``stop`` frame cancels the child's token, and the child's
   procs stop with their own graces;
2. the grace (and the proc's ``force_reserve``, room for an adapter in the child that
   enforces the grace itself) runs out and the supervisor force-cancels the proc: SIGTERM
   to the child's process group (the child forces its procs, so their clean-up runs, and
   still reports its outcomes), `FORCE_RESERVE` seconds for it to exit, then SIGKILL;
3. whatever happened, the child is reaped and its group is gone before the proc returns or
   raises, so the outcome is reported only once nothing of the child runs any more.

The child is a process group leader (``start_new_session``), as `Command`'s children are,
so the signals reach whatever it started in its group too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, final

import anyio

from .._errors import SupervisorError
from .._events import EventKind
from .._isolated_wire import (
    PROTOCOL,
    FrameReader,
    IsolatedError,
    encode,
    load_error,
    load_outcomes,
    load_value,
)
from .._outcome import SupervisorReport
from ._command import describe_exit
from ._common import FORCE_RESERVE
from ._pgroup import signal_group, wait_group_gone

if TYPE_CHECKING:
    from anyio.abc import Process, SocketStream

    from .._events import EventHub
    from .._isolated_wire import Frame
    from .._outcome import ProcOutcome
    from .._token import CancellationToken
    from ._isolated import IsolatedProc

__all__ = ("ChildRun",)

#: Bound on the shielded clean-up (SIGKILL, reap); see ``_command``.
_CLEANUP_TIMEOUT = 5.0
#: Seconds a child that reported its end may take to exit before it is killed (atexit
#: handlers, a non-daemon thread that will never end).
_EXIT_TIMEOUT = 2.0


@final
class ChildRun:
    """One child process of an `IsolatedProc`, from spawn to reap."""

    def __init__(self, proc: IsolatedProc, path: str, hub: EventHub | None) -> None:
        self.proc = proc
        self.path = path
        self.hub = hub
        self.end: Frame | None = None
        self.children: tuple[ProcOutcome, ...] = ()
        self.broken: Exception | None = None
        self.process: Process | None = None
        self.stream: SocketStream | None = None
        self.reader: FrameReader | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "the child was not spawned"
        return self.process.pid

    async def run(self, token: CancellationToken, backend: str) -> object:
        """Run the child until it ended; its result, or its error raised here."""
        try:
            await self._spawn(token, backend)
            await self._talk(token)
        except anyio.get_cancelled_exc_class():
            with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True):
                await self._force()
            raise
        finally:
            with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True):
                await self._reap()
            self.proc.pid = None
        return self._verdict()

    async def _spawn(self, token: CancellationToken, backend: str) -> None:
        ours, theirs = socket.socketpair()
        proc = self.proc
        try:
            self.process = await anyio.open_process(
                [
                    sys.executable,
                    "-m",
                    "super_visor._isolated_child",
                    str(theirs.fileno()),
                    str(os.getpid()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=None,
                stderr=None,
                env=proc.child_env(),
                cwd=proc.cwd,
                start_new_session=True,
                pass_fds=(theirs.fileno(), *proc.fds),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        proc.pid = self.process.pid
        self.stream = await anyio.abc.SocketStream.from_socket(ours)
        self.reader = FrameReader(self.stream)
        await self._send(self._start_frame(token, backend))

    def _start_frame(self, token: CancellationToken, backend: str) -> Frame:
        main = sys.modules.get("__main__")
        main_path = getattr(main, "__file__", None)
        return {
            "t": "start",
            "v": PROTOCOL,
            "target": self.proc.target,
            "path": self.path,
            "backend": self.proc.backend or backend,
            "sys_path": list(sys.path),
            "main_path": None if main_path is None else os.path.abspath(main_path),
            "grace": token._grace,
            "log_level": logging.getLogger().getEffectiveLevel(),
        }

    async def _send(self, frame: Frame) -> None:
        assert self.stream is not None
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self.stream.send(encode(frame))

    async def _talk(self, token: CancellationToken) -> None:
        """Pass the stop request on, and read frames until the child closes its end."""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._pass_stop, token)
            await self._read_all(token)
            tasks.cancel_scope.cancel()
        assert self.process is not None
        with anyio.move_on_after(_EXIT_TIMEOUT):
            await self.process.wait()

    async def _pass_stop(self, token: CancellationToken) -> None:
        await token.wait()
        await self._send({"t": "stop", "reason": token.reason})

    async def _read_all(self, token: CancellationToken | None) -> None:
        assert self.reader is not None
        while True:
            try:
                frame = await self.reader.receive()
            except ValueError as exc:  # a broken frame: the child cannot be trusted to go on
                self.broken = IsolatedError(self.path, f"the child sent a broken frame: {exc}")
                return
            if frame is None:
                return
            self._take(frame, token)

    def _take(self, frame: Frame, token: CancellationToken | None) -> None:
        kind = frame.get("t")
        if kind == "ready" and token is not None:
            token.ready(self._ready_value(frame.get("value")))
        elif kind == "shutdown" and token is not None and token._run is not None:
            reason = frame.get("reason")
            token.request_shutdown(reason if isinstance(reason, str) else None)
        elif kind == "restart_limit" and token is not None and token._run is not None:
            token._run.root.restart_limit_reached = True
        elif kind == "event":
            self._emit(frame)
        elif kind == "log":
            _relog(frame, self.pid)
        elif kind == "end":
            self.end = frame
            self.children = load_outcomes(frame.get("children", []), self.pid)

    def _ready_value(self, text: object) -> object:
        try:
            return load_value(text)
        except Exception as exc:  # noqa: BLE001 (the class of the value may not exist here)
            self.broken = IsolatedError(
                self.path,
                f"the child's ready value cannot be unpickled in the parent ({exc!r}); "
                "pass a value built from classes the parent can import",
            )
            return None

    def _emit(self, frame: Frame) -> None:
        """Re-emit one of the child's events in the parent, under its real path."""
        if self.hub is None:
            return
        kind = EventKind(frame["kind"])
        error_info = frame.get("error")
        path = str(frame["path"])
        error = None if not isinstance(error_info, dict) else load_error(error_info, path, self.pid)
        self.hub.emit(
            kind,
            path,
            error=error,
            restarts=int(str(frame.get("restarts", 0))),
            detail=str(frame.get("detail", "")),
        )

    async def _force(self) -> None:
        """Forced after the grace: SIGTERM to the group, the reserve to exit, then SIGKILL."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        signal_group(process.pid, signal.SIGTERM)
        with anyio.move_on_after(FORCE_RESERVE):
            if self.reader is not None:
                await self._read_all(None)  # the child's last events and its end frame
            await process.wait()

    async def _reap(self) -> None:
        """SIGKILL the group (the child, or what it left behind), reap, close the socket."""
        if self.stream is not None:
            await self.stream.aclose()
        process = self.process
        if process is None:
            return
        signal_group(process.pid, signal.SIGKILL)
        await process.wait()
        await process.aclose()
        await wait_group_gone(process.pid)

    def _verdict(self) -> object:
        """The child's result, or the error that its run is."""
        if self.broken is not None:
            raise self.broken
        end = self.end
        if end is None:
            assert self.process is not None
            returncode = self.process.returncode
            assert returncode is not None, "the verdict comes after the reap"
            raise IsolatedError(
                self.path,
                f"the child process (pid {self.pid}) {describe_exit(returncode)} before it "
                "reported an outcome (os._exit, a crash, or a signal)",
                returncode=returncode,
            )
        error = end.get("error")
        if isinstance(error, dict):
            raise self._error(error)
        return load_value(end.get("result"))

    def _error(self, info: Frame) -> Exception:
        """The child's error; a failed tree's `SupervisorError` is rebuilt around the
        rebuilt errors of its failed procs, as for a supervisor nested in process."""
        leaves = [
            outcome.error
            for root in self.children
            for outcome in root.walk()
            if outcome.failed and not outcome.children and isinstance(outcome.error, Exception)
        ]
        if info.get("name") != "SupervisorError" or not leaves:
            return load_error(info, self.path, self.pid)
        report = SupervisorReport(self.path, self.children, "the isolated tree failed")
        error = SupervisorError(str(info["message"]), leaves, report)
        error.add_note(f"Traceback in the isolated child (pid {self.pid}):\n{info['traceback']}")
        return error


def _relog(frame: Frame, pid: int) -> None:
    """Hand one of the child's log records to the parent's logger of the same name."""
    level = int(str(frame["level"]))
    logger = logging.getLogger(str(frame["name"]))
    if not logger.isEnabledFor(level):
        return
    created = float(str(frame["created"]))
    fields = frame.get("fields")
    record = logging.makeLogRecord(
        {
            **(fields if isinstance(fields, dict) else {}),
            "name": logger.name,
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": str(frame["message"]),
            "exc_text": frame.get("exc") or None,
            "created": created,
            "msecs": (created % 1) * 1000,
            "process": pid,
            "processName": "isolated",
        }
    )
    logger.handle(record)
