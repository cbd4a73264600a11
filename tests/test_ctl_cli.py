"""``super-visor ctl``'s client side: its table, and every way a socket can fail it.

The real server is tested in test_control_socket.py; here the other end is a bare socket that
answers what each test needs (garbage, nothing, a refusal), served by a thread that the test
joins, so the client's error paths are exercised against real sockets.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from super_visor._cli import main
from super_visor._ctl import CtlError, format_status, request

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sv-cli-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def answering(path: Path, answer: bytes) -> Iterator[list[bytes]]:
    """A one-shot server at *path*: reads one line, sends *answer* (if any) and hangs up;
    yields the lines it received."""
    received: list[bytes] = []
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(path))
    listening.listen()

    def serve() -> None:
        conn, _ = listening.accept()
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                data += conn.recv(65536)
            received.append(data)
            if answer:
                conn.sendall(answer)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield received
    finally:
        thread.join(timeout=10)
        listening.close()
        assert not thread.is_alive()


def test_format_status_lists_every_proc_indented_with_its_state() -> None:
    status = {
        "name": "app",
        "state": "running",
        "ready": False,
        "procs": [
            {
                "path": "app/db",
                "depth": 0,
                "state": "running",
                "ready": True,
                "restarts": 0,
                "uptime_s": 42.0,
            },
            {
                "path": "app/pipeline",
                "depth": 0,
                "state": "running",
                "ready": True,
                "restarts": 2,
                "uptime_s": 942.0,
            },
            {
                "path": "app/pipeline/consumer",
                "depth": 1,
                "state": "stopped",
                "ready": False,
                "restarts": 0,
                "uptime_s": None,
            },
            {
                "path": "app/pipeline/slow",
                "depth": 1,
                "state": "stopping",
                "ready": False,
                "restarts": 0,
                "uptime_s": 9042.4,
            },
        ],
    }
    assert format_status(status).splitlines() == [
        "app: running, not ready",
        "app/db                   running   ready  restarts=0  up 42s",
        "app/pipeline             running   ready  restarts=2  up 15m42s",
        "  app/pipeline/consumer  stopped   -      restarts=0",
        "  app/pipeline/slow      stopping  -      restarts=0  up 2h30m",
    ]


def test_format_status_survives_a_reply_missing_fields() -> None:
    assert format_status({"procs": [{"path": "x"}, "junk"]}).splitlines() == [
        "None: None, not ready",
        "x  None  -  restarts=None",
    ]


def test_no_socket_at_the_path(sock_dir: Path) -> None:
    with pytest.raises(CtlError, match=r"no control socket at .*is the tree running"):
        request(str(sock_dir / "none.sock"), {"cmd": "status"}, timeout=5.0)


def test_a_socket_nobody_listens_on(sock_dir: Path) -> None:
    path = sock_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))
    with pytest.raises(CtlError, match=r"nothing listens on .*has stopped"):
        request(str(path), {"cmd": "status"}, timeout=5.0)


def test_an_answer_that_is_not_json(sock_dir: Path) -> None:
    path = sock_dir / "ctl.sock"
    with (
        answering(path, b"HTTP/1.1 400 Bad Request\n") as received,
        pytest.raises(CtlError, match=r"not a JSON object: b'HTTP/1\.1 400"),
    ):
        request(str(path), {"cmd": "status"}, timeout=5.0)
    assert received == [b'{"cmd": "status"}\n']


def test_a_server_that_hangs_up_without_a_reply(sock_dir: Path) -> None:
    path = sock_dir / "ctl.sock"
    with answering(path, b""), pytest.raises(CtlError, match="without a reply"):
        request(str(path), {"cmd": "status"}, timeout=5.0)


def test_no_reply_in_time(sock_dir: Path) -> None:
    path = sock_dir / "ctl.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(path))
        mute.listen()  # accepts (in the kernel), never answers
        with pytest.raises(CtlError, match=r"no reply from .* within 0\.2 s"):
            request(str(path), {"cmd": "status"}, timeout=0.2)


def test_a_refusal_exits_1_and_json_still_prints_the_reply(
    sock_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sock_dir / "ctl.sock"
    refusal = {"ok": False, "error": "app: no proc 'x'"}
    with answering(path, json.dumps(refusal).encode() + b"\n") as received:
        code = main(["ctl", str(path), "restart", "x", "--json"])
    assert code == 1
    assert json.loads(received[0]) == {"cmd": "restart", "path": "x"}
    out, err = capsys.readouterr()
    assert json.loads(out) == refusal
    assert err == "super-visor ctl: app: no proc 'x'\n"
