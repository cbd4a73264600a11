"""A proc raising a BaseException, end to end through ``run()`` in a child process.

API.md section 8: the proc is FAILED (never restarted), the tree stops gracefully in reverse
order, the report is printed, and the exit code is 130 for KeyboardInterrupt, *n* for
``SystemExit(n)`` (1 when *n* is not an int), 1 for any other BaseException, the same on both
backends. ``SystemExit(0)``/``SystemExit(None)`` is a clean stop: COMPLETED, exit 0.
The scenarios (``raise-KIND``: ``app[a, inner[b], x]``, x raises) are in ``tests/e2e/app.py``.
"""

from __future__ import annotations

import pytest

from super_visor import ProcStatus
from tests.test_signals_e2e import (
    Spawn,
    report_line,
    spawn,  # noqa: F401 (a fixture, used by name)
)

BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])


@BACKENDS
@pytest.mark.parametrize(
    ("kind", "code", "message"),
    [
        ("ki", 130, "KeyboardInterrupt"),
        ("exit3", 3, "SystemExit: 3"),
        ("exit-str", 1, "SystemExit: bye"),
        ("base", 1, "Fatal: fatal from x"),
    ],
)
def test_a_procs_base_exception_stops_the_tree_in_reverse_and_sets_the_exit_code(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
    kind: str,
    code: int,
    message: str,
) -> None:
    child = spawn(backend, f"raise-{kind}")
    assert child.finish() == code, child.stderr
    assert child.lines[:4] == ["start a", "start b", "start x", "stop b reason=proc 'app/x' failed"]
    assert child.stops == ["b", "a"]  # gracefully, in reverse: nobody was forced
    assert "app: stopped (proc 'app/x' failed)" in child.stderr
    assert report_line(child.stderr, "x", ProcStatus.FAILED), child.stderr
    assert f"x: failed - {message}" in child.stderr
    for name in ("a", "inner", "b"):
        assert report_line(child.stderr, name, ProcStatus.STOPPED), child.stderr


@BACKENDS
@pytest.mark.parametrize("kind", ["exit0", "exit-none"])
def test_sys_exit_in_a_proc_is_a_clean_stop(
    spawn: Spawn,  # noqa: F811 (the fixture)
    backend: str,
    kind: str,
) -> None:
    child = spawn(backend, f"raise-{kind}")
    assert child.finish() == 0, child.stderr
    assert child.stops == ["b", "a"]
    assert "app: stopped (proc 'app/x' completed)" in child.stderr
    assert report_line(child.stderr, "x", ProcStatus.COMPLETED), child.stderr
