"""Immutable results: how each proc ended, and the report of a whole run (API.md section 5).

Outcomes hold names, paths, values and exceptions, never tasks, scopes or frames, so a report
can be kept, logged or pickled-by-hand long after the run without pinning the run's objects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("ProcOutcome", "ProcStatus", "SupervisorReport", "describe_error", "signal_name")


class ProcStatus(enum.Enum):
    """How a proc ended.

    .. versionadded:: 0.1
    """

    #: It returned on its own; no stop had been requested.
    COMPLETED = "completed"
    #: It returned after its token was cancelled, within its grace.
    STOPPED = "stopped"
    #: It raised an exception (start-up failures included).
    FAILED = "failed"
    #: It was still running when its grace ran out and was force-cancelled. Not a failure.
    FORCED = "forced"
    #: Start-up never reached it.
    NOT_STARTED = "not_started"
    #: It survived its force-cancel for ``abandon_after`` seconds and was left behind. A
    #: failure: its task may still be running, and its cleanup may never have run.
    ABANDONED = "abandoned"


#: The final outcomes that count as failures (exit code 1, ``SupervisorError``).
_FAILURES = frozenset({ProcStatus.FAILED, ProcStatus.ABANDONED})


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ProcOutcome:
    """The final outcome of one proc; for a nested supervisor, with its children's outcomes.

    ``history`` keeps the errors of earlier runs that led to restarts (the most recent last,
    at most a few), so a report explains a restart storm even when the final run was clean.

    .. versionadded:: 0.1
    """

    name: str
    path: str
    status: ProcStatus
    result: object = None
    error: BaseException | None = None
    restarts: int = 0
    children: tuple[ProcOutcome, ...] = ()
    history: tuple[BaseException, ...] = field(default=())

    @property
    def failed(self) -> bool:
        """Whether this proc's final outcome is a failure."""
        return self.status in _FAILURES

    def walk(self) -> Iterator[ProcOutcome]:
        """This outcome, then its descendants', depth-first in declared order.

        Iterative, so a tree nested thousands of levels deep walks like a flat one.
        """
        for outcome, _ in _depth_first((self,), 0):
            yield outcome


@final
class SupervisorReport:
    """What ``start()`` returns: every proc's outcome and why the supervisor stopped.

    ``report["pipeline/consumer"]`` looks an outcome up by its path below the root (the
    root's own name may be included: ``report["app/pipeline/consumer"]``).

    .. versionadded:: 0.1
    """

    __slots__ = ("_index", "forced_by_signal", "name", "outcomes", "reason", "restart_limit_hit")

    def __init__(
        self,
        name: str,
        outcomes: tuple[ProcOutcome, ...],
        reason: str,
        forced_by_signal: int | None = None,
        restart_limit_hit: bool = False,
    ) -> None:
        #: The root supervisor's name (the first segment of every path).
        self.name = name
        #: The root's children in declared order.
        self.outcomes = outcomes
        #: Why it stopped: "signal SIGTERM", "proc 'app/web' completed", a reason given, ...
        self.reason = reason
        #: The number of a second signal that forced everything at once, else None (the
        #: report's header names it after `reason`).
        self.forced_by_signal = forced_by_signal
        #: Whether the root gave up restarting (`RestartLimitExceeded`): a failure.
        self.restart_limit_hit = restart_limit_hit
        self._index: dict[str, ProcOutcome] | None = None

    def __repr__(self) -> str:
        return f"<SupervisorReport {self.name!r} reason={self.reason!r} exit_code={self.exit_code}>"

    def __getitem__(self, path: str) -> ProcOutcome:
        if self._index is None:
            self._index = {outcome.path: outcome for outcome in self.walk()}
        found = self._index.get(f"{self.name}/{path}") or self._index.get(path)
        if found is None:
            known = ", ".join(sorted(self._index)[:10])
            msg = f"no proc {path!r} in the report of {self.name!r}; known paths: {known}"
            raise KeyError(msg)
        return found

    def walk(self) -> Iterator[ProcOutcome]:
        """Every outcome in the tree, depth-first in declared order."""
        for outcome, _ in _depth_first(self.outcomes, 0):
            yield outcome

    def failures(self) -> list[ProcOutcome]:
        """The failed leaves (nested supervisors are walked into, not listed themselves)."""
        return [o for o in self.walk() if o.failed and not o.children]

    @property
    def exit_code(self) -> int:
        """What ``run()`` exits with: 128+N after a forcing second signal N, 1 when any proc
        anywhere in the tree failed or was abandoned (a restart limit fails its supervisor),
        else 0."""
        if self.forced_by_signal is not None:
            return 128 + self.forced_by_signal
        return 1 if any(o.failed for o in self.walk()) or self.restart_limit_hit else 0

    def render(self) -> str:
        """A plain-text tree of every outcome, for logs and the terminal.

        The header says why the tree stopped: the reason, then the signal that forced it,
        if one did (``app: stopped (signal SIGTERM, then SIGINT (forced))``). It always
        renders, even for an error whose ``str()`` raises (see `describe_error`).
        """
        lines = [f"{self.name}: stopped ({_why(self)})"]
        lines.extend(_render(outcome, depth) for outcome, depth in _depth_first(self.outcomes, 1))
        return "\n".join(lines)


def _why(report: SupervisorReport) -> str:
    """The reason, followed by the signal that forced the stop, if one did."""
    if report.forced_by_signal is None:
        return report.reason
    return f"{report.reason}, then {signal_name(report.forced_by_signal)} (forced)"


def _depth_first(
    outcomes: tuple[ProcOutcome, ...], depth: int
) -> Iterator[tuple[ProcOutcome, int]]:
    """Each outcome with its depth, then its children's, in declared order (no recursion)."""
    stack = [(outcome, depth) for outcome in reversed(outcomes)]
    while stack:
        outcome, level = stack.pop()
        yield outcome, level
        stack.extend((child, level + 1) for child in reversed(outcome.children))


def _render(outcome: ProcOutcome, depth: int) -> str:
    parts = [f"{'  ' * depth}{outcome.name}: {outcome.status.value}"]
    if outcome.restarts:
        parts.append(f"after {outcome.restarts} restart(s)")
    if outcome.error is not None and not outcome.children:
        parts.append(f"- {describe_error(outcome.error)}")
    return " ".join(parts)


def describe_error(error: BaseException) -> str:
    """``"TypeName: message"`` for humans; only the type name when ``str()`` raises.

    A report, a log line or a console must show every failure, and an error whose
    ``__str__`` is broken (or raises on purpose) must not take the report down with it.
    """
    name = type(error).__name__
    try:
        message = str(error)
    except Exception:  # noqa: BLE001 (a broken __str__ is the error's bug, not the report's)
        return name
    return f"{name}: {message}" if message else name


def signal_name(signum: int) -> str:
    """``15`` -> ``"SIGTERM"``."""
    import signal  # lazy: `import super_visor` stays cheap

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
