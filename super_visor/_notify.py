"""systemd ``Type=notify``: the root run tells the service manager how the tree is doing.

The protocol is one datagram per message to the ``AF_UNIX`` socket named by
``NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket), so no dependency is needed.
What is sent, and when (API.md section 9):

- ``READY=1`` once, on the root's own READY event: every proc of the tree is ready.
- ``STATUS=<one line>`` after every event (each is a state change of the tree), at most one
  every `STATUS_INTERVAL` seconds; a change that arrives in between is sent when the interval
  ends, so the latest state is always out within a second.
- ``STOPPING=1`` from inside the root's SHUTDOWN_BEGUN event, so it goes out before any
  proc is asked to stop.
- ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` (when ``WATCHDOG_PID`` is unset or ours), sent
  by a task of the event loop, so a blocked loop sends none. A tick that comes later than
  a whole period after the previous one (the loop was blocked that long) is skipped too: the
  service manager may already have judged us, and a ping sent then would only blur its
  verdict. None is sent once any supervisor of the tree gave up (restart limit): the tree
  may go on, but it is not the tree that was deployed, and systemd restarting the service is
  the fix.
- ``EXTEND_TIMEOUT_USEC=`` every `EXTEND_STEP` seconds of a stop that is still within the
  plan's worst-case shutdown (`shutdown_bound`); past it, no more, so the manager's
  ``TimeoutStopSec=`` decides.

Sending never blocks and never raises into the tree: the socket is non-blocking, a full
socket buffer drops the message, and a missing or refusing socket is logged once at WARNING.
A bug in this module is logged once and turns notifying off for the rest of the run; the
tree goes on (under ``WatchdogSec=`` the missing pings then let systemd restart it).

One notifier per process: the first root run claims it, until it ends. A proc that runs
a tree of its own in the same process sends nothing, and children started by our procs
(`Command`) do not inherit `NOTIFY_VARIABLES`, so none of them can speak for this service
(``sd_notify``'s *unset_environment*, for children only).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import socket
import threading
from typing import TYPE_CHECKING, Final, TypeVar, final

import anyio

from ._events import EventKind, get_logger, record_fields
from ._plan import shutdown_bound
from ._taskgroups import run_beside

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping

    from ._context import RunContext
    from ._events import Event
    from ._status import TreeStatus
    from ._supervisor import Supervisor

__all__ = (
    "EXTEND_STEP",
    "NOTIFY_VARIABLES",
    "STATUS_INTERVAL",
    "Notifier",
    "child_environment",
    "with_systemd_notify",
)

T = TypeVar("T")

#: Seconds between two ``STATUS=`` lines at most (a few per second, the latest within one).
STATUS_INTERVAL: Final = 0.25
#: Seconds between two ``EXTEND_TIMEOUT_USEC=`` messages during a long stop; each one asks
#: for three steps, so one late step does not make the service manager give up.
EXTEND_STEP: Final = 1.0
#: What the service manager gives this process alone: kept from every child we start.
NOTIFY_VARIABLES: Final = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")

#: Whether a root run of this process holds the notifier now (see `_claim`).
_claimed = False
_claim_lock = threading.Lock()


def child_environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """The environment for a child process: *env* (None: ours), without `NOTIFY_VARIABLES`,
    so the child cannot send ``READY=1`` or ``STOPPING=1`` in our name."""
    source = os.environ if env is None else env
    return {key: value for key, value in source.items() if key not in NOTIFY_VARIABLES}


@contextlib.contextmanager
def _claim() -> Iterator[bool]:
    """True for the first root run of this process (until it ends); False for a run
    started inside it, which must not speak for the service."""
    global _claimed  # one service manager per process, by its nature
    with _claim_lock:
        mine = not _claimed
        _claimed = True
    try:
        yield mine
    finally:
        if mine:
            with _claim_lock:
                _claimed = False


async def with_systemd_notify(
    run: RunContext, sup: Supervisor, main: Callable[[], Awaitable[T]]
) -> T:
    """Await ``main()`` (the root's run) while telling systemd about it, when
    ``NOTIFY_SOCKET`` is set; otherwise just await it."""
    with _claim() as mine:
        notifier = Notifier.from_environ(os.environ, run.path) if mine else None
        if notifier is None:
            return await main()
        with notifier:
            return await _notifying(notifier, run, sup, main)


async def _notifying(
    notifier: Notifier, run: RunContext, sup: Supervisor, main: Callable[[], Awaitable[T]]
) -> T:
    session = _Session(notifier, run, shutdown_bound(sup, abandoned=True))
    run.hub = run.hub.with_callbacks((session.on_event,))
    helpers = [session.send_status, session.extend_stop]
    period = watchdog_period(os.environ)
    if period is not None:
        helpers.append(functools.partial(session.keep_watchdog, period))
    try:
        return await run_beside(main, *(session.guarded(helper) for helper in helpers))
    finally:
        session.safely(session.flush_status)


def watchdog_period(environ: Mapping[str, str]) -> float | None:
    """The watchdog period in seconds (``WATCHDOG_USEC``), or None when there is none for
    this process (unset, not a positive number, or ``WATCHDOG_PID`` names another one)."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid is not None and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000


@final
class Notifier:
    """A non-blocking datagram socket to the service manager; `send` never raises."""

    __slots__ = ("_address", "_path", "_socket", "_warned")

    def __init__(self, address: str, path: str) -> None:
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], path: str) -> Notifier | None:
        """The notifier for ``NOTIFY_SOCKET``, or None when it is unset or not a unix socket
        (``vsock:`` addresses are logged once and ignored)."""
        address = environ.get("NOTIFY_SOCKET", "")
        if not address:
            return None
        if not address.startswith(("/", "@")):
            get_logger().warning(
                "%s: NOTIFY_SOCKET=%r is not a unix socket path or @name (only those are "
                "supported); the service manager will not hear from this service: unset "
                "NOTIFY_SOCKET, or pass notify=False",
                path,
                address,
                extra=record_fields(path, None),
            )
            return None
        return cls(address, path)

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._socket.close()

    def send(self, message: str) -> None:
        """Send *message*; drop it when the socket's buffer is full, warn once if the socket
        is missing or refuses it."""
        try:
            self._socket.sendto(message.encode(), self._address)
        except BlockingIOError:
            pass  # the manager is behind; a later message carries the news
        except OSError as exc:
            self._warn(exc)

    def _warn(self, exc: OSError) -> None:
        if self._warned:
            return
        self._warned = True
        get_logger().warning(
            "%s: cannot notify systemd through NOTIFY_SOCKET (%s); the service manager "
            "will not see readiness, status or watchdog pings (is the socket still there?)",
            self._path,
            exc,
            extra=record_fields(self._path, None),
        )


