"""HealthServer against clients and bugs that would hold or end it: a client that never
reads its reply, a bug answering a request, more clients than it serves at once."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

import anyio
import httpx

from super_visor import ProcStatus, SupervisorBuilder
from super_visor._transport import Connection
from super_visor.procs import HealthServer
from super_visor.procs import _health as health_module
from super_visor.procs._http import Reply, serve_one

from ..fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes
from ..log_fields import sv_fields
from .test_health import codes, health_port, idle

if TYPE_CHECKING:
    import pytest


async def test_a_reply_the_client_never_reads_is_dropped_after_read_timeout() -> None:
    """A client sends a request and never reads: the reply (larger than the socket buffers)
    cannot all be sent, and the send gives up after *read_timeout* instead of holding the
    connection for ever."""
    server_end, client_end = socket.socketpair()
    with server_end, client_end:
        server_end.setblocking(False)
        server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client_end.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        with anyio.fail_after(10):
            taken = await serve_one(
                Connection(server_end), lambda path: Reply(200, "x" * 4_000_000), 0.3
            )
    assert taken is False


async def test_a_client_that_never_reads_is_logged_and_others_are_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="super_visor.procs.health")
    builder = SupervisorBuilder("app").add_proc(HealthServer(read_timeout=0.3))
    for index in range(15_000):  # a /status larger than the kernel buffers
        builder = builder.add_proc(idle, name=f"worker_with_a_long_name_{index:05d}")
    async with builder.build().running() as handle:
        port = health_port(handle)
        with socket.socket() as stuck:
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.connect(("127.0.0.1", port))
            stuck.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
            dropped = anyio.Event()
            watch = _Watch("did not take its reply", dropped)
            logging.getLogger("super_visor.procs.health").addHandler(watch)
            try:
                await dropped.wait()
            finally:
                logging.getLogger("super_visor.procs.health").removeHandler(watch)
            assert await codes(port) == {"/livez": 200, "/readyz": 200, "/startupz": 200}
    [record] = [r for r in caplog.records if "did not take its reply" in r.getMessage()]
    assert sv_fields(record) == ("app/health", None)


class _Watch(logging.Handler):
    """Sets *event* when a record containing *text* is logged."""

    def __init__(self, text: str, event: anyio.Event) -> None:
        super().__init__(logging.DEBUG)
        self._text = text
        self._event = event

    def emit(self, record: logging.LogRecord) -> None:
        if self._text in record.getMessage():
            self._event.set()


async def test_a_bug_answering_is_a_500_logged_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(status: object) -> str:
        raise ZeroDivisionError("a bug in status")

    # Fault injection: the one way to make the server's own code fail on a real request.
    monkeypatch.setattr(health_module, "status_json", broken)
    sup = SupervisorBuilder("app").add_proc(HealthServer()).add_proc(idle).build()
    async with sup.running() as handle:
        port = health_port(handle)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/status")).status_code == 500
        assert await codes(port) == {"/livez": 200, "/readyz": 200, "/startupz": 200}
    assert handle.report["health"].status is ProcStatus.STOPPED
    [record] = [r for r in caplog.records if "replied 500" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert sv_fields(record) == ("app/health", None)
    assert record.exc_info is not None
