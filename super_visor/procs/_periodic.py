"""Periodic: an async function called on a fixed schedule, never overlapping itself."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

import anyio

from .._errors import ConfigError
from .._events import record_fields
from .._proc import function_name
from .._validate import check_function, check_seconds, valid

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._token import CancellationToken

__all__ = ("Periodic", "PeriodicStats")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodicStats:
    """What a `Periodic` did so far: ``runs`` calls that returned, ``missed`` ticks skipped
    because a call was still running when they came.

    .. versionadded:: 0.1
    """

    runs: int
    missed: int


@final
class Periodic:
    """Call ``await fn(*args)`` every *every* seconds until the proc is stopped.

    Ticks sit on a fixed grid (start, start + every, ...), so a slow call does not shift
    the schedule. Calls never overlap: a tick that comes while a call still runs is skipped
    and counted in ``statistics().missed`` (and logged at DEBUG), and the next call runs at
    the next tick of the grid.

    A stop request between calls ends the proc at once. A call in progress is not
    interrupted: it runs on and the proc returns after it, or is force-cancelled by the
    supervisor when its grace runs out (``grace``, default the builder's). An exception from
    *fn* ends the proc with that exception (add ``restart=Restart.TRANSIENT`` to keep going).

    Args:
        fn: an async function; called with ``*args``.
        every: seconds between ticks (> 0).
        jitter: up to this many seconds are added at random to each wait, so many
            instances do not all fire at once (0: none). Must be smaller than *every*.
        run_at_start: call *fn* at once instead of after the first *every*.
        name: the proc name (default: the function's name).
        grace: how long a call in progress may take to finish after the stop request.

    The proc returns its final `PeriodicStats`.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        fn: Callable[..., Awaitable[object]],
        *args: object,
        every: float,
        jitter: float = 0.0,
        run_at_start: bool = False,
        name: str | None = None,
        grace: float | None = None,
    ) -> None:
        self.name = name or function_name(fn) or "periodic"
        fix = "declare it 'async def'; for blocking work use super_visor.procs.Thread"
        valid(self.name, check_function("fn", fn, want_async=True, fix=fix))
        valid(self.name, check_seconds("every", every, positive=True))
        valid(self.name, check_seconds("jitter", jitter))
        if jitter >= every:
            raise ConfigError(
                self.name,
                f"jitter must be smaller than every, got jitter={jitter!r} with every={every!r}",
                "pass e.g. jitter=every / 10",
            )
        if grace is not None:
            valid(self.name, check_seconds("grace", grace))
        self.fn = fn
        self.args = args
        self.every = every
        self.jitter = jitter
        self.run_at_start = run_at_start
        self.grace = grace
        self.logger = logging.getLogger(f"super_visor.procs.{self.name}")
        self._runs = 0
        self._missed = 0

    def __repr__(self) -> str:
        return f"Periodic({self.name!r}, every={self.every:g})"

    def statistics(self) -> PeriodicStats:
        """Runs and missed ticks so far (across restarts of the same object)."""
        return PeriodicStats(runs=self._runs, missed=self._missed)

    async def run_proc(self, token: CancellationToken, /) -> PeriodicStats:
        next_tick = anyio.current_time() + (0.0 if self.run_at_start else self.every)
        while True:
            delay = next_tick - anyio.current_time()
            if self.jitter:
                delay += random.uniform(0.0, self.jitter)
            with token.cancel_scope():
                await anyio.sleep(max(0.0, delay))
            if token.cancelled:
                return self.statistics()
            await self.fn(*self.args)  # not under the token: a started call may finish
            self._runs += 1
            next_tick = self._next_tick(next_tick + self.every, token.path or self.name)

    def _next_tick(self, due: float, path: str) -> float:
        """*due*, or the first tick of the grid not already past; count the skipped ones."""
        late = anyio.current_time() - due
        if late <= 0:
            return due
        skipped = math.ceil(late / self.every)
        self._missed += skipped
        self.logger.debug(
            "%s: the last call overran; skipped %d tick(s)",
            self.name,
            skipped,
            extra=record_fields(path, None),
        )
        return due + skipped * self.every
