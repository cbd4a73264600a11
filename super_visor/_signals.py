"""SIGINT/SIGTERM (and SIGUSR1) at the root, for one run only; the previous handlers come back.

What the signals mean (API.md section 8): one signal is one request. A repeat of the *same*
signal within `SAME_REQUEST_WITHIN` seconds of its previous delivery is the same request (a
Ctrl-C is often delivered twice at once through npm, poetry or ``docker run``). The first
request stops the tree gracefully, the second forces everything still running, the third ends
the process at once, even while a proc blocks the event loop. SIGUSR1 logs the tree.

How they are received, and why this way:

- Plain ``signal.signal`` handlers (`SignalRequests.handle`), not anyio's receiver. A
  Python-level handler runs between two bytecodes of the main thread, also while a proc blocks
  the event loop in Python code, and inside ``time.sleep`` or a blocking read (the call is
  interrupted, the handler runs, the call resumes: PEP 475). That is the only way a third
  request can end a process whose loop never turns again. The handler does little: it stamps
  the delivery, decides which request it is, queues it, and writes one byte to a socketpair.
- The event loop acts on requests 1 and 2 (stop, force) in `respond_to_signals`, a task that
  waits on the socketpair with ``anyio.wait_readable``: the same code on asyncio and trio, and
  nothing in the handler touches the loop's internals, which it may have interrupted.
- Counting in the handler makes both backends equal: ``anyio.open_signal_receiver`` delivers
  every signal of a burst on asyncio but coalesces them on trio, so a burst of SIGTERMs meant
  "force" on one backend and "stop" on the other. It also restored no handlers on asyncio
  (anyio #689), and trio's re-delivers unread signals when it closes, when the default
  handler (death for SIGTERM) may be back.
- Rejected: ``signal.set_wakeup_fd`` (each loop owns it: trio always, asyncio for
  ``add_signal_handler``; there is one per process); ``loop.add_signal_handler`` (asyncio only,
  and it runs only when the loop turns); ``signalfd`` or a ``sigwait`` thread (Linux only, and
  they need the signals blocked in every thread, including threads started before us).
- The third request is the one place besides ``run()`` and the CLI that decides the process's
  fate: it writes one line naming the procs still running (``os.write``, no logging: it may
  interrupt a log call) and calls ``os._exit(128 + N)``. Nothing else runs: no ``finally`` of
  an abandoned task, no report. The operator asked three times.
- Handlers are installed only while the root supervisor runs, never at import and never by a
  nested supervisor, and only in the main thread (elsewhere the run goes without them and the
  embedding app owns signals). The exact previous handlers come back afterwards, except under
  ``run()``, which asks (`leave_stop_signals_ignored`) to leave SIGINT/SIGTERM ignored: the
  handler is swapped for ``SIG_IGN`` in one call, so no late signal of a burst can kill the
  process or raise KeyboardInterrupt while the report is printed.

Every delivery is logged: the first stop request at INFO (a normal SIGTERM is how an
orchestrator stops a service, not a problem), the one that forces at WARNING, a repeat at DEBUG;
also one read late because the loop was blocked (the line says how late) or after the run had
ended.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NoReturn, final

import anyio

from ._diagnostics import format_tree_dump, report_stuck
from ._events import WARNING, EventKind, get_logger, record_fields
from ._outcome import signal_name
from ._shutdown import abandon_overdue, next_abandon_at
from ._taskgroups import run_beside

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import FrameType

    from ._engine import SupervisorRun
    from ._outcome import SupervisorReport

    #: What ``signal.getsignal`` returns (None: a handler installed from C).
    Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None

__all__ = (
    "DUMP_SIGNAL",
    "SAME_REQUEST_WITHIN",
    "STOP_SIGNALS",
    "Delivery",
    "SignalRequests",
    "leave_stop_signals_ignored",
    "log_tree_dump",
    "receive_stop_signals",
    "respond_to_signals",
    "run_with_signals",
    "signal_name",
)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Dumps the tree with stacks; None where the platform has no SIGUSR1 (Windows).
DUMP_SIGNAL: int | None = getattr(signal, "SIGUSR1", None)
_HANDLED = (*STOP_SIGNALS, *(() if DUMP_SIGNAL is None else (DUMP_SIGNAL,)))

#: Seconds: a repeat of the same signal this soon after its previous delivery is the same request.
SAME_REQUEST_WITHIN: Final = 0.1
#: The request that ends the process at once.
_LAST_REQUEST: Final = 3
#: Seconds: a delivery read this long after the handler ran is logged with its delay.
_LATE_AFTER: Final = 1.0

#: Set by ``run()`` around its event loop (see `leave_stop_signals_ignored`).
_LEAVE_IGNORED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "super_visor_leave_stop_signals_ignored", default=False
)


@contextlib.contextmanager
def leave_stop_signals_ignored() -> Iterator[None]:
    """For ``run()``: the root's handlers give way to ``SIG_IGN`` for SIGINT/SIGTERM, not to
    the previous handlers, so the process ignores them from the end of the run to its exit."""
    token = _LEAVE_IGNORED.set(True)
    try:
        yield
    finally:
        _LEAVE_IGNORED.reset(token)


def _in_worker_thread() -> bool:
    import threading  # lazy: only a run pays for it, not the import

    return threading.current_thread() is not threading.main_thread()


@final
@dataclass(frozen=True, slots=True)
class Delivery:
    """One signal, as the handler saw it."""

    signum: int
    #: When the handler ran (`SignalRequests.clock`, ``time.monotonic`` unless injected).
    at: float
    #: Which stop request it is (1 stop, 2 force); None for SIGUSR1 and for a repeat.
    request: int | None


@final
class SignalRequests:
    """The handler side: stamps and classifies each delivery, and wakes the event loop.

    ``handle`` runs between two bytecodes of whatever the main thread was doing, and a storm
    of signals calls it again from inside itself (Python checks for signals at every call).
    So it only touches its own state, with single C calls (``deque.append``/``popleft``,
    ``next`` of a counter), and a nested call only stamps its delivery and returns: the call
    below it classifies it. Otherwise a burst of thousands of signals nests handlers until
    RecursionError, which would be raised into whatever code the signal interrupted. The
    wake-up byte is sent once per turn of the loop, not once per delivery.
    """

    __slots__ = (
        "_arrived",
        "_classifying",
        "_deliveries",
        "_last",
        "_requests",
        "_still_running",
        "_wake_r",
        "_wake_w",
        "_woken",
        "clock",
    )

    def __init__(
        self,
        still_running: Callable[[], Iterable[str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._still_running = still_running
        #: When the process handles a signal (injected by tests).
        self.clock = clock
        #: (signum, when) as the handler stamped them, not yet classified.
        self._arrived: deque[tuple[int, float]] = deque()
        #: Classified, for the event loop to read.
        self._deliveries: deque[Delivery] = deque()
        self._classifying = False
        self._last: dict[int, float] = {}
        self._requests = itertools.count(1)
        self._woken = False
        import socket  # lazy: only a run that handles signals pays for it

        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)  # a full buffer already means "wake up"

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The ``signal.signal`` handler: queue the delivery; end the process on the third."""
        self._arrived.append((signum, self.clock()))
        while self._arrived and not self._classifying:
            self._classifying = True
            try:
                self._classify_arrived()
            finally:
                self._classifying = False
        if not self._woken and self._deliveries:
            self._woken = True
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def _classify_arrived(self) -> None:
        while self._arrived:
            signum, at = self._arrived.popleft()
            request = self._classify(signum, at)
            if request == _LAST_REQUEST:
                _end_process_now(signum, self._still_running)
            self._deliveries.append(Delivery(signum, at, request))

    def _classify(self, signum: int, at: float) -> int | None:
        if signum == DUMP_SIGNAL:
            return None
        previous = self._last.get(signum)
        self._last[signum] = at
        if previous is not None and at - previous <= SAME_REQUEST_WITHIN:
            return None
        return next(self._requests)

    async def receive(self) -> list[Delivery]:
        """Wait until at least one delivery is queued; return (and forget) all of them."""
        while not self._deliveries:
            await anyio.wait_readable(self._wake_r)
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(4096)
        self._woken = False  # before taking: a delivery queued after the take sends again
        return self.take()

    def take(self) -> list[Delivery]:
        """Every delivery queued so far (none left behind)."""
        taken: list[Delivery] = []
        while self._deliveries:
            taken.append(self._deliveries.popleft())
        return taken

    def close(self) -> None:
        self._wake_r.close()
        self._wake_w.close()


