"""Dynamic children: one proc per connection, started and stopped on the running tree.

``handle.start_child()`` adds a proc to the running supervisor (here one per "connection"),
``handle.stop_child()`` stops one and returns its outcome. A crashing PERMANENT child is
restarted on its own. At shutdown the dynamic children stop first, newest first, then the
static ``listener``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from super_visor import CancellationToken, Restart, SupervisorBuilder

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


async def listener(token: CancellationToken) -> None:
    print("listener: start", flush=True)
    await token.wait()
    print("listener: stop", flush=True)


def connection(
    number: int, crashes: list[int], back: anyio.Event
) -> Callable[[CancellationToken], Awaitable[None]]:
    async def serve(token: CancellationToken) -> None:
        print(f"conn-{number}: open", flush=True)
        if number == 2 and not crashes:
            crashes.append(number)
            await anyio.lowlevel.checkpoint()
            print(f"conn-{number}: crash!", flush=True)
            raise ConnectionResetError("peer reset")
        if number == 2:
            back.set()
        await token.wait()
        print(f"conn-{number}: closed", flush=True)

    return serve


async def main() -> None:
    crashes: list[int] = []
    back = anyio.Event()
    app = SupervisorBuilder("server").add_proc(listener).build()
    async with app.running() as handle:
        for number in range(1, 4):
            await handle.start_child(
                connection(number, crashes, back), name=f"conn-{number}", restart=Restart.PERMANENT
            )
        await back.wait()  # conn-2 crashed and was restarted on its own
        outcome = await handle.stop_child("conn-1", "client hung up")
        print(f"stopped {outcome.path}: {outcome.status.name}", flush=True)
        print("shutting down", flush=True)
    print(f"conn-2 restarts: {handle.report['conn-2'].restarts}", flush=True)


if __name__ == "__main__":
    anyio.run(main)
