"""The injected clock: restart windows and backoff follow the run's clock, not real time.

These tests never sleep: time moves only when the test advances its `ManualClock`.
"""

from __future__ import annotations

import anyio
import pytest

from super_visor import (
    Backoff,
    CancellationToken,
    ProcStatus,
    Restart,
    RestartLimitExceeded,
    Supervisor,
    SupervisorBuilder,
    SupervisorError,
)

from .clock import ManualClock, with_clock


class Boom(Exception):
    pass


class Crasher:
    """Crashes whenever the test says so; counts its runs."""

    name = "crasher"

    def __init__(self) -> None:
        self.runs = 0
        self._crash = anyio.Event()
        self._ran = anyio.Event()

    async def run_proc(self, token: CancellationToken) -> None:
        self.runs += 1
        self._ran.set()
        self._crash = anyio.Event()
        with token.cancel_scope():
            await self._crash.wait()
            raise Boom(f"run {self.runs}")

    def crash(self) -> None:
        self._crash.set()

    async def crash_and_wait_for_the_next_run(self) -> None:
        self._ran = anyio.Event()
        self.crash()
        await self._ran.wait()

    async def wait_run(self, n: int) -> None:
        while self.runs < n:
            self._ran = anyio.Event()
            await self._ran.wait()


async def test_crashes_spread_beyond_the_window_never_trip_the_intensity() -> None:
    clock = ManualClock()
    crasher = Crasher()
    sup = with_clock(
        SupervisorBuilder("app", max_restarts=1, within=10.0)
        .add_proc(crasher, restart=Restart.PERMANENT)
        .build(),
        clock,
    )
    async with sup.running() as handle:
        for _ in range(5):
            clock.advance(10.5)  # the last restart has left the window
            await crasher.crash_and_wait_for_the_next_run()
        assert not handle.stopped
    assert handle.report["crasher"].restarts == 5
    assert handle.report["crasher"].status is ProcStatus.STOPPED


async def test_crashes_inside_the_window_trip_the_intensity_on_the_same_clock() -> None:
    clock = ManualClock()
    crasher = Crasher()
    sup = with_clock(
        SupervisorBuilder("app", max_restarts=1, within=10.0)
        .add_proc(crasher, restart=Restart.PERMANENT)
        .build(),
        clock,
    )
    with pytest.raises(SupervisorError) as caught:
        await _crash_twice_within(sup, crasher, clock, seconds=9.0)
    assert caught.group_contains(RestartLimitExceeded)
    assert crasher.runs == 2


async def _crash_twice_within(
    sup: Supervisor, crasher: Crasher, clock: ManualClock, *, seconds: float
) -> None:
    async with sup.running():
        await crasher.crash_and_wait_for_the_next_run()
        clock.advance(seconds)  # still inside the window: one restart more is too many
        crasher.crash()
        await anyio.sleep_forever()  # the tree's failure cancels the block


async def test_backoff_waits_on_the_clock_until_it_is_advanced() -> None:
    clock = ManualClock()
    crasher = Crasher()
    backoff = Backoff(initial=2.0, maximum=60.0, factor=3.0, jitter=0.0)
    sup = with_clock(
        SupervisorBuilder("app", max_restarts=10, within=1.0)
        .add_proc(crasher, restart=Restart.PERMANENT, backoff=backoff)
        .build(),
        clock,
    )
    async with sup.running():
        for run, delay in ((1, 2.0), (2, 6.0), (3, 18.0)):
            await crasher.wait_run(run)
            crasher.crash()
            assert await clock.wait_sleeper() == delay
            clock.advance(delay - 0.5)
            await anyio.wait_all_tasks_blocked()
            assert crasher.runs == run  # not yet: the backoff is not over on the clock
            clock.advance(0.5 + 5.0)  # past the delay, and out of the intensity window
            await crasher.wait_run(run + 1)


async def test_a_stable_run_resets_the_backoff_by_the_clock() -> None:
    clock = ManualClock()
    crasher = Crasher()
    backoff = Backoff(initial=1.0, maximum=4.0, factor=2.0, jitter=0.0)
    sup = with_clock(
        SupervisorBuilder("app", max_restarts=10, within=1.0)
        .add_proc(crasher, restart=Restart.PERMANENT, backoff=backoff)
        .build(),
        clock,
    )
    async with sup.running():
        await crasher.wait_run(1)
        crasher.crash()
        assert await clock.wait_sleeper() == 1.0
        clock.advance(5.0)
        await crasher.wait_run(2)
        crasher.crash()
        assert await clock.wait_sleeper() == 2.0  # it crashed at once: the delay grows
        clock.advance(5.0)
        await crasher.wait_run(3)
        clock.advance(4.0)  # ran for `maximum` seconds: healthy again
        crasher.crash()
        assert await clock.wait_sleeper() == 1.0
        clock.advance(5.0)
        await crasher.wait_run(4)


async def test_a_nested_supervisor_reads_its_roots_clock() -> None:
    clock = ManualClock()
    crasher = Crasher()
    inner = (
        SupervisorBuilder("inner", max_restarts=1, within=10.0)
        .add_proc(crasher, restart=Restart.PERMANENT)
        .build()
    )
    sup = with_clock(SupervisorBuilder("app").add_proc(inner).build(), clock)
    async with sup.running() as handle:
        for _ in range(3):
            clock.advance(10.5)
            await crasher.crash_and_wait_for_the_next_run()
        assert not handle.stopped
    assert handle.report["inner/crasher"].restarts == 3
