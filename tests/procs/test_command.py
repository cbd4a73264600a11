"""Command: real child programs started, probed, stopped by signal, killed, reaped."""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import ProcStatus, StartupError, SupervisorBuilder, SupervisorError
from super_visor.procs import Command, CommandFailed, LogLineProbe

from ..fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes
from .helpers import alive, python, read_pids

if TYPE_CHECKING:
    from pathlib import Path


# A child that says it is up, then waits to be stopped by the default SIGTERM.
SERVES = """
    import time
    print("up", flush=True)
    time.sleep(60)
"""


async def test_output_is_logged_and_a_clean_stop_returns_the_signal_exit_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="super_visor.procs")
    cmd = Command(python(SERVES), name="sleeper", ready=LogLineProbe("^up$"), grace=5)
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    async with sup.running() as handle:
        assert handle.ready_value("sleeper") == "up"
        pid = cmd.pid
        assert pid is not None
        assert alive(pid)
    outcome = handle.report["sleeper"]
    assert outcome.status is ProcStatus.STOPPED
    assert outcome.result == -signal.SIGTERM
    assert not alive(pid)
    assert ("super_visor.procs.sleeper", logging.INFO, "up") in caplog.record_tuples


async def test_without_a_probe_the_ready_value_is_the_pid() -> None:
    cmd = Command(python(SERVES), name="sleeper")
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    async with sup.running() as handle:
        assert handle.ready_value("sleeper") == cmd.pid


async def test_non_zero_exit_fails_with_code_and_last_lines() -> None:
    code = """
        import sys
        for n in range(100):
            print(f"line {n}")
        sys.exit(3)
    """
    cmd = Command(python(code), name="job", keep_lines=5)
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    error = caught.value.report["job"].error
    assert isinstance(error, CommandFailed)
    assert error.returncode == 3
    assert error.signal is None
    assert error.last_lines == ("line 95", "line 96", "line 97", "line 98", "line 99")
    assert "command 'job' exited with code 3" in str(error)
    assert "line 99" in str(error)
    assert "line 94" not in str(error)  # the ring is bounded


async def test_stderr_is_kept_too() -> None:
    code = "import sys; print('boom: the disk is full', file=sys.stderr); sys.exit(1)"
    sup = SupervisorBuilder("app").add_proc(Command(python(code), name="job")).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    error = caught.value.report["job"].error
    assert isinstance(error, CommandFailed)
    assert error.last_lines == ("boom: the disk is full",)


async def test_death_by_signal_fails_naming_the_signal() -> None:
    code = """
        import os, signal
        print("about to crash", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
    sup = SupervisorBuilder("app").add_proc(Command(python(code), name="crash")).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    error = caught.value.report["crash"].error
    assert isinstance(error, CommandFailed)
    assert error.signal == signal.SIGKILL
    assert "was killed by signal SIGKILL (9)" in str(error)
    assert "about to crash" in str(error)


async def test_exit_zero_on_its_own_completes() -> None:
    sup = SupervisorBuilder("app").add_proc(Command(python("print('done')"), name="once")).build()
    report = await sup.start(handle_signals=False)
    assert report["once"].status is ProcStatus.COMPLETED
    assert report["once"].result == 0


async def test_stubborn_child_stop_is_clean_and_reports_sigkill() -> None:
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("up", flush=True)
        time.sleep(60)
    """
    cmd = Command(python(code), name="stubborn", ready=LogLineProbe("^up$"), grace=0.2)
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    async with sup.running() as handle:
        pid = cmd.pid
    outcome = handle.report["stubborn"]
    assert outcome.status is ProcStatus.STOPPED  # not FORCED: the kill fits in the reserve
    assert outcome.result == -signal.SIGKILL
    assert pid is not None
    assert not alive(pid)


GRANDPARENT = """
    import os, signal, subprocess, sys, time
    grandchild = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    with open(sys.argv[1], "w") as pids:
        pids.write(f"{os.getpid()}\\n{grandchild.pid}\\n")
    print("up", flush=True)
    time.sleep(60)
"""


async def test_the_grandchild_dies_with_the_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    argv = [*python(GRANDPARENT), str(pid_file)]
    cmd = Command(argv, name="family", ready=LogLineProbe("^up$"), grace=0.2)
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    async with sup.running():
        child, grandchild = read_pids(pid_file)
        assert alive(child)
        assert alive(grandchild)
    assert not alive(child)
    assert not alive(grandchild)  # it ignored SIGTERM: the group's SIGKILL got it


