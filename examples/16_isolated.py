"""Isolated procs: a web app in 2 processes sharing one port, beside a CPU-bound worker.

The root opens one listening socket and hands it down to ``web``, two replicas of an ASGI
app each served by Hypercorn in its own process (``replicas=2``: a nested supervisor of
``web/0`` and ``web/1``). ``crunch`` is a CPU-bound job in a third process, so it uses
another core and cannot stall the servers. ``client`` runs in this process: it sends a
few requests to the shared port, prints which process answered, and returns, which (it is
significant) stops the whole tree in reverse order. Each child's result, events and
outcome come back: the report shows them as if they had run here.

The targets are ``"__main__:web"`` and ``"__main__:crunch"``: each child imports this file
again (as ``__mp_main__``, like multiprocessing's spawn), which is why the entry point is
guarded by ``if __name__ == "__main__":``.

    python examples/16_isolated.py [--backend asyncio|trio]
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import TYPE_CHECKING

import anyio
import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from super_visor import CancellationToken, SupervisorBuilder, SupervisorError
from super_visor.procs import Hypercorn, Isolated, inherited_sockets

if TYPE_CHECKING:
    from starlette.requests import Request


async def home(_request: Request) -> JSONResponse:
    return JSONResponse({"pid": os.getpid()})


app = Starlette(routes=[Route("/", home)])


async def web(token: CancellationToken) -> None:
    """In each replica: serve the app on the socket the root opened (same fd number)."""
    (listener,) = inherited_sockets()
    server = Hypercorn(app, name="web", bind=[f"fd://{listener.fileno()}"], grace=2.0)
    await server.run_proc(token)


async def crunch(token: CancellationToken) -> int:
    """In its own process: CPU-bound rounds until stopped; the count crosses back."""
    token.ready(os.getpid())
    rounds = 0
    while not token.cancelled:
        sum(i * i for i in range(50_000))
        rounds += 1
        await anyio.lowlevel.checkpoint()
    return rounds


def make_client(port: int) -> object:
    async def client(token: CancellationToken) -> None:
        pids: set[int] = set()
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per request
        async with httpx.AsyncClient(limits=limits) as http:
            for _ in range(40):
                response = await http.get(f"http://127.0.0.1:{port}/")
                pids.add(response.json()["pid"])
                if len(pids) == 2:
                    break
        where = "another process" if os.getpid() not in pids else "this process"
        print(f"GET / -> {response.status_code}, answered by {where}", flush=True)
        print(f"replica processes seen: {len(pids)} of 2", flush=True)

    return client


async def main() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        print(f"listening on 127.0.0.1:{port}, shared by 2 processes", flush=True)
        tree = (
            SupervisorBuilder("app")
            .add_proc(Isolated("__main__:crunch", grace=2.0))
            .add_proc(Isolated("__main__:web", replicas=2, sockets=[listener], grace=3.0))
            .add_proc(make_client(port), name="client")
            .build()
        )
        try:
            report = await tree.start()
        except SupervisorError as exc:
            report = exc.report
    crunch_outcome = report["crunch"]
    print(f"crunch: {crunch_outcome.status.value}", flush=True)
    rounds = crunch_outcome.result
    print(f"crunch did {'some' if isinstance(rounds, int) else 'no'} rounds", flush=True)
    for replica in report["web"].children:
        print(f"{replica.path}: {replica.status.value}", flush=True)
    print(f"exit code: {report.exit_code}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    anyio.run(main, backend=parser.parse_args().backend)
