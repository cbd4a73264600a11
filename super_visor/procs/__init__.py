"""Ready-made procs for real things: programs, probes, ASGI servers, schedules, threads.

Each is an ordinary proc (an object with ``async def run_proc(self, token)``): add it with
``SupervisorBuilder.add_proc`` like any other. They obey the grace, readiness and reporting
rules of the supervisor, on asyncio and trio (except `Uvicorn`: asyncio only).

- `Command`: an OS program in its own process group, with readiness probes (`TcpProbe`,
  `HttpProbe`, `LogLineProbe`, `FileProbe`), its output in the log and in its errors.
- `Uvicorn`, `Hypercorn`: an ASGI app served in-process, lifespan included
  (extras ``super_visor[uvicorn]``, ``super_visor[hypercorn]``).
- `Periodic`: an async function on a schedule. `Thread`: a blocking function in a thread.
- `TcpServer`: an anyio TCP listener with a task group for its connections.
- `HealthServer`: ``/livez``, ``/readyz``, ``/startupz`` and ``/status`` for Kubernetes
  probes, answered from the tree's real state (put it first in the tree).
- `Isolated`: a proc or a whole tree in its own Python process (``replicas=N`` for N).

Importing this module imports no optional dependency; an adapter that needs one imports it
when constructed, and raises `MissingExtraError` naming the install command if it is absent.
"""

from __future__ import annotations

from .._isolated_wire import IsolatedError as IsolatedError
from ._asgi import Hypercorn as Hypercorn
from ._asgi import Uvicorn as Uvicorn
from ._command import Command as Command
from ._command import CommandFailed as CommandFailed
from ._common import MissingExtraError as MissingExtraError
from ._health import HealthServer as HealthServer
from ._isolated import Isolated as Isolated
from ._isolated import IsolatedProc as IsolatedProc
from ._isolated import inherited_sockets as inherited_sockets
from ._periodic import Periodic as Periodic
from ._periodic import PeriodicStats as PeriodicStats
from ._probes import FileProbe as FileProbe
from ._probes import HttpProbe as HttpProbe
from ._probes import LogLineProbe as LogLineProbe
from ._probes import Probe as Probe
from ._probes import TcpProbe as TcpProbe
from ._tcp import TcpServer as TcpServer
from ._thread import Thread as Thread
from ._thread import ThreadAbandoned as ThreadAbandoned

__all__ = (
    "Command",
    "CommandFailed",
    "FileProbe",
    "HealthServer",
    "HttpProbe",
    "Hypercorn",
    "Isolated",
    "IsolatedError",
    "IsolatedProc",
    "LogLineProbe",
    "MissingExtraError",
    "Periodic",
    "PeriodicStats",
    "Probe",
    "TcpProbe",
    "TcpServer",
    "Thread",
    "ThreadAbandoned",
    "Uvicorn",
    "inherited_sockets",
)

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("super_visor.procs._"):
        _obj.__module__ = "super_visor.procs"
del _name, _obj
