"""A producer/consumer pipeline that needs a factory to recover from a crash.

The two procs share a memory object stream. The factory returns a *resource scope*: an async
context manager that creates a fresh stream and a fresh nested supervisor for every run, and
closes the stream once that subtree has stopped. When the consumer chokes on a poison message
the ``pipeline`` subtree fails, the root restarts it (TRANSIENT), and the new run works on a
new stream. Built once outside the tree, the stream would stay closed after the crash and
every restart would fail at once.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from super_visor import CancellationToken, Restart, Supervisor, SupervisorBuilder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class Pipeline:
    """Makes a fresh stream and producer/consumer subtree for every (re)start."""

    def __init__(self) -> None:
        self.runs = 0
        self.recovered = anyio.Event()

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[Supervisor]:
        self.runs += 1
        run = self.runs
        send, receive = anyio.create_memory_object_stream[str]()
        print(f"scope {run}: stream opened", flush=True)

        async def consumer(token: CancellationToken) -> None:
            with token.cancel_scope():
                async for message in receive:
                    print(f"consumer {run}: {message}", flush=True)
                    if message == "poison":
                        raise ValueError("cannot parse 'poison'")
                    if run == 2 and message == "order 3":
                        self.recovered.set()

        async def producer(token: CancellationToken) -> None:
            messages = ["order 1", "poison"] if run == 1 else ["order 2", "order 3"]
            with token.cancel_scope():
                for message in messages:
                    await send.send(message)
                await token.wait()

        try:
            async with send, receive:
                yield (
                    SupervisorBuilder("pipeline")
                    .add_proc(consumer)  # started first, stopped last
                    .add_proc(producer)
                    .build()
                )
        finally:
            print(f"scope {run}: stream closed", flush=True)


async def main() -> None:
    pipeline = Pipeline()
    app = (
        SupervisorBuilder("app")
        # wait_ready: a factory's product is only known at start; the subtree gates start-up
        # (it is ready once its procs are), as add_proc() does for a Supervisor by itself.
        .add_factory("pipeline", pipeline.scope, restart=Restart.TRANSIENT, wait_ready=True)
        .build()
    )
    async with app.running() as handle:
        await pipeline.recovered.wait()
    outcome = handle.report["pipeline"]
    print(f"pipeline: {outcome.status.name} after {outcome.restarts} restart(s)", flush=True)


if __name__ == "__main__":
    anyio.run(main)
