"""Describe a tree without running it: its shape, its start plan and its stop plan.

Used by ``super-visor tree``, ``check`` and ``plan``. Everything is derived from the built
`Supervisor` (the same specs a run uses), so what the plan says is what a run does: start in
declared order (pre-order through nested supervisors), stop in exact reverse, one proc at a
time, each with its grace and then force.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ._supervisor import Supervisor

if TYPE_CHECKING:
    from ._spec import ProcSpec

__all__ = ("format_plan", "format_tree", "shutdown_bound")


def format_tree(sup: Supervisor) -> str:
    """The tree, one proc per line with its main settings."""
    lines = [f"{sup.name}  {_supervisor_settings(sup)}"]
    _tree_lines(sup, "", lines)
    return "\n".join(lines)


def _tree_lines(sup: Supervisor, indent: str, lines: list[str]) -> None:
    for position, spec in enumerate(sup.specs):
        last = position == len(sup.specs) - 1
        branch, below = ("└── ", "    ") if last else ("├── ", "│   ")
        lines.append(f"{indent}{branch}{spec.name}  {_spec_settings(spec)}")
        if isinstance(spec.proc, Supervisor):
            _tree_lines(spec.proc, indent + below, lines)


def _supervisor_settings(sup: Supervisor) -> str:
    return (
        f"(supervisor: {sup.strategy.name.lower()}, "
        f"at most {sup.max_restarts} restarts within {sup.within:g}s)"
    )


def _spec_settings(spec: ProcSpec) -> str:
    parts = []
    if isinstance(spec.proc, Supervisor):
        parts.append(_supervisor_settings(spec.proc))
    elif spec.factory is not None:
        parts.append("(factory)")
    parts.append(_grace(spec))
    if spec.wait_ready and not isinstance(spec.proc, Supervisor):
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


def shutdown_bound(sup: Supervisor) -> float:
    """The worst-case shutdown time: every proc uses its whole grace, one after the other.

    A nested supervisor takes its children's sum, capped by its own grace when it has one
    (after that it is force-cancelled, which is immediate). Time spent by a proc that
    survives force (a blocking call) cannot be bounded and is not included.
    """
    return sum(_spec_bound(spec) for spec in sup.specs)


def _spec_bound(spec: ProcSpec) -> float:
    if isinstance(spec.proc, Supervisor):
        inner = shutdown_bound(spec.proc)
        return inner if spec.grace is None else min(inner, spec.grace)
    return spec.grace or 0.0


def _startup_bound(sup: Supervisor) -> float:
    """The longest start-up can wait on gates (inf when a gate has no ready_timeout)."""
    total = 0.0
    for spec in sup.specs:
        if isinstance(spec.proc, Supervisor):
            total += _startup_bound(spec.proc)
        elif spec.wait_ready:
            total += math.inf if spec.ready_timeout is None else spec.ready_timeout
    return total


def _order(sup: Supervisor, prefix: str) -> list[tuple[str, ProcSpec]]:
    """Every proc's path and spec in start order (pre-order through nested supervisors)."""
    found: list[tuple[str, ProcSpec]] = []
    for spec in sup.specs:
        path = f"{prefix}/{spec.name}"
        found.append((path, spec))
        if isinstance(spec.proc, Supervisor):
            found.extend(_order(spec.proc, path))
    return found


def format_plan(sup: Supervisor) -> str:
    """The start plan and the stop plan, with gates, graces and the worst-case times."""
    order = _order(sup, sup.name)
    width = max(len(path) for path, _ in order)
    lines = [f"start plan of {sup.name} (declared order; each proc has begun before the next):"]
    for number, (path, spec) in enumerate(order, 1):
        step = "supervisor: starts its procs below, in order" if _nested(spec) else "start"
        if spec.wait_ready and not _nested(spec):
            step = f"start, then wait: {_gate(spec)}"
        lines.append(f"  {number:>3}. {path:<{width}}  {step}")
    lines.append(f"  worst-case wait on gates: {_seconds(_startup_bound(sup))}")
    lines.append("")
    lines.append(f"stop plan of {sup.name} (reverse order, one at a time: token, grace, force):")
    for number, (path, spec) in enumerate(reversed(order), 1):
        if not _nested(spec):
            step = f"cancel its token, wait up to {spec.grace or 0:g}s, then force"
        elif spec.grace is None:
            step = "supervisor: done once its procs above have stopped"
        else:
            step = f"supervisor: its procs above stop within its grace of {spec.grace:g}s"
        lines.append(f"  {number:>3}. {path:<{width}}  {step}")
    lines.append(f"  worst-case shutdown: {_seconds(shutdown_bound(sup))} (the sum of the graces)")
    return "\n".join(lines)


def _nested(spec: ProcSpec) -> bool:
    return isinstance(spec.proc, Supervisor)


def _seconds(value: float) -> str:
    if math.isinf(value):
        return "unbounded (a gate has no ready_timeout)"
    return f"{value:g}s"
