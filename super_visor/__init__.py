"""super_visor: start, supervise and stop the long-running parts of an async application.

Layering (imports point one way): ``_errors`` <- ``_token`` <- ``_proc``/``_spec`` <-
``_lifecycle``/``_restart``/``_outcome`` <- ``_slot`` <- ``_engine`` <- ``_supervisor`` <-
``_builder``/``_config`` <- ``_run`` <- ``_cli``; ``_console`` (the only user of rich) is
imported by ``_run`` only when the live console is shown. This module only re-exports;
importing it has no side effects (configuration is read by ``run()``, never at import).
"""

from __future__ import annotations

from ._builder import SupervisorBuilder as SupervisorBuilder
from ._config import Setting as Setting
from ._config import Settings as Settings
from ._errors import ConfigError as ConfigError
from ._errors import RestartLimitExceeded as RestartLimitExceeded
from ._errors import StartupError as StartupError
from ._errors import SupervisorError as SupervisorError
from ._events import Event as Event
from ._events import EventKind as EventKind
from ._events import EventStream as EventStream
from ._outcome import ProcOutcome as ProcOutcome
from ._outcome import ProcStatus as ProcStatus
from ._outcome import SupervisorReport as SupervisorReport
from ._proc import ManagedProc as ManagedProc
from ._proc import SupportsRunProc as SupportsRunProc
from ._restart import Backoff as Backoff
from ._restart import Restart as Restart
from ._restart import Strategy as Strategy
from ._run import run as run
from ._supervisor import RunHandle as RunHandle
from ._supervisor import Supervisor as Supervisor
from ._token import CancellationToken as CancellationToken

__version__ = "0.1.0"

__all__ = (
    "Backoff",
    "CancellationToken",
    "ConfigError",
    "Event",
    "EventKind",
    "EventStream",
    "ManagedProc",
    "ProcOutcome",
    "ProcStatus",
    "Restart",
    "RestartLimitExceeded",
    "RunHandle",
    "Setting",
    "Settings",
    "StartupError",
    "Strategy",
    "Supervisor",
    "SupervisorBuilder",
    "SupervisorError",
    "SupervisorReport",
    "SupportsRunProc",
    "run",
)

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("super_visor._"):
        _obj.__module__ = "super_visor"
del _name, _obj
