"""A parent for the "parent SIGKILLed" tests: ``python -m tests.procs.isolated_parent B T``.

Runs one `Isolated` child (target *T* of ``isolated_targets``) on backend *B*, prints the
child's pid once it is ready, then waits to be killed.
"""

from __future__ import annotations

import sys

import anyio

from super_visor import SupervisorBuilder
from super_visor.procs import Isolated


async def main() -> None:
    tree = (
        SupervisorBuilder("parent")
        .add_proc(Isolated(f"tests.procs.isolated_targets:{sys.argv[2]}", name="child"))
        .build()
    )
    async with tree.running() as handle:
        print(handle.ready_value("child"), flush=True)  # noqa: T201 (the test reads it)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1])
