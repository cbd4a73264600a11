"""SIGUSR1 on a running root supervisor logs the tree with each proc's state and stack.

It must never stop anything, and the previous SIGUSR1 handler comes back after the run (the
conftest checks SIGINT/SIGTERM; these tests check SIGUSR1 themselves).
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from super_visor import CancellationToken, ProcStatus, SupervisorBuilder

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0


class _Read:
    """Reads a child's pipes without blocking past a deadline (no sleeps)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        assert proc.stderr is not None
        self.text = {proc.stdout.fileno(): b"", proc.stderr.fileno(): b""}
        self.out, self.err = proc.stdout.fileno(), proc.stderr.fileno()

    def until(self, fd: int, wanted: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        with selectors.DefaultSelector() as selector:
            for each in self.text:
                selector.register(each, selectors.EVENT_READ)
            while wanted.encode() not in self.text[fd]:
                remaining = deadline - time.monotonic()
                ready = selector.select(remaining) if remaining > 0 else []
                if not ready:
                    pytest.fail(f"timed out waiting for {wanted!r}: {self.text}")
                for key, _ in ready:
                    data = os.read(int(key.fd), 65536)
                    if not data:
                        selector.unregister(key.fd)
                        if len(selector.get_map()) == 0:
                            pytest.fail(f"the child closed its pipes before {wanted!r}")
                    self.text[int(key.fd)] += data
        return self.text[fd].decode()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigusr1_logs_the_tree_with_stacks_and_the_app_keeps_running(backend: str) -> None:
    app = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "super_visor",
            "run",
            "tests.cli_apps:dumpable",
            "--backend",
            backend,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        read = _Read(app)
        read.until(read.out, "start consumer\n")
        # The nested pipeline is RUNNING only once all its procs are: a few scheduler trips
        # after its consumer began, which a loaded machine can stretch. Its READY line says so.
        read.until(read.err, "app/pipeline: ready")
        app.send_signal(signal.SIGUSR1)
        dump = read.until(read.err, "consumer: RUNNING")
        read.until(read.err, "in consumer")  # the last line of consumer's stack
        app.send_signal(signal.SIGUSR1)  # a second one is not a "second signal" either
        read.until(read.err, "SIGUSR1: the tree of app")
        app.send_signal(signal.SIGTERM)
        _out, err = app.communicate(timeout=TIMEOUT)
    finally:
        if app.returncode is None:
            app.kill()
            app.communicate()
    stderr = read.text[read.err].decode() + err.decode()
    assert app.returncode == 0, stderr
    assert "WARNING super_visor: SIGUSR1: the tree of app, with each proc's stack:" in dump
    assert "app/waiter: RUNNING\n" in dump
    assert "in waiting_forever" in dump  # where the proc's task is suspended
    assert "  app/pipeline: RUNNING" in dump
    assert "    app/pipeline/consumer: RUNNING" in dump  # nested procs, indented
    assert "app: stopped (signal SIGTERM)" in stderr  # SIGTERM stopped it, not SIGUSR1


async def test_sigusr1_in_process_dumps_and_restores_the_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dumped = anyio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "SIGUSR1: the tree of" in record.getMessage():
                dumped.set()

    async def asks_for_a_dump(token: CancellationToken) -> None:
        os.kill(os.getpid(), signal.SIGUSR1)
        await dumped.wait()

    async def bystander(token: CancellationToken) -> None:
        await token.wait()

    async def oneshot(token: CancellationToken) -> None:
        pass

    sup = (
        SupervisorBuilder("app")
        .add_proc(oneshot, significant=False)
        .add_proc(bystander)
        .add_proc(asks_for_a_dump, name="asker")
        .build()
    )
    before = signal.getsignal(signal.SIGUSR1)
    watch = Watch()
    logging.getLogger("super_visor").addHandler(watch)
    caplog.set_level(logging.WARNING, logger="super_visor")
    try:
        report = await sup.start(handle_signals=True)
    finally:
        logging.getLogger("super_visor").removeHandler(watch)
    assert signal.getsignal(signal.SIGUSR1) == before
    assert report.reason == "proc 'app/asker' completed"  # SIGUSR1 stopped nothing
    assert report["bystander"].status is ProcStatus.STOPPED
    dump = next(r.getMessage() for r in caplog.records if "SIGUSR1" in r.getMessage())
    assert "app/oneshot: ENDED (completed)" in dump  # ended procs are listed too
    assert "app/bystander: RUNNING" in dump
    assert "in bystander" in dump
