"""HttpProbe against a real server on 127.0.0.1: what it sends, what counts as ready, and a
server that accepts and never answers costing one attempt, not the whole window."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from anyio.abc import SocketAttribute

from super_visor.procs import HttpProbe
from super_visor.procs._output import OutputRing

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.abc import SocketStream


class Server:
    """A TCP server that records each request head and answers with *status* (None: never)."""

    def __init__(self, statuses: list[int | None]) -> None:
        self.statuses = statuses
        self.requests: list[bytes] = []

    async def handle(self, stream: SocketStream) -> None:
        number = len(self.requests)
        self.requests.append(b"")
        async with stream:
            while b"\r\n\r\n" not in self.requests[number]:
                self.requests[number] += await stream.receive()
            status = self.statuses[min(number, len(self.statuses) - 1)]
            if status is None:
                await anyio.sleep_forever()  # accepted, never answered
            await stream.send(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())


@asynccontextmanager
async def serving(server: Server) -> AsyncIterator[int]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, server.handle)
        yield listener.extra(SocketAttribute.local_port)
        tasks.cancel_scope.cancel()


def output() -> OutputRing:
    return OutputRing(logging.getLogger("test"), 1)


async def test_credentials_in_the_url_are_never_sent_nor_shown() -> None:
    server = Server([200])
    async with serving(server) as port:
        probe = HttpProbe(f"http://user:secret@127.0.0.1:{port}/health?full=1")
        value = await probe.wait_ready(output())
    (request,) = server.requests
    assert request.startswith(b"GET /health?full=1 HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{port}\r\n".encode() in request
    assert b"secret" not in request
    assert b"user" not in request
    assert b"authorization" not in request.lower()
    assert value == f"http://127.0.0.1:{port}/health?full=1"
    assert "secret" not in repr(probe)


async def test_redirects_count_as_ready_as_in_kubernetes() -> None:
    for status in (200, 204, 301, 302, 399):
        async with serving(Server([status])) as port:
            probe = HttpProbe(f"http://127.0.0.1:{port}/")
            assert await probe.wait_ready(output()) == f"http://127.0.0.1:{port}/"
            assert probe.last_status == status


async def test_errors_are_not_ready_until_success() -> None:
    server = Server([404, 503, 200])
    async with serving(server) as port:
        probe = HttpProbe(f"http://127.0.0.1:{port}/", interval=0.01)
        await probe.wait_ready(output())
    assert len(server.requests) == 3
    assert probe.last_status == 200


async def test_a_silent_server_holds_one_attempt_not_the_window() -> None:
    server = Server([None, 200])  # the first connection is accepted and never answered
    async with serving(server) as port:
        probe = HttpProbe(f"http://127.0.0.1:{port}/", attempt_timeout=0.2, interval=0.01)
        await probe.wait_ready(output())
    assert len(server.requests) == 2  # the first attempt timed out; the second was answered
    assert probe.last_status == 200


async def test_ipv6_hosts_keep_their_brackets_in_host() -> None:
    probe = HttpProbe("http://[::1]:8080/")
    assert probe.url == "http://[::1]:8080/"
    assert b"\r\nHost: [::1]:8080\r\n" in probe._request