def _end_process_now(signum: int, still_running: Callable[[], Iterable[str]]) -> NoReturn:
    """The third request: one line on stderr, then ``os._exit(128 + signum)``.

    The line is written with ``os.write`` because the handler may have interrupted a write to
    ``sys.stderr`` or a log call; listing the procs may meet the tree halfway through a change,
    so a failure there must not stop the exit.
    """
    try:
        paths = ", ".join(still_running()) or "none"
    except Exception:  # noqa: BLE001 (anything: we are leaving, the line must still be written)
        paths = "(they could not be listed)"
    code = 128 + signum
    line = (
        f"super_visor: third stop request ({signal_name(signum)}): exiting at once with "
        f"{code}; still running: {paths}\n"
    ).encode(errors="replace")
    with contextlib.suppress(OSError):
        while line:
            line = line[os.write(2, line) :]
    os._exit(code)


@contextlib.contextmanager
def receive_stop_signals(run: SupervisorRun) -> Iterator[SignalRequests | None]:
    """Handle SIGINT/SIGTERM/SIGUSR1 while the block runs; None outside the main thread."""
    if _in_worker_thread():
        get_logger().warning(
            "super_visor handles SIGINT/SIGTERM only in the main thread; this supervisor "
            "runs without them (stop it with handle.shutdown() or by cancelling it)",
            extra=record_fields(run.path, None),
        )
        yield None
        return
    requests = SignalRequests(functools.partial(_live_paths, run))
    saved: dict[int, Handler] = {sig: signal.getsignal(sig) for sig in _HANDLED}
    try:
        for sig in _HANDLED:
            signal.signal(sig, requests.handle)
        yield requests
    finally:
        _put_back(saved)
        requests.close()
        for delivery in requests.take():
            _log_after_run(run, delivery)


