"""StartupPause: the cyclic garbage collector around a bulk start, when ``run()`` owns it.

Starting 10,000 procs makes some 150,000 objects that all live as long as the run. While
they are made, the collector scans them again and again (about a fifth of start-up), and
every full collection afterwards scans them once more. ``run()`` owns the process, so it
asks the root run to pause the collector during start-up and then to freeze what start-up
made (``gc.freeze()``: out of the collector's sight until the run ends). The pause holds
for every thread of the process, as long as start-up lasts. ``start()`` leaves the
collector alone: it is global state of a process that is not the supervisor's.
"""

from __future__ import annotations

import contextvars
import gc
from typing import final

__all__ = ("OWN_GC", "StartupPause")

#: Set by ``run()`` around its event loop: the root run may pause and freeze the collector.
OWN_GC: contextvars.ContextVar[bool] = contextvars.ContextVar("super_visor_own_gc", default=False)


@final
class StartupPause:
    """The collector paused from `begin` until `started` (then frozen) or `end`."""

    __slots__ = ("_frozen", "_paused")

    def __init__(self) -> None:
        self._paused = True
        self._frozen = False

    @classmethod
    def begin(cls) -> StartupPause | None:
        """Pause the collector, if ``run()`` owns it and it runs; None otherwise."""
        if not OWN_GC.get() or not gc.isenabled():
            return None
        gc.disable()
        return cls()

    def started(self) -> None:
        """Start-up is over: collect what start-up left as garbage once (a gating proc may
        have worked for long), freeze what lives on, and collect again from now on."""
        if self._paused:
            gc.collect()
            gc.freeze()
            self._frozen = True
            self._resume()

    def end(self) -> None:
        """The run is over: collect again (start-up may have failed), and let what was
        frozen be collected once it is garbage."""
        self._resume()
        if self._frozen:
            self._frozen = False
            gc.unfreeze()

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            gc.enable()
