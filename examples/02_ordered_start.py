"""Procs start in the order they are declared and stop in the reverse order.

Each proc here runs until its token is cancelled. The last one, ``timer``, returns after half
a second; that stops the app, and you can watch the others stop one after the other:
``cache``, then ``web``, then ``db``. A proc's next neighbour is asked to stop only once it
has returned, so something declared early (a database) is still there while the procs that
depend on it shut down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

import super_visor
from super_visor import CancellationToken, SupervisorBuilder

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


def service(name: str) -> Callable[[CancellationToken], Awaitable[None]]:
    """A proc that announces its start and its stop."""

    async def proc(token: CancellationToken) -> None:
        print(f"start {name}", flush=True)
        await token.wait()
        print(f"stop {name} (reason: {token.reason})", flush=True)

    return proc


async def timer(token: CancellationToken) -> None:
    with anyio.move_on_after(0.5):
        await token.wait()
    print("timer: time is up", flush=True)


if __name__ == "__main__":
    builder = (
        SupervisorBuilder("app")
        .add_proc(service("db"), name="db")
        .add_proc(service("web"), name="web")
        .add_proc(service("cache"), name="cache")
        .add_proc(timer)
    )
    super_visor.run(builder)