def _put_back(saved: dict[int, Handler]) -> None:
    """The previous handlers (``SIG_IGN`` for the stop signals under ``run()``).

    A handler installed from C (``getsignal`` gives None) cannot be put back from Python;
    the default action is the closest to it, and better than our handler outliving its run.
    """
    ignore = _LEAVE_IGNORED.get()
    for sig, previous in saved.items():
        if ignore and sig in STOP_SIGNALS:
            previous = signal.SIG_IGN
        signal.signal(sig, signal.SIG_DFL if previous is None else previous)


def _live_paths(run: SupervisorRun) -> list[str]:
    return [slot.path for slot in run.live_slots()]


async def run_with_signals(run: SupervisorRun) -> SupervisorReport:
    """Run *run* with SIGINT/SIGTERM handled (SIGUSR1 dumps the tree)."""
    with receive_stop_signals(run) as requests:
        if requests is None:
            return await run.run()
        return await run_beside(run.run, functools.partial(respond_to_signals, requests, run))


async def respond_to_signals(requests: SignalRequests, run: SupervisorRun) -> None:
    """Act on each delivery, in order, until the run ends (then this task is cancelled).

    Request 1 stops the tree gracefully, request 2 forces every proc still running (then the
    procs that survive it are named every few seconds); a repeat changes nothing; SIGUSR1
    logs the tree with each proc's stack and counts towards nothing.
    """
    async with anyio.create_task_group() as task_group:
        while True:
            for delivery in await requests.receive():
                _respond(delivery, requests, run, task_group)


