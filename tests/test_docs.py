"""The code in the docs runs: every block marked runnable is executed as its own program.

A fenced ```python block directly preceded by ``<!-- run -->`` is run as a script; one preceded
by ``<!-- run: pytest -->`` is run as a pytest module. Either must pass, warnings included
(``-W error``), within the timeout. Blocks without a marker are fragments and are not run.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import super_visor

DOCS = Path(__file__).resolve().parent.parent / "docs"
TIMEOUT = 30  # seconds; every snippet finishes by itself in about a second

_RUNNABLE = re.compile(
    r"^<!-- run(?:: (?P<kind>[\w-]+))? -->\n```python\n(?P<code>.*?)^```$", re.DOTALL | re.MULTILINE
)
_KINDS = {None, "pytest"}


@dataclass(frozen=True)
class Snippet:
    page: str
    line: int
    kind: str | None
    code: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def _snippets() -> list[Snippet]:
    found = []
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for match in _RUNNABLE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            name = page.relative_to(DOCS).as_posix()
            found.append(Snippet(name, line, match["kind"], match["code"]))
    return found


SNIPPETS = _snippets()


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


@pytest.mark.parametrize("snippet", SNIPPETS, ids=str)
def test_snippet_runs(snippet: Snippet, tmp_path: Path) -> None:
    assert snippet.kind in _KINDS, f"{snippet}: unknown marker 'run: {snippet.kind}'"
    if snippet.kind == "pytest":
        (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        script = tmp_path / "test_snippet.py"
        script.write_text(snippet.code, encoding="utf-8")
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"]
        done = _run([*args, "-c", "pytest.ini", script.name], tmp_path)
    else:
        script = tmp_path / "snippet.py"
        script.write_text(snippet.code, encoding="utf-8")
        done = _run([sys.executable, "-W", "error", script.name], tmp_path)
    assert done.returncode == 0, f"{snippet} exited {done.returncode}:\n{done.stdout}{done.stderr}"


def test_every_tutorial_page_has_runnable_code() -> None:
    pages = {s.page for s in SNIPPETS}
    tutorial = [p for p in _pages() if p.parent.name == "tutorial" and p.name != "index.md"]
    assert tutorial
    for page in tutorial:
        assert page.relative_to(DOCS).as_posix() in pages, f"{page.name} has no runnable block"


def test_run_markers_are_all_recognised() -> None:
    """A misspelt marker would silently leave a block untested."""
    for page in _pages():
        for marker in re.findall(r"<!--\s*run\b.*?-->", page.read_text(encoding="utf-8")):
            assert re.fullmatch(r"<!-- run(: pytest)? -->", marker), f"{page.name}: {marker}"
    assert len(SNIPPETS) >= 10


def test_api_reference_documents_every_public_name() -> None:
    text = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. auto(?:class|function|exception):: (\w+)", text, re.M))
    missing = set(super_visor.__all__) - documented
    assert not missing, f"public names missing from reference/api.md: {sorted(missing)}"
    for name in documented:
        assert hasattr(super_visor, name), f"reference/api.md documents unknown {name}"


def test_readme_quick_start_stops_gracefully_on_sigint(tmp_path: Path) -> None:
    """The README sample runs until Ctrl-C; SIGINT stops web, then db, and it exits 0."""
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    match = re.search(r"## Quick start\n\n```python\n(.*?)^```$", readme, re.DOTALL | re.M)
    assert match is not None
    script = tmp_path / "quick_start.py"
    script.write_text(match[1], encoding="utf-8")
    app = subprocess.Popen(
        [sys.executable, "-u", "-W", "error", script.name],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None
        started = [app.stdout.readline(), app.stdout.readline()]
        assert started == ["db: connected\n", "web: serving\n"]
        app.send_signal(signal.SIGINT)
        rest, stderr = app.communicate(timeout=TIMEOUT)
    finally:
        if app.returncode is None:
            app.kill()
            app.communicate()
    assert app.returncode == 0, stderr
    assert rest == "db: closed\n"
    assert "app: stopped (signal SIGINT)" in stderr
