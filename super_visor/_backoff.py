"""Backoff: the delay before a restart, grown exponentially with jitter (API.md section 6).

Pure logic, like ``_restart``: the caller passes the attempt number (and, in tests, the random
source). Apart from ``_restart``, whose `Strategy` the builder's signature needs at import, so
that ``import super_visor`` loads `Backoff`, and the ``dataclasses`` machinery behind it, only
when one is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    import random

__all__ = ("Backoff",)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Exponential delay before a restart: ``initial * factor**n``, capped at ``maximum``.

    *jitter* is the fraction of the delay drawn at random (0.1 = up to 10% shorter), so procs
    that crashed together do not restart in lock-step. The attempt counter resets once the
    proc has run for ``maximum`` seconds without ending (documented in the restarts guide):
    a proc that was stable for the longest delay we would ever wait is considered healthy.

    .. versionadded:: 0.1
    """

    initial: float = 0.1
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 0.1

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before restart number *attempt* (0 for the first restart)."""
        try:
            base = min(self.maximum, self.initial * self.factor**attempt)
        except OverflowError:  # a long crash loop: the cap has long been reached
            base = self.maximum
        if self.jitter <= 0:
            return base
        if rng is None:
            import random  # lazy: jitter is rare, and the import stays cheap

            draw = random.random()
        else:
            draw = rng.random()
        return base * (1.0 - self.jitter * draw)
