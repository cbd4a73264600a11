"""Describe a tree without running it: its shape, its start plan and its stop plan.

Used by ``super-visor tree``, ``check`` and ``plan``. Everything is derived from the built
`Supervisor` (the same specs a run uses), so what the plan says is what a run does: start in
declared order (pre-order through nested supervisors), stop in exact reverse, one proc at a
time, each with its grace, its force reserve, then force and, for a proc that survives the
force-cancel, abandonment after its ``abandon_after``.

``plan --format systemd|k8s`` turns the same bounds into a service manager's settings
(`format_systemd`, `format_k8s`). The stop timeout covers the worst-case shutdown, so even a
proc that survives its force-cancel is abandoned and reported before the manager's SIGKILL.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._spec import ProcSpec
    from ._supervisor import Supervisor
    from .procs._health import HealthServer

__all__ = ("format_k8s", "format_plan", "format_systemd", "format_tree", "shutdown_bound")

#: Seconds added to the worst-case shutdown for the interpreter's exit and the report.
STOP_MARGIN = 5
#: Seconds added to the worst-case start-up for the imports and the first proc's start.
START_MARGIN = 10
#: The suggested watchdog period: a loop blocked this long is treated as hung. Pings go
#: out every half of it, so one late tick under load does not fail the service.
WATCHDOG_SEC = 10
#: Seconds ``preStop`` waits before Kubernetes sends SIGTERM, so the endpoints and load
#: balancers stop routing to the pod before its servers begin to stop.
PRE_STOP_SEC = 5
#: The startup probe's period (seconds), and the failures it allows when start-up has no
#: bound (five minutes).
STARTUP_PERIOD = 1
UNBOUNDED_STARTUP_FAILURES = 300


def format_tree(sup: Supervisor) -> str:
    """The tree, one proc per line with its main settings."""
    lines = [f"{sup.name}  {_supervisor_settings(sup)}"]
    # Per depth: how many procs are still to come (the last one draws "└──"), and the
    # guide its procs draw below it ("│" while siblings follow).
    left = [len(sup.specs)]
    guides: list[str] = []
    for _, spec, depth in sup.walk():
        del left[depth + 1 :], guides[depth:]
        left[depth] -= 1
        branch, below = ("└── ", "    ") if left[depth] == 0 else ("├── ", "│   ")
        lines.append(f"{''.join(guides)}{branch}{spec.name}  {_spec_settings(spec)}")
        guides.append(below)
        if spec.nested is not None:
            left.append(len(spec.nested.specs))
    return "\n".join(lines)


def _supervisor_settings(sup: Supervisor) -> str:
    return (
        f"(supervisor: {sup.strategy.name.lower()}, "
        f"at most {sup.max_restarts} restarts within {sup.within:g}s)"
    )


def _spec_settings(spec: ProcSpec) -> str:
    parts = []
    if spec.nested is not None:
        parts.append(_supervisor_settings(spec.nested))
    elif spec.factory is not None:
        parts.append("(factory)")
    parts.append(_grace(spec))
    if spec.wait_ready and spec.nested is None:
        parts.append(_gate(spec))
    if spec.restart.name != "TEMPORARY":
        parts.append(f"restart {spec.restart.name.lower()}")
    if not spec.significant:
        parts.append("not significant")
    return ", ".join(parts)


def _grace(spec: ProcSpec) -> str:
    if spec.grace is None:
        return "grace: as long as its procs need"
    return f"grace {spec.grace:g}s"


def _gate(spec: ProcSpec) -> str:
    if spec.ready_timeout is None:
        return "gates start-up (no ready_timeout)"
    return f"gates start-up (ready_timeout {spec.ready_timeout:g}s)"


def shutdown_bound(sup: Supervisor, *, abandoned: bool = False) -> float:
    """How long the shutdown can take: every proc uses its whole grace, one after the other.

    Each proc counts its grace plus its ``force_reserve`` (the supervisor's force comes
    only then); with *abandoned*, also its ``abandon_after``: the worst case, in which every
    proc survives its force-cancel and is abandoned. A nested supervisor takes its
    children's sum, capped by its own window when it has a grace.
    """
    # Bottom-up without recursion: the reversed walk meets every proc before its supervisor.
    bounds: dict[str, float] = {}
    for path, spec, _ in reversed(list(sup.walk())):
        own = _own_bound(spec, abandoned=abandoned)
        if spec.nested is None:
            bounds[path] = own
            continue
        inner = sum(bounds[f"{path}/{child.name}"] for child in spec.nested.specs)
        bounds[path] = inner if spec.grace is None else min(inner, own)
    return sum(bounds[spec.name] for spec in sup.specs)


def _own_bound(spec: ProcSpec, *, abandoned: bool) -> float:
    """One proc's window: grace, then the force reserve, then (when *abandoned*) the wait
    for a proc that survives its force-cancel."""
    bound = (spec.grace or 0.0) + spec.force_reserve
    return bound + spec.abandon_after if abandoned else bound


def _startup_bound(sup: Supervisor) -> float:
    """The longest start-up can wait on gates (inf when a gate has no ready_timeout).

    A nested supervisor's gate is its procs' gates, already counted one by one.
    """
    return sum(_gate_wait(entry.spec) for entry in sup.walk() if entry.spec.nested is None)


def _gate_wait(spec: ProcSpec) -> float:
    if not spec.wait_ready:
        return 0.0
    return math.inf if spec.ready_timeout is None else spec.ready_timeout


def format_plan(sup: Supervisor) -> str:
    """The start plan and the stop plan, with gates, graces and the worst-case times."""
    order = [(f"{sup.name}/{path}", spec) for path, spec, _ in sup.walk()]
    width = max(len(path) for path, _ in order)
    lines = [f"start plan of {sup.name} (declared order; each proc has begun before the next):"]
    for number, (path, spec) in enumerate(order, 1):
        lines.append(f"  {number:>3}. {path:<{width}}  {_start_step(spec)}")
    lines.append(f"  worst-case wait on gates: {_seconds(_startup_bound(sup))}")
    lines.append("")
    lines.append(f"stop plan of {sup.name} (reverse order, one at a time: token, grace, force):")
    for number, (path, spec) in enumerate(reversed(order), 1):
        lines.append(f"  {number:>3}. {path:<{width}}  {_stop_step(spec)}")
    forced = shutdown_bound(sup)
    lines.append(f"  shutdown when every proc ends by its force-cancel: {forced:g}s")
    worst = shutdown_bound(sup, abandoned=True)
    lines.append(f"  worst-case shutdown: {worst:g}s (every proc also abandoned after its wait)")
    return "\n".join(lines)


def _start_step(spec: ProcSpec) -> str:
    if spec.nested is not None:
        return "supervisor: starts its procs below, in order"
    return f"start, then wait: {_gate(spec)}" if spec.wait_ready else "start"


def _stop_step(spec: ProcSpec) -> str:
    if spec.nested is None:
        return f"cancel its token, wait up to {_window(spec)}, then force{_abandon(spec)}"
    if spec.grace is None:
        return "supervisor: done once its procs above have stopped"
    return f"supervisor: its procs above stop within {_window(spec)}, then force{_abandon(spec)}"


def _window(spec: ProcSpec) -> str:
    reserve = f" + {spec.force_reserve:g}s reserve" if spec.force_reserve else ""
    return f"{spec.grace or 0:g}s{reserve}"


def _abandon(spec: ProcSpec) -> str:
    return f", then abandoned after {spec.abandon_after:g}s"


def _seconds(value: float) -> str:
    if math.isinf(value):
        return "unbounded (a gate has no ready_timeout)"
    return f"{value:g}s"


def format_systemd(sup: Supervisor) -> str:
    """The ``[Service]`` settings of a ``Type=notify`` unit running *sup*, ready to paste."""
    worst = shutdown_bound(sup, abandoned=True)
    startup = _startup_bound(sup)
    lines = [
        f"# [Service] settings for {sup.name} (super-visor plan --format systemd)",
        "Type=notify",
        "NotifyAccess=main",
        "# SIGTERM to the main process only: super_visor stops its procs (and their programs)",
        "# in reverse order; the manager's final SIGKILL still reaches every process",
        "KillMode=mixed",
    ]
    if math.isinf(startup):
        lines.append("# start-up is unbounded (a gate has no ready_timeout): TimeoutStartSec is")
        lines.append("# left at the manager's default; give the gates a ready_timeout to derive it")
    else:
        lines.append(f"# start-up: worst-case wait on gates {startup:g}s + {START_MARGIN}s")
        lines.append(f"TimeoutStartSec={math.ceil(startup) + START_MARGIN}")
    lines.append(f"# stop: worst-case shutdown {worst:g}s + {STOP_MARGIN}s")
    lines.append(f"TimeoutStopSec={math.ceil(worst) + STOP_MARGIN}")
    lines.append("# WATCHDOG=1 goes out every WatchdogSec/2 while the event loop runs on time")
    lines.append(f"WatchdogSec={WATCHDOG_SEC}")
    return "\n".join(lines)


def format_k8s(sup: Supervisor) -> str:
    """The pod and container settings of a Kubernetes Deployment running *sup*: the grace
    period from the worst-case shutdown, ``preStop``, and the probes on its HealthServer."""
    worst = shutdown_bound(sup, abandoned=True)
    grace = PRE_STOP_SEC + math.ceil(worst) + STOP_MARGIN
    lines = [
        f"# Kubernetes settings for {sup.name} (super-visor plan --format k8s)",
        f"# pod spec: preStop {PRE_STOP_SEC}s + worst-case shutdown {worst:g}s + {STOP_MARGIN}s",
        f"terminationGracePeriodSeconds: {grace}",
        "# container spec:",
        "lifecycle:",
        "  preStop:",
        "    exec:",
        f'      command: ["sleep", "{PRE_STOP_SEC}"]',
    ]
    return "\n".join([*lines, *_probes(sup)])


def _probes(sup: Supervisor) -> list[str]:
    """The three probes on the tree's HealthServer (a note when there is none to probe)."""
    health = _health_server(sup)
    if health is None:
        return ["# no probes: add super_visor.procs.HealthServer(port=...) first in the tree"]
    port = str(health.port) if health.port else "<the HealthServer's port; port=0 picks one>"
    notes = []
    if health.host in ("127.0.0.1", "localhost", "::1"):
        notes.append(f"# warning: {health.name} binds {health.host}, out of the kubelet's reach;")
        notes.append('# pass HealthServer(host="0.0.0.0", ...) in a container')
    startup = _startup_bound(sup)
    if math.isinf(startup):
        failures = UNBOUNDED_STARTUP_FAILURES
        notes.append("# start-up is unbounded (a gate has no ready_timeout): the startupProbe")
        notes.append(f"# allows {failures}s; give the gates a ready_timeout to derive it")
    else:
        failures = math.ceil((startup + START_MARGIN) / STARTUP_PERIOD)
    return [
        *notes,
        *_probe("startupProbe", "/startupz", port, STARTUP_PERIOD, 1, failures),
        *_probe("readinessProbe", "/readyz", port, 2, 1, 1),
        *_probe("livenessProbe", "/livez", port, 10, 5, 3),
    ]


def _probe(kind: str, path: str, port: str, period: int, timeout: int, failures: int) -> list[str]:
    return [
        f"{kind}:",
        "  httpGet:",
        f"    path: {path}",
        f"    port: {port}",
        f"  periodSeconds: {period}",
        f"  timeoutSeconds: {timeout}",
        f"  failureThreshold: {failures}",
    ]


def _health_server(sup: Supervisor) -> HealthServer | None:
    from .procs._health import HealthServer  # lazy: only a plan for Kubernetes looks

    for entry in sup.walk():
        if isinstance(entry.spec.proc, HealthServer):
            return entry.spec.proc
    return None
