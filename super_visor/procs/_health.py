"""HealthServer: the tree's real state on HTTP, for Kubernetes probes and for people."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final, final

import anyio
from anyio.abc import SocketAttribute

from .._status import RunState
from .._validate import check_name, check_port, check_seconds, valid
from ._http import Reply, serve_one

if TYPE_CHECKING:
    from anyio.abc import SocketStream

    from .._context import RunContext
    from .._status import TreeStatus
    from .._token import CancellationToken

__all__ = ("HealthServer",)

#: Connections served at once; more are closed unanswered, so a flood of probes or of
#: idle clients costs a bounded number of tasks and file descriptors.
MAX_CONNECTIONS: Final = 64

#: The states in which a proc's task runs: its uptime counts.
_LIVE = frozenset((RunState.STARTING, RunState.RUNNING, RunState.STOPPING))


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
    garbage gets 400. None of it reaches the tree: a bad client only loses its connection.

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

    def __repr__(self) -> str:
        return f"HealthServer({self.name!r}, {self.host}:{self.port})"

    async def run_proc(self, token: CancellationToken, /) -> None:
        root = _root_of(token, self.name)
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        async with listener, anyio.create_task_group() as connections:
            token.ready(listener.extra(SocketAttribute.local_port))
            with token.cancel_scope():
                await listener.serve(lambda stream: self._serve(stream, root), connections)
            await listener.aclose()
            connections.cancel_scope.cancel()

    async def _serve(self, stream: SocketStream, root: RunContext) -> None:
        async with stream:
            if self._open >= MAX_CONNECTIONS:
                return
            self._open += 1
            try:
                await serve_one(stream, lambda path: self._answer(path, root), self.read_timeout)
            except (anyio.BrokenResourceError, anyio.EndOfStream, anyio.IncompleteRead):
                self._logger.debug("%s: a client went away", self.name)
            finally:
                self._open -= 1

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

    procs = [
        {
            "path": proc.path,
            "state": proc.state.value,
            "ready": proc.ready,
            "restarts": proc.restarts,
            "uptime_s": (
                round(status.taken_at - proc.started_at, 3)
                if proc.started_at is not None and proc.state in _LIVE
                else None
            ),
        }
        for proc in status.walk()
    ]
    document = {"name": status.name, "state": status.state.value, "ready": status.ready}
    return json.dumps({**document, "procs": procs}, indent=2) + "\n"
