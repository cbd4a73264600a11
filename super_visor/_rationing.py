"""LineBudget: which log lines a storm leaves out (events are never left out).

Rationing is a matter of log output only: `EventHub` asks the budget before it logs an event,
and every event still reaches callbacks and ``events()`` readers. Kinds are read by name, as
in ``_eventlog``, so this module imports nothing of the engine.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from ._events import Event

__all__ = ("STOPPED_LINES_PER_TREE_STOP", "LineBudget")

#: STOPPED lines logged one by one when a whole tree stops; the rest are counted in the
#: root's "shutdown finished" line. Enough for a small app to show every proc stopping in
#: order; a tree of 10,000 procs would otherwise spend its shutdown writing lines.
STOPPED_LINES_PER_TREE_STOP = 50


@final
class LineBudget:
    """Rations the log lines a storm would flood it with; events are never rationed.

    - RESTARTING: at most one line per proc path per second. A crash loop restarts a proc
      thousands of times a second: a line (and a traceback) for each would cost more than
      the restart itself. The first is logged, then one a second, each saying how many were
      left out since the last. The READY line of a restarted run goes with its RESTARTING
      line: left out when that was.
    - STOPPED while the whole tree stops: the first `STOPPED_LINES_PER_TREE_STOP` lines, the
      rest counted in the root's "shutdown finished" line. A proc that did not stop cleanly
      (FORCED, FAILED, ...) is always logged.

    Time is ``time.monotonic()``: it rations log output, not the supervisor's behaviour.
    """

    __slots__ = ("_last_left_out", "_left_out", "_shown_at", "_stopped_lines", "_tree_stopping")

    def __init__(self) -> None:
        self._shown_at: dict[str, float] = {}
        self._left_out: dict[str, int] = {}
        #: The error and restart count of each proc's last RESTARTING left out (see `unsaid`).
        self._last_left_out: dict[str, tuple[BaseException | None, int]] = {}
        #: The root's shutdown has begun: STOPPED lines are counted.
        self._tree_stopping = False
        self._stopped_lines = 0

    def restart_line_due(self, path: str) -> bool:
        """Whether the next RESTARTING line of *path* is logged (none in the last second)."""
        return time.monotonic() - self._shown_at.get(path, -math.inf) >= 1.0

    def leave_out_restart(self, path: str, error: BaseException | None, restarts: int) -> None:
        """One RESTARTING line of *path* is not logged: count it, keep its error."""
        self._left_out[path] = self._left_out.get(path, 0) + 1
        self._last_left_out[path] = (error, restarts)

    def unsaid(self) -> list[tuple[str, int, BaseException | None, int]]:
        """The procs whose last RESTARTING lines were left out and no line followed (a stop
        came before the restart): path, how many, the last one's error and restart count.
        The whole tree has stopped: they are said now, or never."""
        unsaid = [(p, n, *self._last_left_out[p]) for p, n in self._left_out.items()]
        self._left_out.clear()
        return unsaid

    def _log_restart(self, path: str) -> int:
        """A RESTARTING line of *path* is logged now; how many were left out before it."""
        self._shown_at[path] = time.monotonic()
        return self._left_out.pop(path, 0)

    def restart_left_out(self, path: str) -> bool:
        """Whether the last RESTARTING line of *path* was left out."""
        return path in self._left_out

    def stopped_line_due(self) -> bool:
        """Whether a STOPPED line is logged now (counted either way)."""
        self._stopped_lines += 1
        return not self._tree_stopping or self._stopped_lines <= STOPPED_LINES_PER_TREE_STOP

    def stopped_lines_used_up(self) -> bool:
        """Whether the whole tree is stopping and no STOPPED line is due any more."""
        return self._tree_stopping and self._stopped_lines >= STOPPED_LINES_PER_TREE_STOP

    def ration(self, event: Event) -> str | None:
        """What the line of *event* says about lines left out ("" if none), or None when
        the line itself is left out."""
        kind, path = event.kind._name_, event.path
        if kind == "RESTARTING":
            if not self.restart_line_due(path):
                self.leave_out_restart(path, event.error, event.restarts)
                return None
            return _restarts_note(self._log_restart(path))
        if kind == "STOPPED" and not self.stopped_line_due():
            return None
        if kind == "READY" and self.restart_left_out(path):
            return None  # a restarted run's READY shows only with its RESTARTING line
        if kind in _ENDS:
            return _restarts_note(self._left_out.pop(path, 0) if self._left_out else 0)
        return ""

    def follow_tree_stop(self, kind: str, path: str) -> str:
        """Follow the root's shutdown (its path is its name alone, without a ``/``); at its
        end, what its line says about the STOPPED lines left out."""
        if "/" in path:
            return ""
        if kind == "SHUTDOWN_BEGUN":
            self._tree_stopping = True
            self._stopped_lines = 0
        elif kind == "SHUTDOWN_FINISHED":
            self._tree_stopping = False
            left_out = self._stopped_lines - STOPPED_LINES_PER_TREE_STOP
            if left_out > 0:
                return f" ({left_out} more procs stopped, not logged one by one)"
        return ""


#: The kinds that end a proc's run for good: they say how many restart lines were left out.
_ENDS = frozenset({"COMPLETED", "STOPPED", "FAILED", "FORCED", "ABANDONED"})


def _restarts_note(left_out: int) -> str:
    return f" ({left_out} earlier restarts of it not logged)" if left_out else ""
