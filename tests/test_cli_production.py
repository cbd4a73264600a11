"""The production flags of ``super-visor``: ``--version``, ``--env-file none``, ``--log-format``.

Run as ``python -m super_visor`` in real subprocesses, as in ``tests/test_cli.py``; the
applications are in ``tests/cli_apps.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import super_visor

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0


def cli(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SUPER_VISOR_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "super_visor", *args],
        cwd=cwd,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_version_prints_the_package_version() -> None:
    done = cli("--version")
    assert done.returncode == 0, done.stderr
    with (ROOT / "pyproject.toml").open("rb") as file:
        version = tomllib.load(file)["project"]["version"]
    assert done.stdout.strip() == f"super-visor {version}"
    assert version == super_visor.__version__


def test_the_version_is_not_older_than_any_versionadded() -> None:
    """An API tagged ``versionadded:: 0.2`` ships in a release numbered 0.2 or later, so
    ``--version`` never names a release that predates what the docs say it has."""
    major_minor = tuple(int(part) for part in super_visor.__version__.split(".")[:2])
    tagged = {
        tuple(int(part) for part in found.split("."))
        for source in (ROOT / "super_visor").rglob("*.py")
        for found in re.findall(r"version(?:added|changed):: (\d+\.\d+)", source.read_text())
    }
    assert tagged, "no versionadded tags found"
    assert max(tagged) <= major_minor, (max(tagged), super_visor.__version__)


def test_env_file_none_reads_no_env_file(tmp_path: Path) -> None:
    """A ``.env`` in the working directory is read by default (here it is malformed: exit
    2 naming it) and not at all with ``--env-file none``."""
    (tmp_path / ".env").write_text("SUPER_VISOR_GRACE=soon\n")
    done = cli("check", "tests.cli_apps:app", cwd=tmp_path)
    assert done.returncode == 2
    assert "SUPER_VISOR_GRACE" in done.stderr
    assert ".env" in done.stderr
    done = cli("check", "tests.cli_apps:app", "--env-file", "none", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[.env" not in done.stdout  # no value comes from a .env file


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_log_format_json_writes_json_lines(backend: str) -> None:
    done = cli("run", "tests.cli_apps:finite", "--backend", backend, "--log-format", "json")
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert ("app/quick", "completed", "completed") in {
        (e.get("sv_path"), e.get("sv_event"), e.get("sv_status")) for e in entries
    }
    assert done.stderr.splitlines()[len(entries)].startswith("app: stopped")


def test_the_log_format_flag_beats_the_environment() -> None:
    done = cli(
        "run",
        "tests.cli_apps:finite",
        "--log-format",
        "plain",
        env={"SUPER_VISOR_LOG_FORMAT": "json"},
    )
    assert done.returncode == 0, done.stderr
    assert not any(line.startswith("{") for line in done.stderr.splitlines())
    assert " INFO super_visor.app.quick: app/quick: completed" in done.stderr


def test_a_bad_log_format_is_a_usage_error_exit_2() -> None:
    done = cli("run", "tests.cli_apps:finite", "--log-format", "xml")
    assert done.returncode == 2
    assert "--log-format" in done.stderr
    done = cli("run", "tests.cli_apps:finite", env={"SUPER_VISOR_LOG_FORMAT": "xml"})
    assert done.returncode == 2
    assert "SUPER_VISOR_LOG_FORMAT" in done.stderr


def test_check_shows_the_log_format_and_its_source() -> None:
    done = cli("check", "tests.cli_apps:app", "--log-format", "json")
    assert done.returncode == 0, done.stderr
    assert "log_format = json  [command line (--log-format)]" in done.stdout
