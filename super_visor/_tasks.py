"""ProcTasks: where a run's proc tasks run, spawned on the backend without anyio's handle.

anyio gives every task it spawns a `TaskHandle`: a cancel scope, a finished event, a wrapper
coroutine and a done-callback closure, about 1.4 KB per task and a quarter of a restart's
cost. A proc needs only the scope (a force cancels it). The supervisor learns of the end from
the proc's own record (``Attempt.ended``) and takes a stuck proc's stack from its coroutine.
So the proc tasks are spawned with each backend's public API: ``loop.create_task`` on asyncio,
a nursery's ``start_soon`` on trio. A *keeper* task in the run's anyio task group holds them:

- it returns once the run closed it and every proc task has ended; the task group waits for
  the keeper, so no proc task outlives its run;
- when the task group is cancelled (a forcing signal, an enclosing scope), the keeper cancels
  every proc's scope (a trio nursery inherits the cancellation by itself) and waits, shielded,
  until all have ended, as a task group does;
- an exception that escapes a proc task (a bug of ours: ``run_proc_task`` keeps a proc's
  errors) is raised by the keeper, so it reaches the run instead of being lost.

The few other things a proc task does on every (re)start are also done natively here: its
cancel scope, a checkpoint, and a call made once it has yielded (its READY after a restart in
place). With `_parking`, this is the only module that touches a backend directly.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol, TypeVarTuple, final

import anyio

if TYPE_CHECKING:
    import asyncio  # noqa: TID251 (see the module docstring)
    from collections.abc import Callable, Coroutine
    from types import TracebackType

    from anyio.abc import TaskGroup, TaskStatus

__all__ = ("ForceScope", "ProcTasks", "open_proc_tasks")

Ts = TypeVarTuple("Ts")

#: What trio names every proc task (a name per task would be built for every start).
_TRIO_TASK_NAME = "super_visor proc"


class ForceScope(Protocol):
    """A proc's cancel scope: entered by its task, cancelled to force it."""

    def cancel(self) -> None: ...

    def __enter__(self) -> object: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


class ProcTasks:
    """The proc tasks of one run: `spawn` them; `close` once no more will come."""

    __slots__ = ("_closed", "_path")

    def __init__(self, path: str) -> None:
        self._path = path
        self._closed = False

    def spawn(
        self,
        scope: ForceScope,
        fn: Callable[[*Ts], Coroutine[Any, Any, None]],
        *args: *Ts,
    ) -> Coroutine[Any, Any, None]:
        """Run ``fn(*args)`` as a proc task whose force is *scope* (``fn`` enters it);
        returns the coroutine (its frames are the proc's stack)."""
        if self._closed:
            msg = f"{self._path}: the run has ended; no proc can be started in it"
            raise RuntimeError(msg)
        coro = fn(*args)
        self._start(coro, scope)
        return coro

    def close(self) -> None:
        """No task will be spawned any more: the keeper returns once the last one ended."""
        self._closed = True
        self._wake_keeper()

    def new_scope(self) -> ForceScope:
        """A cancel scope for one start of a proc."""
        return anyio.CancelScope()

    def rescope(self, scope: ForceScope) -> None:
        """The calling proc task runs under *scope* from now on (a restart in place).

        Nothing to do here (trio): a cancellation of the nursery reaches every scope in it.
        """

    async def checkpoint(self) -> None:
        """Let the other tasks run (cancellable)."""
        raise NotImplementedError

    def soon(self, fn: Callable[[*Ts], object], *args: *Ts) -> None:
        """Call ``fn(*args)`` once the calling task has yielded."""
        raise NotImplementedError

    async def keep(self, *, task_status: TaskStatus[None]) -> None:
        """The keeper's task (module doc); started in the run's task group."""
        raise NotImplementedError

    def _start(self, coro: Coroutine[Any, Any, None], scope: ForceScope) -> None:
        raise NotImplementedError

    def _wake_keeper(self) -> None:
        raise NotImplementedError


