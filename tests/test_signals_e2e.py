"""Real SIGINT/SIGTERM sent to a real child process running ``super_visor.run()``.

Each test starts ``tests/e2e/app.py`` with ``sys.executable``, reads its stdout until the procs
it waits for have printed ``start X`` (the pipe is the synchronisation: no sleeps), sends real
signals with ``os.kill``, and checks the exit code, the order of the ``stop`` lines, the report
on stderr and what the procs saw in ``token.reason``. Every wait has a deadline and the child
is killed in a ``finally``, so a hung child fails the test instead of stalling the run.

These are plain sync tests parametrized over ``backend``: the event loop runs in the child.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

import pytest

from super_visor import ProcStatus
from super_visor._signals import SAME_REQUEST_WITHIN

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

APP: Final = Path(__file__).parent / "e2e" / "app.py"
#: Bound on every wait for the child (start-up includes importing anyio/trio).
TIMEOUT: Final = 15.0

BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])
STOP_SIGNALS = pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"]
)


class Child:
    """One run of ``tests/e2e/app.py``: read its stdout line by line, signal it, reap it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._partial = b""
        self.stderr = ""

    def read_until(self, wanted: Iterable[str], timeout: float = TIMEOUT) -> list[str]:
        """Read stdout until every line in *wanted* was seen; return all lines so far."""
        missing = set(wanted) - set(self.lines)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while missing:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    pytest.fail(f"timed out waiting for {sorted(missing)}; stdout: {self.lines}")
                data = os.read(fd, 65536)
                if not data:
                    self.finish()
                    pytest.fail(
                        f"the child exited ({self.proc.returncode}) before printing "
                        f"{sorted(missing)}; stdout: {self.lines}; stderr:\n{self.stderr}"
                    )
                missing -= set(self._feed(data))
        return list(self.lines)

    def _feed(self, data: bytes) -> list[str]:
        *complete, self._partial = (self._partial + data).split(b"\n")
        new = [line.decode() for line in complete]
        self.lines.extend(new)
        return new

    def send(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def write_line(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = TIMEOUT) -> int:
        """Wait for the child to exit (bounded); collect the rest of stdout and all stderr."""
        out, err = self.proc.communicate(timeout=timeout)
        self._feed(out)
        if self._partial:
            self._feed(b"\n")
        self.stderr = err.decode()
        return self.proc.returncode

    @property
    def stops(self) -> list[str]:
        """The names of the procs that stopped cleanly, in the order they stopped."""
        return [line.split()[1] for line in self.lines if line.startswith("stop ")]


#: Starts one child: ``spawn(backend, scenario)``.
Spawn: TypeAlias = "Callable[[str, str], Child]"


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start children of ``tests/e2e/app.py``; kill and reap any still running afterwards."""
    children: list[subprocess.Popen[bytes]] = []

    def start(backend: str, scenario: str) -> Child:
        proc = subprocess.Popen(
            [sys.executable, str(APP), "--backend", backend, "--scenario", scenario],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        children.append(proc)
        return Child(proc)

    try:
        yield start
    finally:
        for proc in children:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=TIMEOUT)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()


def report_line(stderr: str, name: str, status: ProcStatus) -> bool:
    """Whether the report on *stderr* lists proc *name* with *status*."""
    return re.search(rf"^\s+{re.escape(name)}: {status.value}\b", stderr, re.MULTILINE) is not None


# --------------------------------------------------------------------------- one signal


@BACKENDS
@STOP_SIGNALS
def test_signal_stops_procs_in_reverse_order_and_exits_0(
    spawn: Spawn, backend: str, signum: signal.Signals
) -> None:
    """The first signal stops every proc gracefully, in reverse start order; exit code 0."""
    child = spawn(backend, "basic")
    started = child.read_until(["start a", "start b", "start c", "start d"])
    assert started == ["start a", "start b", "start c", "start d"]
    child.send(signum)
    assert child.finish() == 0, child.stderr
    assert child.stops == ["d", "c", "b", "a"]
    # Every proc's token carries the signal's name as the reason (nested ones too).
    reasons = {line.split("reason=", 1)[1] for line in child.lines if line.startswith("stop ")}
    assert reasons == {f"signal {signum.name}"}
    # The report goes to stderr; stdout holds only the application's own lines.
    assert all(line.split()[0] in ("start", "stop") for line in child.lines), child.lines
    assert signum.name in child.stderr
    for name in ("a", "inner", "b", "c", "d"):
        assert report_line(child.stderr, name, ProcStatus.STOPPED), child.stderr


@BACKENDS
def test_signal_handlers_are_restored_after_start_returns(spawn: Spawn, backend: str) -> None:
    """Inside the child, SIGINT/SIGTERM handlers after ``start()`` are the ones from before
    (the event loop's own SIGINT handler on asyncio, the app's SIGTERM handler)."""
    child = spawn(backend, "handlers")
    child.read_until(["start a", "start b", "start c", "start d"])
    child.send(signal.SIGTERM)
    assert child.finish() == 0, child.stderr
    before = [line for line in child.lines if line.startswith("handlers before ")]
    after = [line for line in child.lines if line.startswith("handlers after ")]
    assert len(before) == len(after) == 1, child.lines
    assert after[0].removeprefix("handlers after ") == before[0].removeprefix("handlers before ")
    assert "app_sigterm_handler" in before[0]
    assert "app handler called" not in child.lines  # the signal went to the supervisor
    assert "reason signal SIGTERM" in child.lines
    assert child.stops == ["d", "c", "b", "a"]


# --------------------------------------------------------------------------- second signal


@BACKENDS
@pytest.mark.parametrize(
    ("first", "second"),
    [
        (signal.SIGTERM, signal.SIGINT),
        (signal.SIGINT, signal.SIGTERM),
        (signal.SIGTERM, signal.SIGTERM),
    ],
    ids=["TERM-INT", "INT-TERM", "TERM-TERM"],
)
def test_second_signal_forces_everything_at_once(
    spawn: Spawn, backend: str, first: signal.Signals, second: signal.Signals
) -> None:
    """A stubborn proc holds up the shutdown; a second signal force-cancels every proc still
    running at once (not one grace after another) and the exit code is 128 + its number."""
    child = spawn(backend, "stubborn")
    child.read_until(["start a", "start b", "start c"])
    child.send(first)
    # c is stopped first (reverse order) and ignores its token; its grace is a minute.
    child.read_until([f"stubborn c reason=signal {first.name}"])
    if second == first:
        # The same signal within SAME_REQUEST_WITHIN of its previous delivery would be the
        # same request. A lower bound between the two handlings, not a synchronisation.
        time.sleep(3 * SAME_REQUEST_WITHIN)
    child.send(second)
    # Well within c's grace: only the forced stop can end the child this early.
    assert child.finish(timeout=TIMEOUT) == 128 + second, child.stderr
    assert {"forced a", "forced b", "forced c"} <= set(child.lines), child.lines
    assert child.stops == []  # nobody got to stop gracefully: all were forced together
    for name in ("a", "b", "c"):
        assert report_line(child.stderr, name, ProcStatus.FORCED), child.stderr


# --------------------------------------------------------------------------- start-up


@BACKENDS
@STOP_SIGNALS
def test_signal_during_startup_stops_what_started(
    spawn: Spawn, backend: str, signum: signal.Signals
) -> None:
    """A signal while a gating proc holds start-up stops what started, in reverse; the procs
    start-up never reached are NOT_STARTED, and the exit code is still 0."""
    child = spawn(backend, "gated")
    child.read_until(["start a", "start gate"])
    child.send(signum)
    assert child.finish() == 0, child.stderr
    assert child.stops == ["gate", "a"]
    assert not any(line in child.lines for line in ("start c", "start d", "ready gate"))
    assert report_line(child.stderr, "c", ProcStatus.NOT_STARTED), child.stderr
    assert report_line(child.stderr, "d", ProcStatus.NOT_STARTED), child.stderr
    assert report_line(child.stderr, "gate", ProcStatus.STOPPED), child.stderr


@BACKENDS
def test_released_gate_lets_startup_continue(spawn: Spawn, backend: str) -> None:
    """The control for the test above: once the gate is released, the rest starts."""
    child = spawn(backend, "gated")
    child.read_until(["start a", "start gate"])
    assert "start c" not in child.lines  # the gate holds start-up
    child.write_line("go")
    lines = child.read_until(["start c", "start d"])
    assert lines == ["start a", "start gate", "ready gate", "start c", "start d"]
    child.send(signal.SIGTERM)
    assert child.finish() == 0, child.stderr
    assert child.stops == ["d", "c", "gate", "a"]


# --------------------------------------------------------------------------- exit codes


@BACKENDS
def test_failing_proc_exits_1(spawn: Spawn, backend: str) -> None:
    """A proc raising stops the application (significant by default); exit code 1."""
    child = spawn(backend, "fail")
    assert child.finish() == 1, child.stderr
    assert child.lines[:2] == ["start a", "start b"]
    assert child.stops == ["a"]
    assert "stop a reason=proc 'app/b' failed" in child.lines
    assert report_line(child.stderr, "b", ProcStatus.FAILED), child.stderr
    assert "boom from b" in child.stderr
    assert "boom from b" not in "\n".join(child.lines)


@BACKENDS
def test_config_error_exits_2_with_the_message_on_stderr(spawn: Spawn, backend: str) -> None:
    """A ConfigError is reported before anything runs; exit code 2."""
    child = spawn(backend, "config")
    assert child.finish() == 2, child.stderr
    assert child.lines == []
    assert "app/a" in child.stderr
    assert "name" in child.stderr
