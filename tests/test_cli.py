"""The ``super-visor`` command, run as ``python -m super_visor`` in real subprocesses.

Exit codes and messages as a user sees them: 0 clean, 1 a proc failed, 2 bad input (a
``ConfigError``, a bad ``module:attr``, a usage error), 0 after SIGTERM. The applications are
in ``tests/cli_apps.py``. Every wait is bounded and children are killed in a ``finally``.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from super_visor._cli import main

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0
BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "super_visor", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


# ----------------------------------------------------------------- inspecting


def test_tree_prints_the_tree() -> None:
    done = cli("tree", "tests.cli_apps:app")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "app  (supervisor: one_for_one, at most 3 restarts within 5s)",
        "├── db  grace 3s, gates start-up (ready_timeout 10s)",
        "├── pipeline  (supervisor: one_for_one, at most 3 restarts within 5s), "
        "grace: as long as its procs need",
        "│   └── consumer  grace 2s",
        "└── web  grace 5s",
    ]


def test_plan_prints_start_and_stop_plans_and_the_worst_case() -> None:
    done = cli("plan", "tests.cli_apps:app")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    starts = [line.split()[1] for line in lines if line.strip()[:2] in {"1.", "2.", "3.", "4."}]
    assert starts[:4] == ["app/db", "app/pipeline", "app/pipeline/consumer", "app/web"]
    assert starts[4:] == ["app/web", "app/pipeline/consumer", "app/pipeline", "app/db"]
    assert "start, then wait: gates start-up (ready_timeout 10s)" in done.stdout
    assert "worst-case wait on gates: 10s" in done.stdout
    assert "every proc ends by its force-cancel: 10s" in done.stdout  # 5 + 2 + 3
    assert "worst-case shutdown: 40s" in done.stdout  # each also abandoned after 10s


def test_plan_counts_the_grace_flag() -> None:
    done = cli("plan", "tests.cli_apps:app", "--grace", "1")
    assert "every proc ends by its force-cancel: 3s" in done.stdout


def test_check_prints_tree_and_configuration_with_sources(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("SUPER_VISOR__WEB__GRACE=8\nSUPER_VISOR_MAX_RESTARTS=1\n", "utf-8")
    done = cli(
        "check",
        "tests.cli_apps:app",
        "--env-file",
        str(env_file),
        "--log-level",
        "debug",
        env={"SUPER_VISOR_MAX_RESTARTS": "2"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "└── web  grace 8s" in out
    assert f"  web: grace = 8  [.env file {env_file}]" in out
    assert "  app: max_restarts = 2  [environment]" in out  # the environment beats .env
    assert "  log_level = DEBUG  [command line (--log-level)]" in out
    assert "  db: grace = 3  [code]" in out
    assert out.rstrip().endswith("ok: app is valid")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tests.cli_apps", "tests.cli_apps: expected module:attr"),
        ("tests.no_such_module:app", "cannot import module 'tests.no_such_module'"),
        ("tests.cli_apps:missing", "module 'tests.cli_apps' has no attribute 'missing'"),
        ("tests.cli_apps:not_a_supervisor", "is 42, not a Supervisor or a SupervisorBuilder"),
        ("tests.cli_apps:duplicate", "app/web: two procs have this name in one supervisor"),
    ],
)
@pytest.mark.parametrize("command", ["run", "check", "tree", "plan"])
def test_bad_input_exits_2_with_the_message(command: str, target: str, message: str) -> None:
    done = cli(command, target)
    assert done.returncode == 2
    assert done.stderr.startswith("super-visor: configuration error: ")
    assert message in done.stderr
    assert done.stdout == ""  # nothing ran


def test_a_malformed_environment_value_exits_2() -> None:
    done = cli("check", "tests.cli_apps:app", env={"SUPER_VISOR__PIPELINE__GRACE": "soon"})
    assert done.returncode == 2
    assert "SUPER_VISOR__PIPELINE__GRACE: got 'soon' (from environment)" in done.stderr


def test_a_missing_env_file_exits_2() -> None:
    done = cli("check", "tests.cli_apps:app", "--env-file", "/nonexistent/.env")
    assert done.returncode == 2
    assert "--env-file: '/nonexistent/.env' is not a file" in done.stderr


def test_a_usage_error_exits_2() -> None:
    done = cli("run")
    assert done.returncode == 2
    assert "usage: super-visor run" in done.stderr


def test_the_script_entry_point_is_declared() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert pyproject["project"]["scripts"]["super-visor"] == "super_visor._cli:main"
    assert callable(main)


# ----------------------------------------------------------------- running


@BACKENDS
@pytest.mark.parametrize("attr", ["finite", "factory"])
def test_run_a_tree_that_stops_by_itself_exits_0(backend: str, attr: str) -> None:
    done = cli("run", f"tests.cli_apps:{attr}", "--backend", backend)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == [
        "stop web reason=proc 'app/quick' completed",
        "stop db reason=proc 'app/quick' completed",
    ]
    assert "app: stopped (proc 'app/quick' completed)" in done.stderr  # the report


@BACKENDS
def test_run_a_failing_proc_exits_1(backend: str) -> None:
    done = cli("run", "tests.cli_apps:failing", "--backend", backend)
    assert done.returncode == 1
    assert "boom: failed - RuntimeError: boom went the proc" in done.stderr


def test_log_level_flag_filters_the_log_lines() -> None:
    done = cli("run", "tests.cli_apps:finite", "--log-level", "WARNING")
    assert done.returncode == 0
    assert "INFO super_visor" not in done.stderr
    done = cli("run", "tests.cli_apps:finite", "--log-level", "DEBUG")
    assert "DEBUG super_visor.app.db: app/db: starting" in done.stderr


@BACKENDS
def test_run_stops_gracefully_on_sigterm_and_exits_0(backend: str) -> None:
    app = subprocess.Popen(
        [sys.executable, "-m", "super_visor", "run", "tests.cli_apps:app", "--backend", backend],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        read_until(app, "start web")
        app.send_signal(signal.SIGTERM)
        out, err = app.communicate(timeout=TIMEOUT)
    finally:
        if app.returncode is None:
            app.kill()
            app.communicate()
    assert app.returncode == 0, err.decode()
    stops = [line.split()[1] for line in out.decode().splitlines() if line.startswith("stop ")]
    assert stops == ["web", "db"]
    assert "app: stopped (signal SIGTERM)" in err.decode()


def read_until(proc: subprocess.Popen[bytes], wanted: str) -> str:
    """Read the child's stdout until a line equal to *wanted* arrives (bounded)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while wanted.encode() + b"\n" not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                pytest.fail(f"timed out waiting for {wanted!r}; got {seen!r}")
            data = os.read(fd, 65536)
            if not data:
                pytest.fail(f"the child exited before {wanted!r}; got {seen!r}")
            seen += data
    return seen.decode()
