"""``super-visor`` when the target cannot be loaded, and with a closed stdout.

Real ``python -m super_visor`` subprocesses against small modules written into ``tmp_path``
(run as the current directory, as a user would): every way to fail loading exits 2 with one
line on stderr and no traceback, unless ``--debug`` asks for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0

APP = """
    from super_visor import SupervisorBuilder

    async def web(token):
        await token.wait()

    def make_app():
        return SupervisorBuilder("app").add_proc(web)
"""

MODULES = {
    "missing_dependency": "import not_installed_anywhere_xyz\n",
    "syntax_error": "x = 1\ndef broken(:\n    pass\n",
    "raises_at_import": "raise RuntimeError('no database configured')\n",
    "factories": textwrap.dedent(APP)
    + textwrap.dedent("""
        def needs_arguments(port):
            return make_app()

        def raises():
            raise ValueError('PORT is not set')

        def returns_a_number():
            return 42

        async def no_token():
            pass

        def bad_proc():
            return SupervisorBuilder("app").add_proc(no_token)

        big = SupervisorBuilder("big")
        for number in range(10000):
            big.add_proc(web, name=f"web{number}")
    """),
}


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    for name, text in MODULES.items():
        (tmp_path / f"{name}.py").write_text(text, "utf-8")
    return tmp_path


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "super_visor", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


CASES = [
    pytest.param(
        "missing_dependency:app",
        "module 'missing_dependency' imports 'not_installed_anywhere_xyz', which is not installed",
        id="missing-dependency",
    ),
    pytest.param(
        "no_such_module:app",
        "cannot import module 'no_such_module' (no module named 'no_such_module')",
        id="missing-module",
    ),
    pytest.param("syntax_error:app", "syntax_error.py:2: ", id="syntax-error"),
    pytest.param(
        "raises_at_import:app",
        "importing module 'raises_at_import' raised RuntimeError: no database configured",
        id="raises-at-import",
    ),
    pytest.param(
        "factories:needs_arguments",
        "is a function that needs arguments, got needs_arguments(port)",
        id="factory-needs-arguments",
    ),
    pytest.param(
        "factories:raises",
        "calling raises() raised ValueError: PORT is not set",
        id="factory-raises",
    ),
    pytest.param(
        "factories:returns_a_number",
        "is 42, not a Supervisor or a SupervisorBuilder",
        id="wrong-type",
    ),
    pytest.param(
        "factories:bad_proc",
        "app/no_token: no_token must take exactly one positional argument (the token)",
        id="proc-without-token",
    ),
]


@pytest.mark.parametrize(("target", "message"), CASES)
def test_a_target_that_cannot_be_loaded_exits_2_with_one_line(
    app_dir: Path, target: str, message: str
) -> None:
    done = cli(app_dir, "check", target)

    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("super-visor: configuration error: ")
    assert message in lines[0]
    assert "Traceback" not in done.stderr


def test_the_syntax_error_names_file_and_line(app_dir: Path) -> None:
    done = cli(app_dir, "tree", "syntax_error:app")
    assert f"at {app_dir / 'syntax_error.py'}:2: " in done.stderr


def test_debug_adds_the_traceback_with_its_cause(app_dir: Path) -> None:
    done = cli(app_dir, "check", "--debug", "raises_at_import:app")

    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr
    assert "RuntimeError: no database configured" in done.stderr  # the cause, in full
    last = done.stderr.splitlines()[-1]
    assert last.startswith("super-visor: configuration error: raises_at_import:app: ")


def test_a_loadable_factory_still_works(app_dir: Path) -> None:
    done = cli(app_dir, "check", "factories:make_app")
    assert done.returncode == 0, done.stderr
    assert "ok: app is valid" in done.stdout


@pytest.mark.parametrize("command", ["tree", "check", "plan"])
def test_a_closed_stdout_ends_quietly(app_dir: Path, command: str) -> None:
    # More output than a pipe holds, so the writer is still writing when `head` has gone.
    pipeline = (
        f"{sys.executable} -m super_visor {command} factories:big | head -1; "
        'echo "status ${PIPESTATUS[0]}" >&2'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        ["bash", "-c", pipeline],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )

    assert len(done.stdout.splitlines()) == 1
    assert "BrokenPipeError" not in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == "status 0"