def _respond(
    delivery: Delivery,
    requests: SignalRequests,
    run: SupervisorRun,
    task_group: anyio.abc.TaskGroup,
) -> None:
    name = signal_name(delivery.signum)
    late = _lateness(delivery, requests.clock())
    if delivery.signum == DUMP_SIGNAL:
        log_tree_dump(run)
    elif delivery.request is None:
        get_logger().debug(
            "%s: %s again within %g s of the previous one%s: the same request, nothing changes",
            run.path,
            name,
            SAME_REQUEST_WITHIN,
            late,
            extra=record_fields(run.path, EventKind.SIGNAL_RECEIVED),
        )
    elif delivery.request == 1:
        run.hub.emit(EventKind.SIGNAL_RECEIVED, run.path, detail=f"{name}{late}")
        run.request_stop(f"signal {name}")
    else:
        _force(run, delivery.signum, f"{name}{late}", task_group)


def _force(run: SupervisorRun, signum: int, said: str, task_group: anyio.abc.TaskGroup) -> None:
    """The second request. When nothing runs any more (the run is ending), there is nothing
    to force, and a burst that outlived the run must not turn a clean stop into 128+N."""
    if next(run.live_slots(), None) is None:
        run.hub.emit(EventKind.SIGNAL_RECEIVED, run.path, detail=f"{said}: nothing left to force")
        return
    run.hub.emit(EventKind.SIGNAL_RECEIVED, run.path, detail=f"{said}: force", level=WARNING)
    run.force_all(signum, f"second signal {signal_name(signum)}")
    task_group.start_soon(_report_stuck_procs, run)


def _lateness(delivery: Delivery, now: float) -> str:
    """Empty, or how late the loop read *delivery* (it was blocked meanwhile)."""
    delay = now - delivery.at
    if delay < _LATE_AFTER:
        return ""
    return f" (read {delay:.1f} s after it arrived: the event loop was blocked)"


def _log_after_run(run: SupervisorRun, delivery: Delivery) -> None:
    """A delivery the loop never read: it came as the run ended, and changed nothing."""
    get_logger().info(
        "%s: %s received as the run ended; it changed nothing",
        run.path,
        signal_name(delivery.signum),
        extra=record_fields(run.path, EventKind.SIGNAL_RECEIVED),
    )


async def _report_stuck_procs(run: SupervisorRun) -> None:
    """After a forcing signal: name every proc still running every few seconds, and abandon
    each one its ``abandon_after`` after the force (the run's own stop walk was cancelled
    with everything else, so this is what keeps that bound)."""
    interval = run.config.stuck_report_interval
    next_report = anyio.current_time() + interval
    while True:
        due = next_abandon_at(list(run.live_slots()))
        await anyio.sleep_until(next_report if due is None else min(due, next_report))
        if abandon_overdue(run, list(run.live_slots())):
            run.leftovers.walk_done(run.report_so_far)
        if anyio.current_time() >= next_report:
            next_report += interval
            for slot in run.live_slots():
                if slot.attempt is None or not slot.attempt.abandoned:
                    report_stuck(run.hub, slot)


def log_tree_dump(run: SupervisorRun) -> None:
    """Log the tree with each proc's stack (answering SIGUSR1)."""
    title = f"{signal_name(DUMP_SIGNAL or 0)}: the tree of {run.path}, with each proc's stack:"
    dump = format_tree_dump(title, run.path, run.all_slots(), run.live_slots())
    get_logger().warning("%s", dump, extra=record_fields(run.path, EventKind.SIGNAL_RECEIVED))
