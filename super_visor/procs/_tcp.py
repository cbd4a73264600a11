"""TcpServer: an anyio TCP listener as a proc, its connections in a task group it owns."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, final

import anyio
from anyio.abc import SocketAttribute

from .._events import record_fields
from .._proc import function_name
from .._validate import check_function, check_port, check_seconds, valid

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import SocketStream

    from .._token import CancellationToken

__all__ = ("TcpServer",)


@final
class TcpServer:
    """Serve TCP connections with ``await handler(stream)``, one task per connection.

    The proc binds *host*:*port* (``port=0`` picks a free port), then says it is ready with
    the bound port as the ready value, so ``handle.ready_value(name)`` tells a test or a
    client where to connect. It gates start-up: procs declared after it start once it
    listens.

    On stop it closes the listener first (new connections are refused), then cancels the
    connection tasks: each handler sees a cancellation at its next await, and its stream is
    closed. A handler that must finish a reply should do so in a short
    ``with anyio.move_on_after(..., shield=True)`` block.

    A client going away mid-conversation (`anyio.BrokenResourceError`, `anyio.EndOfStream`)
    ends that connection only; any other exception from a handler ends the proc with it,
    as any proc's error would (add a restart policy to keep serving).

    .. versionadded:: 0.1
    """

    wait_ready = True

    def __init__(
        self,
        handler: Callable[[SocketStream], Awaitable[object]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str | None = None,
        grace: float | None = None,
    ) -> None:
        self.name = name or function_name(handler) or "tcp_server"
        fix = "pass e.g. TcpServer(handle), with 'async def handle(stream)'"
        valid(self.name, check_function("handler", handler, want_async=True, fix=fix))
        self.handler = handler
        self.host = host
        self.port = valid(self.name, check_port("port", port, pick=True))
        if grace is not None:
            valid(self.name, check_seconds("grace", grace))
        self.grace = grace
        self.logger = logging.getLogger(f"super_visor.procs.{self.name}")
        #: Connections accepted so far (across runs of this object).
        self.connections = 0

    def __repr__(self) -> str:
        return f"TcpServer({self.name!r}, {self.host}:{self.port})"

    async def run_proc(self, token: CancellationToken, /) -> None:
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        async with listener, anyio.create_task_group() as connections:
            token.ready(listener.extra(SocketAttribute.local_port))
            with token.cancel_scope():
                serve_one = functools.partial(self._serve_one, token.path or self.name)
                await listener.serve(serve_one, task_group=connections)
            await listener.aclose()  # refuse new connections before the open ones end
            connections.cancel_scope.cancel()

    async def _serve_one(self, path: str, stream: SocketStream) -> None:
        self.connections += 1
        async with stream:
            try:
                await self.handler(stream)
            except (anyio.BrokenResourceError, anyio.EndOfStream, anyio.ClosedResourceError):
                self.logger.debug(
                    "%s: a client went away", self.name, extra=record_fields(path, None)
                )
