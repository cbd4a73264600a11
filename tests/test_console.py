"""The live console (``super_visor._console``): rendering recorded by rich, and one real pty run.

Rendering is checked by drawing into ``Console(record=True, force_terminal=True)``, so no
terminal is needed; the clock is fixed, so uptimes and grace countdowns are exact. One test
runs the CLI in a pseudo-terminal (stdlib ``pty``) as a user would, to prove the live tree
really shows and the process exits 0.
"""

from __future__ import annotations

import io
import os
import pty
import re
import selectors
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from super_visor import (
    CancellationToken,
    Event,
    EventKind,
    ProcOutcome,
    ProcStatus,
    SupervisorBuilder,
    SupervisorError,
    SupervisorReport,
)
from super_visor._console import LiveConsole, TreeView, report_table
from tests import cli_apps

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_000.0


def draw(renderable: object, width: int = 100) -> str:
    console = Console(record=True, force_terminal=True, width=width, color_system="truecolor")
    console.print(renderable)
    return console.export_text()


def event(kind: EventKind, path: str, at: float, **fields: object) -> Event:
    return Event(kind=kind, path=path, time=at, **fields)  # type: ignore[arg-type]


def view() -> TreeView:
    return TreeView(cli_apps.make_builder().build(), clock=lambda: NOW)


def test_every_proc_is_drawn_pending_before_the_start() -> None:
    text = draw(view())
    assert text.splitlines()[0] == "app running"
    for name in ("db", "pipeline", "consumer", "web"):
        assert f"{name}  pending" in text
    assert "db  pending  not ready yet" in text  # db gates start-up


def test_running_procs_show_uptime_readiness_and_restarts() -> None:
    tree_view = view()
    tree_view.on_event(event(EventKind.STARTING, "app/db", NOW - 75))
    tree_view.on_event(event(EventKind.READY, "app/db", NOW - 74))
    tree_view.on_event(event(EventKind.STARTING, "app/web", NOW - 5, restarts=2))
    text = draw(tree_view)
    assert "db  running  up 1m15s  ready" in text
    assert "web  starting  up 5s  restarts 2" in text


def test_shutdown_names_the_proc_waited_on_and_its_grace_left() -> None:
    tree_view = view()
    for path in ("app/db", "app/pipeline", "app/pipeline/consumer", "app/web"):
        tree_view.on_event(event(EventKind.STARTING, path, NOW - 10))
        tree_view.on_event(event(EventKind.READY, path, NOW - 10))
    tree_view.on_event(event(EventKind.SIGNAL_RECEIVED, "app", NOW - 2, detail="SIGTERM"))
    tree_view.on_event(event(EventKind.SHUTDOWN_BEGUN, "app", NOW - 2, detail="signal SIGTERM"))
    tree_view.on_event(event(EventKind.STOPPING, "app/web", NOW - 2))
    tree_view.on_event(event(EventKind.STOPPED, "app/web", NOW - 1.5))
    tree_view.on_event(event(EventKind.STOPPING, "app/pipeline", NOW - 1.5))
    tree_view.on_event(event(EventKind.STOPPING, "app/pipeline/consumer", NOW - 0.5))
    text = draw(tree_view, width=120)
    header = text.splitlines()[0]
    assert header == (
        "app shutting down (signal SIGTERM) - waiting on app/pipeline/consumer, "
        "1.5s of its 2s grace left"
    )
    assert "consumer  stopping  up 10s  grace left 1.5s" in text
    assert "web  stopped" in text
    assert tree_view.signals == ["SIGTERM"]


def test_failures_and_dynamic_children_are_shown() -> None:
    tree_view = view()
    tree_view.on_event(event(EventKind.STARTING, "app/web", NOW - 3))
    tree_view.on_event(
        event(EventKind.FAILED, "app/web", NOW - 1, error=RuntimeError("port in use"))
    )
    tree_view.on_event(event(EventKind.STARTING, "app/conn-1", NOW - 1))  # start_child()
    text = draw(tree_view)
    assert "web  failed  RuntimeError: port in use" in text
    assert "conn-1  starting  up 1s" in text


def test_colours_follow_the_state() -> None:
    tree_view = view()
    tree_view.on_event(event(EventKind.STARTING, "app/web", NOW))
    tree_view.on_event(event(EventKind.FAILED, "app/web", NOW, error=ValueError("x")))
    console = Console(record=True, force_terminal=True, width=100, color_system="standard")
    console.print(tree_view)
    assert "\x1b[1;31mfailed" in console.export_text(styles=True)


