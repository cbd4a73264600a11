"""The control socket's server in-process, on both backends: the parts the child-process tests
in ``test_control_socket.py`` cannot reach quickly (the read deadline, the client limit, the
credential check against a deliberately different uid, deep trees) and the protocol itself."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from super_visor import CancellationToken, SupervisorBuilder
from super_visor._control import (
    MAX_LINE,
    ControlServer,
    bound_control_socket,
    peer_refusal,
    peer_uid,
)
from super_visor._control_protocol import answer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from super_visor import RunHandle, Supervisor


async def steady(token: CancellationToken) -> None:
    await token.wait()


def small_tree() -> Supervisor:
    inner = SupervisorBuilder("pipeline").add_proc(steady, name="consumer").build()
    return SupervisorBuilder("app").add_proc(steady, name="db").add_proc(inner).build()


@pytest.fixture
def sock_path() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="sv-srv-"))
    try:
        yield directory / "ctl.sock"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def serving(sup: Supervisor, path: Path, **options: float | int) -> AsyncIterator[RunHandle]:
    """*sup* running, with a `ControlServer` on *path* beside it."""
    async with sup.running() as handle:
        with bound_control_socket(path) as sock:
            async with anyio.create_task_group() as task_group:
                server = ControlServer(handle, **options)  # type: ignore[arg-type]
                task_group.start_soon(server.serve, sock)
                yield handle
                task_group.cancel_scope.cancel()
        assert not os.path.exists(path), "the socket file is removed"  # noqa: ASYNC240


async def request(
    stream: anyio.abc.ByteStream, reader: BufferedByteReceiveStream, line: bytes
) -> dict[str, object]:
    await stream.send(line)
    reply = json.loads(await reader.receive_until(b"\n", 1 << 20))
    assert isinstance(reply, dict)
    return reply


async def test_a_client_silent_past_the_read_timeout_gets_an_error_and_a_close(
    sock_path: Path,
) -> None:
    async with (
        serving(small_tree(), sock_path, read_timeout=0.2) as _,
        await anyio.connect_unix(sock_path) as silent,
    ):
        reader = BufferedByteReceiveStream(silent)
        reply = json.loads(await reader.receive_until(b"\n", MAX_LINE))
        assert reply == {"ok": False, "error": "no complete request line within 0.2 s; closing"}
        with pytest.raises(anyio.IncompleteRead):
            await reader.receive_exactly(1)


async def test_clients_past_the_limit_are_refused_and_the_others_served(
    sock_path: Path,
) -> None:
    async with (
        serving(small_tree(), sock_path, max_clients=1),
        await anyio.connect_unix(sock_path) as first,
    ):
        first_reader = BufferedByteReceiveStream(first)
        assert (await request(first, first_reader, b'{"cmd": "status"}\n'))["ok"] is True
        async with await anyio.connect_unix(sock_path) as second:
            reply = json.loads(await BufferedByteReceiveStream(second).receive_until(b"\n", 4096))
            assert reply["ok"] is False
            assert "too many clients" in reply["error"]
        assert (await request(first, first_reader, b'{"cmd": "status"}\n'))["ok"] is True


async def test_a_peer_of_another_uid_is_refused_by_the_credential_check(
    sock_path: Path,
) -> None:
    """The server's own check, with a deliberately different expected uid (switching uid
    needs root; test_control_socket.py does that for real when run as root)."""
    async with (
        serving(small_tree(), sock_path, uid=os.geteuid() + 1),
        await anyio.connect_unix(sock_path) as client,
    ):
        reader = BufferedByteReceiveStream(client)
        reply = await request(client, reader, b'{"cmd": "shutdown"}\n')
        assert reply == {
            "ok": False,
            "error": f"permission denied: uid {os.geteuid()} is not the uid this tree runs as",
        }
        with pytest.raises(anyio.IncompleteRead):
            await reader.receive_exactly(1)


def test_peer_credentials_of_a_real_socketpair() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert peer_uid(left) == os.geteuid()
        assert peer_refusal(left, os.geteuid()) is None
        refusal = peer_refusal(left, os.geteuid() + 1)
        assert refusal is not None
        assert f"uid {os.geteuid()} is not" in refusal


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"{", "malformed request: not one JSON object per line"),
        (b"\xc3\x28", "malformed request: not one JSON object per line"),
        (b"[" * 100_000, "malformed request: not one JSON object per line"),
        (b'"status"', "malformed request: expected a JSON object"),
        (b"{}", "unknown command None; the commands are: status, stop, start, restart"),
        (b'{"cmd": "stop", "path": ""}', 'stop needs "path"'),
        (b'{"cmd": "abort", "path": ["db"]}', 'abort needs "path"'),
        (b'{"cmd": "restart", "path": "nope"}', "app: no proc 'nope'; its procs are: db,"),
    ],
)
async def test_bad_requests_are_answered_with_an_error(line: bytes, error: str) -> None:
    async with small_tree().running() as handle:
        reply = await answer(handle, line)
        assert reply is not None
        assert reply["ok"] is False
        assert str(reply["error"]).startswith(error)
        assert handle.is_running("pipeline/consumer")


async def test_blank_lines_get_no_reply() -> None:
    async with small_tree().running() as handle:
        assert await answer(handle, b"") is None
        assert await answer(handle, b" \t\r") is None


async def test_status_of_a_deep_tree_is_flat_json() -> None:
    sup: Supervisor = SupervisorBuilder("leaf").add_proc(steady, name="proc").build()
    for level in range(300):
        sup = SupervisorBuilder(f"s{level}").add_proc(sup).build()
    async with sup.running() as handle:
        reply = await answer(handle, b'{"cmd": "status"}')
    assert reply is not None
    status = reply["status"]
    assert isinstance(status, dict)
    procs = status["procs"]
    assert len(procs) == 301
    assert procs[-1]["depth"] == 300
    assert procs[-1]["path"].endswith("/leaf/proc")
    json.dumps(reply)  # serialisable without recursion trouble


async def test_shutdown_through_the_socket_reaches_the_report(sock_path: Path) -> None:
    sup = small_tree()
    async with (
        serving(sup, sock_path) as handle,
        await anyio.connect_unix(sock_path) as client,
    ):
        reader = BufferedByteReceiveStream(client)
        reply = await request(client, reader, b'{"cmd": "shutdown", "reason": "maintenance"}\n')
        assert reply == {"ok": True, "cmd": "shutdown", "reason": "maintenance"}
        report = await handle.wait_stopped()
    assert report.reason == "maintenance"
