"""A parent for the tests that need their own process: ``isolated_parent B T [SECONDS]``.

Runs one `Isolated` child (target *T* of ``isolated_targets``) on backend *B* and prints the
child's pid once it is ready. Without *SECONDS* it then waits to be killed; with them, it
waits that long, prints whether the child still runs, stops the tree and exits.
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
        pid = handle.ready_value("child")
        print(pid, flush=True)  # noqa: T201 (the test reads it)
        if len(sys.argv) < 4:
            await anyio.sleep_forever()
        await anyio.sleep(float(sys.argv[3]))
        print(f"child still runs: {handle.is_running('child')}", flush=True)  # noqa: T201


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1])
