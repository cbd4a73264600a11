"""Isolated: a proc in its own spawned process (API.md section 11), with real child processes.

Every target lives in ``tests/procs/isolated_targets.py``, imported by the child (it gets our
``sys.path``). This module imports it too, so that the child's exception classes are known
here and are rebuilt (the rule: only classes the parent has already imported).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import (
    CancellationToken,
    ConfigError,
    EventKind,
    ProcStatus,
    Restart,
    StartupError,
    Supervisor,
    SupervisorBuilder,
    SupervisorError,
)
from super_visor.procs import Isolated, IsolatedError, IsolatedProc
from tests.procs import isolated_targets
from tests.procs.isolated_targets import ChildBoom

if TYPE_CHECKING:
    from super_visor import Event, SupervisorReport

T = "tests.procs.isolated_targets"


def alive(pid: int) -> bool:
    """Whether *pid* still runs code (a zombie waiting for init does not count)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


async def run_to_end(*procs: object, **keywords: object) -> SupervisorReport:
    """Run a tree of *procs* until it stops by itself; its report (also when it failed)."""
    builder = SupervisorBuilder("app", **keywords)  # type: ignore[arg-type]
    for proc in procs:
        builder.add_proc(proc)
    try:
        return await builder.build().start(handle_signals=False)
    except SupervisorError as exc:
        return exc.report


async def test_ready_value_crosses_and_the_stop_reaches_the_child() -> None:
    proc = Isolated(f"{T}:ready_then_wait", name="iso")
    async with SupervisorBuilder("app").add_proc(proc).build().running() as handle:
        ready = handle.ready_value("iso")
        assert isinstance(ready, dict)
        assert ready["answer"] == 42
        assert ready["pid"] != os.getpid()
        assert proc.pid == ready["pid"]
        assert alive(ready["pid"])
        handle.shutdown("test over")
    outcome = handle.report["iso"]
    assert outcome.status is ProcStatus.STOPPED
    assert outcome.result == "stopped: test over"
    assert not alive(ready["pid"]), "the child is reaped before the outcome is reported"
    assert proc.pid is None


async def test_a_managed_proc_target_returns_its_result() -> None:
    report = await run_to_end(Isolated(f"{T}:ready_then_return", name="quick"))
    outcome = report["quick"]
    assert outcome.status is ProcStatus.COMPLETED
    assert outcome.result == 7


async def test_managed_proc_object_as_target() -> None:
    tree = SupervisorBuilder("app").add_proc(Isolated(f"{T}:echo")).build()
    async with tree.running() as handle:
        assert handle.ready_value("echo") == "echo"
    assert handle.report["echo"].result == "echo done"


@pytest.mark.hang_guard(40)
async def test_a_child_ignoring_its_token_and_sigterm_is_killed_and_forced() -> None:
    proc = Isolated(f"{T}:ignores_token", name="stuck", grace=0.3)
    async with SupervisorBuilder("app").add_proc(proc).build().running() as handle:
        pid = handle.ready_value("stuck")
        assert isinstance(pid, int)
    assert handle.report["stuck"].status is ProcStatus.FORCED
    assert not alive(pid)


async def test_sigterm_after_the_grace_forces_the_child_whose_cleanup_runs(
    tmp_path: Path,
) -> None:
    mark = tmp_path / "mark"
    proc = Isolated(f"{T}:forced_cleanly", name="slow", grace=0.2, env={"MARK_FILE": str(mark)})
    async with SupervisorBuilder("app").add_proc(proc).build().running() as handle:
        pid = handle.ready_value("slow")
    assert handle.report["slow"].status is ProcStatus.FORCED
    assert mark.read_text() == "cleaned up"
    assert isinstance(pid, int)
    assert not alive(pid)


async def test_a_child_crash_comes_back_as_its_own_class_with_the_traceback() -> None:
    report = await run_to_end(Isolated(f"{T}:crash", name="boom"))
    outcome = report["boom"]
    assert outcome.status is ProcStatus.FAILED
    error = outcome.error
    assert isinstance(error, ChildBoom)
    assert str(error) == "child went boom"
    notes = "\n".join(error.__notes__)
    assert "Traceback in the isolated child" in notes
    assert "isolated_targets.py" in notes
    assert "ChildBoom: child went boom" in notes


async def test_an_unknown_error_class_comes_back_as_isolated_error() -> None:
    report = await run_to_end(Isolated(f"{T}:crash_unknown", name="odd"))
    error = report["odd"].error
    assert isinstance(error, IsolatedError)
    assert "LocalError" in str(error)
    assert "no class for this in the parent" in str(error)
    assert error.type_name is not None
    assert error.type_name.endswith("LocalError")
    assert "raise local(msg)" in "\n".join(error.__notes__)


