"""The control socket: look at and act on a running tree from a shell.

``super_visor.run(..., control=PATH)`` (or ``SUPER_VISOR_CONTROL=PATH``, or
``super-visor run app:tree --control PATH``) serves a Unix socket, mode 0600, that only
processes of the same user may use. ``super-visor ctl PATH status|stop|start|restart|abort
PATH|shutdown`` talks to it. Here the ``operator`` proc plays the person at the shell: it runs
the very commands you would type, prints what they print, and ends the app with ``shutdown``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio

import super_visor
from super_visor import CancellationToken, SupervisorBuilder


async def steady(token: CancellationToken) -> None:
    await token.wait()


def operator_for(sock: Path) -> super_visor.SupportsRunProc:
    async def ctl(*args: str) -> None:
        """Run ``super-visor ctl SOCK *args`` as a shell would, and print its output."""
        print(f"$ super-visor ctl {sock.name} {' '.join(args)}", flush=True)
        command = [sys.executable, "-m", "super_visor", "ctl", str(sock), *args]
        done = await anyio.run_process(command, check=False)
        if done.stdout:
            print(done.stdout.decode().rstrip(), flush=True)
        if done.returncode != 0:
            print(f"(exit {done.returncode}: {done.stderr.decode().strip()})", flush=True)

    class Operator:
        name = "operator"

        async def run_proc(self, token: CancellationToken) -> None:
            await ctl("status")
            await ctl("restart", "pipeline/consumer")
            await ctl("stop", "pipeline/nope")  # refused: exit 1, the tree is untouched
            await ctl("shutdown")
            await token.wait()

    return Operator()


def build(sock: Path) -> super_visor.Supervisor:
    pipeline = (
        SupervisorBuilder("pipeline")
        .add_proc(steady, name="consumer")
        .add_proc(steady, name="producer")
        .build()
    )
    return (
        SupervisorBuilder("app")
        .add_proc(steady, name="db")
        .add_proc(pipeline)
        .add_proc(operator_for(sock), significant=False)
        .build()
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        sock = Path(directory) / "app.sock"
        super_visor.run(build(sock), control=sock, console=False, env_file=None)
