"""How deliveries become requests (``_signals.SignalRequests``), in-process.

The handler is called directly with an injected clock for the exact counting rules, and real
signals are sent to this very process for what the run does with them: ``os.kill`` of our own
pid runs the Python-level handler before ``os.kill`` returns to the next bytecode, so these
tests need no synchronisation at all. The third request (``os._exit``) is tested in a child
process, here and in ``test_signal_faults_e2e.py``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import CancellationToken, ProcStatus, SupervisorBuilder
from super_visor._signals import (
    SAME_REQUEST_WITHIN,
    Delivery,
    SignalRequests,
    _lateness,
    leave_stop_signals_ignored,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

TERM, INT = signal.SIGTERM, signal.SIGINT
USR1 = getattr(signal, "SIGUSR1", None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def requests(clock: FakeClock) -> Iterator[SignalRequests]:
    made = SignalRequests(lambda: ["app/a"], clock=clock)
    try:
        yield made
    finally:
        made.close()


def kinds(requests: SignalRequests) -> list[tuple[str, int | None]]:
    return [(signal.Signals(d.signum).name, d.request) for d in requests.take()]


def test_a_burst_of_one_signal_is_one_request(requests: SignalRequests, clock: FakeClock) -> None:
    for _ in range(20):
        requests.handle(TERM, None)
        clock.now += SAME_REQUEST_WITHIN / 2  # each within the window of the previous one
    assert kinds(requests) == [("SIGTERM", 1)] + [("SIGTERM", None)] * 19


def test_a_different_signal_is_a_second_request_at_once(
    requests: SignalRequests, clock: FakeClock
) -> None:
    requests.handle(TERM, None)
    requests.handle(INT, None)
    requests.handle(TERM, None)  # the same as the first, within its window: a repeat
    assert kinds(requests) == [("SIGTERM", 1), ("SIGINT", 2), ("SIGTERM", None)]


def test_the_same_signal_after_the_window_is_a_second_request(
    requests: SignalRequests, clock: FakeClock
) -> None:
    requests.handle(TERM, None)
    clock.now += SAME_REQUEST_WITHIN * 1.01
    requests.handle(TERM, None)
    assert kinds(requests) == [("SIGTERM", 1), ("SIGTERM", 2)]


def test_the_window_runs_from_the_previous_delivery_of_that_signal(
    requests: SignalRequests, clock: FakeClock
) -> None:
    """A steady stream of repeats stays one request, however long it lasts in total."""
    for _ in range(3):
        requests.handle(TERM, None)
        clock.now += SAME_REQUEST_WITHIN * 0.9
    clock.now += SAME_REQUEST_WITHIN * 0.2  # now 1.1 windows after the previous TERM
    requests.handle(TERM, None)
    assert [request for _, request in kinds(requests)] == [1, None, None, 2]


@pytest.mark.skipif(USR1 is None, reason="no SIGUSR1 on this platform")
def test_sigusr1_counts_towards_nothing(requests: SignalRequests) -> None:
    assert USR1 is not None
    for _ in range(5):
        requests.handle(USR1, None)
    requests.handle(TERM, None)
    assert kinds(requests) == [("SIGUSR1", None)] * 5 + [("SIGTERM", 1)]


def test_a_nested_call_is_classified_in_order(requests: SignalRequests, clock: FakeClock) -> None:
    """A storm calls the handler from inside itself; each delivery is still classified
    once, in the order they were stamped (the third request would end this process, so
    only two are made in-process)."""
    inner: list[int] = []

    def nesting_clock() -> float:
        if not inner:  # the outer call's stamp: a signal lands right here
            inner.append(INT)
            requests.handle(INT, None)
        return clock.now

    requests.clock = nesting_clock
    requests.handle(TERM, None)
    assert kinds(requests) == [("SIGINT", 1), ("SIGTERM", 2)]


def test_a_delivery_read_late_says_how_late() -> None:
    delivery = Delivery(TERM, 10.0, 1)
    assert _lateness(delivery, 10.5) == ""
    assert _lateness(delivery, 12.5) == (
        " (read 2.5 s after it arrived: the event loop was blocked)"
    )


async def test_receive_returns_every_delivery_queued_so_far(requests: SignalRequests) -> None:
    requests.handle(TERM, None)
    requests.handle(INT, None)
    assert [d.request for d in await requests.receive()] == [1, 2]
    with anyio.move_on_after(0.05) as scope:  # nothing queued: it waits (bounded here)
        await requests.receive()
    assert scope.cancelled_caught


# ------------------------------------------------------------------ real signals, in-process


def burst_then_wait(signum: int, count: int) -> object:
    async def proc(token: CancellationToken) -> None:
        for _ in range(count):
            os.kill(os.getpid(), signum)
        await token.wait()

    return proc


async def idle(token: CancellationToken) -> None:
    await token.wait()


async def test_a_burst_stops_gracefully_and_logs_each_repeat_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="super_visor")
    sup = (
        SupervisorBuilder("app")
        .add_proc(idle, name="a")
        .add_proc(burst_then_wait(TERM, 20), name="burst")
        .build()
    )
    report = await sup.start()
    assert report.reason == "signal SIGTERM"
    assert report.exit_code == 0
    assert [o.status for o in report.outcomes] == [ProcStatus.STOPPED] * 2
    received = [r for r in caplog.records if "signal received" in r.getMessage()]
    assert len(received) == 1
    repeats = [r for r in caplog.records if "again within" in r.getMessage()]
    assert repeats, "repeats are logged"
    assert all(r.levelno == logging.DEBUG for r in repeats)
    assert {r.sv_path for r in repeats} == {"app"}  # type: ignore[attr-defined]


async def test_a_second_request_forces_and_the_report_names_both_signals() -> None:
    async def stubborn(token: CancellationToken) -> None:
        await token.wait()
        os.kill(os.getpid(), INT)  # the second request, while this proc holds the stop up
        await anyio.sleep_forever()

    sup = (
        SupervisorBuilder("app")
        .add_proc(idle, name="a")
        .add_proc(stubborn, name="c", grace=60.0)
        .add_proc(burst_then_wait(TERM, 1), name="b")  # last: the others have started
        .build()
    )
    report = await sup.start()
    assert report.forced_by_signal == INT
    assert report.exit_code == 128 + INT
    assert report.render().splitlines()[0] == "app: stopped (signal SIGTERM, then SIGINT (forced))"


async def test_under_run_the_stop_signals_are_left_ignored_after_the_run() -> None:
    saved = {sig: signal.getsignal(sig) for sig in (INT, TERM)}
    sup = SupervisorBuilder("app").add_proc(burst_then_wait(TERM, 3), name="a").build()
    try:
        with leave_stop_signals_ignored():
            report = await sup.start()
        assert signal.getsignal(INT) is signal.SIG_IGN
        assert signal.getsignal(TERM) is signal.SIG_IGN
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert report.reason == "signal SIGTERM"


def test_the_emergency_line_is_written_even_when_listing_the_procs_fails() -> None:
    code = textwrap.dedent(
        """
        from super_visor._signals import _end_process_now

        def broken():
            raise RuntimeError("the tree is mid-change")

        _end_process_now(15, broken)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 128 + 15
    assert done.stderr.decode().splitlines() == [
        "super_visor: third stop request (SIGTERM): exiting at once with 143; still running: "
        "(they could not be listed)"
    ]