async def test_os_exit_in_the_child_fails_the_proc_saying_so() -> None:
    report = await run_to_end(Isolated(f"{T}:hard_exit", name="quitter"))
    outcome = report["quitter"]
    assert outcome.status is ProcStatus.FAILED
    error = outcome.error
    assert isinstance(error, IsolatedError)
    assert error.returncode == 3
    assert "exited with code 3 before it reported an outcome" in str(error)


async def test_a_child_killed_by_a_signal_fails_the_proc_saying_so() -> None:
    report = await run_to_end(Isolated(f"{T}:killed_by_signal", name="victim"))
    error = report["victim"].error
    assert isinstance(error, IsolatedError)
    assert "killed by signal SIGKILL" in str(error)


async def test_a_ready_value_that_does_not_pickle_is_a_clear_startup_error() -> None:
    report = await run_to_end(Isolated(f"{T}:bad_ready_value", name="lock"))
    outcome = report["lock"]
    assert outcome.status is ProcStatus.FAILED
    assert isinstance(outcome.error, StartupError)
    cause = outcome.error.__cause__
    assert isinstance(cause, TypeError)
    assert "ready value (lock) cannot cross to the parent process" in str(cause)
    assert "not picklable" in str(cause)


async def test_a_result_that_does_not_pickle_is_a_clear_error() -> None:
    report = await run_to_end(Isolated(f"{T}:bad_result", name="lock"))
    error = report["lock"].error
    assert isinstance(error, TypeError)
    assert "result (lock) cannot cross to the parent process" in str(error)


async def test_a_target_that_does_not_import_fails_with_the_import_error() -> None:
    report = await run_to_end(Isolated("tests.procs.no_such_module:fn", name="missing"))
    error = report["missing"].error
    assert isinstance(error, StartupError)
    assert isinstance(error.__cause__, ModuleNotFoundError)
    assert "no_such_module" in str(error.__cause__)


async def test_a_target_that_is_not_a_proc_fails_naming_it() -> None:
    report = await run_to_end(Isolated(f"{T}:not_a_proc", name="number"))
    cause = report["number"].error.__cause__  # type: ignore[union-attr]
    assert isinstance(cause, TypeError)
    assert "the target 42 is not a proc" in str(cause)


async def test_restart_policy_applies_and_ready_value_is_the_latest_runs(tmp_path: Path) -> None:
    count = tmp_path / "count"
    proc = Isolated(
        f"{T}:count_runs",
        name="flaky",
        restart=Restart.TRANSIENT,
        env={"COUNT_FILE": str(count)},
        wait_ready=False,
    )
    tree = SupervisorBuilder("app", max_restarts=5).add_proc(proc).build()
    async with tree.running() as handle:
        with anyio.fail_after(20):
            while handle.ready_value("flaky") != 3:  # noqa: ASYNC110 (runs in another process)
                await anyio.sleep(0.02)
    outcome = handle.report["flaky"]
    assert outcome.status is ProcStatus.STOPPED
    assert outcome.restarts == 2
    assert [type(error) for error in outcome.history] == [ChildBoom, ChildBoom]


async def test_replicas_are_a_nested_supervisor_of_restartable_children() -> None:
    group = Isolated(f"{T}:pid_and_wait", name="workers", replicas=3, restart=Restart.PERMANENT)
    assert isinstance(group, Supervisor)
    assert [spec.name for spec in group.specs] == ["0", "1", "2"]
    assert all(spec.restart is Restart.PERMANENT for spec in group.specs)
    async with SupervisorBuilder("app").add_proc(group).build().running() as handle:
        pids = {handle.ready_value(f"workers/{i}") for i in range(3)}
        assert len(pids) == 3
        assert os.getpid() not in pids
    assert [o.path for o in handle.report["workers"].children] == [
        "app/workers/0",
        "app/workers/1",
        "app/workers/2",
    ]
    assert all(not alive(pid) for pid in pids if isinstance(pid, int))


async def test_replicas_share_one_listening_socket_passed_down() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        group = Isolated(f"{T}:serve_inherited", name="web", replicas=2, sockets=[listener])
        async with SupervisorBuilder("app").add_proc(group).build().running() as handle:
            pids = {handle.ready_value("web/0"), handle.ready_value("web/1")}
            seen = set()
            for _ in range(20):
                async with await anyio.connect_tcp("127.0.0.1", port) as conn:
                    seen.add(int(await conn.receive()))
            assert seen <= pids
    assert handle.report["web/0"].status is ProcStatus.STOPPED


