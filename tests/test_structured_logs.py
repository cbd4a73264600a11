"""Structured log records: the ``sv_*`` fields on every record super_visor logs (API.md §9).

Records are caught with a handler on the ``super_visor`` logger at DEBUG, so every record of
the run is seen, each with the ``extra`` fields a JSON formatter or a log pipeline reads.
The signal levels are checked in a real child process with real SIGTERMs.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import CancellationToken, EventKind, Restart, SupervisorBuilder

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0


class Catch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def caught() -> Iterator[Catch]:
    logger = logging.getLogger("super_visor")
    handler = Catch()
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


async def idle(token: CancellationToken) -> None:
    await token.wait()


class CrashOnce:
    """Crashes on its first run, then idles: one restart, logged with its traceback."""

    def __init__(self) -> None:
        self.runs = 0
        self.name = "consumer"

    async def run_proc(self, token: CancellationToken) -> None:
        self.runs += 1
        if self.runs == 1:
            msg = "first run crashes"
            raise RuntimeError(msg)
        await token.wait()


def fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k.startswith("sv_")}


@pytest.mark.anyio
async def test_every_record_carries_path_event_restarts_and_status(caught: Catch) -> None:
    pipeline = SupervisorBuilder("pipeline").add_proc(CrashOnce(), restart=Restart.PERMANENT)
    sup = SupervisorBuilder("app").add_proc(idle, name="db").add_proc(pipeline).build()
    async with sup.running() as handle:
        handle.shutdown("test over")
    records = caught.records
    assert records
    for record in records:
        assert "sv_path" in record.__dict__, record.getMessage()
        assert "sv_event" in record.__dict__, record.getMessage()
        assert record.getMessage().startswith(f"{record.__dict__['sv_path']}: ")
    by_path_event = {(r.__dict__["sv_path"], r.__dict__["sv_event"]): fields(r) for r in records}
    assert by_path_event["app/pipeline/consumer", "restarting"] == {
        "sv_path": "app/pipeline/consumer",
        "sv_event": "restarting",
        "sv_restarts": 0,  # the count so far: this restart is the first
        "sv_status": "failed",
    }
    assert by_path_event["app/pipeline/consumer", "stopped"] == {
        "sv_path": "app/pipeline/consumer",
        "sv_event": "stopped",
        "sv_restarts": 1,
        "sv_status": "stopped",
    }
    # The root's own records carry the root's name; no restart count for a whole tree.
    assert by_path_event["app", "shutdown_begun"] == {
        "sv_path": "app",
        "sv_event": "shutdown_begun",
    }
    ready = by_path_event["app/db", "ready"]
    assert ready["sv_restarts"] == 0
    assert "sv_status" not in ready


@pytest.mark.anyio
async def test_the_restart_count_is_on_every_record_about_the_proc(caught: Catch) -> None:
    sup = (
        SupervisorBuilder("app")
        .add_proc(CrashOnce(), restart=Restart.PERMANENT)
        .add_proc(idle, name="db")
        .build()
    )
    async with sup.running() as handle:
        handle.shutdown("test over")
    after_restart = [
        r
        for r in caught.records
        if r.__dict__["sv_path"] == "app/consumer"
        and r.__dict__["sv_event"] in {"starting", "ready", "stopping"}
    ]
    assert [r.__dict__["sv_restarts"] for r in after_restart] == [
        0,
        1,
        1,
        1,
    ]  # first start, then restart


@pytest.mark.anyio
async def test_the_failure_record_keeps_its_traceback_and_status(caught: Catch) -> None:
    async def boom(token: CancellationToken) -> None:
        msg = "boom"
        raise ValueError(msg)

    sup = SupervisorBuilder("app").add_proc(idle, name="db").add_proc(boom).build()
    with pytest.raises(Exception, match="boom"):
        async with sup.running():
            await anyio.sleep_forever()
    failed = [r for r in caught.records if r.__dict__["sv_event"] == "failed"]
    assert [fields(r) for r in failed] == [
        {"sv_path": "app/boom", "sv_event": "failed", "sv_restarts": 0, "sv_status": "failed"}
    ]
    assert failed[0].exc_info is not None


@pytest.mark.anyio
async def test_a_failing_callback_is_logged_with_the_fields_of_its_event(caught: Catch) -> None:
    def broken(event: object) -> None:
        msg = "callback bug"
        raise RuntimeError(msg)

    sup = SupervisorBuilder("app").add_proc(idle, name="db").on_event(broken).build()
    async with sup.running() as handle:
        handle.shutdown("test over")
    raised = [r for r in caught.records if "on_event callback raised" in r.getMessage()]
    assert raised
    assert {(r.__dict__["sv_path"], r.__dict__["sv_event"]) for r in raised} >= {
        ("app/db", "ready"),
        ("app", "shutdown_begun"),
    }


def test_the_signal_levels_are_info_for_a_stop_and_warning_for_a_force() -> None:
    """A real child: SIGTERM (a normal stop) is INFO; a second request, forcing, WARNING."""
    app = textwrap.dedent(
        """
        import sys, anyio, super_visor
        from super_visor import SupervisorBuilder

        async def stubborn(token):
            print("up", flush=True)
            await token.wait()
            print("stopping", flush=True)
            await anyio.sleep_forever()  # ignores its token: the second signal forces it

        sup = SupervisorBuilder("app").add_proc(stubborn, grace=60)
        super_visor.run(sup, backend=sys.argv[1], log_format="json", console=False)
        """
    )
    for backend in ("asyncio", "trio"):
        levels = _signal_levels(app, backend)
        assert levels == [("INFO", "SIGTERM"), ("WARNING", "SIGINT: force")], backend


def _signal_levels(app: str, backend: str) -> list[tuple[str, str]]:
    import json

    child = subprocess.Popen(
        [sys.executable, "-c", app, backend],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "up\n"
        child.send_signal(signal.SIGTERM)
        assert child.stdout.readline() == "stopping\n"
        child.send_signal(signal.SIGINT)  # another signal: a second request, not a repeat
        _, err = child.communicate(timeout=TIMEOUT)
    finally:
        child.kill()
        child.wait()
    entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [
        (e["level"], e["message"].split("signal received: ", 1)[1])
        for e in entries
        if e.get("sv_event") == EventKind.SIGNAL_RECEIVED.value
    ]


@pytest.mark.anyio
async def test_an_adapters_records_carry_its_full_path(caught: Catch) -> None:
    """A child program's output line, logged by `Command`, names the proc by its path."""
    from super_visor.procs import Command

    command = Command([sys.executable, "-c", "print('hello from the child')"], name="cmd")
    jobs = SupervisorBuilder("jobs").add_proc(command)
    sup = SupervisorBuilder("app").add_proc(jobs).build()
    await sup.start(handle_signals=False)  # the command completes, which ends the tree
    lines = [r for r in caught.records if r.getMessage() == "hello from the child"]
    assert [fields(r) for r in lines] == [{"sv_path": "app/jobs/cmd", "sv_event": None}]
    assert lines[0].__dict__["stream"] == "stdout"


@pytest.mark.anyio
async def test_the_roots_own_records_carry_its_name_and_no_restart_count(caught: Catch) -> None:
    sup = SupervisorBuilder("app").add_proc(idle, name="db").build()
    async with sup.running() as handle:
        handle.shutdown("test over")
    roots = [fields(r) for r in caught.records if r.__dict__["sv_path"] == "app"]
    assert {"sv_path": "app", "sv_event": "ready"} in roots  # the whole tree is ready
    assert all("sv_restarts" not in f for f in roots), roots
