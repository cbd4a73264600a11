"""End to end: a real program calling ``super_visor.run()`` under a notify socket, as systemd
would run it (``Type=notify``, ``WatchdogSec=``), stopped by a real SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from .notify_socket import NotifyListener

if TYPE_CHECKING:
    from pathlib import Path

APP = textwrap.dedent(
    """
    import sys

    import anyio

    import super_visor
    from super_visor import SupervisorBuilder


    async def db(token):
        await token.wait()


    async def web(token):
        await token.wait()
        await anyio.sleep(0.2)  # finishing the requests in flight


    app = SupervisorBuilder("app").add_proc(db).add_proc(web)
    super_visor.run(app, backend=sys.argv[1])
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_service_run_by_systemd_hears_ready_status_watchdog_stopping(
    backend: str, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    listener = NotifyListener()
    env = {**os.environ, "NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "1000000"}
    env.pop("WATCHDOG_PID", None)
    try:
        with listener.reading():
            service = subprocess.Popen(
                [sys.executable, "-W", "error", "app.py", backend],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                listener.wait_for(lambda ms: "READY=1" in ms, timeout=20)
                listener.wait_for(lambda ms: ms.count("WATCHDOG=1") >= 2, timeout=20)
                service.send_signal(signal.SIGTERM)
                _, stderr = service.communicate(timeout=20)
            finally:
                if service.returncode is None:
                    service.kill()
                    service.communicate()
    finally:
        listener.close()
    assert service.returncode == 0, stderr
    transcript = listener.messages
    print("\n".join(transcript))  # noqa: T201 (the transcript, for -s and for the closing note)
    milestones = [m for m in transcript if not m.startswith(("STATUS=", "WATCHDOG="))]
    assert milestones == ["READY=1", "STOPPING=1"]
    ready, stopping = transcript.index("READY=1"), transcript.index("STOPPING=1")
    assert "WATCHDOG=1" in transcript[ready:stopping]
    statuses = [m for m in transcript if m.startswith("STATUS=")]
    assert any(s.startswith("STATUS=running: 2/2 procs ready") for s in transcript[:stopping])
    assert statuses[-1].startswith("STATUS=stopped: 0/2 procs ready; last: app shutdown finished")
