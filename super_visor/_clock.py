"""The clock a supervisor run reads for restart windows and backoff delays.

Injected rather than read directly, so the restart intensity and the backoff can be driven by
a test's own clock instead of real sleeps (trio's MockClock, tokio's paused time: neither
exists on asyncio, so we inject time instead of faking it). Grace periods stay on the event
loop's real time: they bound real work of real procs.
"""

from __future__ import annotations

from typing import Protocol, final

import anyio

__all__ = ("SYSTEM_CLOCK", "Clock", "SystemClock")


class Clock(Protocol):
    """Monotonic seconds, and a sleep measured on the same clock."""

    def now(self) -> float:
        """The current time in seconds (any origin; only differences matter)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once *seconds* have passed on this clock (a checkpoint: cancellable)."""
        ...


@final
class SystemClock:
    """The event loop's own monotonic clock (``anyio.current_time``/``anyio.sleep``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SystemClock()"

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


#: The default clock of every run.
SYSTEM_CLOCK = SystemClock()