@final
class _AsyncioTasks(ProcTasks):
    __slots__ = ("_errors", "_live", "_loop", "_on_done", "_sleep", "_wakeup")

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(path)
        self._loop = loop
        self._sleep = sys.modules["asyncio"].sleep
        #: Each running proc task and its scope (what the keeper cancels).
        self._live: dict[asyncio.Task[None], ForceScope] = {}
        self._errors: list[BaseException] = []
        self._on_done = self._task_done  # bound once, not once per task
        #: Set (and dropped) when the keeper should look again: a task ended, or `close`.
        self._wakeup: asyncio.Future[None] | None = None

    def _start(self, coro: Coroutine[Any, Any, None], scope: ForceScope) -> None:
        task = self._loop.create_task(coro)
        # An eager task factory may have run its first steps already, a restart in place
        # among them (`rescope`): what they registered is newer than *scope*.
        self._live.setdefault(task, scope)
        task.add_done_callback(self._on_done)

    def rescope(self, scope: ForceScope) -> None:
        self._live[sys.modules["asyncio"].current_task()] = scope

    async def checkpoint(self) -> None:
        await self._sleep(0)

    def soon(self, fn: Callable[[*Ts], object], *args: *Ts) -> None:
        self._loop.call_soon(fn, *args)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        del self._live[task]
        if not task.cancelled():
            error = task.exception()
            if error is not None:
                self._errors.append(error)
                self._cancel_all()
        if not self._live:
            self._wake_keeper()

    def _wake_keeper(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _cancel_all(self) -> None:
        for scope in self._live.values():
            scope.cancel()

    async def keep(self, *, task_status: TaskStatus[None]) -> None:
        try:
            task_status.started()
            await self._until(lambda: self._closed and not self._live)
        except BaseException:
            self._cancel_all()
            with anyio.CancelScope(shield=True):
                await self._until(lambda: not self._live)
            self._raise_errors()  # rather than the cancellation: they must not be lost
            raise
        self._raise_errors()

    def _raise_errors(self) -> None:
        if self._errors:
            raise BaseExceptionGroup(f"{self._path}: a proc task failed", self._errors)

    async def _until(self, done: Callable[[], bool]) -> None:
        while not done():
            self._wakeup = self._loop.create_future()
            await self._wakeup


@final
class _TrioTasks(ProcTasks):
    __slots__ = ("_calls", "_nursery", "_trio", "_wakeup")

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._trio: Any = sys.modules["trio"]
        self._nursery: Any = None
        #: What `soon` asked for, called by the keeper (woken without a system call, unlike
        #: ``run_sync_soon``, which writes to a socket).
        self._calls: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._wakeup: Any = None

    def _start(self, coro: Coroutine[Any, Any, None], scope: ForceScope) -> None:
        del scope  # the nursery passes its own cancellation on to every task in it
        self._nursery.start_soon(_as_is, coro, name=_TRIO_TASK_NAME)

    def new_scope(self) -> ForceScope:
        scope: ForceScope = self._trio.CancelScope()  # anyio's wraps this very one
        return scope

    async def checkpoint(self) -> None:
        await self._trio.lowlevel.checkpoint()

    def soon(self, fn: Callable[[*Ts], object], *args: *Ts) -> None:
        # The keeper runs in a later batch than the calling task, which runs on to its
        # next checkpoint first.
        self._calls.append((fn, args))
        self._wake_keeper()

    def _wake_keeper(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    async def keep(self, *, task_status: TaskStatus[None]) -> None:
        async with self._trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            while not self._closed:
                self._wakeup = self._trio.Event()
                await self._wakeup.wait()
                while self._calls:
                    fn, args = self._calls.popleft()
                    fn(*args)
        self._nursery = None


def _as_is(coro: Coroutine[Any, Any, None]) -> Coroutine[Any, Any, None]:
    """What trio's ``start_soon`` calls: the coroutine, made beforehand (see `spawn`)."""
    return coro


async def open_proc_tasks(path: str, task_group: TaskGroup) -> ProcTasks:
    """The proc tasks of the run at *path*, kept by a task in *task_group*."""
    tasks: ProcTasks
    trio = sys.modules.get("trio")  # looked up, as a running loop has imported its library
    if trio is not None and trio.lowlevel.in_trio_run():  # first: trio may be a guest of
        tasks = _TrioTasks(path)  # an asyncio loop
    else:
        tasks = _AsyncioTasks(path, sys.modules["asyncio"].get_running_loop())
    # Started, not spawned: the keeper must be in its ``try`` before any proc task exists
    # (a task cancelled before its first step never runs its handlers).
    await task_group.start(tasks.keep)
    return tasks
