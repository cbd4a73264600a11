"""SIGINT/SIGTERM at the root, for one run only; the previous handlers come back afterwards.

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
handler the app set with ``loop.add_signal_handler`` for SIGINT/SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

__all__ = ("STOP_SIGNALS", "receive_stop_signals", "signal_name")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

logger = logging.getLogger("super_visor")


def signal_name(signum: int) -> str:
    """``15`` -> ``"SIGTERM"``."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@contextlib.contextmanager
def receive_stop_signals() -> Iterator[AsyncIterator[int] | None]:
    """Receive SIGINT/SIGTERM while the block runs; yields None outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        logger.warning(
            "super_visor handles SIGINT/SIGTERM only in the main thread; this supervisor "
            "runs without them (stop it with handle.shutdown() or by cancelling it)"
        )
        yield None
        return
    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        with anyio.open_signal_receiver(*STOP_SIGNALS) as receiver:
            yield receiver
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)