@final
class _Session:
    """What one root run has told the service manager, and the tasks that keep telling."""

    def __init__(self, notifier: Notifier, run: RunContext, stop_bound: float) -> None:
        self._notifier = notifier
        self._run = run
        self._stop_bound = stop_bound
        self._changed = anyio.Event()
        self._stopping = anyio.Event()
        self._dirty = False
        self._last = ""
        self._ready_sent = False
        self._off = False

    def guarded(
        self, helper: Callable[[], Coroutine[object, object, None]]
    ) -> Callable[[], Coroutine[object, object, None]]:
        """*helper*, with any `Exception` it raises logged (once) and notifying turned off,
        instead of escaping into the run (where it would cancel the whole tree)."""

        async def run_guarded() -> None:
            try:
                await helper()
            except Exception as exc:  # noqa: BLE001 (our bug must not end the tree)
                self._give_up(exc)

        return run_guarded

    def safely(self, action: Callable[[], None]) -> None:
        """Call *action*; an `Exception` it raises is logged once and turns notifying off
        (in a ``finally``, it would replace the run's report or error)."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 (our bug must not replace the report)
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        if self._off:
            return
        self._off = True
        get_logger().error(
            "%s: systemd notify failed and is off for the rest of this run; the tree goes "
            "on (with WatchdogSec= set, systemd will restart the service); a bug in "
            "super_visor: please report it with this traceback",
            self._run.path,
            exc_info=exc,
            extra=record_fields(self._run.path, None),
        )

    def _send(self, message: str) -> None:
        if not self._off:
            self._notifier.send(message)

    def on_event(self, event: Event) -> None:
        """The hub's callback: READY and STOPPING at once, STATUS via `send_status`."""
        if not self._off:
            self.safely(functools.partial(self._on_event, event))

    def _on_event(self, event: Event) -> None:
        root = event.path == self._run.path
        if root and event.kind is EventKind.READY and not self._ready_sent:
            self._ready_sent = True
            self._send("READY=1")
        elif root and event.kind is EventKind.SHUTDOWN_BEGUN and not self._stopping.is_set():
            self._send("STOPPING=1")
            self._stopping.set()
        self._last = f"{event.path} {event.kind.value.replace('_', ' ')}"
        self._dirty = True
        self._changed.set()

    async def send_status(self) -> None:
        """One ``STATUS=`` line per change, at most one every `STATUS_INTERVAL` seconds."""
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            self.flush_status()
            await anyio.sleep(STATUS_INTERVAL)

    def flush_status(self) -> None:
        """Send the current state if it changed since the last line."""
        if self._dirty:
            self._dirty = False
            self._send(f"STATUS={status_line(self._run.status(), self._last)}")

    async def keep_watchdog(self, period: float) -> None:
        """``WATCHDOG=1`` every half *period* while the loop runs on time and no supervisor
        of the tree gave up."""
        previous = anyio.current_time()
        while True:
            now = anyio.current_time()
            blocked = now - previous > period
            previous = now
            if blocked:
                self._log_blocked(period)
            elif not self._run.root.restart_limit_reached:
                self._send("WATCHDOG=1")
            await anyio.sleep(period / 2)

    def _log_blocked(self, period: float) -> None:
        get_logger().warning(
            "%s: the event loop was blocked for more than the watchdog period (%gs); no "
            "WATCHDOG=1 for that tick (a proc is blocking the loop: move its blocking work "
            "to a thread, e.g. super_visor.procs.Thread)",
            self._run.path,
            period,
            extra=record_fields(self._run.path, None),
        )

    async def extend_stop(self) -> None:
        """During the stop: ``EXTEND_TIMEOUT_USEC`` every `EXTEND_STEP` seconds while the
        stop is still within its planned bound; nothing once it is past it."""
        await self._stopping.wait()
        began = anyio.current_time()
        while True:
            await anyio.sleep(EXTEND_STEP)
            left = self._stop_bound - (anyio.current_time() - began)
            if left <= 0:
                return
            usec = math.ceil(min(left, 3 * EXTEND_STEP) * 1_000_000)
            self._send(f"EXTEND_TIMEOUT_USEC={usec}")


def status_line(status: TreeStatus, last: str) -> str:
    """One line for ``STATUS=``: the phase, how many procs are ready, the restarts, whether
    a supervisor gave up, and the latest event (``running: 4/4 procs ready; last: ...``)."""
    procs = list(status.walk())
    ready = sum(proc.ready for proc in procs)
    line = f"{status.state.value}: {ready}/{len(procs)} procs ready"
    if status.state == "stopping":
        left = sum(proc.state.is_live for proc in procs)
        line = f"stopping: {left}/{len(procs)} procs still running"
    restarts = sum(proc.restarts for proc in procs)
    if restarts:
        line += f", {restarts} restarts"
    if status.restart_limit_reached:
        line += ", a supervisor gave up (restart limit)"
    if last:
        line += f"; last: {last}"
    return " ".join(line.split())  # one line, whatever the paths hold
