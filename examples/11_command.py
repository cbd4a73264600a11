"""Command: run an OS program as a proc, gated by a readiness probe.

``kv`` is a real child process (examples/kv_server.py, a tiny Redis look-alike) started in
its own process group. Its ``LogLineProbe`` gates start-up: ``running()`` returns only once
the child printed that it accepts connections, and the port it printed is the ready value. On
stop the group gets SIGTERM, then SIGKILL after the grace; the child's output goes to
logging and a failure quotes its last lines (``job`` shows one).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import anyio

from super_visor import SupervisorBuilder, SupervisorError
from super_visor.procs import Command, CommandFailed, LogLineProbe

KV_SERVER = Path(__file__).with_name("kv_server.py")


async def talk_to(port: int) -> list[str]:
    async with await anyio.connect_tcp("127.0.0.1", port) as kv:
        await kv.send(b"SET greeting hello\nGET greeting\n")
        replies = b""
        while replies.count(b"\n") < 2:
            replies += await kv.receive()
    return replies.decode().split()


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    kv = Command(
        [sys.executable, "-u", str(KV_SERVER), "0"],
        name="kv",
        ready=LogLineProbe(r"ready to accept connections on port (\d+)", timeout=10),
        grace=2.0,
    )
    app = SupervisorBuilder("app").add_proc(kv).build()
    async with app.running() as handle:  # returns once the probe passed
        port = int(str(handle.ready_value("kv")))
        print("kv is ready", flush=True)
        print(f"kv answered {await talk_to(port)}", flush=True)
    # Leaving the block stopped kv: SIGTERM to its group, and it exited 0 in its grace.
    print(f"kv: {handle.report['kv'].status.value}, exit code {handle.report['kv'].result}")

    job = Command(
        [sys.executable, "-c", "import sys; print('reading input.csv'); sys.exit(3)"],
        name="job",
    )
    try:
        await SupervisorBuilder("batch").add_proc(job).build().start(handle_signals=False)
    except SupervisorError as exc:
        error = exc.report["job"].error
        assert isinstance(error, CommandFailed)
        print(f"job failed: exit code {error.returncode}, last line {error.last_lines[-1]!r}")


if __name__ == "__main__":
    anyio.run(main)