async def test_backend_keyword_chooses_the_childs_backend(anyio_backend: str) -> None:
    other = "trio" if anyio_backend == "asyncio" else "asyncio"
    tree = (
        SupervisorBuilder("app")
        .add_proc(Isolated(f"{T}:which_backend", name="same"))
        .add_proc(Isolated(f"{T}:which_backend", name="other", backend=other))
        .build()
    )
    async with tree.running() as handle:
        assert handle.ready_value("same") == anyio_backend
        assert handle.ready_value("other") == other


async def test_an_isolated_tree_shows_in_the_report_under_the_proc() -> None:
    tree = SupervisorBuilder("app").add_proc(Isolated(f"{T}:tree", name="inner")).build()
    async with tree.running() as handle:
        assert handle.ready_value("inner") is None  # a tree's ready value is None, as nested
    report = handle.report
    inner = report["inner"]
    assert [child.path for child in inner.children] == ["app/inner/db", "app/inner/web"]
    assert report["inner/db"].status is ProcStatus.STOPPED
    assert report["inner/web"].status is ProcStatus.STOPPED
    assert "    db: stopped" in report.render()


async def test_a_failing_isolated_tree_raises_the_childs_error_in_a_supervisor_error() -> None:
    report = await run_to_end(Isolated(f"{T}:failing_tree", name="inner", wait_ready=False))
    inner = report["inner"]
    assert inner.status is ProcStatus.FAILED
    assert isinstance(inner.error, SupervisorError)
    bad = report["inner/bad"]
    assert bad.status is ProcStatus.FAILED
    assert isinstance(bad.error, ChildBoom)
    assert [leaf.path for leaf in report.failures()] == ["app/inner/bad"]
    assert inner.error.exceptions == (bad.error,)


async def test_the_childs_events_reach_the_parent_with_their_real_paths() -> None:
    events: list[Event] = []
    tree = (
        SupervisorBuilder("app")
        .on_event(events.append)
        .add_proc(Isolated(f"{T}:tree", name="inner"))
        .build()
    )
    async with tree.running():
        pass
    seen = {(event.kind, event.path) for event in events}
    for path in ("app/inner/db", "app/inner/web"):
        assert (EventKind.STARTING, path) in seen
        assert (EventKind.READY, path) in seen
        assert (EventKind.STOPPED, path) in seen
    assert (EventKind.STOPPED, "app/inner") in seen


@pytest.mark.parametrize(
    ("keywords", "problem"),
    [
        ({"target": "no_colon"}, "target must be a 'module:attr' string"),
        ({"target": 42}, "target must be a 'module:attr' string"),
        ({"replicas": 0}, "replicas must be a whole number >= 1"),
        ({"replicas": True}, "replicas must be a whole number >= 1"),
        ({"grace": -1.0}, "grace must be a finite number of seconds"),
        ({"backend": "curio"}, "backend must be 'asyncio' or 'trio'"),
        ({"env": {"A": 1}}, "env must map str to str"),
        ({"sockets": [3]}, "sockets must be a list of open sockets"),
        ({"restart": "always"}, "restart must be a Restart"),
        ({"wait_ready": "yes"}, "wait_ready must be True or False"),
        ({"name": "a/b"}, "the proc name"),
        ({"cwd": 3}, "cwd must be a path or None"),
        ({"ready_timeout": float("nan")}, "ready_timeout must be a finite number"),
    ],
)
def test_bad_arguments_are_config_errors_naming_them(
    keywords: dict[str, object], problem: str
) -> None:
    arguments: dict[str, object] = {"target": f"{T}:pid_and_wait", **keywords}
    with pytest.raises(ConfigError, match=problem):
        Isolated(**arguments)  # type: ignore[call-overload]


def test_the_name_defaults_to_the_targets_attribute() -> None:
    proc = Isolated(f"{T}:echo")
    assert isinstance(proc, IsolatedProc)
    assert proc.name == "echo"
    assert proc.wait_ready is True
    assert isolated_targets.echo.name == "echo"


async def test_the_child_knows_its_path_and_can_shut_the_whole_tree_down() -> None:
    report = await run_to_end(Isolated(f"{T}:asks_for_shutdown", name="asker"))
    assert report.reason == "the isolated child asked"
    outcome = report["asker"]
    assert outcome.status is ProcStatus.STOPPED
    assert outcome.result == "stopped: the isolated child asked"


async def test_the_ready_value_sees_the_real_name_and_path() -> None:
    tree = SupervisorBuilder("app").add_proc(Isolated(f"{T}:asks_for_shutdown", name="asker"))
    async with tree.build().running() as handle:
        assert handle.ready_value("asker") == "asker at app/asker"


