"""Which value each setting of a proc takes, checked: the builder's precedence rules.

A keyword given to ``add_proc`` beats the same attribute on the proc object, which beats the
builder's default. A nested supervisor inherits no ``grace`` or ``ready_timeout``: it takes
as long as its own procs need, unless told otherwise. Every value is checked where it is
picked, by the rules in ``_validate``, so a bad one is reported under the proc's path
whichever of the three places it came from.

Kept apart from ``_builder``, which validates the tree as a whole (names, cycles, a proc
object in two places), so that each of the two reads as one concern.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, final

from ._backoff import Backoff
from ._errors import ConfigError
from ._restart import Restart, Strategy
from ._spec import ProcSpec, SupervisorConfig
from ._supervisor import Supervisor
from ._validate import check_backoff, check_count, check_seconds, check_type, valid

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._proc import SupportsRunProc

__all__ = ("Defaults", "Picks", "resolve_spec", "supervisor_config")

T = TypeVar("T")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    """The builder's own settings as given (checked only by `build`, like everything else).

    ``grace``, ``ready_timeout`` and ``backoff`` are defaults for its procs; the rest become
    the built supervisor's `SupervisorConfig`.
    """

    grace: float
    ready_timeout: float | None
    strategy: Strategy
    max_restarts: int
    within: float
    backoff: Backoff | None
    stuck_report_interval: float
    abandon_after: float


def supervisor_config(path: str, defaults: Defaults) -> SupervisorConfig:
    """Check the builder's own settings, in the order they are declared, into its config."""
    valid(path, check_seconds("grace", defaults.grace, default="the default (5.0)"))
    if defaults.ready_timeout is not None:
        valid(path, check_seconds("ready_timeout", defaults.ready_timeout, default="no timeout"))
    strategy = valid(
        path, check_type("strategy", defaults.strategy, Strategy, "strategy=Strategy.ONE_FOR_ONE")
    )
    max_restarts = valid(path, check_count("max_restarts", defaults.max_restarts, "3"))
    # within=0 would make every restart the first of its window: no limit at all.
    within = valid(
        path,
        check_seconds("within", defaults.within, default="the default (5.0)", positive=True),
    )
    _backoff(path, defaults.backoff)
    valid(path, check_seconds("abandon_after", defaults.abandon_after, default="10.0"))
    interval = defaults.stuck_report_interval
    valid(path, check_seconds("stuck_report_interval", interval, default="5.0"))
    if interval == 0:  # it paces a loop: zero would log without pause
        raise ConfigError(path, "stuck_report_interval must be > 0, got 0", "pass e.g. 5.0")
    return SupervisorConfig(
        strategy=strategy,
        max_restarts=max_restarts,
        within=within,
        stuck_report_interval=interval,
    )


def _backoff(path: str, value: object) -> Backoff | None:
    if value is None:
        return None
    backoff = valid(path, check_type("backoff", value, Backoff, "backoff=Backoff(initial=0.1)"))
    return valid(path, check_backoff(backoff))


@final
class Picks:
    """One proc's settings, each picked by precedence and checked under the proc's path."""

    def __init__(self, path: str, attributes: object, options: dict[str, object]) -> None:
        """*attributes* is the object whose attributes are the proc's own settings (the
        proc object), or None when it has none."""
        self.path = path
        self._options = options
        self._attributes = attributes

    def _get(self, field: str, default: object) -> object:
        if field in self._options:
            return self._options[field]
        value = getattr(self._attributes, field, None)
        return default if value is None else value

    def given(self, field: str) -> bool:
        """Whether the caller or the proc object chose *field* (not the builder default)."""
        return field in self._options or getattr(self._attributes, field, None) is not None

    def seconds(self, field: str, default: float | None, default_text: str) -> float | None:
        value = self._get(field, default)
        if value is None:
            return None
        return valid(self.path, check_seconds(field, value, default=default_text))

    def of_type(self, field: str, default: T, kind: type[T], example: str) -> T:
        return valid(self.path, check_type(field, self._get(field, default), kind, example))

    def flag_or_none(self, field: str, default: bool | None, example: str) -> bool | None:
        value = self._get(field, default)
        if value is None:
            return None
        return valid(self.path, check_type(field, value, bool, example))

    def backoff(self, default: Backoff | None) -> Backoff | None:
        return _backoff(self.path, self._get("backoff", default))


def resolve_spec(
    picks: Picks,
    name: str,
    proc: SupportsRunProc | None,
    factory: Callable[[], object] | None,
    defaults: Defaults,
) -> ProcSpec:
    """The proc's spec; a nested supervisor takes no grace or ready_timeout by default: it
    takes as long as its procs need."""
    nested = proc if isinstance(proc, Supervisor) else None
    inherit = nested is None
    grace = picks.seconds("grace", defaults.grace if inherit else None, "the builder default")
    timeout = defaults.ready_timeout if inherit else None
    ready_timeout = picks.seconds("ready_timeout", timeout, "no timeout")
    # A factory's product is known only at start: gate then if it is a supervisor.
    gates = None if factory is not None else nested is not None
    wait_ready = picks.flag_or_none("wait_ready", gates, "wait_ready=True")
    if wait_ready is False and picks.given("ready_timeout"):
        raise _ready_timeout_unused(picks.path, ready_timeout)
    return ProcSpec(
        name=name,
        proc=proc,
        factory=factory,
        grace=grace,
        wait_ready=wait_ready,
        ready_timeout=ready_timeout,
        restart=picks.of_type("restart", Restart.TEMPORARY, Restart, "restart=Restart.PERMANENT"),
        significant=picks.of_type("significant", True, bool, "significant=False"),
        backoff=picks.backoff(defaults.backoff),
        nested=nested,
        force_reserve=_force_reserve(picks.path, proc),
        abandon_after=_abandon_after(picks, defaults),
    )


def _ready_timeout_unused(path: str, ready_timeout: float | None) -> ConfigError:
    """A ready_timeout chosen for a proc that never gates would be silently ignored."""
    return ConfigError(
        path,
        "ready_timeout only bounds the wait of a proc that gates start-up, and this one "
        f"does not, got ready_timeout={ready_timeout!r} without wait_ready=True",
        "add wait_ready=True (the proc then calls token.ready()), or drop ready_timeout",
    )


def _force_reserve(path: str, proc: SupportsRunProc | None) -> float:
    """The proc's own ``force_reserve``: seconds it needs after its grace to enforce that
    grace itself (an adapter's SIGKILL, a server's cancelled requests). Not a keyword:
    only the proc knows how long its own clean-up takes."""
    reserve = getattr(proc, "force_reserve", None)
    if reserve is None or isinstance(proc, Supervisor):
        return 0.0
    return valid(path, check_seconds("force_reserve", reserve, default="0.0"))


def _abandon_after(picks: Picks, defaults: Defaults) -> float:
    value = picks.seconds("abandon_after", defaults.abandon_after, "the builder default")
    assert value is not None, "abandon_after has a default"
    return value
