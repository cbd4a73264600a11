"""How an ``Isolated`` child stops: on SIGTERM from its parent, and when its parent dies.

How it dies with its parent, also when the parent is SIGKILLed:

- Linux: ``PR_SET_PDEATHSIG`` with a real-time signal. The signal comes when the *thread*
  that spawned us ends (PITFALLS 14: trio spawns from a worker thread that ends when idle),
  so the handler acts only when ``getppid()`` changed: then the parent process is really
  gone. ``getppid()`` is checked once more after ``prctl``, for a parent that died before.
- Everywhere: the socket to the parent reads EOF when the parent's end closes, which the
  kernel does when the parent dies.

Either way the child forces its target at once (a cancel scope, so clean-up code runs) and
a watchdog thread ends the process after `ORPHAN_BOUND` seconds whatever the target does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING, final

import anyio

if TYPE_CHECKING:
    import types

__all__ = ("ORPHAN_BOUND", "Stopper")

#: Seconds an orphaned or force-stopped child has to clean up before it ends itself.
ORPHAN_BOUND = 5.0
_PR_SET_PDEATHSIG = 1


@final
class Stopper:
    """Turns SIGTERM, the parent's death and EOF from the parent into one force of the target.

    Signal handlers are plain ``signal.signal`` ones: they run between bytecodes even while
    the target blocks the event loop, start the watchdog there, and wake the loop through a
    socket pair (the event loop's own wake-up fd belongs to the backend).
    """

    def __init__(self, parent_pid: int) -> None:
        self.parent_pid = parent_pid
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_w.setblocking(False)
        #: Set by the first `force`: the watchdog is running.
        self.forced = False
        signal.signal(signal.SIGTERM, self._on_sigterm)
        if sys.platform == "linux":
            death = signal.SIGRTMIN + 1
            signal.signal(death, self._on_parent_signal)
            _set_parent_death_signal(death)
        if os.getppid() != parent_pid:  # the parent died before prctl: nobody to serve
            os._exit(1)

    def _on_sigterm(self, _signum: int, _frame: types.FrameType | None) -> None:
        self.force()  # the parent forces us: its grace for us ran out

    def _on_parent_signal(self, _signum: int, _frame: types.FrameType | None) -> None:
        if os.getppid() != self.parent_pid:  # else only the spawning thread ended
            self.force()

    def force(self) -> None:
        """Force the target now; end the process after `ORPHAN_BOUND` whatever happens
        (exit code 70, EX_SOFTWARE: its clean-up did not finish)."""
        if not self.forced:
            self.forced = True
            watchdog = threading.Timer(ORPHAN_BOUND, os._exit, args=(70,))
            watchdog.daemon = True
            watchdog.start()
        with contextlib.suppress(OSError):
            self.wake_w.send(b"\0")

    async def watch(self, scope: anyio.CancelScope) -> None:
        """Cancel *scope* once `force` was called (from a handler or from a task)."""
        await anyio.wait_readable(self.wake_r)
        scope.cancel()


def _set_parent_death_signal(signum: int) -> None:
    """``prctl(PR_SET_PDEATHSIG, signum)`` through ctypes (no dependency); best effort."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
