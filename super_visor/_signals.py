"""SIGINT/SIGTERM (and SIGUSR1) at the root, for one run only; the previous handlers come back.

Why a scoped receiver and a manual restore:

- Handlers are installed only while the root supervisor runs, never at import and never by a
  nested supervisor (a library must not decide the process's fate behind the app's back).
- ``anyio.open_signal_receiver`` goes through the event loop (asyncio's
  ``add_signal_handler`` / trio's wakeup fd), so a signal never raises in the middle of our
  bytecode the way a plain ``signal.signal`` handler or KeyboardInterrupt would.
- On asyncio it does not restore the handlers it replaced (anyio #689): afterwards SIGINT
  would be ``default_int_handler`` instead of ``asyncio.Runner``'s. So we save the handlers
  first and put them back ourselves. On trio it restores them already; restoring again is
  harmless.
- It works only in the main thread. Elsewhere we log that signals are not handled and run
  without them rather than fail: the embedding app owns signals then.

Note for users (also in the docs): on asyncio, while the root runs, our receiver replaces any
handler the app set with ``loop.add_signal_handler`` for SIGINT/SIGTERM/SIGUSR1.

SIGUSR1 never stops anything: it asks for a dump of the tree, each proc with its state and the
stack its task is suspended in, logged at WARNING (the operator asked for it, so it must show
even when INFO is filtered out). It goes through the same receiver, so it is as scoped and as
safe as the stop signals; without it SIGUSR1's default action would kill the process.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from typing import TYPE_CHECKING

import anyio

from ._diagnostics import format_tree_dump, report_stuck
from ._events import EventKind, get_logger
from ._taskgroups import run_beside

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from ._engine import SupervisorRun
    from ._outcome import SupervisorReport

__all__ = (
    "DUMP_SIGNAL",
    "STOP_SIGNALS",
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


def _in_worker_thread() -> bool:
    import threading  # lazy: only a run pays for it, not the import

    return threading.current_thread() is not threading.main_thread()


def signal_name(signum: int) -> str:
    """``15`` -> ``"SIGTERM"``."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@contextlib.contextmanager
def receive_stop_signals() -> Iterator[AsyncIterator[int] | None]:
    """Receive SIGINT/SIGTERM/SIGUSR1 while the block runs; None outside the main thread."""
    if _in_worker_thread():
        get_logger().warning(
            "super_visor handles SIGINT/SIGTERM only in the main thread; this supervisor "
            "runs without them (stop it with handle.shutdown() or by cancelling it)"
        )
        yield None
        return
    saved = {sig: signal.getsignal(sig) for sig in _HANDLED}
    try:
        with anyio.open_signal_receiver(*_HANDLED) as receiver:
            yield receiver
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


async def run_with_signals(run: SupervisorRun) -> SupervisorReport:
    """Run *run* with SIGINT/SIGTERM handled (SIGUSR1 dumps the tree)."""
    with receive_stop_signals() as signals:
        if signals is None:
            return await run.run()
        return await run_beside(run.run, functools.partial(respond_to_signals, signals, run))


async def respond_to_signals(signals: AsyncIterator[int], run: SupervisorRun) -> None:
    """First signal: graceful shutdown. Second: force everything, then name what is stuck.

    SIGUSR1 is not a stop signal: it logs the tree with each proc's state and stack (a
    debugging aid for a live process) and counts towards nothing. Signals keep being read
    until the run ends, also after the force: on trio an unread signal is re-delivered when
    the receiver closes, and by then the default handler (death for SIGTERM) is back.
    """
    received = 0
    async with anyio.create_task_group() as task_group:
        async for signum in signals:
            if signum == DUMP_SIGNAL:
                log_tree_dump(run)
                continue
            received += 1
            run.hub.emit(EventKind.SIGNAL_RECEIVED, run.path, detail=signal_name(signum))
            if received == 1:
                run.request_stop(f"signal {signal_name(signum)}")
            elif received == 2:
                run.force_all(signum, f"second signal {signal_name(signum)}")
                task_group.start_soon(_report_stuck_procs, run)


async def _report_stuck_procs(run: SupervisorRun) -> None:
    """After a forcing signal: name every proc still running, every few seconds."""
    interval = run.config.stuck_report_interval
    while True:
        await anyio.sleep(interval)
        for slot in run.live_slots():
            report_stuck(run.hub, slot)


def log_tree_dump(run: SupervisorRun) -> None:
    """Log the tree with each proc's stack (answering SIGUSR1)."""
    title = f"{signal_name(DUMP_SIGNAL or 0)}: the tree of {run.path}, with each proc's stack:"
    dump = format_tree_dump(title, run.path, run.all_slots(), run.live_slots())
    get_logger().warning("%s", dump)
