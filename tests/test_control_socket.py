"""The control socket for real: ``tests/control_app.py`` runs ``super_visor.run(...,
control=SOCK)`` in a child process, and the tests talk to it with ``python -m super_visor ctl``
and with raw sockets (garbage, oversized lines, idle and concurrent clients, another uid).

The child prints every lifecycle event on stdout (``<kind> <path>``); the tests wait on that
pipe, never on sleeps. Every wait has a deadline and the child is killed in a ``finally``.
These are sync tests parametrized over ``backend``: the event loop runs in the child.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT: Final = Path(__file__).parent.parent
#: Bound on every wait for the child (start-up includes importing anyio/trio).
TIMEOUT: Final = 20.0

BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])


class App:
    """One run of ``tests/control_app.py``: its control socket, its event lines, its end."""

    def __init__(self, proc: subprocess.Popen[bytes], sock: Path) -> None:
        self.proc = proc
        self.sock = sock
        self.lines: list[str] = []
        self._partial = b""

    def wait_line(self, wanted: str, timeout: float = TIMEOUT) -> None:
        """Read stdout until the line *wanted* has been printed (seen before counts)."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while wanted not in self.lines:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    pytest.fail(f"timed out waiting for {wanted!r}; stdout: {self.lines}")
                data = os.read(fd, 65536)
                if not data:
                    pytest.fail(f"the app exited before printing {wanted!r}: {self.lines}")
                *complete, self._partial = (self._partial + data).split(b"\n")
                self.lines.extend(line.decode() for line in complete)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m super_visor ctl SOCK *args``."""
        return subprocess.run(
            [sys.executable, "-m", "super_visor", "ctl", str(self.sock), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            cwd=ROOT,
        )

    def wait_exit(self) -> tuple[int, str]:
        """The exit code and stderr, once the app has exited."""
        _, stderr = self.proc.communicate(timeout=TIMEOUT)
        return self.proc.returncode, stderr.decode()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for the socket (an AF_UNIX path has at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sv-ctl-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def running_app(
    sock_dir: Path,
    backend: str,
    variant: str = "",
    *,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[App]:
    """The app, started and ready (its root's ``ready`` line printed); killed at the end.

    By default ``tests/control_app.py`` passes the socket to ``run()`` in code; *command*
    starts it another way (the CLI), with *env* added to the environment.
    """
    sock = sock_dir / "ctl.sock"
    args = [sys.executable, "-m", "tests.control_app", str(sock), backend]
    if variant:
        args.append(variant)
    proc = subprocess.Popen(
        args if command is None else command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=None if env is None else {**os.environ, **env},
    )
    app = App(proc, sock)
    try:
        app.wait_line("ready app")
        yield app
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=TIMEOUT)


def connect(path: Path) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(TIMEOUT)
    client.connect(str(path))
    return client


def read_reply(client: socket.socket) -> dict[str, object]:
    """One reply line (the tests send one request at a time)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = client.recv(65536)
        assert chunk, f"closed without a reply; got {data!r}"
        data += chunk
    reply = json.loads(data)
    assert isinstance(reply, dict)
    return reply


def ask(client: socket.socket, request: bytes) -> dict[str, object]:
    client.sendall(request)
    return read_reply(client)


def assert_closed(client: socket.socket) -> None:
    assert client.recv(1) == b"", "the server should have closed the connection"


# -- the CLI against a running app ----------------------------------------------------------


@BACKENDS
def test_status_prints_one_line_per_proc_with_its_state(sock_dir: Path, backend: str) -> None:
    with running_app(sock_dir, backend) as app:
        result = app.ctl("status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "app: running, ready"
    table = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert list(table) == [
        "app/db",
        "app/pipeline",
        "app/pipeline/consumer",
        "app/pipeline/producer",
    ]
    for path, cells in table.items():
        assert cells[:3] == ["running", "ready", "restarts=0"], path
    assert lines[3].startswith("  app/pipeline/consumer")  # nested procs are indented


@BACKENDS
def test_status_json_is_the_raw_reply(sock_dir: Path, backend: str) -> None:
    with running_app(sock_dir, backend) as app:
        result = app.ctl("status", "--json")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["ok"] is True
    procs = reply["status"]["procs"]
    assert [(p["path"], p["depth"], p["state"]) for p in procs] == [
        ("app/db", 0, "running"),
        ("app/pipeline", 0, "running"),
        ("app/pipeline/consumer", 1, "running"),
        ("app/pipeline/producer", 1, "running"),
    ]
    assert all(isinstance(p["started_at"], float) for p in procs)


@BACKENDS
def test_shutdown_ends_the_app_with_exit_0_and_removes_the_socket(
    sock_dir: Path, backend: str
) -> None:
    with running_app(sock_dir, backend) as app:
        result = app.ctl("shutdown")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("shutdown begun:")
        code, stderr = app.wait_exit()
        assert code == 0, stderr
        assert "shutdown requested through the control socket" in stderr  # the report's reason
        assert not app.sock.exists()


@BACKENDS
def test_unknown_path_is_refused_with_exit_1(sock_dir: Path, backend: str) -> None:
    with running_app(sock_dir, backend) as app:
        result = app.ctl("stop", "pipeline/nope")
        assert result.returncode == 1
        assert result.stdout == ""
        assert "nope" in result.stderr
        assert app.ctl("status").returncode == 0  # the tree is undisturbed


def test_unreachable_socket_exits_1_with_a_clear_message(sock_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "super_visor", "ctl", str(sock_dir / "none.sock"), "status"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "no control socket at" in result.stderr


def test_ctl_checks_its_arguments(sock_dir: Path) -> None:
    base = [sys.executable, "-m", "super_visor", "ctl", str(sock_dir / "x.sock")]
    for extra in (["stop"], ["status", "app/db"]):
        result = subprocess.run(
            [*base, *extra], capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
        assert result.returncode == 1
        assert "usage: super-visor ctl SOCK" in result.stderr


@BACKENDS
def test_stop_start_restart_a_nested_proc(sock_dir: Path, backend: str) -> None:
    with running_app(sock_dir, backend) as app:
        result = app.ctl("stop", "pipeline/consumer")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "stop app/pipeline/consumer: done, now stopped"
        status = app.ctl("status").stdout
        assert "app/pipeline/consumer  stopped" in status
        assert "app/pipeline/producer  running" in status

        assert app.ctl("start", "app/pipeline/consumer").returncode == 0  # the full path too
        assert "app/pipeline/consumer  running" in app.ctl("status").stdout

        app.lines.clear()
        result = app.ctl("restart", "pipeline/consumer")
        assert result.returncode == 0, result.stderr
        app.wait_line("stopped app/pipeline/consumer")
        app.wait_line("ready app/pipeline/consumer")
        reply = json.loads(app.ctl("status", "--json").stdout)
        consumer = next(p for p in reply["status"]["procs"] if p["name"] == "consumer")
        assert consumer["state"] == "running"
        assert consumer["restarts"] == 0  # operator actions are not restarts


@BACKENDS
def test_abort_forces_a_proc_that_ignores_its_token(sock_dir: Path, backend: str) -> None:
    with running_app(sock_dir, backend, "stubborn") as app:
        assert app.ctl("shutdown").returncode == 0
        app.wait_line("stopping app/stubborn")  # the shutdown reached it; its grace is 60 s
        result = app.ctl("abort", "stubborn")
        assert result.returncode == 0, result.stderr
        code, stderr = app.wait_exit()
    assert code == 0, stderr  # FORCED is not a failure
    assert "stubborn: forced" in stderr


# -- the socket's life ----------------------------------------------------------------------


@BACKENDS
def test_socket_is_mode_0600_and_owned_by_the_user(sock_dir: Path, backend: str) -> None:
    with running_app(sock_dir, backend) as app:
        info = os.stat(app.sock)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert info.st_uid == os.geteuid()


@BACKENDS
def test_socket_is_removed_after_a_failed_run(sock_dir: Path, backend: str) -> None:
    with running_app(sock_dir, backend, "fail") as app:
        assert app.ctl("shutdown").returncode == 0
        code, stderr = app.wait_exit()
        assert code == 1, stderr
        assert "doomed failed on purpose" in stderr
        assert not app.sock.exists()


@BACKENDS
def test_socket_is_removed_after_a_forced_stop(sock_dir: Path, backend: str) -> None:
    with running_app(sock_dir, backend, "stubborn") as app:
        app.proc.send_signal(signal.SIGTERM)
        app.wait_line("stopping app/stubborn")
        app.proc.send_signal(signal.SIGINT)  # a second request: force
        code, stderr = app.wait_exit()
        assert code == 128 + signal.SIGINT, stderr
        assert not app.sock.exists()


@BACKENDS
def test_the_cli_opens_the_socket_with_control(sock_dir: Path, backend: str) -> None:
    sock = sock_dir / "ctl.sock"
    command = [sys.executable, "-m", "super_visor", "run", "tests.control_app:build"]
    command += ["--env-file", "none", "--backend", backend, "--control", str(sock)]
    with running_app(sock_dir, backend, command=command) as app:
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        assert app.ctl("status").stdout.startswith("app: running, ready")
        assert app.ctl("shutdown").returncode == 0
        code, stderr = app.wait_exit()
        assert code == 0, stderr
        assert f"control socket: listening on {sock}" in stderr
        assert not sock.exists()


def test_the_environment_opens_the_socket_and_beats_the_code(sock_dir: Path) -> None:
    """``SUPER_VISOR_CONTROL`` wins over ``run(control=...)``: the operator's word."""
    chosen = sock_dir / "env.sock"
    env = {"SUPER_VISOR_CONTROL": str(chosen)}
    with running_app(sock_dir, "asyncio", env=env) as app:
        assert not app.sock.exists()  # the path given in code is not used
        app.sock = chosen
        assert app.ctl("status").returncode == 0
        assert app.ctl("shutdown").returncode == 0
        assert app.wait_exit()[0] == 0
        assert not chosen.exists()


def _run_app_expecting_refusal(sock: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.control_app", str(sock), "asyncio"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=ROOT,
    )


def test_a_path_that_cannot_be_bound_is_a_config_error(sock_dir: Path) -> None:
    for path, problem in [
        (sock_dir / "missing" / "ctl.sock", "No such file or directory"),
        (sock_dir / ("x" * 120), "path too long"),
    ]:
        result = _run_app_expecting_refusal(path)
        assert result.returncode == 2
        assert f"cannot listen on {str(path)!r}" in result.stderr
        assert problem in result.stderr
        assert result.stdout == ""  # no proc started


def test_a_path_that_is_not_a_socket_is_never_clobbered(sock_dir: Path) -> None:
    path = sock_dir / "ctl.sock"
    path.write_text("precious")
    result = _run_app_expecting_refusal(path)
    assert result.returncode == 2
    assert "exists and is not a socket" in result.stderr
    assert result.stdout == ""  # no proc started
    assert path.read_text() == "precious"


def test_a_live_socket_is_not_taken_over(sock_dir: Path) -> None:
    path = sock_dir / "ctl.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(path))
        other.listen()
        result = _run_app_expecting_refusal(path)
        assert result.returncode == 2
        assert "in use by a running process" in result.stderr
        assert path.exists()


@BACKENDS
def test_a_stale_socket_is_replaced(sock_dir: Path, backend: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(sock_dir / "ctl.sock"))  # bound, never listening: a killed run's leftover
    with running_app(sock_dir, backend) as app:
        assert app.ctl("status").returncode == 0


# -- garbage on the raw socket --------------------------------------------------------------


@BACKENDS
def test_malformed_requests_get_error_replies_and_the_connection_stays(
    sock_dir: Path, backend: str
) -> None:
    with running_app(sock_dir, backend) as app, connect(app.sock) as client:
        bad = [
            b"not json\n",
            b"\xff\xfe\x00binary\x80\n",
            b"[1, 2]\n",
            b'{"cmd": "launch-missiles"}\n',
            b'{"cmd": "stop"}\n',
            b'{"cmd": 7}\n',
            b"[" * 50_000 + b"\n",  # nested too deep for the parser
        ]
        for request in bad:
            reply = ask(client, request)
            assert reply["ok"] is False, request[:40]
            assert isinstance(reply["error"], str)
            assert reply["error"], request[:40]
        client.sendall(b"\n   \n")  # blank lines: ignored, no reply
        reply = ask(client, b'{"cmd": "status", "id": 42}\n')
        assert reply["ok"] is True
        assert reply["id"] == 42
        assert app.ctl("status").returncode == 0


@BACKENDS
def test_an_oversized_line_gets_an_error_and_a_close(sock_dir: Path, backend: str) -> None:
    with running_app(sock_dir, backend) as app, connect(app.sock) as client:
        client.sendall(b"x" * (200 * 1024))  # no newline; the server stops reading at 64 KiB
        reply = read_reply(client)
        assert reply["ok"] is False
        assert "longer than 65536 bytes" in str(reply["error"])
        assert_closed(client)
        assert app.ctl("status").returncode == 0


@BACKENDS
def test_idle_and_half_line_clients_delay_no_other(sock_dir: Path, backend: str) -> None:
    with (
        running_app(sock_dir, backend) as app,
        connect(app.sock) as idle,
        connect(app.sock) as half,
        connect(app.sock) as other,
    ):
        half.sendall(b'{"cmd": "sta')
        assert ask(other, b'{"cmd": "status"}\n')["ok"] is True
        # Served while the others still hold their connections: a server that waited for
        # them would have had to time them out first (10 s) and could not answer these.
        half.sendall(b'tus"}\n')
        assert ask(half, b"")["ok"] is True
        assert ask(idle, b'{"cmd": "status"}\n')["ok"] is True


@BACKENDS
def test_many_concurrent_clients_are_all_served(sock_dir: Path, backend: str) -> None:
    with running_app(sock_dir, backend) as app, contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(app.sock)) for _ in range(40)]
        for client in clients:
            client.sendall(b'{"cmd": "status"}\n')
        replies = [read_reply(client) for client in reversed(clients)]
        assert all(reply["ok"] is True for reply in replies)


@BACKENDS
def test_a_client_that_hangs_up_mid_request_disturbs_nothing(sock_dir: Path, backend: str) -> None:
    with running_app(sock_dir, backend) as app:
        for request in (b'{"cmd": "stat', b"", b'{"cmd": "status"}\n'):
            with connect(app.sock) as client:
                client.sendall(request)  # then closed at once, reply unread
        result = app.ctl("status")
        assert result.returncode == 0
        assert "app/db" in result.stdout


# -- another user ---------------------------------------------------------------------------

NOBODY: Final = 65534


def _connect_as(uid: int, path: Path) -> str:
    """Connect to *path* from a forked child running as *uid* (the interpreter of the venv
    may not be executable by that user, so no exec); what it saw, as text."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child: reported through the pipe)
        try:
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(TIMEOUT)
                try:
                    client.connect(str(path))
                except PermissionError:
                    seen = b"denied by the file mode"
                else:
                    client.sendall(b'{"cmd": "shutdown"}\n')
                    seen = client.recv(65536) + b"|" + client.recv(1)
            os.write(write_end, seen)
        except BaseException as exc:  # noqa: BLE001 (reported to the parent, which fails)
            os.write(write_end, repr(exc).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            return pipe.read().decode()
    finally:
        os.waitpid(pid, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
@BACKENDS
def test_another_uid_is_refused(sock_dir: Path, backend: str) -> None:
    """As root we can be a real client of another uid: the 0600 mode stops it at connect;
    with the mode opened up on purpose, the peer-credential check still refuses it."""
    os.chmod(sock_dir, 0o755)
    with running_app(sock_dir, backend) as app:
        assert _connect_as(NOBODY, app.sock) == "denied by the file mode"
        os.chmod(app.sock, 0o666)  # an operator's mistake: the credentials are the second wall
        reply_line, closed = _connect_as(NOBODY, app.sock).split("|")
        reply = json.loads(reply_line)
        assert reply["ok"] is False
        assert f"uid {NOBODY}" in reply["error"]
        assert closed == ""  # and the connection is closed
        assert app.ctl("status").returncode == 0  # not shut down
