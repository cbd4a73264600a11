"""A tree run by ``super_visor.run(..., control=SOCK)`` in a child process, for the socket tests.

``python -m tests.control_app SOCK BACKEND [VARIANT]``: every lifecycle event is printed on
stdout as ``<kind> <path>`` (flushed), so a test waits for what it needs by reading the pipe.
The procs: ``db`` (gates start-up), ``pipeline/consumer``, ``pipeline/producer``; with the
variant ``stubborn`` also ``stubborn`` (first), which ignores its token, so only ``abort`` or
force ends it (its grace is long); with ``fail`` also ``doomed``, which raises once it is asked
to stop, so the run ends with a failure.
"""

from __future__ import annotations

import sys

import anyio

import super_visor
from super_visor import CancellationToken, Event, SupervisorBuilder


async def steady(token: CancellationToken) -> None:
    await token.wait()


async def gated(token: CancellationToken) -> None:
    token.ready("db-ready")
    await token.wait()


async def stubborn(token: CancellationToken) -> None:
    await token.wait()
    await anyio.sleep_forever()  # ignores the stop request: only force ends it


async def doomed(token: CancellationToken) -> None:
    await token.wait()
    raise RuntimeError("doomed failed on purpose")


def announce(event: Event) -> None:
    print(f"{event.kind.value} {event.path}", flush=True)  # noqa: T201 (the test reads it)


def build(variant: str = "") -> super_visor.Supervisor:
    pipeline = (
        SupervisorBuilder("pipeline")
        .add_proc(steady, name="consumer")
        .add_proc(steady, name="producer")
        .build()
    )
    builder = SupervisorBuilder("app")
    if variant == "stubborn":
        builder.add_proc(stubborn, name="stubborn", grace=60.0, abandon_after=60.0)
    if variant == "fail":
        builder.add_proc(doomed, name="doomed")
    builder.add_proc(gated, name="db", wait_ready=True).add_proc(pipeline)
    return builder.on_event(announce).build()


if __name__ == "__main__":
    sock, backend, *variant = sys.argv[1:]
    super_visor.run(
        build(*variant),
        backend=backend,  # type: ignore[arg-type]
        control=sock,
        console=False,
        env_file=None,
    )