async def test_force_cancelled_supervisor_still_kills_and_reaps_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    argv = [*python(GRANDPARENT), str(pid_file)]
    cmd = Command(argv, name="family", ready=LogLineProbe("^up$"), grace=30)
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    with anyio.fail_after(10):  # below the 30 s grace, which a forced stop must not wait
        with anyio.CancelScope() as scope:
            async with sup.running():
                child, grandchild = read_pids(pid_file)
                scope.cancel()  # the whole tree is cancelled, graces ignored
                await anyio.sleep_forever()
    assert not alive(child)
    assert not alive(grandchild)


async def test_probe_timeout_is_a_startup_error_naming_command_and_probe() -> None:
    cmd = Command(python(SERVES), name="slow", ready=LogLineProbe("never", timeout=0.2))
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    with pytest.raises(SupervisorError) as caught:
        async with sup.running():
            pytest.fail("the block must not run")  # pragma: no cover (start-up fails)
    outer = caught.value.report["slow"].error
    assert isinstance(outer, StartupError)
    cause = outer.__cause__
    assert isinstance(cause, StartupError)
    assert cause.path == "slow"
    assert "LogLineProbe('never') did not pass within 0.2s" in str(cause)
    assert "  up" in str(cause)  # the last output lines


async def test_child_exiting_before_its_probe_passed_fails_start_up_at_once() -> None:
    code = "import sys; print('config file missing'); sys.exit(2)"
    cmd = Command(python(code), name="early", ready=LogLineProbe("ready", timeout=30))
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    # Below the probe's 30 s timeout: the exit ends start-up without waiting for it.
    with anyio.fail_after(10), pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    cause = caught.value.report["early"].error.__cause__  # type: ignore[union-attr]
    assert isinstance(cause, StartupError)
    assert "exited with code 2 before LogLineProbe('ready') passed" in str(cause)
    assert "config file missing" in str(cause)


async def test_commands_start_in_order_and_stop_in_reverse(tmp_path: Path) -> None:
    log = tmp_path / "log"
    code = """
        import signal, sys, time
        name, log = sys.argv[1], sys.argv[2]
        def bye(*_):
            with open(log, "a") as f:
                f.write(f"stop {name}\\n")
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        with open(log, "a") as f:
            f.write(f"start {name}\\n")
        print("up", flush=True)
        while True:
            time.sleep(60)
    """
    builder = SupervisorBuilder("app")
    for name in ("db", "cache", "web"):
        builder.add_proc(
            Command([*python(code), name, str(log)], name=name, ready=LogLineProbe("^up$"))
        )
    async with builder.build().running() as handle:
        pass
    assert log.read_text().split("\n")[:-1] == [
        "start db",
        "start cache",
        "start web",
        "stop web",
        "stop cache",
        "stop db",
    ]
    assert all(o.status is ProcStatus.STOPPED for o in handle.report.outcomes)
    assert all(o.result == 0 for o in handle.report.outcomes)


async def test_an_unexpected_exit_during_stop_is_a_failure() -> None:
    code = """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
        print("up", flush=True)
        time.sleep(60)
    """
    cmd = Command(python(code), name="messy", ready=LogLineProbe("^up$"))
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    with pytest.raises(SupervisorError) as caught:
        async with sup.running():
            pass
    error = caught.value.report["messy"].error
    assert isinstance(error, CommandFailed)
    assert error.returncode == 7


async def test_a_missing_program_fails_the_proc() -> None:
    cmd = Command(["/nonexistent/program"], name="ghost")
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    assert isinstance(caught.value.report["ghost"].error, FileNotFoundError)


def test_a_string_argv_is_refused() -> None:
    from super_visor import ConfigError

    with pytest.raises(ConfigError, match="argv must be a non-empty list"):
        Command("redis-server --port 6380", name="redis")


async def test_stop_signal_is_configurable() -> None:
    code = """
        import signal, sys, time
        signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
        print("up", flush=True)
        time.sleep(60)
    """
    cmd = Command(
        python(code), name="ctrl_c", ready=LogLineProbe("^up$"), stop_signal=signal.SIGINT
    )
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    async with sup.running() as handle:
        pass
    assert handle.report["ctrl_c"].status is ProcStatus.STOPPED
    assert handle.report["ctrl_c"].result == 0
