"""A realistic application: a web app, its key-value store, and a cleanup job, under one root.

- ``kv``: a Redis-like server (examples/kv_server.py) run as a child process in its own
  process group, gated by a TCP probe: nothing after it starts before its port accepts
  connections. On stop it gets SIGTERM, then SIGKILL after its grace.
- ``web``: a Starlette app served by Uvicorn in this process (asyncio). Its lifespan opens
  the app's view of the store after ``kv`` is ready; ``GET /visits`` counts visits in ``kv``.
  On stop it drains: no new connections, requests in flight finish within the grace.
- ``cleanup``: a periodic job that talks to ``kv`` every second, never overlapping itself.
- ``timer`` (only with ``--for``): ends after SECONDS, which stops the whole app.

Stop order is the reverse: timer, cleanup, web (drain, lifespan shutdown), then kv.

    python examples/realistic_app.py              # until Ctrl-C (a second Ctrl-C forces)
    python examples/realistic_app.py --for 5      # stops by itself after 5 seconds

The web address appears in the log on stderr ("app/web: ready: ready value <port>").
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import super_visor
from super_visor import CancellationToken, SupervisorBuilder
from super_visor.procs import Command, Periodic, TcpProbe, Uvicorn

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

KV_SERVER = Path(__file__).with_name("kv_server.py")


class KvClient:
    """One request per connection: enough for a demo, and nothing to keep open."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def call(self, *words: str) -> str:
        async with await anyio.connect_tcp("127.0.0.1", self.port) as stream:
            await stream.send((" ".join(words) + "\n").encode())
            reply = b""
            while not reply.endswith(b"\n"):
                reply += await stream.receive()
        return reply.decode().strip()


def make_web_app(kv: KvClient) -> Starlette:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        print(f"web: lifespan start-up, kv answers {await kv.call('PING')}", flush=True)
        yield
        print("web: lifespan shutdown", flush=True)

    async def visits(_request: Request) -> JSONResponse:
        count = await kv.call("GET", "visits")
        count = str(int(count) + 1) if count.isdigit() else "1"
        await kv.call("SET", "visits", count)
        return JSONResponse({"visits": int(count)})

    return Starlette(routes=[Route("/visits", visits)], lifespan=lifespan)


def free_port() -> int:
    """A port for the child to bind; the TCP probe must know it in advance."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def build(seconds: float | None, web_port: int) -> super_visor.Supervisor:
    kv_port = free_port()
    kv = KvClient(kv_port)
    runs = 0

    async def cleanup() -> None:
        nonlocal runs
        runs += 1
        await kv.call("SET", "last_cleanup", str(runs))
        print(f"cleanup: run {runs}", flush=True)

    builder = (
        SupervisorBuilder("app")
        .add_proc(
            Command(
                [sys.executable, "-u", str(KV_SERVER), str(kv_port)],
                name="kv",
                ready=TcpProbe("127.0.0.1", kv_port, timeout=10),
                grace=3,
            )
        )
        .add_proc(Uvicorn(make_web_app(kv), name="web", port=web_port, grace=5))
        .add_proc(Periodic(cleanup, every=1.0, name="cleanup", grace=2))
    )
    if seconds is not None:

        async def timer(token: CancellationToken) -> None:
            with anyio.move_on_after(seconds):
                await token.wait()
            print(f"timer: {seconds:g} s are up", flush=True)

        builder.add_proc(timer)
    return builder.build()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--for", dest="seconds", type=float, help="stop after SECONDS")
    parser.add_argument("--port", type=int, default=0, help="web port (default: any free)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    super_visor.run(build(args.seconds, args.port), backend="asyncio")  # Uvicorn: asyncio


if __name__ == "__main__":
    main()
