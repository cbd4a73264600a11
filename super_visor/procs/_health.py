"""HealthServer: the tree's real state on HTTP, for Kubernetes probes and for people."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Final, final

import anyio
from anyio.abc import SocketAttribute

from .._events import record_fields
from .._transport import serve_connections
from .._validate import check_name, check_port, check_seconds, valid
from ._http import Reply, serve_one

if TYPE_CHECKING:
    from .._context import RunContext
    from .._status import TreeStatus
    from .._token import CancellationToken
    from .._transport import Connection

__all__ = ("HealthServer",)

#: Connections served at once; more are closed unanswered (and logged at DEBUG), so a
#: flood of probes or of idle clients costs a bounded number of tasks and file descriptors.
MAX_CONNECTIONS: Final = 64


@final
class HealthServer:
    """Serve the tree's health on HTTP: ``/livez``, ``/readyz``, ``/startupz``, ``/status``.

    - ``GET /livez``: 200 while no supervisor of the tree is past its restart limit, else
      503 (for the rest of the run). A blocked event loop answers nothing at all, so the
      probe's ``timeoutSeconds`` is the bound on how long the loop may stall.
    - ``GET /readyz``: 200 once the whole tree is ready; 503 before, and from the first moment
      of the shutdown, while the other procs still run: traffic drains before they stop.
    - ``GET /startupz``: 200 once start-up has finished (every proc was ready once).
    - ``GET /status``: the tree as JSON, ``{"name", "state", "ready", "procs": [{"path",
      "state", "ready", "restarts", "uptime_s"}, ...]}``, paths full, depth first;
      ``uptime_s`` is null for a proc whose task does not run.

    **Put it first in the tree**: procs stop in reverse order, so the first one stops last
    and keeps answering (``/readyz`` 503) for the whole shutdown. It gates start-up; its
    ready value is the bound port (``port=0`` lets the OS pick one). It binds 127.0.0.1 by
    default; in a container, pass ``host="0.0.0.0"`` so the kubelet can reach it.

    Requests are bounded (see ``_http``): GET and HEAD only (405 otherwise), one request per
    connection, the head within 8 KiB (431) and within *read_timeout* seconds (408);
    garbage gets 400; a reply not taken within *read_timeout* is dropped. None of it reaches
    the tree: a bad client only loses its connection, and a bug answering a request is
    logged and answered 500, the server goes on.

    .. versionadded:: 0.2
    """

    wait_ready = True
    #: Binding a port is quick: these bound start-up and shutdown in ``super-visor plan``
    #: (``add_proc(..., grace=..., ready_timeout=...)`` overrides them).
    ready_timeout = 5.0
    grace = 1.0

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        name: str = "health",
        *,
        read_timeout: float = 5.0,
    ) -> None:
        self.name = valid("HealthServer", check_name("name", name, "name='health'"))
        self.port = valid(self.name, check_port("port", port, pick=True))
        self.host = host
        self.read_timeout = valid(
            self.name, check_seconds("read_timeout", read_timeout, positive=True)
        )
        self._logger = logging.getLogger(f"super_visor.procs.{self.name}")
        self._open = 0
        self._path = name

    def __repr__(self) -> str:
        return f"HealthServer({self.name!r}, {self.host}:{self.port})"

    async def run_proc(self, token: CancellationToken, /) -> None:
        root = _root_of(token, self.name)
        self._path = token.path
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        async with listener:
            token.ready(listener.extra(SocketAttribute.local_port))
            sockets = [each.extra(SocketAttribute.raw_socket) for each in listener.listeners]
            with token.cancel_scope():
                await serve_connections(
                    sockets, lambda stream: self._serve(stream, root), self._accept_failed
                )

    async def _serve(self, stream: Connection, root: RunContext) -> None:
        if self._open >= MAX_CONNECTIONS:
            self._debug(
                "%s: %d connections open already; one more closed unanswered", MAX_CONNECTIONS
            )
            return
        self._open += 1
        try:
            answer = functools.partial(self._answer_safely, root=root)
            if not await serve_one(stream, answer, self.read_timeout):
                self._debug(
                    "%s: a client did not take its reply within %gs; dropped", self.read_timeout
                )
        except (anyio.BrokenResourceError, anyio.EndOfStream):
            self._debug("%s: a client went away")
        finally:
            self._open -= 1

    def _answer_safely(self, path: str, root: RunContext) -> Reply | None:
        try:
            return self._answer(path, root)
        except Exception:  # a bug answering one request must not end the server
            self._logger.exception(
                "%s: answering GET %s failed; replied 500 (a bug in super_visor: please "
                "report it with this traceback)",
                self._path,
                path,
                extra=record_fields(self._path, None),
            )
            return Reply(500, "internal error; see the server's log\n")

    def _accept_failed(self, exc: OSError) -> None:
        self._logger.warning(
            "%s: accept failed: %s; still serving the clients already connected (raise the "
            "open-files limit if it is EMFILE)",
            self._path,
            exc,
            extra=record_fields(self._path, None),
        )

    def _debug(self, message: str, *args: object) -> None:
        self._logger.debug(message, self._path, *args, extra=record_fields(self._path, None))

    def _answer(self, path: str, root: RunContext) -> Reply | None:
        if path == "/livez":
            if root.restart_limit_reached:
                return Reply(503, "a supervisor of the tree gave up (restart limit)\n")
            return Reply(200, "ok\n")
        if path == "/readyz":
            if root.stopping:
                return Reply(503, "shutting down\n")
            return Reply(200, "ready\n") if root.all_ready else Reply(503, "starting\n")
        if path == "/startupz":
            return Reply(200, "started\n") if root.all_ready else Reply(503, "starting\n")
        if path == "/status":
            return Reply(200, status_json(root.status()), "application/json")
        return None


def _root_of(token: CancellationToken, name: str) -> RunContext:
    run = token._run
    if run is None:
        msg = (
            f"{name}: HealthServer reports on the tree it runs in; add it to a "
            "SupervisorBuilder (first, so it stops last) instead of calling run_proc() by hand"
        )
        raise RuntimeError(msg)
    return run.root


def status_json(status: TreeStatus) -> str:
    """The ``/status`` document: the tree, depth first, one entry per proc."""
    import json  # lazy: only a /status request pays for it

    return json.dumps(status.as_dict(), indent=2) + "\n"
