"""Hello, proc: the smallest super_visor application.

A proc is an ``async def`` that takes a `CancellationToken`. This one greets, waits up to one
second for a stop request, and returns. Returning ends the app: a proc is *significant* by
default, so its end stops its supervisor. ``run()`` prints the report to stderr and exits 0.

Press Ctrl-C within the second to see a graceful stop instead.
"""

from __future__ import annotations

import anyio

import super_visor
from super_visor import CancellationToken, SupervisorBuilder


async def hello(token: CancellationToken) -> str:
    print("hello: started", flush=True)
    with anyio.move_on_after(1.0):
        await token.wait()  # returns at once when a stop is requested (Ctrl-C)
    print(f"hello: stopping (stop requested: {token.cancelled})", flush=True)
    return "bye"


if __name__ == "__main__":
    super_visor.run(SupervisorBuilder("app").add_proc(hello))
