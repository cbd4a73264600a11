"""Isolated: a proc, or a whole tree, in its own OS process; ``replicas=N`` for N of them.

Why a process and not a thread or a task: a crash in a C extension, a leak, or an event
loop blocked by a sync call take down, or stall, every proc of the process they happen in;
and the GIL keeps CPU-bound Python code on one core. A child process contains all of that.
Why *spawned* (a fresh ``python -m super_visor._isolated_child``) and never forked: a fork
copies the parent's event loop, its threads' locks and its open sockets half-way through
whatever they were doing.

The parts: this module holds the public names and their checks; ``_isolated_run`` runs one
child (spawn, stop, force, reap); ``super_visor._isolated_wire`` is the protocol between the two
processes (what crosses, and how); ``super_visor._isolated_child`` is the child's side.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, final, overload

from .._errors import ConfigError
from .._restart import Restart
from .._validate import Problem, check_name, check_seconds, valid
from ._common import FORCE_RESERVE, backend_name
from ._isolated_run import ChildRun

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._events import EventHub
    from .._outcome import ProcOutcome
    from .._supervisor import Supervisor
    from .._token import CancellationToken

__all__ = ("FDS_VARIABLE", "Isolated", "IsolatedProc", "inherited_sockets")

#: The environment variable that lists, in the child, the descriptors of the sockets passed
#: down with ``sockets=`` (comma-separated); `inherited_sockets` reads it.
FDS_VARIABLE = "SUPER_VISOR_ISOLATED_FDS"

_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_BACKENDS = ("asyncio", "trio")


@final
class IsolatedProc:
    """One `Isolated` child process as a proc; made by `Isolated` (see there).

    ``pid`` is the running child's pid (None when none runs), e.g. to check in a test that
    the child is gone.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        target: str,
        *,
        name: str | None = None,
        grace: float | None = None,
        wait_ready: bool = True,
        ready_timeout: float | None = None,
        restart: Restart | None = None,
        backend: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sockets: Sequence[socket.socket] = (),
    ) -> None:
        self.target = _check_target(name, target)
        self.name: str = valid(
            target, check_name("the proc name", name or _default_name(target), "name='web'")
        )
        #: Read by the builder like any proc's own settings (None: the builder's default).
        self.grace = None if grace is None else valid(self.name, check_seconds("grace", grace))
        #: The child's target gets the grace in force on its token; an adapter there that
        #: enforces it itself (a server's drain, a Command's SIGKILL) needs this much more
        #: to report cleanly before the supervisor forces the child.
        self.force_reserve = FORCE_RESERVE
        self.wait_ready = _check_flag(self.name, "wait_ready", wait_ready)
        self.ready_timeout = (
            None
            if ready_timeout is None
            else valid(self.name, check_seconds("ready_timeout", ready_timeout))
        )
        self.restart = _check_restart(self.name, restart)
        self.backend = _check_backend(self.name, backend)
        self.env = _check_env(self.name, env)
        self.cwd = _check_cwd(self.name, cwd)
        self.fds = _check_sockets(self.name, sockets)
        self.pid: int | None = None
        self._children: tuple[ProcOutcome, ...] = ()

    def __repr__(self) -> str:
        return f"IsolatedProc({self.target!r}, name={self.name!r})"

    def child_env(self) -> dict[str, str] | None:
        """The child's environment: ours (or *env* over ours), plus the passed descriptors."""
        if self.env is None and not self.fds:
            return None
        env = {**os.environ, **(self.env or {})}
        if self.fds:
            env[FDS_VARIABLE] = ",".join(str(fd) for fd in self.fds)
        return env

    async def run_proc(self, token: CancellationToken, /) -> object:
        path, hub = _where(token, self.name)
        child = ChildRun(self, path, hub)
        self._children = ()
        try:
            return await child.run(token, backend_name())
        finally:
            self._children = child.children

    def _outcomes_below(self) -> tuple[ProcOutcome, ...]:
        """The last run's child tree, for the report (read by the engine as the run ends)."""
        return self._children


