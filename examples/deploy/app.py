"""The app that the unit, the Deployment and the Dockerfile next to this file run.

A small shop service: a database pool that gates start-up, a web server answering HTTP on
``SHOP_WEB_PORT`` (8080), and a background job, with a `HealthServer` on ``SHOP_HEALTH_PORT`` (8081)
**first in the tree**, so it is the last to stop and ``/readyz`` answers 503 for the whole
shutdown. Run it as the service managers do::

    super-visor run app:app              # from this directory
    super-visor plan app:app --format systemd   # the numbers in shop.service
    super-visor plan app:app --format k8s       # the numbers in deployment.yaml
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from super_visor import CancellationToken, SupervisorBuilder
from super_visor.procs import HealthServer, Periodic, TcpServer

if TYPE_CHECKING:
    from anyio.abc import SocketStream

#: Where the servers listen: every interface, as in a container (the kubelet and the
#: clients connect from outside the pod); SHOP_HOST=127.0.0.1 keeps them local.
HOST = os.environ.get("SHOP_HOST", "0.0.0.0")


async def db(token: CancellationToken) -> None:
    """Opens the pool (a real app connects here) before anything that needs it starts."""
    token.ready()
    await token.wait()


async def answer(stream: SocketStream) -> None:
    """One HTTP reply per connection: enough to show a server draining at shutdown."""
    await stream.receive()
    body = b"hello from the shop\n"
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    await stream.send(head.encode() + body)


async def sweep_carts() -> None:
    """The background job: drop abandoned carts."""


app = (
    SupervisorBuilder("shop", grace=5)
    .add_proc(HealthServer(port=int(os.environ.get("SHOP_HEALTH_PORT", "8081")), host=HOST))
    .add_proc(db, wait_ready=True, ready_timeout=10, abandon_after=5)
    .add_proc(
        TcpServer(answer, host=HOST, port=int(os.environ.get("SHOP_WEB_PORT", "8080"))),
        name="web",
        ready_timeout=5,
        grace=10,
        abandon_after=5,
    )
    .add_proc(Periodic(sweep_carts, every=60, name="carts"), grace=2, abandon_after=5)
)
