"""``super-visor plan --format systemd|k8s``: a service manager's settings from the plan.

The trees are below, named as ``tests.test_plan_formats:<attr>``; the CLI runs in-process
(`main`), its answer read from stdout.
"""

from __future__ import annotations

import pytest

from super_visor import CancellationToken, SupervisorBuilder
from super_visor._cli import main
from super_visor.procs import HealthServer


async def idle(token: CancellationToken) -> None:
    await token.wait()


def deployed() -> SupervisorBuilder:
    """health (grace 1, gate 5), db (grace 2, gate 3), web (grace 4, abandon after 1).

    Worst-case shutdown: (1 + 10) + (2 + 10) + (4 + 1) = 28s; gates: 5 + 3 = 8s.
    """
    return (
        SupervisorBuilder("shop")
        .add_proc(HealthServer(port=8081, host="0.0.0.0"))
        .add_proc(idle, name="db", grace=2, wait_ready=True, ready_timeout=3)
        .add_proc(idle, name="web", grace=4, abandon_after=1)
    )


def unprobed() -> SupervisorBuilder:
    """No HealthServer, and a gate without a ready_timeout."""
    return SupervisorBuilder("bare").add_proc(idle, name="db", wait_ready=True)


def loopback() -> SupervisorBuilder:
    return SupervisorBuilder("local").add_proc(HealthServer()).add_proc(idle)


def plan(capsys: pytest.CaptureFixture[str], target: str, *options: str) -> list[str]:
    assert main(["plan", f"tests.test_plan_formats:{target}", *options]) == 0
    return capsys.readouterr().out.splitlines()


def settings(lines: list[str]) -> dict[str, str]:
    """``Key=value`` lines (systemd), comments left out."""
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_systemd_settings_cover_the_worst_case(capsys: pytest.CaptureFixture[str]) -> None:
    lines = plan(capsys, "deployed", "--format", "systemd")
    assert settings(lines) == {
        "Type": "notify",
        "NotifyAccess": "main",
        "KillMode": "mixed",
        "TimeoutStartSec": "18",  # gates 8s + 10s
        "TimeoutStopSec": "33",  # worst-case shutdown 28s + 5s
        "WatchdogSec": "10",
    }
    assert "# stop: worst-case shutdown 28s + 5s" in lines


def test_the_text_plan_states_the_same_worst_case(capsys: pytest.CaptureFixture[str]) -> None:
    lines = plan(capsys, "deployed")
    assert lines[-1].startswith("  worst-case shutdown: 28s")
    assert "  worst-case wait on gates: 8s" in lines


def test_k8s_settings_probe_the_health_server(capsys: pytest.CaptureFixture[str]) -> None:
    text = "\n".join(plan(capsys, "deployed", "--format", "k8s"))
    assert "terminationGracePeriodSeconds: 38\n" in text  # preStop 5 + 28 + 5
    assert '      command: ["sleep", "5"]\n' in text
    for kind, path, period, timeout, failures in [
        ("startupProbe", "/startupz", 1, 1, 18),
        ("readinessProbe", "/readyz", 2, 1, 1),
        ("livenessProbe", "/livez", 10, 5, 3),
    ]:
        assert (
            f"{kind}:\n  httpGet:\n    path: {path}\n    port: 8081\n"
            f"  periodSeconds: {period}\n  timeoutSeconds: {timeout}\n"
            f"  failureThreshold: {failures}"
        ) in text
    assert "warning" not in text


def test_without_a_health_server_k8s_says_what_to_add(capsys: pytest.CaptureFixture[str]) -> None:
    lines = plan(capsys, "unprobed", "--format", "k8s")
    assert lines[-1] == (
        "# no probes: add super_visor.procs.HealthServer(port=...) first in the tree"
    )
    assert not any("Probe:" in line for line in lines)


def test_an_unbounded_start_up_is_named_not_guessed(capsys: pytest.CaptureFixture[str]) -> None:
    lines = plan(capsys, "unprobed", "--format", "systemd")
    assert "TimeoutStartSec" not in settings(lines)
    assert any("a gate has no ready_timeout" in line for line in lines)


def test_a_loopback_health_server_is_flagged(capsys: pytest.CaptureFixture[str]) -> None:
    lines = plan(capsys, "loopback", "--format", "k8s")
    assert "# warning: health binds 127.0.0.1, out of the kubelet's reach;" in lines
    assert "    port: <the HealthServer's port; port=0 picks one>" in lines


def test_an_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "tests.test_plan_formats:deployed", "--format", "nomad"])
    assert exited.value.code == 2
    assert "invalid choice: 'nomad'" in capsys.readouterr().err
