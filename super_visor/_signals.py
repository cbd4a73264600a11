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
import signal
from typing import TYPE_CHECKING

import anyio

from ._events import get_logger
from ._stacks import format_coroutine_stack

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Iterator

    from ._slot import Slot

__all__ = (
    "DUMP_SIGNAL",
    "STOP_SIGNALS",
    "format_tree_dump",
    "log_tree_dump",
    "receive_stop_signals",
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


def log_tree_dump(root: str, slots: Iterable[Slot], live: Iterable[Slot]) -> None:
    """Log the tree (answering SIGUSR1); see `format_tree_dump`."""
    get_logger().warning("%s", format_tree_dump(root, slots, live))


def format_tree_dump(root: str, slots: Iterable[Slot], live: Iterable[Slot]) -> str:
    """The root's procs in declared order, each followed by the live procs nested in it.

    *slots* are the root's own procs; *live* is ``run.live_slots()`` (depth-first), which is
    how the procs of nested supervisors are reached. Every proc that is not a supervisor shows
    the stack its task is suspended in: what it is waiting on right now.
    """
    lines = [f"{signal_name(DUMP_SIGNAL or 0)}: the tree of {root}, with each proc's stack:"]
    pending = list(live)
    position = 0
    for slot in slots:
        lines.extend(_dump_slot(slot, root))
        if position < len(pending) and pending[position] is slot:
            position += 1
            while position < len(pending) and pending[position].path.startswith(f"{slot.path}/"):
                lines.extend(_dump_slot(pending[position], root))
                position += 1
    return "\n".join(lines)


def _dump_slot(slot: Slot, root: str) -> list[str]:
    indent = "  " * slot.path[len(root) :].count("/")
    parts = [f"{indent}{slot.path}: {slot.state.name}"]
    if not slot.live and slot.status is not None:
        parts[0] += f" ({slot.status.value})"
    if slot.restarts:
        parts.append(f"restarts {slot.restarts}")
    lines = [", ".join(parts)]
    if slot.live and slot.task is not None and not hasattr(slot.spec.proc, "_open_run"):
        stack = format_coroutine_stack(slot.task.coro)
        lines.extend(f"{indent}    {line}" for line in stack.splitlines())
    return lines
