"""Every example runs as its own program, the way a reader runs it, and says what it promises.

Each example is started with this interpreter in a subprocess (so `run()` may exit and install
signal handlers freely) and must finish by itself, exit 0 and print its key lines in order.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 30  # seconds; every example finishes in < 3 s, the demo in --for plus ~1 s

#: Lines each numbered example must print on stdout, in this order (other lines may come between).
EXPECTED: dict[str, list[str]] = {
    "01_hello.py": ["hello: started", "hello: stopping (stop requested: False)"],
    "02_ordered_start.py": [
        "start db",
        "start web",
        "start cache",
        "timer: time is up",
        "stop cache (reason: proc 'app/timer' completed)",
        "stop web (reason: proc 'app/timer' completed)",
        "stop db (reason: proc 'app/timer' completed)",
    ],
    "03_readiness.py": [
        "db: connecting",
        "db: ready",
        "api: started (db is ready by now)",
        "ready value of db: postgres://localhost/app",
        "start-up failed: broken/db: not ready within 0.2s (ready_timeout)",
        "api: NOT_STARTED",
    ],
    "04_grace_and_force.py": [
        "stubborn: force-cancelled",
        "tidy: flushing buffers",
        "  tidy: stopped",
        "  stubborn: forced",
        "exit code: 0",
    ],
    "05_nesting.py": [
        "start db",
        "start pipeline/sink",
        "start pipeline/source",
        "start web",
        "all started",
        "stop web",
        "stop pipeline/source",
        "stop pipeline/sink",
        "stop db",
        "app/pipeline/sink: STOPPED",
    ],
    "06_report_and_errors.py": [
        "ConfigError: app/web2: grace must be a finite number of seconds >= 0, got -1.0; "
        "pass e.g. grace=5.0 or omit it to use the builder default",
        "web: stopped because: proc 'app/payments' failed",
        "caught PaymentGatewayDown: gateway answered 503",
        "  payments: failed - PaymentGatewayDown: gateway answered 503",
        "exit code run() would use: 1",
    ],
    "10_operating.py": [
        "  web: grace = 0.5  [environment]",
        "web grace in code: 5",
        "web grace applied: 0.5 (from environment)",
        "ConfigError: SUPER_VISOR_GRACE: got 'soon' (from environment), expected a finite "
        "number of seconds >= 0; set e.g. SUPER_VISOR_GRACE=5",
        "event: starting app/web",
        "event: ready app/web",
        "event: completed app/job",
        "event: stopping app/web",
        "event: stopped app/web",
        "exit code: 0",
    ],
    "07_restarts.py": [
        "cache: start (run 1)",
        "web: start",
        "cache: crash!",
        "web: stop",
        "cache: start (run 2)",
        "web: start",
        "healed",
        "web: stop",
        "cache: stop",
        "db: stop",
        "cache: STOPPED, 1 restart(s)",
        "gave up: loop: more than 2 restarts within 10s (last crash: loop/broken); "
        "the supervisor gave up and stopped its procs",
        "broken restarts: 2",
    ],
    "08_factory_pipeline.py": [
        "scope 1: stream opened",
        "consumer 1: poison",
        "scope 1: stream closed",
        "scope 2: stream opened",
        "consumer 2: order 3",
        "scope 2: stream closed",
        "pipeline: STOPPED after 1 restart(s)",
    ],
    "09_dynamic_children.py": [
        "conn-2: crash!",
        "conn-2: open",
        "stopped server/conn-1: STOPPED",
        "shutting down",
        "conn-3: closed",
        "conn-2: closed",
        "listener: stop",
        "conn-2 restarts: 1",
    ],
    "15_structured_logs.py": [
        'metric: super_visor_proc_up{path="app/flaky"} 1.0',
        'metric: super_visor_proc_restarts_total{path="app/flaky"} 1.0',
        "ERROR sv_event=restarting, sv_path=app/flaky, sv_restarts=0, sv_status=failed "
        "(traceback in exc)",
        "INFO sv_event=completed, sv_path=app/job, sv_restarts=0, sv_status=completed",
        "INFO sv_event=shutdown_finished, sv_path=app",
        "exit code: 0",
    ],
    "14_faults.py": [
        "stuck: cleaning up, and ignoring any force-cancel",
        "db: closed",  # the stop moved on: stuck was abandoned
        "stuck: finally ended",
        "  db: stopped",
        "  stuck: abandoned",
        "quitter: sys.exit()",
        "db: closed",
        "sys.exit() in a proc: proc 'app/quitter' completed, exit code 0",
        "interrupter: raising KeyboardInterrupt",
        "db: closed",
        "start() raised KeyboardInterrupt; failed",
    ],
    "18_control_socket.py": [
        "$ super-visor ctl app.sock status",
        "app: running, ready",
        "$ super-visor ctl app.sock restart pipeline/consumer",
        "restart app/pipeline/consumer: done, now running",
        "(exit 1: super-visor ctl: app: no proc 'pipeline/nope'; its procs are: db, pipeline, "
        "operator)",
        "shutdown begun: shutdown requested through the control socket",
    ],
    "17_control.py": [
        "dispatcher: started app/pipeline/job-1",
        "event: app/db: stop requested by API",
        "db: closed (stopped by API)",
        "db is stopped; the app runs on: True",
        "event: app/db: start requested by API",
        "db restarts: 0",
        "event: app/stubborn: abort requested by API",
        "stubborn is forced",
        "pipeline/job-1 running: True",
        "event: app/pipeline: failure injection (RuntimeError('drill')) requested by API",
        "pipeline restarts: 1",
        "  app/stubborn: FORCED",
        "  app/pipeline/job-1: STOPPED",
    ],
}

DEMO_STARTS = [
    "[db] started",
    "[http] started",
    "[worker] started",
    "[pipeline/consumer] started",
    "[pipeline/producer] started",
]
DEMO_STOPS = [
    "[pipeline/producer] stopped",
    "[pipeline/consumer] stopped",
    "[worker] stopped",
    "[http] stopped",
    "[db] stopped",
]


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def assert_in_order(lines: list[str], expected: list[str], *, prefix: bool = False) -> None:
    """Each expected line occurs (whole, or as a line's start with *prefix*), in this order."""
    position = 0
    for want in expected:
        for index in range(position, len(lines)):
            line = lines[index]
            if line == want or (prefix and line.startswith(want)):
                position = index + 1
                break
        else:
            pytest.fail(
                f"{want!r} not found in order after line {position} of:\n" + "\n".join(lines)
            )


def test_every_example_is_tested() -> None:
    on_disk = {p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_and_prints_its_story(name: str) -> None:
    done = run_example(str(EXAMPLES / name))
    assert done.returncode == 0, done.stderr
    assert_in_order(done.stdout.splitlines(), EXPECTED[name])


def test_hello_prints_the_report_on_stderr() -> None:
    done = run_example(str(EXAMPLES / "01_hello.py"))
    assert "app: stopped (proc 'app/hello' completed)" in done.stderr
    assert "app: stopped" not in done.stdout  # stdout belongs to the application


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_starts_in_order_stops_in_reverse_and_exits_0(backend: str) -> None:
    done = run_example(str(EXAMPLES / "demo.py"), "--for", "2", "--backend", backend)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert_in_order(lines, [*DEMO_STARTS, "[countdown] 2 s are up", *DEMO_STOPS], prefix=True)
    assert "demo: stopped (proc 'demo/countdown' completed)" in done.stderr


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_answers_http_while_it_runs(backend: str) -> None:
    demo = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "demo.py"), "--for", "2", "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        seen: list[str] = []
        port = None
        for line in demo.stdout:  # the demo stops itself, so this loop ends
            seen.append(line)
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = int(found.group(1))
                break
        assert port is not None, "".join(seen)
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            assert response.status == 200
            assert response.read() == b"ok\n"
        with urllib.request.urlopen(f"{base}/", timeout=5) as response:
            assert response.headers["Content-Type"].startswith("application/json")
            assert b'"app": "super_visor demo"' in response.read()
        _, stderr = demo.communicate(timeout=TIMEOUT)
        assert demo.returncode == 0, stderr
    finally:
        if demo.returncode is None:
            demo.kill()
            demo.communicate()


# ---------------------------------------------------------------- real procs (issue 6)

#: Lines the real-procs examples print on stdout, in this order.
PROCS_EXPECTED: dict[str, list[str]] = {
    "11_command.py": [
        "kv is ready",
        "kv answered ['OK', 'hello']",
        "kv: stopped, exit code 0",
        "job failed: exit code 3, last line 'reading input.csv'",
    ],
    "12_periodic_and_thread.py": [
        "cleanup: run 1",
        "cleanup: run 3",
        "indexer: stop flag seen, returning",
        "indexer: stopped",
        "  stubborn: failed - ThreadAbandoned: thread 'stubborn' still running 0.2s",
        "  indexer: stopped",
        "  cleanup: stopped",
    ],
    "13_asgi_app.py": [
        "db: connected",
        "web: lifespan start-up (db is ready by now)",
        "reporter: started",
        "GET / -> 200 {'status': 'ok'}",
        "web: lifespan shutdown (db is still up)",
        "db: closed",
        "web: stopped",
    ],
}
EXPECTED.update(PROCS_EXPECTED)  # so test_every_example_is_tested knows them


@pytest.mark.parametrize("name", sorted(PROCS_EXPECTED))
def test_procs_example_runs_and_prints_its_story(name: str) -> None:
    done = run_example(str(EXAMPLES / name))
    assert done.returncode == 0, done.stderr
    assert_in_order(done.stdout.splitlines(), PROCS_EXPECTED[name], prefix=True)


@pytest.mark.parametrize(
    "args", [["--backend", "trio"], ["--server", "uvicorn"]], ids=["hypercorn-trio", "uvicorn"]
)
def test_asgi_example_runs_on_each_server_and_backend(args: list[str]) -> None:
    done = run_example(str(EXAMPLES / "13_asgi_app.py"), *args)
    assert done.returncode == 0, done.stderr
    assert_in_order(done.stdout.splitlines(), PROCS_EXPECTED["13_asgi_app.py"])


def test_realistic_app_serves_then_stops_in_reverse_and_exits_0() -> None:
    app = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "realistic_app.py"), "--for", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stderr is not None
        seen: list[str] = []
        port = None
        for line in app.stderr:  # the app stops itself, so this loop ends
            seen.append(line)
            found = re.search(r"app/web: ready: ready value (\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert port is not None, "".join(seen)
        for expected in (1, 2):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/visits", timeout=5) as reply:
                assert reply.read() == f'{{"visits":{expected}}}'.encode()
        stdout, stderr = app.communicate(timeout=TIMEOUT)
    finally:
        if app.returncode is None:
            app.kill()
            app.communicate()
    assert app.returncode == 0, stderr
    assert_in_order(
        stdout.splitlines(),
        ["web: lifespan start-up, kv answers PONG", "timer: 3 s are up", "web: lifespan shutdown"],
    )
    assert_in_order(
        ("".join(seen) + stderr).splitlines(),
        [
            "super_visor.app.kv: app/kv: ready: ready value",
            "super_visor.app.web: app/web: ready: ready value",
            "super_visor.app.cleanup: app/cleanup: stopped",
            "super_visor.app.web: app/web: stopped",
            "super_visor.procs.kv: kv: got SIGTERM, saving and exiting",
            "super_visor.app.kv: app/kv: stopped",
        ],
        prefix=True,
    )


# ---------------------------------------------------------------- isolated procs (issue 13)

#: What the isolated-procs example prints on stdout, in this order.
ISOLATED_EXPECTED: dict[str, list[str]] = {
    "16_isolated.py": [
        "GET / -> 200, answered by another process",
        "crunch: stopped",
        "crunch did some rounds",
        "app/web/0: stopped",
        "app/web/1: stopped",
        "exit code: 0",
    ],
}
EXPECTED.update(ISOLATED_EXPECTED)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_isolated_example_runs_and_prints_its_story(backend: str) -> None:
    done = run_example(str(EXAMPLES / "16_isolated.py"), "--backend", backend)
    assert done.returncode == 0, done.stderr
    assert_in_order(done.stdout.splitlines(), ISOLATED_EXPECTED["16_isolated.py"])