async def test_a_forced_isolated_tree_still_reports_its_procs() -> None:
    proc = Isolated(f"{T}:stuck_tree", name="inner", grace=0.2)
    async with SupervisorBuilder("app").add_proc(proc).build().running() as handle:
        pass
    inner = handle.report["inner"]
    assert inner.status is ProcStatus.FORCED
    # SIGTERM in the child forced its tree: deaf (30 s of grace there) and db behind it.
    assert [child.path for child in inner.children] == ["app/inner/db", "app/inner/deaf"]
    assert handle.report["inner/deaf"].status is ProcStatus.FORCED
    assert handle.report["inner/db"].status is ProcStatus.FORCED


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(
    "target",
    [
        "pid_and_wait",  # its loop runs: the socket's EOF (and the death signal) stop it
        "blocks_loop",  # its loop is blocked: only the death signal's handler can act
    ],
)
def test_the_child_dies_when_the_parent_is_sigkilled(backend: str, target: str) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-m", "tests.procs.isolated_parent", backend, target],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child), "the child outlived its SIGKILLed parent"
    finally:
        if parent.returncode is None:
            parent.kill()
            parent.wait()
        parent.stdout.close()  # type: ignore[union-attr]


async def test_an_isolated_proc_made_by_a_factory_reports_its_tree_too() -> None:
    def make() -> IsolatedProc:
        return Isolated(f"{T}:tree", name="inner")

    tree = SupervisorBuilder("app").add_factory("inner", make, wait_ready=True).build()
    async with tree.running() as handle:
        pass
    assert [o.path for o in handle.report["inner"].children] == ["app/inner/db", "app/inner/web"]


async def test_a_restart_limit_in_the_child_marks_the_parents_tree() -> None:
    proc = Isolated(f"{T}:gives_up", name="inner", wait_ready=False)
    tree = SupervisorBuilder("app").add_proc(proc, significant=False).add_proc(isolated_idle)
    marked: list[bool] = []

    async def until_inner_failed() -> None:
        async with tree.build().running() as handle:
            marked.append(handle.status().restart_limit_reached)
            with anyio.fail_after(20):
                while handle.is_running("inner"):  # noqa: ASYNC110 (ends in another process)
                    await anyio.sleep(0.02)
            marked.append(handle.status().restart_limit_reached)

    with pytest.raises(SupervisorError) as caught:  # a proc failed: running() raises at exit
        await until_inner_failed()
    assert marked == [False, True]
    report = caught.value.report
    assert report["inner"].status is ProcStatus.FAILED
    assert report["inner/loop"].status is ProcStatus.FAILED


async def isolated_idle(token: CancellationToken) -> None:
    await token.wait()


async def test_a_child_that_never_gets_ready_fails_startup_at_its_ready_timeout() -> None:
    proc = Isolated(f"{T}:never_ready", name="mute", ready_timeout=0.5)
    report = await run_to_end(proc)
    error = report["mute"].error
    assert isinstance(error, StartupError)
    assert "not ready within 0.5s" in str(error)
    assert proc.pid is None  # reaped


async def test_without_wait_ready_a_child_that_never_calls_ready_runs_on() -> None:
    proc = Isolated(f"{T}:never_ready", name="worker", wait_ready=False)
    async with SupervisorBuilder("app").add_proc(proc).build().running() as handle:
        assert handle.ready_value("worker") is None
    assert handle.report["worker"].status is ProcStatus.STOPPED


async def test_the_childs_log_records_reach_the_parents_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    proc = Isolated(f"{T}:logs_then_waits", name="chatty")
    async with SupervisorBuilder("app").add_proc(proc).build().running():
        pass
    records = [r for r in caplog.records if r.name == "tests.isolated.child"]
    assert [r.levelno for r in records] == [logging.INFO, logging.ERROR]
    hello, failure = records
    assert hello.getMessage().startswith("hello from pid ")
    assert hello.process != os.getpid()
    assert failure.exc_text is not None
    assert "ChildBoom: logged, not raised" in failure.exc_text


#: Seconds an idle worker thread of trio's thread cache lives (trio's IDLE_TIMEOUT).
_TRIO_THREAD_IDLE = 10


def test_a_trio_child_outlives_the_worker_thread_that_spawned_it() -> None:
    """trio spawns from a cached worker thread, which ends once idle: the parent-death
    signal then fires although the parent lives (PITFALLS 14). Run in a process of its own:
    under the test runner, trio's thread cache may be tuned by other tests (tests/fakes.py)."""
    parent = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.procs.isolated_parent",
            "trio",
            "pid_and_wait",
            str(_TRIO_THREAD_IDLE + 2),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert parent.returncode == 0, parent.stderr
    assert parent.stdout.splitlines()[1] == "child still runs: True"


async def test_token_supervisor_in_a_proc_target_says_where_the_supervisor_is() -> None:
    report = await run_to_end(Isolated(f"{T}:reaches_for_its_supervisor", name="curious"))
    error = report["curious"].error
    assert isinstance(error, RuntimeError)
    assert "runs in the parent process" in str(error)
