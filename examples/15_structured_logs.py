"""Structured logs and metrics: JSON lines with the proc path and event, Prometheus counters.

``run(..., log_format="json")`` (or ``SUPER_VISOR_LOG_FORMAT=json``, or ``super-visor run
--log-format json``) writes one JSON object per log record to stderr, each with ``sv_path``,
``sv_event`` and, where they apply, ``sv_restarts`` and ``sv_status``: a log pipeline filters
on them instead of parsing messages. ``super_visor.metrics.prometheus()`` is an ``on_event``
callback keeping per-proc metrics (needs ``pip install 'super_visor[prometheus]'``).

This script runs itself as a child (``--child``), as a container would run the app, reads the
child's stderr as a log collector would, and prints what it found. In the child, ``flaky``
crashes once and is restarted; once it is back, ``job`` prints two of its Prometheus series
and completes, which ends the app.
"""

from __future__ import annotations

import json
import subprocess
import sys

import anyio

import super_visor
from super_visor import CancellationToken, Event, EventKind, Restart, SupervisorBuilder


def child() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from super_visor.metrics import prometheus

    registry = CollectorRegistry()
    crashed = anyio.Event()
    flaky_is_back = anyio.Event()

    def watch(event: Event) -> None:
        if event.path == "app/flaky" and event.kind is EventKind.READY and event.restarts:
            flaky_is_back.set()  # after prometheus(), which saw this event first

    async def flaky(token: CancellationToken) -> None:
        if not crashed.is_set():
            crashed.set()
            msg = "lost the connection"
            raise ConnectionError(msg)
        await token.wait()

    async def web(token: CancellationToken) -> None:
        await token.wait()

    async def job(token: CancellationToken) -> None:
        await flaky_is_back.wait()
        wanted = ("super_visor_proc_restarts_total", "super_visor_proc_up")
        for line in generate_latest(registry).decode().splitlines():
            if line.startswith(wanted) and 'path="app/flaky"' in line:
                print(f"metric: {line}", flush=True)

    sup = (
        SupervisorBuilder("app")
        .add_proc(web)
        .add_proc(flaky, restart=Restart.PERMANENT)
        .add_proc(job)
        .on_event(prometheus(registry))
        .on_event(watch)
    )
    super_visor.run(sup, log_format="json", console=False)


def main() -> None:
    done = subprocess.run(
        [sys.executable, __file__, "--child"], capture_output=True, text=True, check=False
    )
    print(done.stdout, end="", flush=True)
    for line in done.stderr.splitlines():
        if not line.startswith("{"):
            continue  # the report at the end stays plain text
        entry = json.loads(line)
        if entry.get("sv_event") in {"restarting", "completed", "shutdown_finished"}:
            fields = ", ".join(f"{k}={entry[k]}" for k in sorted(entry) if k.startswith("sv_"))
            traceback = " (traceback in exc)" if "exc" in entry else ""
            print(f"{entry['level']} {fields}{traceback}", flush=True)
    print(f"exit code: {done.returncode}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        child()
    else:
        main()
