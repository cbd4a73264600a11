"""examples/deploy: the unit, the Deployment and the Dockerfile hold the numbers that
``super-visor plan --format ...`` prints for the app they run, and that app runs, tells a
notify socket it is ready and answers its probes, as a service manager would see it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .notify_socket import NotifyListener

DEPLOY = Path(__file__).resolve().parent.parent / "examples" / "deploy"
TIMEOUT = 30.0
#: The deployment-specific settings app.py reads; the plan is printed with none of them set.
APP_VARIABLES = ("SHOP_HOST", "SHOP_HEALTH_PORT", "SHOP_WEB_PORT")


def plan(fmt: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-m", "super_visor", "plan", "app:app", "--format", fmt],
        cwd=DEPLOY,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    return done.stdout.splitlines()


def settings(lines: list[str]) -> dict[str, str]:
    """``Key=value`` lines, comments and section headers left out."""
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_the_unit_holds_the_plans_numbers() -> None:
    planned = settings(plan("systemd"))
    unit = settings((DEPLOY / "shop.service").read_text(encoding="utf-8").splitlines())
    assert {"TimeoutStopSec", "WatchdogSec", "TimeoutStartSec", "Type"} <= planned.keys()
    assert {key: unit.get(key) for key in planned} == planned


def test_the_deployment_holds_the_plans_numbers() -> None:
    """The plan's lines, pasted at the pod's and the container's indentation."""
    lines = plan("k8s")
    container_at = lines.index("# container spec:")
    pod = [line for line in lines[:container_at] if not line.startswith("#")]
    container = [line for line in lines[container_at:] if not line.startswith("#")]
    manifest = (DEPLOY / "deployment.yaml").read_text(encoding="utf-8")
    assert pod == [pod[0]]
    assert re.search(rf"^      {re.escape(pod[0])}$", manifest, re.M), pod[0]
    pasted = "\n".join(f"          {line}" for line in container)
    assert pasted in manifest
    assert "startupProbe:" in pasted
    assert "port: 8081" in pasted
    assert "containerPort: 8081" in manifest


@pytest.mark.parametrize("fmt", ["systemd", "k8s"])
def test_the_deploying_guide_quotes_the_plan(fmt: str) -> None:
    guide = (DEPLOY.parent.parent / "docs" / "how-to" / "deploying.md").read_text(encoding="utf-8")
    printed = [line for line in plan(fmt) if not line.startswith("# Kubernetes settings")]
    assert "\n".join(printed) in guide


def test_the_dockerfile_runs_what_the_unit_runs() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    unit = settings((DEPLOY / "shop.service").read_text(encoding="utf-8").splitlines())
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M)
    assert entrypoint is not None
    command = json.loads(entrypoint[1])
    assert Path(unit["ExecStart"].split()[0]).name == command[0] == "super-visor"
    assert unit["ExecStart"].split()[1:] == command[1:] == ["run", "app:app"]
    assert "COPY app.py ." in dockerfile
    assert re.search(r"^EXPOSE 8080 8081$", dockerfile, re.M)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_app_is_ready_answers_its_probes_and_stops_on_sigterm(backend: str) -> None:
    health, web = free_port(), free_port()
    listener = NotifyListener()
    env = {
        **os.environ,
        "SHOP_HOST": "127.0.0.1",
        "SHOP_HEALTH_PORT": str(health),
        "SHOP_WEB_PORT": str(web),
        "NOTIFY_SOCKET": listener.address,
        "WATCHDOG_USEC": "10000000",
    }
    try:
        with listener.reading():
            stderr = _serve_and_probe(env, listener, health, web, backend)
    finally:
        listener.close()
    assert "shop: stopped (signal SIGTERM)" in stderr
    milestones = [m for m in listener.messages if m in ("READY=1", "STOPPING=1")]
    assert milestones == ["READY=1", "STOPPING=1"]


def _serve_and_probe(
    env: dict[str, str], listener: NotifyListener, health: int, web: int, backend: str
) -> str:
    command = [sys.executable, "-m", "super_visor", "run", "app:app", "--backend", backend]
    service = subprocess.Popen(
        command, cwd=DEPLOY, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        listener.wait_for(lambda ms: "READY=1" in ms, timeout=TIMEOUT)
        probes = {p: httpx.get(f"http://127.0.0.1:{health}{p}").status_code for p in _PROBES}
        assert probes == dict.fromkeys(_PROBES, 200)
        status = httpx.get(f"http://127.0.0.1:{health}/status").json()
        paths = [proc["path"] for proc in status["procs"]]
        assert paths == ["shop/health", "shop/db", "shop/web", "shop/carts"]
        assert httpx.get(f"http://127.0.0.1:{web}/").text == "hello from the shop\n"
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=TIMEOUT)
    finally:
        if service.returncode is None:
            service.kill()
            service.communicate()
    assert service.returncode == 0, stderr
    return stderr


_PROBES = ("/startupz", "/readyz", "/livez")
