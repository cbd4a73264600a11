"""Periodic: on schedule, never overlapping, missed ticks counted, prompt and graceful stop."""

from __future__ import annotations

import anyio
import pytest

from super_visor import (
    ConfigError,
    EventKind,
    ProcStatus,
    SupervisorBuilder,
    SupervisorError,
)
from super_visor.procs import Periodic, PeriodicStats

from ..fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

#: A timer may fire this early: asyncio runs handles due within its clock resolution.
SLACK = 0.001


async def test_calls_on_schedule_and_returns_its_statistics() -> None:
    done = anyio.Event()
    calls: list[float] = []

    async def tick(label: str) -> None:
        calls.append(anyio.current_time())
        assert label == "cleanup"
        if len(calls) == 3:
            done.set()

    every = 0.05
    job = Periodic(tick, "cleanup", every=every, run_at_start=True)
    sup = SupervisorBuilder("app").add_proc(job).build()
    before = anyio.current_time()  # the grid starts after this: no call can come earlier
    async with sup.running() as handle:
        await done.wait()
    outcome = handle.report["tick"]
    assert outcome.status is ProcStatus.STOPPED
    assert isinstance(outcome.result, PeriodicStats)
    assert outcome.result.runs == 3
    # What the fixed grid guarantees: call n never comes before tick n (start + n * every).
    # Not a minimum gap between calls: after a late tick the next one may come sooner.
    assert all(at >= before + n * every - SLACK for n, at in enumerate(calls))
    assert calls == sorted(calls)


async def test_a_slow_call_skips_and_counts_ticks_and_never_overlaps() -> None:
    running = 0
    overlapped = False
    done = anyio.Event()
    job: Periodic

    async def slow() -> None:
        nonlocal running, overlapped
        running += 1
        overlapped = overlapped or running > 1
        if job.statistics().runs == 0:
            await anyio.sleep(0.35)  # the overrun under test: ticks at 0.1, 0.2, 0.3 pass
        running -= 1
        if job.statistics().runs == 1:
            done.set()

    job = Periodic(slow, every=0.1, run_at_start=True)
    sup = SupervisorBuilder("app").add_proc(job).build()
    async with sup.running():
        await done.wait()
    assert not overlapped
    # At least the ticks at 0.1, 0.2 and 0.3 passed during the 0.35 s call; one more when the
    # first call itself started late (a loaded machine), so not "exactly 3".
    assert job.statistics().missed >= 3
    assert job.statistics().runs == 2


async def test_a_stop_between_calls_ends_it_at_once() -> None:
    calls: list[int] = []

    async def hourly() -> None:
        calls.append(1)  # pragma: no cover (the test stops before the first tick)

    sup = SupervisorBuilder("app").add_proc(Periodic(hourly, every=3600)).build()
    with anyio.fail_after(5):  # at once: far below the hour to the next call
        async with sup.running() as handle:
            pass
    assert handle.report["hourly"].status is ProcStatus.STOPPED
    assert calls == []


async def test_a_call_in_progress_finishes_within_the_grace() -> None:
    entered = anyio.Event()
    release = anyio.Event()
    finished: list[bool] = []

    async def flush() -> None:
        entered.set()
        await release.wait()
        finished.append(True)

    sup = SupervisorBuilder("app").add_proc(Periodic(flush, every=60, run_at_start=True)).build()
    async with sup.running() as handle:
        await entered.wait()
        async with handle.events() as events:
            handle.shutdown("test over")
            async for event in events:
                if event.kind is EventKind.STOPPING:
                    break
        release.set()  # the stop was requested while the call ran; it still finishes
    assert finished == [True]
    assert handle.report["flush"].status is ProcStatus.STOPPED


async def test_a_call_outlasting_the_grace_is_forced() -> None:
    entered = anyio.Event()

    async def stuck() -> None:
        entered.set()
        await anyio.sleep_forever()

    job = Periodic(stuck, every=60, run_at_start=True, grace=0.1)
    sup = SupervisorBuilder("app").add_proc(job).build()
    async with sup.running() as handle:
        await entered.wait()
    assert handle.report["stuck"].status is ProcStatus.FORCED


async def test_an_error_in_the_function_fails_the_proc() -> None:
    class CleanupError(Exception):
        pass

    async def broken() -> None:
        raise CleanupError("table locked")

    sup = SupervisorBuilder("app").add_proc(Periodic(broken, every=1, run_at_start=True)).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    assert isinstance(caught.value.report["broken"].error, CleanupError)


async def noop() -> None:
    pass  # pragma: no cover (never scheduled)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every": 0}, "every must be a finite number of seconds > 0"),
        ({"every": float("nan")}, "every must be a finite number of seconds > 0"),
        ({"every": 1, "jitter": -1}, "jitter must be a finite number of seconds >= 0"),
        ({"every": 1, "jitter": 1}, "jitter must be smaller than every"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Periodic(noop, every=kwargs["every"], jitter=kwargs.get("jitter", 0.0))
