"""PID 1: ``run()`` as a container's first process reaps orphans and nothing else (API.md §9).

Real processes only. Two ways to be PID 1 for an orphan:

- ``prctl(PR_SET_CHILD_SUBREAPER)`` through ctypes: orphans of the process's descendants are
  re-parented to it exactly as to PID 1; the private variable ``_pid1.ACT_AS_INIT`` turns
  the PID-1 behaviour on (``1``) or off (``0``). Always available on Linux.
- ``unshare --user --map-root-user --pid --fork --mount-proc``: the app really is PID 1 of a
  new PID namespace, without the switch. Skipped where unprivileged namespaces are off.

The app (``APP`` below) makes three kinds of children and prints what it observes:

- its own ``subprocess.Popen`` child that exits 7, left unwaited until it is a zombie, and
  then until an orphan made *after* it was reaped by the init (so the init has run its reap
  loop since): ``wait()`` must still return 7;
- its own ``anyio.open_process`` child exiting 5, and a `Command` exiting 3;
- an orphan: a shell's background job, whose shell exited at once.

Watching another process reap a pid has no event to wait on, so the app polls ``/proc``
for the orphan, with a deadline; nothing else sleeps.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from super_visor._pid1 import ACT_AS_INIT

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="prctl and /proc are Linux")

APP = textwrap.dedent(
    """
    import ctypes, os, subprocess, sys, time
    import anyio
    import super_visor
    from super_visor import Restart, SupervisorBuilder
    from super_visor.procs import Command

    backend, mode, deadline = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if mode in ("init", "no-init"):
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.prctl(36, 1, 0, 0, 0) == 0, ctypes.get_errno()  # PR_SET_CHILD_SUBREAPER

    def say(line):
        print(line, flush=True)

    def state(pid):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return None

    async def until(check, limit):
        with anyio.move_on_after(limit):
            while not check():
                await anyio.sleep(0.02)  # another process's reaping has no event to wait on
        return check()

    async def checks(token):
        say(f"pid {os.getpid()}")
        own = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(7)"])
        assert await until(lambda: state(own.pid) == "Z", 20), state(own.pid)
        out = subprocess.run(
            ["sh", "-c", "sleep 0.1 > /dev/null 2>&1 & echo $!"],
            capture_output=True, text=True, check=True,
        ).stdout
        orphan = int(out)
        reaped = await until(lambda: state(orphan) is None, deadline)
        say("orphan reaped" if reaped else f"orphan left: state {state(orphan)}")
        say(f"popen {own.wait()}")
        process = await anyio.open_process([sys.executable, "-c", "import sys; sys.exit(5)"])
        say(f"open_process {await process.wait()}")
        await command_ended.wait()

    command_ended = anyio.Event()

    def on_event(event):
        if event.path == "app/cmd" and event.kind.value == "failed":
            say(f"command {event.error.returncode}")
            command_ended.set()

    async def idle(token):
        say("up")
        await token.wait()

    if mode == "signal":
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.prctl(36, 1, 0, 0, 0) == 0
        sup = SupervisorBuilder("app").add_proc(idle)
    else:
        sup = (
            SupervisorBuilder("app")
            .add_proc(
                Command(["sh", "-c", "exit 3"], name="cmd"),
                restart=Restart.TEMPORARY,
                significant=False,
            )
            .add_proc(checks)
            .on_event(on_event)
        )
    super_visor.run(sup, backend=backend, console=False)
    """
)


def environ(act_as_init: str | None) -> dict[str, str]:
    """The environment of a child, with ``ACT_AS_INIT`` set to *act_as_init* or unset."""
    env = {k: v for k, v in os.environ.items() if k != ACT_AS_INIT}
    return env if act_as_init is None else {**env, ACT_AS_INIT: act_as_init}


#: The switch each mode of APP runs with ("pid1": none, really PID 1).
SWITCH = {"init": "1", "no-init": "0", "signal": "1", "pid1": None}


def run_app(*argv: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-c", APP, *argv],
        cwd=ROOT,
        env=environ(SWITCH[argv[1]]),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_as_init_orphans_are_reaped_and_own_children_keep_their_status(backend: str) -> None:
    done = run_app(backend, "init", "20")
    lines = done.stdout.splitlines()
    assert "orphan reaped" in lines, done.stdout + done.stderr
    assert "popen 7" in lines
    assert "open_process 5" in lines
    assert "command 3" in lines
    # The init exits with the app's code: 1, since the command failed.
    assert done.returncode == 1, done.stderr
    assert "cmd: failed" in done.stderr  # the report, printed once, by the app


def test_without_the_init_the_orphan_stays_a_zombie() -> None:
    """The control: the same app, re-parenting on, the init off. The orphan is left a
    zombie, so the test above could fail."""
    done = run_app("asyncio", "no-init", "1")
    lines = done.stdout.splitlines()
    assert "orphan left: state Z" in lines, done.stdout + done.stderr
    assert "popen 7" in lines


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_init_forwards_sigterm_and_exits_with_the_apps_code(backend: str) -> None:
    init = subprocess.Popen(
        [sys.executable, "-c", APP, backend, "signal", "0"],
        cwd=ROOT,
        env=environ(SWITCH["signal"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert init.stdout is not None
        assert init.stdout.readline() == "up\n"
        init.send_signal(signal.SIGTERM)  # to the init, as docker stop does to PID 1
        _, err = init.communicate(timeout=TIMEOUT)
    finally:
        init.kill()
        init.wait()
    assert init.returncode == 0, err
    assert err.count("signal received: SIGTERM") == 1, err  # forwarded once, a clean stop
    assert "app: stopped (signal SIGTERM)" in err


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [*UNSHARE, "/bin/sh", "-c", "echo $$"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0 and probe.stdout.strip() == "1"


UNSHARE = ("unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc")


@pytest.mark.skipif(not _namespaces_work(), reason="no unprivileged PID namespaces here")
def test_as_real_pid1_in_a_pid_namespace() -> None:
    done = run_app("asyncio", "pid1", "20", prefix=UNSHARE)
    lines = done.stdout.splitlines()
    assert "pid 2" in lines, done.stdout + done.stderr  # PID 1 is the init; the app is its child
    assert "orphan reaped" in lines, done.stdout + done.stderr
    assert "popen 7" in lines
    assert "open_process 5" in lines
    assert "command 3" in lines
    assert done.returncode == 1, done.stderr


SPLIT_OR_NOT = textwrap.dedent(
    """
    import os, sys, threading
    import super_visor._pid1 as pid1
    if sys.argv[1] == "thread":
        threading.Thread(target=threading.Event().wait, args=(5,), daemon=True).start()
    pid1.become_init_if_pid1("app")
    print(os.getpid(), flush=True)
    """
)


@pytest.mark.parametrize("case", ["not-pid1", "thread"])
def test_no_split_when_not_pid1_or_when_threads_run(case: str) -> None:
    """The process that returns is the one started (no init in between): an ordinary
    process, or PID 1 with a thread already running (it would be lost in a forked child),
    which also says why in a warning naming ``docker run --init``."""
    child = subprocess.Popen(
        [sys.executable, "-c", SPLIT_OR_NOT, case],
        env=environ("1" if case == "thread" else None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = child.communicate(timeout=TIMEOUT)
    assert int(out) == child.pid
    if case == "thread":
        assert "docker run --init" in err
    else:
        assert err == ""


@pytest.mark.skipif(not _namespaces_work(), reason="no unprivileged PID namespaces here")
def test_the_cli_splits_too_and_exits_with_the_apps_code() -> None:
    """``super-visor run`` as PID 1 (a container's ``CMD``): the same split, one report."""
    done = subprocess.run(
        [*UNSHARE, sys.executable, "-m", "super_visor", "run", "tests.cli_apps:failing"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("app: stopped (") == 1, done.stderr
