"""ProcSpec: the frozen, fully resolved settings of one add_proc()/add_factory() call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from ._clock import SYSTEM_CLOCK

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._backoff import Backoff
    from ._clock import Clock
    from ._proc import SupportsRunProc
    from ._restart import Restart, Strategy
    from ._supervisor import Supervisor

__all__ = ("ProcSpec", "SupervisorConfig", "given_options")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorConfig:
    """The supervisor-wide settings one run needs, resolved and checked by the builder.

    Frozen, so a configured copy (environment overrides) is ``dataclasses.replace(config,
    ...)`` and a running tree can never see its settings change under it.
    """

    strategy: Strategy
    max_restarts: int
    within: float
    stuck_report_interval: float
    #: Restart windows and backoff read it; a nested supervisor uses its root's.
    clock: Clock = SYSTEM_CLOCK


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ProcSpec:
    """Everything the supervisor needs to know to start, stop and restart one proc.

    Exactly one of ``proc`` and ``factory`` is set. ``grace`` is None only for a nested
    supervisor given no grace of its own: it then takes as long as its children's graces need.
    """

    name: str
    proc: SupportsRunProc | None
    factory: Callable[[], object] | None
    grace: float | None
    #: None: gate exactly when the product turns out to be a nested supervisor (factories).
    wait_ready: bool | None
    ready_timeout: float | None
    restart: Restart
    significant: bool
    backoff: Backoff | None
    #: ``proc`` when it is a nested `Supervisor` (resolved once, at build), else None.
    nested: Supervisor | None = None
    #: Seconds the supervisor waits after ``grace`` before it forces the proc: room for a
    #: proc that enforces its grace itself (SIGKILL, a drain) to do so and report cleanly.
    force_reserve: float = 0.0
    #: Seconds after the force-cancel before a proc that survives it is abandoned.
    abandon_after: float = 10.0


def given_options(
    name: object,
    grace: object,
    wait_ready: object,
    ready_timeout: object,
    restart: object,
    significant: object,
    backoff: object,
    abandon_after: object,
) -> dict[str, object]:
    """The per-proc keywords a caller actually gave (None means "not given"), by name.

    Shared by ``add_proc``, ``add_factory`` and ``handle.start_child``, which take the same
    keywords and resolve them with the same precedence.
    """
    given = {
        "name": name,
        "grace": grace,
        "wait_ready": wait_ready,
        "ready_timeout": ready_timeout,
        "restart": restart,
        "significant": significant,
        "backoff": backoff,
        "abandon_after": abandon_after,
    }
    return {key: value for key, value in given.items() if value is not None}


@final
class ProcEntry:
    """One ``add_proc``/``add_factory`` call, as given (checked in ``build()``)."""

    __slots__ = ("factory", "options", "proc")

    def __init__(self, proc: object, factory: object, options: dict[str, object]) -> None:
        self.proc = proc
        self.factory = factory
        self.options = options