def _where(token: CancellationToken, name: str) -> tuple[str, EventHub | None]:
    """The proc's full path and its tree's event hub (a token made by hand has neither)."""
    run = token._run
    return token.path or name, None if run is None else run.hub


@overload
def Isolated(
    target: str,
    *,
    name: str | None = ...,
    replicas: Literal[1] = ...,
    grace: float | None = ...,
    wait_ready: bool = ...,
    ready_timeout: float | None = ...,
    restart: Restart | None = ...,
    backend: str | None = ...,
    env: Mapping[str, str] | None = ...,
    cwd: str | os.PathLike[str] | None = ...,
    sockets: Sequence[socket.socket] = ...,
) -> IsolatedProc: ...


@overload
def Isolated(
    target: str,
    *,
    name: str | None = ...,
    replicas: int,
    grace: float | None = ...,
    wait_ready: bool = ...,
    ready_timeout: float | None = ...,
    restart: Restart | None = ...,
    backend: str | None = ...,
    env: Mapping[str, str] | None = ...,
    cwd: str | os.PathLike[str] | None = ...,
    sockets: Sequence[socket.socket] = ...,
) -> IsolatedProc | Supervisor: ...


def Isolated(
    target: str,
    *,
    name: str | None = None,
    replicas: int = 1,
    grace: float | None = None,
    wait_ready: bool = True,
    ready_timeout: float | None = None,
    restart: Restart | None = None,
    backend: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    sockets: Sequence[socket.socket] = (),
) -> IsolatedProc | Supervisor:
    """Run *target* in its own Python process: a proc you add like any other.

    Args:
        target: ``"module:attr"`` naming a proc, an async function, a `Supervisor` or a
            `SupervisorBuilder`; imported **in the child only** (``attr`` may be dotted).
            ``"__main__:attr"`` names the parent's main script, which the child then runs
            again as ``__mp_main__`` (as multiprocessing's spawn does): guard the script's
            entry point with ``if __name__ == "__main__":``.
        name: the proc name (default: the last part of ``attr``).
        replicas: how many copies to run. 1 (the default) gives one proc; N > 1 gives a
            nested `Supervisor` named *name* whose procs ``0`` … ``N-1`` are each one child
            (started in order, stopped in reverse, each restarted by its *restart* policy).
        grace: the proc's grace (None: the builder's default). The child's target gets it
            on its token, as any proc; one second after it (``force_reserve``, room for an
            adapter in the child that enforces the grace itself) the child gets SIGTERM,
            then SIGKILL one second later, and the outcome is ``FORCED``. Make it long
            enough for a child tree's procs to stop one after the other.
        wait_ready: hold start-up until the child is ready: a proc or function target once
            it called ``token.ready(value)`` (the value crosses, so it must be picklable), a
            tree once all its procs are. Pass False for a target that never calls it.
        ready_timeout: bound on that wait (None: as long as it takes).
        restart: the restart policy of each child (`Restart.TEMPORARY` when None).
        backend: ``"asyncio"`` or ``"trio"`` for the child; None runs the parent's.
        env: the child's environment *added to* ours; cwd: its working directory.
        sockets: listening sockets to pass down (same descriptor numbers in the child);
            the child finds them with `inherited_sockets`, e.g. to serve one port from
            every replica (``Uvicorn(app, fd=...)``).

    What crosses between the processes (``docs/how-to/isolating.md``): the stop request,
    the ready value and the result (pickled), the child's events (with their real paths,
    so the parent's logs, console and ``on_event`` callbacks show them), its outcomes (the
    report shows the child's tree under this proc) and its errors: a class the parent has
    already imported is rebuilt, anything else is an `IsolatedError` naming the child's
    error type and message; the child's traceback text is in the error's ``__notes__``.
    A child that dies without reporting (a signal, ``os._exit``) fails the proc with an
    `IsolatedError` saying so. The child dies with the parent, also when the parent is
    SIGKILLed, and is always reaped before the proc's outcome is reported.

    Every argument is checked here: a bad one is a `~super_visor.ConfigError` naming it.

    .. versionadded:: 0.1
    """
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ConfigError(
            name or str(target),
            f"replicas must be a whole number >= 1, got {replicas!r}",
            "pass e.g. replicas=4, or leave it out for one process",
        )

    def one(replica_name: str | None) -> IsolatedProc:
        return IsolatedProc(
            target,
            name=replica_name,
            grace=grace,
            wait_ready=wait_ready,
            ready_timeout=ready_timeout,
            restart=restart,
            backend=backend,
            env=env,
            cwd=cwd,
            sockets=sockets,
        )

    if replicas == 1:
        return one(name)
    group_name = one(name).name  # checks every argument once, under the group's name
    from .._builder import SupervisorBuilder  # at call time: procs/ stays below the engine

    builder = SupervisorBuilder(group_name)
    for index in range(replicas):
        builder.add_proc(one(str(index)))
    return builder.build()


