"""HealthServer: real HTTP on 127.0.0.1 against a running tree, through every phase.

Endpoints are read with httpx (a real client); the malformed requests are written on raw
TCP sockets, since no well-behaved client would send them.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

from super_visor import (
    CancellationToken,
    ConfigError,
    EventKind,
    ProcStatus,
    Restart,
    SupervisorBuilder,
    SupervisorError,
)
from super_visor.procs import HealthServer

from ..fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes
from ..log_fields import sv_fields

if TYPE_CHECKING:
    from anyio.abc import SocketStream

    from super_visor import RunHandle

PROBES = ("/livez", "/readyz", "/startupz")


async def idle(token: CancellationToken) -> None:
    await token.wait()


async def codes(port: int, paths: tuple[str, ...] = PROBES) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        return {path: (await client.get(path)).status_code for path in paths}


def health_port(handle: RunHandle) -> int:
    port = handle.ready_value("health")
    assert isinstance(port, int)
    return port


async def exchange(port: int, data: bytes) -> bytes:
    """Send *data* on a raw connection; everything the server sends back until it closes."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        return await read_to_end(stream)


async def read_to_end(stream: SocketStream) -> bytes:
    received = b""
    try:
        while True:
            received += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return received


def free_port() -> int:
    """A port nothing listens on now, for a test that must know it before the tree starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_running_tree_is_live_ready_and_started() -> None:
    sup = SupervisorBuilder("app").add_proc(HealthServer()).add_proc(idle).build()
    async with sup.running() as handle:
        port = health_port(handle)
        assert port > 0
        assert await codes(port) == {"/livez": 200, "/readyz": 200, "/startupz": 200}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            head = await client.head("/readyz")
            missing = await client.get("/metrics")
            query = await client.get("/livez?verbose=1")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["connection"] == "close"
    assert missing.status_code == 404
    assert query.status_code == 200
    assert handle.report["health"].status is ProcStatus.STOPPED


async def test_readyz_and_startupz_wait_for_the_whole_tree() -> None:
    """While a later proc is still starting, the tree is live but neither started nor ready."""
    port = free_port()
    seen: dict[str, int] = {}

    async def slow_start(token: CancellationToken) -> None:
        seen.update(await codes(port))
        token.ready()
        await token.wait()

    sup = (
        SupervisorBuilder("app")
        .add_proc(HealthServer(port))
        .add_proc(slow_start, wait_ready=True)
        .build()
    )
    async with sup.running() as handle:
        assert seen == {"/livez": 200, "/readyz": 503, "/startupz": 503}
        assert await codes(health_port(handle)) == {"/livez": 200, "/readyz": 200, "/startupz": 200}


async def test_readyz_is_503_from_the_first_moment_of_shutdown() -> None:
    """web is still running (its stop waits for us), yet readiness has already dropped."""
    stopping = anyio.Event()
    release = anyio.Event()

    async def web(token: CancellationToken) -> None:
        await token.wait()
        stopping.set()
        await release.wait()

    sup = SupervisorBuilder("app").add_proc(HealthServer()).add_proc(web).build()
    async with sup.running() as handle:
        port = health_port(handle)
        handle.shutdown("rolling update")
        during = await codes(port, (*PROBES, "/status"))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            status = (await client.get("/status")).json()
        assert handle.is_running("web")
        release.set()
    assert during == {"/livez": 200, "/readyz": 503, "/startupz": 200, "/status": 200}
    assert (status["state"], status["ready"]) == ("stopping", False)
    assert stopping.is_set()


async def test_livez_is_503_once_a_supervisor_gave_up() -> None:
    go = anyio.Event()

    async def crashy(token: CancellationToken) -> None:
        await go.wait()
        raise RuntimeError("crash")

    inner = SupervisorBuilder("inner", max_restarts=1).add_proc(crashy, restart=Restart.PERMANENT)
    sup = (
        SupervisorBuilder("app")
        .add_proc(HealthServer())
        .add_proc(inner, significant=False)
        .add_proc(idle)
        .build()
    )
    seen: list[dict[str, int]] = []

    async def crash_inner(handle: RunHandle) -> None:
        port = health_port(handle)
        seen.append(await codes(port))
        async with handle.events() as events:
            go.set()
            async for event in events:
                if event.kind is EventKind.RESTART_LIMIT:
                    break
        seen.append(await codes(port))

    with pytest.raises(SupervisorError):  # inner failed: the report says so on the way out
        async with sup.running() as handle:
            await crash_inner(handle)
    # The tree went on (inner is not significant), but it is not the tree deployed.
    assert seen == [
        {"/livez": 200, "/readyz": 200, "/startupz": 200},
        {"/livez": 503, "/readyz": 200, "/startupz": 200},
    ]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"hello there\r\n\r\n", 400),
        (b"\x00\xff\xfe garbage\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET livez HTTP/1.1\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"DELETE /livez HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"GET /livez HTTP/2.0\r\n\r\n", 505),
        (b"GET /livez HTTP/1.0\r\n\r\n", 200),
    ],
    ids=["garbage", "binary", "bad-header", "bad-target", "oversized", "delete", "http2", "http10"],
)
async def test_bad_requests_are_refused_and_the_tree_carries_on(
    request_bytes: bytes, status: int
) -> None:
    sup = SupervisorBuilder("app").add_proc(HealthServer()).add_proc(idle).build()
    async with sup.running() as handle:
        port = health_port(handle)
        reply = await exchange(port, request_bytes)
        assert reply.startswith(f"HTTP/1.1 {status} ".encode()), reply
        if status == 405:
            assert b"\r\nAllow: GET, HEAD\r\n" in reply
        async with await anyio.connect_tcp("127.0.0.1", port):
            pass  # a client that connects and leaves at once
        assert await codes(port) == {"/livez": 200, "/readyz": 200, "/startupz": 200}
        assert handle.status().ready
    assert handle.report["health"].status is ProcStatus.STOPPED


async def test_a_slowloris_client_is_cut_off_and_others_are_served() -> None:
    sup = SupervisorBuilder("app").add_proc(HealthServer(read_timeout=0.5)).add_proc(idle).build()
    async with sup.running() as handle:
        port = health_port(handle)
        async with await anyio.connect_tcp("127.0.0.1", port) as slow:
            began = time.monotonic()
            await slow.send(b"GET /livez HTTP/1.1\r\n")
            assert await codes(port) == {"/livez": 200, "/readyz": 200, "/startupz": 200}
            await slow.send(b"Host: x\r\n")  # more, but never a whole head
            received = await read_to_end(slow)
        assert received.startswith(b"HTTP/1.1 408 ")
        assert 0.4 < time.monotonic() - began < 5.0
    assert handle.report["health"].status is ProcStatus.STOPPED


async def test_connections_beyond_the_limit_are_closed_unanswered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """70 idle clients: 64 are served (each gets its 408 when its time is up), the other 6
    are closed at once, each logged at DEBUG; afterwards the server answers as before."""
    caplog.set_level(logging.DEBUG, logger="super_visor.procs.health")
    sup = SupervisorBuilder("app").add_proc(HealthServer(read_timeout=1)).add_proc(idle).build()
    replies: list[bytes] = []

    async def idle_client(port: int) -> None:
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            replies.append(await read_to_end(stream))

    async with sup.running() as handle:
        port = health_port(handle)
        async with anyio.create_task_group() as clients:
            for _ in range(70):
                clients.start_soon(idle_client, port)
        assert await codes(port) == {"/livez": 200, "/readyz": 200, "/startupz": 200}
    assert replies.count(b"") == 6
    assert sum(reply.startswith(b"HTTP/1.1 408 ") for reply in replies) == 64
    over = [r for r in caplog.records if "connections open already" in r.getMessage()]
    assert len(over) == 6
    assert all(r.levelno == logging.DEBUG and sv_fields(r) == ("app/health", None) for r in over)


async def test_status_lists_every_proc_depth_first() -> None:
    async def once(token: CancellationToken) -> None:
        return

    inner = SupervisorBuilder("inner").add_proc(idle, name="b").add_proc(idle, name="c")
    sup = (
        SupervisorBuilder("app")
        .add_proc(HealthServer(name="probes"))
        .add_proc(inner)
        .add_proc(once, significant=False)
        .add_proc(idle, name="d")
        .build()
    )
    async with sup.running() as handle:
        port = handle.ready_value("probes")
        assert isinstance(port, int)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            reply = await client.get("/status")
    assert reply.headers["content-type"] == "application/json"
    document = json.loads(reply.text)
    assert {"name", "state", "ready", "procs"} <= set(document)
    assert (document["name"], document["state"], document["ready"]) == ("app", "running", True)
    paths = [proc["path"] for proc in document["procs"]]
    assert paths == ["app/probes", "app/inner", "app/inner/b", "app/inner/c", "app/once", "app/d"]
    for proc in document["procs"]:
        assert {"path", "state", "ready", "restarts", "uptime_s"} <= set(proc)
    by_path = {proc["path"]: proc for proc in document["procs"]}
    assert by_path["app/once"]["state"] == "completed"
    assert by_path["app/once"]["uptime_s"] is None
    assert by_path["app/inner/b"]["state"] == "running"
    assert by_path["app/inner/b"]["uptime_s"] >= 0


async def test_run_by_hand_it_names_the_fix() -> None:
    with pytest.raises(RuntimeError, match="add it to a SupervisorBuilder"):
        await HealthServer().run_proc(CancellationToken())


@pytest.mark.parametrize(
    "kwargs",
    [{"port": -1}, {"port": 70000}, {"name": "a/b"}, {"read_timeout": 0}],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        HealthServer(**kwargs)  # type: ignore[arg-type]
