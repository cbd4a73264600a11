"""The exceptions super_visor raises (API.md section 7).

The hierarchy, with the builtin each one extends for its meaning::

    ValueError
     └── ConfigError            bad input, raised by build() before anything runs
    Exception
     ├── StartupError           a proc failed or timed out before it was ready
     └── RestartLimitExceeded   a supervisor gave up restarting its children
    ExceptionGroup
     └── SupervisorError        raised by start()/running(): one sub-exception per failed proc

A user's own exception is never wrapped in one of ours: it goes into `SupervisorError`
unchanged, with a note naming the proc's path, so ``except* TheirError`` keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._outcome import SupervisorReport


class ConfigError(ValueError):
    """A supervisor tree was described wrongly; raised by ``build()`` before anything runs.

    The message has the shape ``<path>: <problem>; <fix>``. The parts stay available as
    attributes so tools need not parse the text.

    .. versionadded:: 0.1
    """

    def __init__(self, path: str, problem: str, fix: str) -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}; {fix}")


class StartupError(Exception):
    """A proc failed, or did not become ready in time, during start-up.

    When the proc raised before calling ``token.ready()``, the original error is the
    ``__cause__``. Start-up stops: what already started is stopped in reverse order and the
    procs after this one are reported ``NOT_STARTED``.

    .. versionadded:: 0.1
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class RestartLimitExceeded(Exception):
    """A supervisor restarted its children more often than its intensity allows.

    The supervisor stopped all its children in reverse order; its parent sees this as the
    supervisor (one of its procs) failing, so escalation walks up the tree.

    .. versionadded:: 0.1
    """

    def __init__(self, path: str, last_proc: str, restarts: int, within: float) -> None:
        self.path = path
        self.last_proc = last_proc
        self.restarts = restarts
        self.within = within
        super().__init__(
            f"{path}: more than {restarts} restarts within {within:g}s "
            f"(last crash: {last_proc}); the supervisor gave up and stopped its procs"
        )


class SupervisorError(ExceptionGroup[Exception]):
    """One or more procs failed; raised by ``start()`` and ``running()``.

    Holds one sub-exception per failed proc (a nested supervisor's failure is its own
    `SupervisorError`, so the group mirrors the tree). Each carries a note naming the proc
    path. ``report`` holds every proc's outcome, failed or not.

    `split()`, `subgroup()` and ``except*`` keep ``report`` because `derive()` is overridden
    (without it PEP 654 hands back a plain `ExceptionGroup`).

    .. versionadded:: 0.1
    """

    report: SupervisorReport

    def __new__(
        cls, message: str, exceptions: Sequence[Exception], report: SupervisorReport
    ) -> Self:
        self = super().__new__(cls, message, exceptions)
        self.report = report
        return self

    def __init__(
        self, message: str, exceptions: Sequence[Exception], report: SupervisorReport
    ) -> None:
        super().__init__(message, exceptions)

    def derive(self, excs: Sequence[Exception]) -> SupervisorError:  # type: ignore[override]
        return SupervisorError(self.message, excs, self.report)
