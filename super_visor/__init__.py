"""super_visor: start, supervise and stop the long-running parts of an async application.

Layering (imports point one way; docs/explanation/engine.md draws it): pure logic
(``_errors``, ``_token``, ``_proc``, ``_spec``, ``_lifecycle``, ``_restart``, ``_backoff``,
``_outcome``, ``_eventlog``) <-
``_slot``/``_events``/``_validate`` <- the run's parts (``_startup``, ``_shutdown``,
``_restarter``, ``_dynamic``, ``_proc_task``) <- ``_engine`` <- ``_signals``/``_handle`` <-
``_supervisor`` <- ``_builder``/``_config`` <- ``_run`` <- ``_cli``; ``_console`` (the only
user of rich) is imported by ``_run`` only when the live console is shown. ``_supervisor``
imports ``_engine`` only when it opens a run, and ``_builder`` its rules only when it builds,
so ``import super_visor`` loads only the top of this picture (tests/test_public_api.py pins
which modules it leaves out). This module only re-exports; importing it has no side effects
(configuration is read by ``run()``, never at import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from ._builder import SupervisorBuilder as SupervisorBuilder
from ._controls import SupervisorControls as SupervisorControls
from ._errors import ConfigError as ConfigError
from ._errors import RestartLimitExceeded as RestartLimitExceeded
from ._errors import StartupError as StartupError
from ._errors import SupervisorError as SupervisorError
from ._handle import RunHandle as RunHandle
from ._proc import ManagedProc as ManagedProc
from ._proc import SupportsRunProc as SupportsRunProc
from ._restart import Restart as Restart
from ._restart import Strategy as Strategy
from ._run import run as run
from ._supervisor import Supervisor as Supervisor
from ._token import CancellationToken as CancellationToken

if _TYPE_CHECKING:
    from ._backoff import Backoff as Backoff
    from ._config import Setting as Setting
    from ._config import Settings as Settings
    from ._events import Event as Event
    from ._events import EventKind as EventKind
    from ._events import EventStream as EventStream
    from ._outcome import ProcOutcome as ProcOutcome
    from ._outcome import ProcStatus as ProcStatus
    from ._outcome import SupervisorReport as SupervisorReport
    from ._status import ProcSnapshot as ProcSnapshot
    from ._status import RunState as RunState
    from ._status import TreeStatus as TreeStatus

__version__ = "0.2.0"

__all__ = (
    "Backoff",
    "CancellationToken",
    "ConfigError",
    "Event",
    "EventKind",
    "EventStream",
    "ManagedProc",
    "ProcOutcome",
    "ProcSnapshot",
    "ProcStatus",
    "Restart",
    "RestartLimitExceeded",
    "RunHandle",
    "RunState",
    "Setting",
    "Settings",
    "StartupError",
    "Strategy",
    "Supervisor",
    "SupervisorBuilder",
    "SupervisorControls",
    "SupervisorError",
    "SupervisorReport",
    "SupportsRunProc",
    "TreeStatus",
    "run",
)

#: Exported on first use, so ``import super_visor`` stays cheap: the environment and .env
#: machinery (only run() and the CLI need it), `Backoff` (with it the dataclass machinery),
#: and the classes of what only a run makes: events, outcomes and reports, status snapshots.
_LAZY = {
    "Backoff": "._backoff",
    "Event": "._events",
    "EventKind": "._events",
    "EventStream": "._events",
    "Setting": "._config",
    "Settings": "._config",
    "ProcOutcome": "._outcome",
    "ProcStatus": "._outcome",
    "SupervisorReport": "._outcome",
    "ProcSnapshot": "._status",
    "RunState": "._status",
    "TreeStatus": "._status",
}


def _public(obj: object) -> object:
    """Make tracebacks and reprs say ``super_visor.X``, not ``super_visor._module.X``."""
    if getattr(obj, "__module__", "").startswith("super_visor._"):
        obj.__module__ = "super_visor"
    return obj


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        msg = f"module 'super_visor' has no attribute {name!r}"
        raise AttributeError(msg)
    import importlib

    value = _public(getattr(importlib.import_module(_LAZY[name], __name__), name))
    globals()[name] = value
    return value


for _name in __all__:
    if _name not in _LAZY:
        _public(globals()[_name])
del _name
