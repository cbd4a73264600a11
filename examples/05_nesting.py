"""Nesting: a supervisor is a proc, so it can be added to another supervisor.

The nested ``pipeline`` starts its own procs in order as its step of the parent's start-up
(it counts as ready once all of them are), and stops them in reverse order as its step of
the parent's shutdown. Outcomes nest too: ``report["pipeline/sink"]`` finds a grandchild.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from super_visor import CancellationToken, SupervisorBuilder

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


def announcing(name: str) -> Callable[[CancellationToken], Awaitable[None]]:
    async def proc(token: CancellationToken) -> None:
        print(f"start {name}", flush=True)
        await token.wait()
        print(f"stop {name}", flush=True)

    return proc


async def main() -> None:
    pipeline = (
        SupervisorBuilder("pipeline")
        .add_proc(announcing("pipeline/sink"), name="sink")
        .add_proc(announcing("pipeline/source"), name="source")
        .build()
    )
    app = (
        SupervisorBuilder("app")
        .add_proc(announcing("db"), name="db")
        .add_proc(pipeline)  # nested: its procs start here, between db and web
        .add_proc(announcing("web"), name="web")
        .build()
    )
    async with app.running() as handle:
        print("all started", flush=True)
    report = handle.report
    print(report.render(), flush=True)
    sink = report["pipeline/sink"]
    print(f"{sink.path}: {sink.status.name}", flush=True)


if __name__ == "__main__":
    anyio.run(main)
