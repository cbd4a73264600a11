"""Restart policies, strategies and the intensity window (API.md section 6).

Pure logic: nothing here awaits or reads a clock of its own. Callers pass the time in, so the
intensity window is tested without waiting. `Backoff` has its own module (``_backoff``), so
that ``import super_visor`` does not load it.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from typing import TYPE_CHECKING, TypeVar, final

if TYPE_CHECKING:
    from collections.abc import Sequence

T = TypeVar("T")

__all__ = ("IntensityWindow", "Restart", "Strategy", "restart_group")


class Restart(enum.Enum):
    """When a proc is restarted after it ends (OTP's restart types).

    .. versionadded:: 0.1
    """

    #: Restarted whenever it ends, cleanly or not.
    PERMANENT = "permanent"
    #: Restarted only when it failed.
    TRANSIENT = "transient"
    #: Never restarted; the default, so that with no options any proc ending is final.
    TEMPORARY = "temporary"

    def wants_restart(self, *, failed: bool) -> bool:
        """Whether a proc with this policy is restarted after ending (failed or not)."""
        if self is Restart.PERMANENT:
            return True
        return self is Restart.TRANSIENT and failed


class Strategy(enum.Enum):
    """Which procs a supervisor restarts when one of them is restarted (OTP's strategies).

    .. versionadded:: 0.1
    """

    #: Only the proc that ended.
    ONE_FOR_ONE = "one_for_one"
    #: Every proc of the supervisor: stop the others in reverse order, start all in order.
    ONE_FOR_ALL = "one_for_all"
    #: The proc that ended and every proc declared after it.
    REST_FOR_ONE = "rest_for_one"


@final
class IntensityWindow:
    """OTP's restart intensity: at most ``max_restarts`` within ``within`` seconds.

    Restart times live in a sliding window on monotonic time; `add()` reports whether one
    more restart is still allowed. O(1) amortised: old entries leave from the left.
    """

    __slots__ = ("_times", "max_restarts", "within")

    def __init__(self, max_restarts: int, within: float) -> None:
        self.max_restarts = max_restarts
        self.within = within
        self._times: deque[float] = deque()

    def add(self, now: float) -> bool:
        """Record a restart at *now*; False when it exceeds the intensity."""
        times = self._times
        times.append(now)
        horizon = now - self.within
        while times and times[0] <= horizon and not math.isinf(self.within):
            times.popleft()
        return len(times) <= self.max_restarts


def restart_group(strategy: Strategy, slots: Sequence[T], index: int) -> Sequence[T]:
    """The procs, in declared order, that *strategy* restarts when proc *index* ended."""
    if strategy is Strategy.ONE_FOR_ONE:
        return slots[index : index + 1]
    if strategy is Strategy.ONE_FOR_ALL:
        return slots
    return slots[index:]