def inherited_sockets() -> list[socket.socket]:
    """In an `Isolated` child: the sockets the parent passed down with ``sockets=``.

    Each call wraps the descriptors anew (``socket.socket(fileno=fd)``); closing one closes
    the descriptor. Empty outside such a child.

    .. versionadded:: 0.1
    """
    listed = os.environ.get(FDS_VARIABLE, "")
    return [socket.socket(fileno=int(fd)) for fd in listed.split(",") if fd]


def _default_name(target: object) -> str | None:
    if isinstance(target, str) and _TARGET.match(target):
        return target.rpartition(":")[2].rpartition(".")[2]
    return None


def _check_target(name: str | None, target: object) -> str:
    if isinstance(target, str) and _TARGET.match(target):
        return target
    return valid(
        name or "<isolated>",
        Problem(
            f"target must be a 'module:attr' string, got {target!r}",
            "pass e.g. Isolated('myapp.workers:crunch'); the child imports it, the parent "
            "never does",
        ),
    )


def _check_flag(name: str, field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    return valid(name, Problem(f"{field} must be True or False, got {value!r}", f"{field}=True"))


def _check_restart(name: str, restart: object) -> Restart | None:
    if restart is None or isinstance(restart, Restart):
        return restart
    return valid(
        name,
        Problem(f"restart must be a Restart, got {restart!r}", "restart=Restart.PERMANENT"),
    )


def _check_backend(name: str, backend: object) -> str | None:
    if backend is None or backend in _BACKENDS:
        return backend
    return valid(
        name,
        Problem(
            f"backend must be 'asyncio' or 'trio', got {backend!r}",
            "pass backend='trio', or leave it out to run the parent's backend",
        ),
    )


def _check_env(name: str, env: object) -> dict[str, str] | None:
    if env is None:
        return None
    if isinstance(env, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        return dict(env.items())
    return valid(
        name,
        Problem(
            f"env must map str to str, got {env!r}",
            "pass e.g. env={'LOG_LEVEL': 'debug'} (added to the parent's environment)",
        ),
    )


def _check_cwd(name: str, cwd: object) -> str | os.PathLike[str] | None:
    if cwd is None or isinstance(cwd, (str, os.PathLike)):
        return cwd
    return valid(
        name, Problem(f"cwd must be a path or None, got {cwd!r}", "pass e.g. cwd='/srv/app'")
    )


def _check_sockets(name: str, sockets: object) -> tuple[int, ...]:
    if isinstance(sockets, (list, tuple)) and all(isinstance(s, socket.socket) for s in sockets):
        fds = tuple(s.fileno() for s in sockets)
        if all(fd >= 0 for fd in fds):
            return fds
    return valid(
        name,
        Problem(
            f"sockets must be a list of open sockets, got {sockets!r}",
            "pass e.g. sockets=[listener], a socket bound and listening in the parent",
        ),
    )
