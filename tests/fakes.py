"""Reusable fake procs for the tests: each records what happens to it in a shared log list.

Every fake writes ``"<event> <name>"`` lines into the ``log`` it was given, so a test reads the
order of starts, readiness and stops across procs from one list. Events exposed as attributes
(``started``, ``stopping``, ...) let a test wait for a precise moment instead of sleeping.
Create the fakes inside async code (their events bind to the running backend).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import anyio
import pytest
import trio.lowlevel
from trio._core import _thread_cache

from super_visor import Restart, Strategy, SupervisorBuilder

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Iterator

    from super_visor import CancellationToken, Supervisor, SupervisorReport

__all__ = (
    "Boom",
    "Completes",
    "FailsBeforeReady",
    "FailsLater",
    "Gate",
    "Lingerer",
    "NeverReady",
    "Recorder",
    "Shielded",
    "Stubborn",
    "Worker",
    "build_supervisor",
    "recording_fn",
    "serve_until",
    "trio_worker_thread",
)


@pytest.fixture(scope="session", autouse=True)
def trio_worker_thread() -> Iterator[None]:
    """Start trio's I/O worker thread once, before ``conftest.no_leaks`` snapshots threads.

    The anyio pytest plugin runs trio in guest mode: whenever every task waits on a timer (a
    grace or a ready_timeout expiring), trio waits for I/O in a cached worker thread, which
    stays alive idle for 10 s. The leak check would report that thread as leaked by whichever
    test first waited on a timer. We start the worker here (session scope runs before the
    function-scoped check) and keep it cached for the whole session; trio reuses it.
    Import this fixture into each test module that waits on timers.
    """
    saved = _thread_cache.IDLE_TIMEOUT
    _thread_cache.IDLE_TIMEOUT = 24 * 3600
    warmed = threading.Event()
    trio.lowlevel.start_thread_soon(lambda: None, lambda _outcome: warmed.set())
    warmed.wait()
    yield
    _thread_cache.IDLE_TIMEOUT = saved


class _Fake:
    """What every fake shares: a name, the shared log, and the token it was given."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.token: CancellationToken | None = None
        self.started = anyio.Event()
        self.stopping = anyio.Event()
        self.reason_seen: str | None = None

    def _begin(self, token: CancellationToken) -> None:
        self.token = token
        self.log.append(f"start {self.name}")
        self.started.set()

    async def _await_stop(self, token: CancellationToken) -> None:
        await token.wait()
        self.reason_seen = token.reason
        self.log.append(f"stopping {self.name}")
        self.stopping.set()


class Recorder(_Fake):
    """Logs its start, waits for its token, logs its stop and returns *result*."""

    def __init__(self, name: str, log: list[str], *, result: object = None) -> None:
        super().__init__(name, log)
        self.result = result

    async def run_proc(self, token: CancellationToken) -> object:
        self._begin(token)
        await self._await_stop(token)
        self.log.append(f"stopped {self.name}")
        return self.result


class Lingerer(_Fake):
    """Like `Recorder`, but once asked to stop it waits until every other task is blocked.

    Were its supervisor to stop several procs at once, the others would log their
    ``stopping`` line before this one logs ``stopped``; stopping one at a time never does.
    """

    async def run_proc(self, token: CancellationToken) -> None:
        self._begin(token)
        await self._await_stop(token)
        await anyio.wait_all_tasks_blocked()
        self.log.append(f"stopped {self.name}")


class Gate(_Fake):
    """A gating proc (add it with ``wait_ready=True``): ready with *value* once *release* is set.

    Without *release* it is ready at once. After ready it behaves like `Recorder`.
    """

    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        value: object = None,
        release: anyio.Event | None = None,
    ) -> None:
        super().__init__(name, log)
        self.value = value
        self.release = release

    async def run_proc(self, token: CancellationToken) -> None:
        self._begin(token)
        if self.release is not None:
            await self.release.wait()
        token.ready(self.value)
        token.ready("second call is ignored")
        self.log.append(f"ready {self.name}")
        await self._await_stop(token)
        self.log.append(f"stopped {self.name}")


class NeverReady(_Fake):
    """A gating proc that never calls ``token.ready()`` but returns when asked to stop."""

    async def run_proc(self, token: CancellationToken) -> None:
        self._begin(token)
        await self._await_stop(token)
        self.log.append(f"stopped {self.name}")


class FailsBeforeReady(_Fake):
    """Raises *error* before calling ``token.ready()``, optionally after one checkpoint."""

    def __init__(
        self, name: str, log: list[str], error: Exception, *, checkpoint_first: bool = False
    ) -> None:
        super().__init__(name, log)
        self.error = error
        self.checkpoint_first = checkpoint_first

    async def run_proc(self, token: CancellationToken) -> None:
        self._begin(token)
        if self.checkpoint_first:
            await anyio.lowlevel.checkpoint()
        raise self.error


class FailsLater(_Fake):
    """Ready at once; raises *error* once *trigger* is set (or returns if stopped first)."""

    def __init__(self, name: str, log: list[str], error: Exception, trigger: anyio.Event) -> None:
        super().__init__(name, log)
        self.error = error
        self.trigger = trigger

    async def run_proc(self, token: CancellationToken) -> None:
        self._begin(token)
        token.ready()
        await self.trigger.wait()
        self.log.append(f"fail {self.name}")
        raise self.error


