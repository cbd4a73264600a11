"""Readiness probes against real children: a port, an HTTP URL, a log line, a file."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import ConfigError, StartupError, SupervisorBuilder, SupervisorError
from super_visor.procs import Command, FileProbe, HttpProbe, LogLineProbe, TcpProbe

from ..fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes
from .helpers import python

if TYPE_CHECKING:
    from pathlib import Path

# Binds the port given as argv[1] after a short delay (the probe must wait for it), then
# serves HTTP: /health answers with the status given as argv[2].
HTTP_SERVER = """
    import http.server, sys, time
    port, status = int(sys.argv[1]), int(sys.argv[2])
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status if self.path == "/health" else 404)
            self.end_headers()
        def log_message(self, *args):
            pass
    time.sleep(0.2)
    http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _ready_value(cmd: Command) -> object:
    sup = SupervisorBuilder("app").add_proc(cmd).build()
    with anyio.fail_after(15):
        async with sup.running() as handle:
            return handle.ready_value(cmd.name)


async def test_tcp_probe_waits_for_the_port_and_gives_it_as_ready_value() -> None:
    port = free_port()
    argv = [*python(HTTP_SERVER), str(port), "200"]
    assert await _ready_value(Command(argv, name="web", ready=TcpProbe("127.0.0.1", port))) == port


async def test_http_probe_waits_for_a_2xx_and_gives_the_url() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/health"
    argv = [*python(HTTP_SERVER), str(port), "204"]
    assert await _ready_value(Command(argv, name="web", ready=HttpProbe(url))) == url


async def test_http_probe_timeout_quotes_the_last_status() -> None:
    port = free_port()
    probe = HttpProbe(f"http://127.0.0.1:{port}/health", timeout=1.0)
    argv = [*python(HTTP_SERVER), str(port), "503"]
    sup = SupervisorBuilder("app").add_proc(Command(argv, name="web", ready=probe)).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    cause = caught.value.report["web"].error.__cause__  # type: ignore[union-attr]
    assert isinstance(cause, StartupError)
    assert "last status 503" in str(cause)
    assert "did not pass within 1s" in str(cause)


async def test_log_line_probe_gives_the_group_of_the_match() -> None:
    code = """
        import time
        print("loading", flush=True)
        print("listening on port 6380", flush=True)
        time.sleep(60)
    """
    probe = LogLineProbe(r"listening on port (\d+)")
    assert await _ready_value(Command(python(code), name="redis", ready=probe)) == "6380"


async def test_log_line_probe_sees_stderr_and_gives_all_groups() -> None:
    code = """
        import sys, time
        print("INFO ready host=db port=5432", file=sys.stderr, flush=True)
        time.sleep(60)
    """
    probe = LogLineProbe(r"host=(\w+) port=(\d+)")
    assert await _ready_value(Command(python(code), name="db", ready=probe)) == ("db", "5432")


async def test_file_probe_waits_for_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    code = """
        import pathlib, sys, time
        time.sleep(0.2)
        pathlib.Path(sys.argv[1]).write_text("ok")
        time.sleep(60)
    """
    cmd = Command([*python(code), str(marker)], name="worker", ready=FileProbe(marker))
    assert await _ready_value(cmd) == marker


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf")])
def test_a_bad_timeout_is_a_config_error(timeout: float) -> None:
    with pytest.raises(ConfigError, match="timeout must be a finite number of seconds > 0"):
        TcpProbe("127.0.0.1", 1, timeout=timeout)


def test_http_probe_needs_an_http_url() -> None:
    with pytest.raises(ConfigError, match="must be http:// or https://"):
        HttpProbe("ftp://example.com/")
