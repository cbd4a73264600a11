"""Signal faults (API.md section 8), with real signals sent to a real child process.

One signal is one request: a burst of the same signal is one stop, on both backends; a
different signal forces; a third request ends the process at once even while a proc blocks the
event loop; after the run, ``run()`` ignores SIGINT/SIGTERM so the report is printed whole.

The child is ``tests/e2e/app.py`` (see its docstring for the scenarios and the lines it
prints); the harness is the one of ``test_signals_e2e.py``. Every wait is on a line the child
printed. The few ``time.sleep`` calls are not synchronisation: they make sure two deliveries of
the same signal are handled *more* than `SAME_REQUEST_WITHIN` apart (a lower bound, which load
only lengthens).
"""

from __future__ import annotations

import os
import re
import signal
import time
from typing import Final

import pytest

from super_visor import ProcStatus
from super_visor._signals import SAME_REQUEST_WITHIN
from tests.test_signals_e2e import (
    TIMEOUT,
    Child,
    Spawn,
    report_line,
    spawn,  # noqa: F401 (a fixture, used by name)
)

BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])
STOP_SIGNALS = pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"]
)
#: Comfortably more than the window in which a repeat is the same request.
LATER: Final = 3 * SAME_REQUEST_WITHIN
BASIC: Final = ["start a", "start b", "start c", "start d"]


def burst(child: Child, signum: int, count: int) -> None:
    """*count* deliveries of *signum*, back to back (a tight loop, as a wrapper would)."""
    for _ in range(count):
        child.send(signum)


def assert_whole_report(child: Child, reason: str, names: list[str], status: ProcStatus) -> None:
    """The report is on stderr, whole: its header and one line per proc, no traceback."""
    assert f"app: stopped ({reason})" in child.stderr, child.stderr
    for name in names:
        assert report_line(child.stderr, name, status), child.stderr
    assert "Traceback" not in child.stderr, child.stderr
    assert "KeyboardInterrupt" not in child.stderr, child.stderr


# ----------------------------------------------------------------------- one signal, one request


@BACKENDS
@STOP_SIGNALS
def test_a_burst_of_one_signal_is_one_graceful_stop(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
    signum: signal.Signals,
) -> None:
    """20 deliveries of one signal in a burst are one request: a clean graceful stop in
    reverse order, exit 0, the report printed whole; the same on asyncio (which used to see
    every delivery) and trio (which coalesced them)."""
    child = spawn(backend, "basic")
    child.read_until(BASIC)
    burst(child, signum, 20)
    assert child.finish() == 0, child.stderr
    assert child.stops == ["d", "c", "b", "a"]
    assert_whole_report(
        child, f"signal {signum.name}", ["a", "inner", "b", "c", "d"], ProcStatus.STOPPED
    )


@BACKENDS
@pytest.mark.parametrize(
    ("first", "second"),
    [(signal.SIGTERM, signal.SIGINT), (signal.SIGINT, signal.SIGTERM)],
    ids=["TERM-INT", "INT-TERM"],
)
def test_a_different_signal_at_once_is_a_second_request(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
    first: signal.Signals,
    second: signal.Signals,
) -> None:
    """A different signal right after the first is a second request, however soon: it
    forces everything still running; exit 128 + the number of the one handled second; the
    header names both. Two different signals pending at once are handled in signal-number
    order, not in the order they were sent (CPython checks pending signals by number)."""
    child = spawn(backend, "stubborn")
    child.read_until(["start a", "start b", "start c"])
    child.send(first)
    child.send(second)
    code = child.finish()
    assert child.stops == []
    handled = sorted((first, second)) if _both_pending(child) else [first, second]
    assert code == 128 + handled[1], child.stderr
    reason = f"signal {handled[0].name}, then {handled[1].name} (forced)"
    assert_whole_report(child, reason, ["a", "b", "c"], ProcStatus.FORCED)


def _both_pending(child: Child) -> bool:
    """Whether the two signals were handled in number order (both were pending at once)."""
    return "signal SIGINT, then SIGTERM" in child.stderr


