"""An ASGI app served in-process, with its lifespan in the start/stop order.

A Starlette app runs under Hypercorn (``--server uvicorn`` for Uvicorn, asyncio only). Its
lifespan start-up runs after ``db`` is ready and before ``reporter`` starts; on stop the
server drains (no new connections, requests in flight finish within the grace), then the
lifespan shutdown runs, then ``db`` stops. The ready value of the server is the port it
bound (``port=0`` lets the OS choose), which the example requests itself over HTTP.

    python examples/13_asgi_app.py [--server hypercorn|uvicorn] [--backend asyncio|trio]
"""

from __future__ import annotations

import argparse
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from super_visor import CancellationToken, SupervisorBuilder
from super_visor.procs import Hypercorn, Uvicorn

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    print("web: lifespan start-up (db is ready by now)", flush=True)
    yield
    print("web: lifespan shutdown (db is still up)", flush=True)


async def home(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/", home)], lifespan=lifespan)


async def db(token: CancellationToken) -> None:
    print("db: connected", flush=True)
    token.ready()
    await token.wait()
    print("db: closed", flush=True)


async def reporter(token: CancellationToken) -> None:
    print("reporter: started", flush=True)
    await token.wait()


async def main(server: str) -> None:
    web = Uvicorn(app, name="web", grace=2) if server == "uvicorn" else Hypercorn(app, name="web")
    tree = (
        SupervisorBuilder("app")
        .add_proc(db, wait_ready=True)
        .add_proc(web)
        .add_proc(reporter)
        .build()
    )
    async with tree.running() as handle:
        port = handle.ready_value("web")
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
        print(f"GET / -> {response.status_code} {response.json()}", flush=True)
    print(f"web: {handle.report['web'].status.value}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["hypercorn", "uvicorn"], default="hypercorn")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(main, args.server, backend=args.backend)
