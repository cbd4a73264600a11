"""Thread: a blocking function as a proc, stopped through a flag, abandoned if it won't stop.

Why our own daemon thread and not ``anyio.to_thread.run_sync(..., abandon_on_cancel=True)``:
an abandoned call keeps running in its thread, and anyio's worker threads on asyncio are not
daemon threads, so one that never returns keeps the interpreter from exiting (PITFALLS 8:
``threading._shutdown`` joins every non-daemon thread). A daemon thread does not hold up the
exit. Completion reaches the event loop through a socket pair: the thread closes its end when
``fn`` returns, the proc waits for the other end to become readable. Nothing calls back into
the event loop from the thread, so a thread finishing after the loop has closed is harmless.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import TYPE_CHECKING, TypeAlias, final

import anyio

from .._events import EventKind, record_fields
from .._proc import function_name
from .._validate import check_function, check_seconds, valid
from ._common import FORCE_RESERVE

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._token import CancellationToken

    #: What ``fn`` returned or raised, as ``(value, error)``; empty while it runs.
    _Outcome: TypeAlias = list[tuple[object, BaseException | None]]

__all__ = ("Thread", "ThreadAbandoned")


class ThreadAbandoned(Exception):
    """A `Thread` proc's function did not return within its grace after its stop flag was set.

    The thread is left running (it is a daemon thread, so it does not keep the process from
    exiting); the proc ends with this error, so the report says the thread was abandoned
    rather than shutdown hanging on it. ``name`` and ``grace`` keep the details.

    .. versionadded:: 0.1
    """

    def __init__(self, name: str, grace: float) -> None:
        self.name = name
        self.grace = grace
        super().__init__(
            f"thread {name!r} still running {grace:g}s after its stop flag was set; "
            "abandoned (a daemon thread: it runs on until its function returns). "
            "Check stop.is_set() more often in the function, or raise its grace"
        )


@final
class Thread:
    """Run ``fn(stop, *args)`` in a thread; *stop* is a `threading.Event` set on stop.

    The function should return soon after ``stop.is_set()`` becomes true (check it in the
    loop, or use ``stop.wait(timeout)`` instead of ``time.sleep``). Its return value is the
    proc's result, its exception the proc's error.

    Outcomes on stop: the flag is set, and the function gets the proc's grace to return:
    *grace*, unless ``add_proc(..., grace=...)`` or a ``SUPER_VISOR_..._GRACE`` override
    set another (the value ``check`` shows is the one in force). After that the thread is
    abandoned and the proc fails with `ThreadAbandoned`, so the report names it; shutdown
    goes on. The supervisor waits one second more (``force_reserve``) before it would
    force-cancel the proc, room to decide and report; if it force-cancels the proc anyway
    (a second signal), the thread is abandoned the same way, a warning is logged and the
    outcome is ``FORCED``.

    *fn* must be a plain function: an async one (or a coroutine object) is a
    `~super_visor.ConfigError` here, since a thread would only create a coroutine that
    nobody awaits.

    ``thread`` is the `threading.Thread` of the current or last run (None before the first),
    e.g. to ``join()`` it in a test.

    .. warning::
       An abandoned thread cannot be stopped by anything in Python. It keeps its locks,
       files and sockets until its function returns.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        fn: Callable[..., object],
        *args: object,
        name: str | None = None,
        grace: float = 5.0,
    ) -> None:
        self.name = name or function_name(fn) or "thread"
        fix = (
            "pass a blocking function taking the stop event, e.g. Thread(poll, ...); an "
            "async function is a proc by itself (add_proc(fn)), or use Periodic"
        )
        valid(self.name, check_function("fn", fn, want_async=False, fix=fix))
        self.fn = fn
        #: The flag's grace when no supervisor says otherwise; the grace in force after
        #: overrides (carried by the token) wins, see `run_proc`.
        self.grace = valid(self.name, check_seconds("grace", grace))
        #: Room the supervisor leaves after the grace to abandon the thread and report it.
        self.force_reserve = FORCE_RESERVE
        self.args = args
        self.logger = logging.getLogger(f"super_visor.procs.{self.name}")
        self.thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Thread({self.name!r})"

    async def run_proc(self, token: CancellationToken, /) -> object:
        stop = threading.Event()
        outcome: _Outcome = []
        finished, notify = socket.socketpair()
        thread = self._start(stop, outcome, finished, notify)
        grace = self.grace if token._grace is None else token._grace
        path = token.path or self.name  # for the sv_path of our records
        try:
            with token.cancel_scope():
                await anyio.wait_readable(finished)
            if not outcome:
                await self._stop(stop, finished, outcome, grace, path)
        except anyio.get_cancelled_exc_class():
            if not outcome:
                stop.set()
                self.logger.warning(
                    "%s: force-cancelled; thread abandoned",
                    self.name,
                    extra=record_fields(path, EventKind.ABANDONED),
                )
            raise
        finally:
            finished.close()
        # The function has returned and the thread is past its last line: reap it, so no
        # thread of ours outlives the proc (a join of a finishing thread does not block).
        thread.join(timeout=1.0)
        return self._result(*outcome[0])

    def _start(
        self,
        stop: threading.Event,
        outcome: _Outcome,
        finished: socket.socket,
        notify: socket.socket,
    ) -> threading.Thread:
        """Start ``fn`` in a daemon thread that records its outcome, then closes *notify*."""

        def target() -> None:
            try:
                outcome.append((self.fn(stop, *self.args), None))
            except BaseException as exc:  # noqa: BLE001 (carried to the proc, which raises it)
                outcome.append((None, exc))
            finally:
                notify.close()  # wakes the proc: its end becomes readable (EOF)

        thread = self.thread = threading.Thread(
            target=target, name=f"super_visor.procs.{self.name}", daemon=True
        )
        try:
            thread.start()
        except BaseException:
            finished.close()
            notify.close()  # the thread never ran, so nothing else closes its end
            raise
        return thread

    def _result(self, value: object, error: BaseException | None) -> object:
        """What ``fn`` returned, or what it raised, raised again in the proc.

        A `BaseException` that is not an `Exception` (``SystemExit`` in the thread) is
        wrapped: raised as itself it would escape the supervisor, which turns only an
        `Exception` into the proc's outcome.
        """
        if error is None:
            return value
        if isinstance(error, Exception):
            raise error
        msg = f"thread {self.name!r} ended with {error!r}"
        raise RuntimeError(msg) from error

    async def _stop(
        self,
        stop: threading.Event,
        finished: socket.socket,
        outcome: _Outcome,
        grace: float,
        path: str,
    ) -> None:
        stop.set()
        with anyio.move_on_after(grace):
            await anyio.wait_readable(finished)
        if not outcome:
            self.logger.warning(
                "%s: still running %ss after its stop flag was set; thread abandoned",
                self.name,
                grace,
                extra=record_fields(path, EventKind.ABANDONED),
            )
            raise ThreadAbandoned(self.name, grace)
