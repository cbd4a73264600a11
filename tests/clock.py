"""The tests' clock: the public test kit's `VirtualClock` (see super_visor.testing).

Kept under its old name so the tests that move time by hand read as before.
"""

from __future__ import annotations

from super_visor.testing import VirtualClock as ManualClock
from super_visor.testing import with_clock

__all__ = ("ManualClock", "with_clock")
