"""ManualClock: a clock for restart windows and backoff that only moves when a test says so."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from super_visor import Supervisor


class ManualClock:
    """``now()`` is whatever the test advanced it to; ``sleep()`` waits for an ``advance``.

    ``sleepers`` lets a test wait until something sleeps on the clock (a backoff began),
    instead of guessing how long that takes.
    """

    def __init__(self, *, autojump: bool = False) -> None:
        #: With autojump, a sleep moves time on by its own delay at once (nothing else waits
        #: on this clock in the tests that use it): backoffs pass without real waiting.
        self.autojump = autojump
        self._now = 1000.0
        self._waits: list[tuple[float, anyio.Event]] = []
        self._sleeping = anyio.Event()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if self.autojump:
            self.advance(seconds)
            await anyio.lowlevel.checkpoint()
            return
        wake = anyio.Event()
        self._waits.append((self._now + seconds, wake))
        self._sleeping.set()
        await wake.wait()

    async def wait_sleeper(self) -> float:
        """Wait until something sleeps on this clock; return how long it asked to sleep."""
        while not self._waits:
            self._sleeping = anyio.Event()
            await self._sleeping.wait()
        return self._waits[-1][0] - self._now

    def advance(self, seconds: float) -> None:
        """Move time on, waking every sleep that is due."""
        self._now += seconds
        due = [(deadline, wake) for deadline, wake in self._waits if deadline <= self._now]
        self._waits = [entry for entry in self._waits if entry not in due]
        for _, wake in due:
            wake.set()


def with_clock(sup: Supervisor, clock: ManualClock) -> Supervisor:
    """*sup*, reading *clock* for its restart windows and backoff (nested ones included)."""
    return sup._replace(config=dataclasses.replace(sup.config, clock=clock))