class Completes(_Fake):
    """Returns *result* on its own once *trigger* is set (at once without a trigger)."""

    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        result: object = None,
        trigger: anyio.Event | None = None,
    ) -> None:
        super().__init__(name, log)
        self.result = result
        self.trigger = trigger

    async def run_proc(self, token: CancellationToken) -> object:
        self._begin(token)
        if self.trigger is not None:
            await self.trigger.wait()
        self.log.append(f"complete {self.name}")
        return self.result


class Stubborn(_Fake):
    """Ignores its token: runs until force-cancelled, and logs that it was."""

    async def run_proc(self, token: CancellationToken) -> None:
        self._begin(token)
        try:
            await self._await_stop(token)
            await anyio.sleep_forever()
        finally:
            self.log.append(f"forced {self.name}")


class Shielded(_Fake):
    """Ignores its token and survives force-cancellation in a shielded scope.

    The shield lasts until *release* is set, and at most *limit* seconds, so a test that
    forgets to release it still ends.
    """

    def __init__(self, name: str, log: list[str], release: anyio.Event, limit: float) -> None:
        super().__init__(name, log)
        self.release = release
        self.limit = limit

    async def run_proc(self, token: CancellationToken) -> None:
        self._begin(token)
        await self._await_stop(token)
        with anyio.move_on_after(self.limit, shield=True):
            await self.release.wait()
        self.log.append(f"unshielded {self.name}")


def recording_fn(name: str, log: list[str]) -> Callable[[CancellationToken], Awaitable[None]]:
    """A plain ``async def`` proc that logs its start and stop (add it with ``name=``)."""

    async def proc(token: CancellationToken) -> None:
        log.append(f"start {name}")
        await token.wait()
        log.append(f"stopped {name}")

    return proc


async def serve_until(
    sup: Supervisor, stop: anyio.Event, reports: list[SupervisorReport] | None = None
) -> None:
    """Run *sup* under ``running()`` until *stop* is set; append its report to *reports*.

    For tests that must look at a supervisor while it is still starting up, from another task.
    """
    async with sup.running() as handle:
        await stop.wait()
    if reports is not None:
        reports.append(handle.report)


class Boom(Exception):
    """The error a `Worker` raises when crashed."""


def _set(waits: dict[int, anyio.Event], n: int) -> None:
    waits.setdefault(n, anyio.Event()).set()


class Worker:
    """A proc that runs until stopped, crashed (`crash`) or completed (`complete`), for restarts.

    Every run logs ``start``, then ``stop``, ``crash`` or ``complete``. Counts its runs and how
    many run at once (``max_active`` must stay 1). Runs listed in *fail_runs* raise `Boom` at
    once, before their first await. `wait_run` and `wait_ended` let a test wait for a run.
    """

    def __init__(self, name: str, log: list[str], *, fail_runs: Collection[int] = ()) -> None:
        self.name = name
        self.log = log
        self.fail_runs = fail_runs
        self.runs = 0
        self.active = 0
        self.max_active = 0
        self.started_at: list[float] = []
        self.tokens: list[CancellationToken] = []
        self._trigger: anyio.Event | None = None
        self._action: tuple[str, object] | None = None
        self._run_waits: dict[int, anyio.Event] = {}
        self._end_waits: dict[int, anyio.Event] = {}

    async def run_proc(self, token: CancellationToken) -> object:
        self.runs += 1
        run = self.runs
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.started_at.append(anyio.current_time())
        self.tokens.append(token)
        self.log.append(f"start {self.name}")
        try:
            _set(self._run_waits, run)
            if run in self.fail_runs:
                self.log.append(f"crash {self.name}")
                raise Boom(f"{self.name} run {run}")
            return await self._until_triggered(token)
        finally:
            self.active -= 1
            _set(self._end_waits, run)

    async def _until_triggered(self, token: CancellationToken) -> object:
        trigger = self._trigger = anyio.Event()
        self._action = None
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(_relay, token, trigger)
            await trigger.wait()
            task_group.cancel_scope.cancel()
        action, self._action = self._action, None
        if action is None:
            self.log.append(f"stop {self.name}")
            return None
        kind, value = action
        self.log.append(f"{kind} {self.name}")
        if kind == "crash":
            assert isinstance(value, BaseException)
            raise value
        return value

    def crash(self, error: Exception | None = None) -> None:
        """Make the current run raise *error* (a `Boom` by default)."""
        assert self._trigger is not None, f"{self.name} is not running"
        self._action = ("crash", error or Boom(f"{self.name} run {self.runs}"))
        self._trigger.set()

    def complete(self, result: object = None) -> None:
        """Make the current run return *result* on its own."""
        assert self._trigger is not None, f"{self.name} is not running"
        self._action = ("complete", result)
        self._trigger.set()

    async def wait_run(self, n: int) -> None:
        """Return once run number *n* has begun."""
        if self.runs < n:
            await self._run_waits.setdefault(n, anyio.Event()).wait()

    async def wait_ended(self, n: int) -> None:
        """Return once run number *n* has ended."""
        await self._end_waits.setdefault(n, anyio.Event()).wait()


async def _relay(token: CancellationToken, trigger: anyio.Event) -> None:
    await token.wait()
    trigger.set()


def build_supervisor(
    workers: list[Worker],
    *,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    restart: Restart = Restart.PERMANENT,
    name: str = "app",
    max_restarts: int = 3,
    within: float = 5.0,
) -> Supervisor:
    """A supervisor of *workers*, all with the same restart policy (grace 2 s)."""
    builder = SupervisorBuilder(
        name, strategy=strategy, max_restarts=max_restarts, within=within, grace=2.0
    )
    for worker in workers:
        builder.add_proc(worker, restart=restart)
    return builder.build()