def test_the_report_table_has_a_row_per_proc() -> None:
    error = RuntimeError("gateway answered 503")
    report = SupervisorReport(
        "app",
        (
            ProcOutcome(name="db", path="app/db", status=ProcStatus.STOPPED),
            ProcOutcome(
                name="pipeline",
                path="app/pipeline",
                status=ProcStatus.FAILED,
                children=(
                    ProcOutcome(
                        name="sink",
                        path="app/pipeline/sink",
                        status=ProcStatus.FAILED,
                        error=error,
                        restarts=3,
                    ),
                ),
            ),
        ),
        "proc 'app/pipeline' failed",
    )
    text = draw(report_table(report), width=120)
    assert "app: stopped (proc 'app/pipeline' failed)" in text
    assert "proc" in text
    assert "status" in text
    assert "restarts" in text
    assert "error" in text
    rows = [line for line in text.splitlines() if "sink" in line]
    assert len(rows) == 1
    assert "│   sink" in rows[0]  # indented below its supervisor
    assert "failed" in rows[0]
    assert "3" in rows[0]
    assert "RuntimeError: gateway answered 503" in rows[0]


async def test_a_real_run_drives_the_view_through_events() -> None:
    async def job(token: CancellationToken) -> None:
        token.ready()
        await token.wait()

    builder = SupervisorBuilder("app").add_proc(job).add_proc(job, name="other")
    tree_view = TreeView(builder.build(), clock=time.time)
    sup = builder.on_event(tree_view.on_event).build()
    async with sup.running() as handle:
        assert "job  running" in draw(tree_view)
        handle.shutdown("test over")
    text = draw(tree_view)
    assert "app shutting down (test over)" in text
    assert "job  stopped" in text
    assert "other  stopped" in text


async def test_live_console_returns_the_report_and_raises_failures_unwrapped() -> None:
    async def fails(token: CancellationToken) -> None:
        msg = "nope"
        raise ValueError(msg)

    ok = SupervisorBuilder("app").add_proc(cli_apps.quick).build()
    live = LiveConsole(ok, io.StringIO(), capture_stdout=False)
    with anyio.fail_after(10):
        report = await live.drive(lambda: ok.start(handle_signals=False))
    assert report["quick"].status is ProcStatus.COMPLETED

    bad = SupervisorBuilder("app").add_proc(fails).build()
    live = LiveConsole(bad, io.StringIO(), capture_stdout=False)
    with anyio.fail_after(10), pytest.raises(SupervisorError) as caught:
        await live.drive(lambda: bad.start(handle_signals=False))
    assert caught.value.report["fails"].status is ProcStatus.FAILED


def test_import_super_visor_does_not_import_rich() -> None:
    code = (
        "import sys, super_visor, tests.cli_apps as a\n"
        "from super_visor._run import run_for_exit_code\n"
        "assert 'rich' not in sys.modules and 'dotenv' not in sys.modules\n"
        "code = run_for_exit_code(a.finite, console=False, env_file=None)\n"
        "assert 'rich' not in sys.modules, 'rich imported without a console'\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_cli_in_a_pseudo_terminal_shows_the_live_tree_and_exits_0() -> None:
    primary, secondary = pty.openpty()
    app = subprocess.Popen(
        [sys.executable, "-m", "super_visor", "run", "tests.cli_apps:finite"],
        cwd=ROOT,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "QUICK_FOR": "0.6", "COLUMNS": "120", "TERM": "xterm-256color"},
    )
    os.close(secondary)
    try:
        output = _read_until_eof(primary, timeout=30)
        assert app.wait(timeout=30) == 0, output
    finally:
        os.close(primary)
        if app.returncode is None:
            app.kill()
            app.wait()
    assert "\x1b[" in output  # drawn with escape sequences: rich saw a terminal
    output = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    assert "consumer" in output
    assert "running" in output
    assert "up " in output
    assert "shutting down (proc 'app/quick' completed)" in output
    assert "app: stopped (proc 'app/quick' completed)" in output  # the report table's title
    assert "┃ proc" in output
    assert "stop db reason=proc 'app/quick' completed" in output  # the app's own prints


def _read_until_eof(fd: int, timeout: float) -> str:
    """Everything the child writes to the pty until it closes it (bounded by *timeout*)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                pytest.fail(f"no EOF from the pty in {timeout}s: {b''.join(chunks)!r}")
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: every writer closed the pty (Linux)
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")