@BACKENDS
def test_the_same_signal_later_is_a_second_request(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
) -> None:
    """The same signal once the window has passed forces; its repeats inside the window
    are the same request as it, so a burst as the second request is still one force."""
    child = spawn(backend, "stubborn")
    child.read_until(["start a", "start b", "start c"])
    burst(child, signal.SIGTERM, 5)
    child.read_until(["stubborn c reason=signal SIGTERM"])
    time.sleep(LATER)  # a lower bound between the two handlings, not a synchronisation
    burst(child, signal.SIGTERM, 5)
    assert child.finish() == 128 + signal.SIGTERM, child.stderr
    reason = "signal SIGTERM, then SIGTERM (forced)"
    assert_whole_report(child, reason, ["a", "b", "c"], ProcStatus.FORCED)


# --------------------------------------------------------------------------- the third request


def assert_ended_at_once(child: Child, signum: int, running: list[str]) -> None:
    """Exit 128+N, one line naming every proc still running, no report, no traceback."""
    assert child.finish() == 128 + signum, child.stderr
    lines = [line for line in child.stderr.splitlines() if "third stop request" in line]
    assert len(lines) == 1, child.stderr
    assert lines[0].endswith(f"still running: {', '.join(running)}"), lines[0]
    assert signal.Signals(signum).name in lines[0]
    assert "Traceback" not in child.stderr, child.stderr
    assert "app: stopped" not in child.stderr, child.stderr  # no report: it did not wait


@BACKENDS
@pytest.mark.parametrize("scenario", ["block-sleep", "block-spin"])
def test_a_third_request_ends_the_process_while_a_proc_blocks_the_loop(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
    scenario: str,
) -> None:
    """c's cleanup blocks the event loop (``time.sleep``, or a loop without awaits), so no
    request can be acted on by the loop; the third still ends the process at once."""
    child = spawn(backend, scenario)
    child.read_until(["start a", "start b", "start c"])
    child.send(signal.SIGTERM)
    child.read_until(["blocking c"])
    child.send(signal.SIGINT)  # the second request: forcing needs the loop, which is blocked
    time.sleep(LATER)  # a lower bound between the two SIGTERMs' handlings
    child.send(signal.SIGTERM)
    assert_ended_at_once(child, signal.SIGTERM, ["app/a", "app/inner", "app/inner/b", "app/c"])


@BACKENDS
def test_a_third_request_ends_the_process_while_a_proc_survives_force(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
) -> None:
    """c shields itself from force; the loop runs, and the third request ends it all."""
    child = spawn(backend, "shielded")
    child.read_until(["start a", "start c"])
    child.send(signal.SIGINT)
    child.read_until(["shielded c reason=signal SIGINT"])
    child.send(signal.SIGTERM)
    child.read_until(["forced a"])  # the force reached a; c survives it
    time.sleep(LATER)  # a lower bound between the two SIGINTs' handlings
    child.send(signal.SIGINT)
    assert_ended_at_once(child, signal.SIGINT, ["app/c"])


# --------------------------------------------------------------------------- read late


@BACKENDS
def test_a_signal_read_late_is_logged_and_still_forces(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
) -> None:
    """A second request arriving while c's cleanup blocks the loop (reading stdin) is
    counted at once, logged and acted on once the loop turns again: a (stubborn) is forced."""
    child = spawn(backend, "block-stdin")
    child.read_until(["start a", "start c"])
    child.send(signal.SIGTERM)
    child.read_until(["blocking c"])
    child.send(signal.SIGINT)  # handled inside the blocked read, which then resumes
    child.write_line("go")
    assert child.finish() == 128 + signal.SIGINT, child.stderr
    assert "unblocked c" in child.lines
    received = re.findall(r"signal received: (SIG[A-Z]+)", child.stderr)
    assert received == ["SIGTERM", "SIGINT"], child.stderr
    assert "app: stopped (signal SIGTERM, then SIGINT (forced))" in child.stderr
    assert report_line(child.stderr, "c", ProcStatus.STOPPED), child.stderr
    assert report_line(child.stderr, "a", ProcStatus.FORCED), child.stderr


