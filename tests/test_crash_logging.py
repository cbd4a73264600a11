"""Crash logging (API.md section 8): a failure is logged at ERROR with its traceback; in a
restart storm at most one RESTARTING line (with its traceback) per proc per second, the rest
counted in that proc's next line; the final failure always has its traceback. Every restart
is still an event."""

from __future__ import annotations

import logging
import re

import anyio
import pytest

from super_visor import (
    Backoff,
    CancellationToken,
    Event,
    EventKind,
    Restart,
    SupervisorBuilder,
    SupervisorError,
)


class Boom(Exception):
    pass


def crash_records(caplog: pytest.LogCaptureFixture, path: str) -> list[logging.LogRecord]:
    name = "super_visor." + path.replace("/", ".")
    return [r for r in caplog.records if r.name == name and r.levelno == logging.ERROR]


def left_out(record: logging.LogRecord) -> int:
    found = re.search(r"\((\d+) earlier restarts of it not logged\)", record.getMessage())
    return int(found.group(1)) if found else 0


async def test_a_restarted_crash_is_logged_at_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="super_visor")
    runs: list[int] = []
    second = anyio.Event()

    async def flaky(token: CancellationToken) -> None:
        runs.append(1)
        if len(runs) == 1:
            raise Boom("first run")
        second.set()
        await token.wait()

    sup = SupervisorBuilder("app").add_proc(flaky, restart=Restart.TRANSIENT).build()
    async with sup.running():
        await second.wait()
    [record] = crash_records(caplog, "app/flaky")
    assert "restarting: failed (Boom('first run'))" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], Boom)


async def test_a_crash_storm_accounts_for_every_crash_in_its_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="super_visor")
    crashes = 30
    events: list[Event] = []

    async def crasher(token: CancellationToken) -> None:
        raise Boom("again")

    sup = (
        SupervisorBuilder("app", max_restarts=crashes - 1, within=3600.0)
        .add_proc(crasher, restart=Restart.PERMANENT)
        .on_event(events.append)
        .build()
    )
    with pytest.raises(SupervisorError):
        await sup.start(handle_signals=False)
    records = crash_records(caplog, "app/crasher")
    # Every line after a crash has its traceback.
    assert all(r.exc_info is not None for r in records)
    # One RESTARTING per crash (the last is refused by the limit), plus the final failure:
    # each is a line or counted in a later one.
    assert len(records) + sum(left_out(r) for r in records) == crashes + 1
    final = records[-1]
    assert "failed" in final.getMessage()
    assert "restarting" not in final.getMessage()
    # Lines are rationed: far fewer than crashes (30 crashes take well under 30 s) ...
    assert len(records) < crashes
    # ... while every restart is still an event.
    restarting = [e for e in events if e.kind is EventKind.RESTARTING]
    assert len(restarting) == crashes


async def test_a_restarted_runs_ready_line_goes_with_its_restarting_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="super_visor")
    crashes = 30
    events: list[Event] = []
    ready: dict[int, anyio.Event] = {}
    runs: list[int] = []

    def record(event: Event) -> None:
        events.append(event)
        if event.kind is EventKind.READY and event.path == "app/crasher":
            ready.setdefault(event.restarts, anyio.Event()).set()

    async def crasher(token: CancellationToken) -> None:
        run = len(runs)
        runs.append(run)
        await ready.setdefault(run, anyio.Event()).wait()  # crash once it was READY
        raise Boom("again")

    sup = (
        SupervisorBuilder("app", max_restarts=crashes - 1, within=3600.0)
        .add_proc(crasher, restart=Restart.PERMANENT)
        .on_event(record)
        .build()
    )
    with pytest.raises(SupervisorError):
        await sup.start(handle_signals=False)
    name = "super_visor.app.crasher"
    lines = [r.getMessage() for r in caplog.records if r.name == name]
    ready_lines = [m for m in lines if m.endswith(": ready") or ": ready (" in m]
    restarting_lines = [m for m in lines if "restarting" in m]
    # The first run's READY, then each restarted run's READY only after a logged RESTARTING.
    assert len(ready_lines) <= len(restarting_lines) + 1
    assert len(restarting_lines) < crashes
    # Every run was READY as an event all the same.
    assert sum(e.kind is EventKind.READY and e.path == "app/crasher" for e in events) == crashes


#: The first restart after 1 ms, the next after an hour.
FIRST_AT_ONCE_THEN_AN_HOUR = Backoff(initial=0.001, maximum=3600.0, factor=1e7, jitter=0.0)


async def test_a_crash_left_out_of_the_log_is_said_when_a_stop_cancels_its_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="super_visor")
    second_crash = anyio.Event()
    runs: list[int] = []

    async def crasher(token: CancellationToken) -> None:
        runs.append(1)
        if len(runs) == 2:
            second_crash.set()
        raise Boom(f"crash {len(runs)}")

    sup = (
        SupervisorBuilder("app", max_restarts=10, within=3600.0)
        .add_proc(crasher, restart=Restart.PERMANENT, backoff=FIRST_AT_ONCE_THEN_AN_HOUR)
        .build()
    )

    async def crash_twice_then_stop() -> None:
        async with sup.running() as handle:
            await second_crash.wait()  # its RESTARTING line is left out (within 1 s of the 1st)
            handle.shutdown("test over")  # during the hour-long backoff: no restart follows

    with pytest.raises(SupervisorError):  # its last run failed, and that outcome stands
        await crash_twice_then_stop()
    records = crash_records(caplog, "app/crasher")
    last = records[-1]
    assert last.exc_info is not None
    assert str(last.exc_info[1]) == "crash 2"  # the last crash is in the log, traceback and all
