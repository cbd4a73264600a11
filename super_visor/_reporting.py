"""From a run's procs to the errors and the message of its `SupervisorError`.

Which errors a failed run raises: each FAILED proc's own exception (unwrapped, with its path
note), the failures inside a nested supervisor that was forced (its own outcome is FORCED, yet
procs in it failed first), and the supervisor's `RestartLimitExceeded` first when it gave up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._outcome import ProcOutcome, ProcStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._errors import RestartLimitExceeded
    from ._slot import Attempt, Slot

__all__ = ("failed_leaves", "failure_errors", "failure_message")


def failure_errors(slots: Sequence[Slot], limit: RestartLimitExceeded | None) -> list[Exception]:
    """Every error the run's `SupervisorError` carries, in this order: the restart limit,
    the failed procs' own errors, the failures inside forced nested supervisors."""
    errors: list[Exception] = [] if limit is None else [limit]
    attempts = [slot.attempt for slot in slots if slot.attempt is not None]
    for attempt in attempts:
        if isinstance(attempt.error, Exception) and _failure(attempt.status):
            errors.append(attempt.error)
    for attempt in attempts:
        if attempt.children and not _failure(attempt.status):
            errors.extend(_leaves_below(attempt))
    return errors


def failed_leaves(slots: Sequence[Slot]) -> list[Exception]:
    """The errors of the failed leaves below *slots* (procs that are not nested supervisors),
    for a run that has ended: what its parent carries when it forces it.

    Each nested supervisor's part comes from its own run, computed when that run ended, so
    the lists are built bottom-up at O(procs + failures) per level instead of O(tree).
    """
    errors: list[Exception] = []
    for slot in slots:
        attempt = slot.attempt
        if attempt is None:
            continue  # never started: no failure below it
        if attempt.children:
            errors.extend(_leaves_below(attempt))
        elif isinstance(attempt.error, Exception) and _failure(attempt.status):
            errors.append(attempt.error)
    return errors


def failure_message(path: str, slots: Sequence[Slot], *, limit_hit: bool) -> str:
    """``app: 2 proc(s) failed: app/a, app/b`` (or the restart limit's variant)."""
    failed = [s.path for s in slots if _failure(s.status)]
    what = ", ".join(failed) or "none"
    if limit_hit:
        return f"{path}: restart limit exceeded; failed procs: {what}"
    return f"{path}: {len(failed)} proc(s) failed: {what}"


def _failure(status: ProcStatus | None) -> bool:
    return status is ProcStatus.FAILED or status is ProcStatus.ABANDONED


def _leaves_below(attempt: Attempt) -> list[Exception]:
    """The failed leaves' errors in a nested supervisor's tree; walked only when its run has
    not ended (an abandoned nested supervisor, whose outcomes are a snapshot)."""
    nested = attempt.nested
    if nested is not None and nested.failed_leaves is not None:
        return nested.failed_leaves
    return _failed_leaf_errors(attempt.children)


def _failed_leaf_errors(outcomes: tuple[ProcOutcome, ...]) -> list[Exception]:
    return [
        outcome.error
        for root in outcomes
        for outcome in root.walk()
        if outcome.failed and not outcome.children and isinstance(outcome.error, Exception)
    ]