# --------------------------------------------------------------------------- after the run


@BACKENDS
@STOP_SIGNALS
def test_a_burst_that_outlasts_the_run_leaves_the_report_whole(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
    signum: signal.Signals,
) -> None:
    """Signals keep coming from the end of the run until the process has exited: it still
    exits 0 (not killed by SIGTERM, no KeyboardInterrupt) and the report is printed whole.

    The flood starts once ``run_for_exit_code()`` has returned (the child says so): during
    the run, deliveries more than `SAME_REQUEST_WITHIN` apart are new requests by design,
    and a loaded machine can space a flood's deliveries that far apart."""
    child = spawn(backend, "after-run")
    child.read_until(BASIC)
    child.send(signum)
    child.read_until(["stop a reason=signal " + signum.name])
    ignored = "SIGINT=<Handlers.SIG_IGN: 1> SIGTERM=<Handlers.SIG_IGN: 1>"
    child.read_until([f"handlers after-run {ignored}"])
    deadline = time.monotonic() + TIMEOUT
    sent = 0
    while child.proc.poll() is None and time.monotonic() < deadline:
        try:
            os.kill(child.proc.pid, signum)
        except ProcessLookupError:  # pragma: no cover (reaped by poll() first, normally)
            break
        sent += 1
    assert child.finish() == 0, (sent, child.stderr)
    assert child.stops == ["d", "c", "b", "a"]
    assert_whole_report(
        child, f"signal {signum.name}", ["a", "inner", "b", "c", "d"], ProcStatus.STOPPED
    )


@BACKENDS
def test_run_leaves_the_stop_signals_ignored(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
) -> None:
    """What ``run()`` leaves behind until the process exits: SIGINT and SIGTERM ignored."""
    child = spawn(backend, "after-run")
    child.read_until(BASIC)
    child.send(signal.SIGTERM)
    assert child.finish() == 0, child.stderr
    after = [line for line in child.lines if line.startswith("handlers after-run ")]
    assert after == [
        "handlers after-run SIGINT=<Handlers.SIG_IGN: 1> SIGTERM=<Handlers.SIG_IGN: 1>"
    ]


# --------------------------------------------------------------------------- abandoned procs


@BACKENDS
def test_run_ends_the_process_once_only_abandoned_procs_are_left(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
) -> None:
    """c survives its force; abandon_after (2 s) later it is abandoned, a stops, and
    run() prints the whole report and exits 1 without waiting for c's task."""
    child = spawn(backend, "abandon")
    child.read_until(["start a", "start c"])
    child.send(signal.SIGTERM)
    child.read_until(["shielded c reason=signal SIGTERM"])
    assert child.finish() == 1
    assert child.stops == ["a"]  # the stop moved on past the abandoned c
    assert report_line(child.stderr, "c", ProcStatus.ABANDONED), child.stderr
    assert report_line(child.stderr, "a", ProcStatus.STOPPED), child.stderr
    assert "Traceback (most recent call last)" not in child.stderr.split("app: stopped")[-1]


@BACKENDS
def test_after_a_forcing_signal_survivors_are_abandoned_and_run_exits_128_plus_n(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
) -> None:
    """The second signal forces everything; c survives, is abandoned abandon_after later,
    and run() ends the process with 128+N for that second signal."""
    child = spawn(backend, "abandon")
    child.read_until(["start a", "start c"])
    child.send(signal.SIGTERM)
    child.read_until(["shielded c reason=signal SIGTERM"])
    time.sleep(LATER)  # a lower bound between the two requests' handlings
    child.send(signal.SIGINT)
    assert child.finish() == 128 + signal.SIGINT
    assert report_line(child.stderr, "c", ProcStatus.ABANDONED), child.stderr
