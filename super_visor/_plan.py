"""Describe a tree without running it: its shape, its start plan and its stop plan.

Used by ``super-visor tree``, ``check`` and ``plan``. Everything is derived from the built
`Supervisor` (the same specs a run uses), so what the plan says is what a run does: start in
declared order (pre-order through nested supervisors), stop in exact reverse, one proc at a
time, each with its grace, its force reserve, then force and, for a proc that survives the
force-cancel, abandonment after its ``abandon_after``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._spec import ProcSpec
    from ._supervisor import Supervisor

__all__ = ("format_plan", "format_tree", "shutdown_bound")


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
