"""TcpServer: a real listener on 127.0.0.1, connections closed and new ones refused on stop."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import ProcStatus, SupervisorBuilder, SupervisorError
from super_visor.procs import TcpServer

from ..fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

if TYPE_CHECKING:
    from anyio.abc import SocketStream

    from super_visor import RunHandle


async def echo(stream: SocketStream) -> None:
    async for data in stream:
        await stream.send(data)


async def test_serves_on_the_ready_port() -> None:
    server = TcpServer(echo)
    sup = SupervisorBuilder("app").add_proc(server).build()
    async with sup.running() as handle:
        port = handle.ready_value("echo")
        assert isinstance(port, int)
        async with await anyio.connect_tcp("127.0.0.1", port) as client:
            await client.send(b"ping")
            assert await client.receive() == b"ping"
    assert handle.report["echo"].status is ProcStatus.STOPPED
    assert server.connections == 1


async def test_stop_closes_open_connections_and_refuses_new_ones() -> None:
    sup = SupervisorBuilder("app").add_proc(TcpServer(echo, name="echo")).build()
    async with sup.running() as handle:
        port = handle.ready_value("echo")
        assert isinstance(port, int)
        client = await anyio.connect_tcp("127.0.0.1", port)
        async with client:
            await client.send(b"hello")
            assert await client.receive() == b"hello"
            handle.shutdown("test over")
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await client.receive()  # the server closed our connection
        with pytest.raises(OSError):  # noqa: PT011 (refused: errno differs by platform)
            await anyio.connect_tcp("127.0.0.1", port)


async def test_a_handler_error_fails_the_proc() -> None:
    class ProtocolError(Exception):
        pass

    async def strict(_stream: SocketStream) -> None:
        raise ProtocolError("bad greeting")

    sup = SupervisorBuilder("app").add_proc(TcpServer(strict)).build()

    async def connect_once(handle: RunHandle) -> None:
        port = handle.ready_value("strict")
        assert isinstance(port, int)
        async with await anyio.connect_tcp("127.0.0.1", port) as client:
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await client.receive()
        await handle.wait_stopped()

    with pytest.raises(SupervisorError) as caught:
        async with sup.running() as handle:
            await connect_once(handle)
    error = caught.value.report["strict"].error
    assert isinstance(error, ExceptionGroup)
    assert error.subgroup(ProtocolError) is not None
