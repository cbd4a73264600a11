"""Testing supervised applications: a pytest plugin, a virtual clock, and waits on events.

Installed with super_visor, the plugin is registered under the ``pytest11`` entry point
``super_visor`` and builds on anyio's plugin (async tests and fixtures run on the backend of
``anyio_backend``). It gives two fixtures:

- ``supervisor_handle``: runs the `Supervisor` (or `SupervisorBuilder`) that the test's own
  ``supervisor`` fixture returns, on the test's backend, enters once every proc is ready, and
  yields its `RunHandle`. At teardown the tree is shut down (each proc gets its grace) and a
  failure of the tree fails the test with its `SupervisorError`, report included.
- ``virtual_clock``: a `VirtualClock` with autojump. When the test also uses
  ``supervisor_handle``, the tree reads it for restart windows and backoff delays, so a test
  of a restart storm or a long backoff never sleeps.

And helpers any test can use: `wait_for_event` (the next event of a kind, optionally for one
proc), `wait_for_state` (until a proc reaches a `RunState`), both driven by the tree's events
rather than by polling, and `with_clock` (a supervisor reading a given clock).

Grace periods and ready timeouts stay on the event loop's real time: they bound real work of
real procs. Only the clock the supervisor reads for its restart bookkeeping is virtual.

.. versionadded:: 0.2
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, final

import anyio
import anyio.lowlevel
import pytest
from anyio.lowlevel import checkpoint

from ._attached import attached_run, drive, tree_error
from ._builder import SupervisorBuilder
from ._errors import SupervisorError
from ._supervisor import Supervisor

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ._engine import SupervisorRun
    from ._events import Event, EventKind, EventStream
    from ._handle import RunHandle
    from ._status import ProcSnapshot, RunState

__all__ = (
    "VirtualClock",
    "supervisor_handle",
    "virtual_clock",
    "wait_for_event",
    "wait_for_state",
    "with_clock",
)


@final
class VirtualClock:
    """A clock for restart windows and backoff that moves only when told to, or by itself.

    Implements the `Clock` protocol that ``SupervisorConfig.clock`` takes (see `with_clock`).
    ``advance(seconds)`` moves it on and wakes every sleep that is due. With *autojump*, when
    something sleeps on it and every other task of the event loop is blocked (waiting on
    anything: this clock, an event, a socket, a real timer), it jumps to the earliest
    deadline at once, as trio's ``MockClock(autojump_threshold=0)`` does: a backoff of an
    hour passes as soon as nothing else can happen first. Without *autojump* only
    ``advance`` moves it, and `wait_sleeper` tells the test that something waits.

    It starts at 1000.0 (any origin would do: only differences matter).
    """

    def __init__(self, *, autojump: bool = False) -> None:
        self.autojump = autojump
        self._now = 1000.0
        self._waits: list[tuple[float, anyio.Event]] = []
        self._sleeping = anyio.Event()
        #: Rung whenever a sleep is woken or the driver steps down: wakes idle sleepers.
        self._bell = anyio.Event()
        #: True while one of the sleepers drives the autojump (at most one at a time).
        self._driving = False

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:g}, sleeping={len(self._waits)})"

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Return once the clock has moved *seconds* on (cancellable, a checkpoint)."""
        wake = anyio.Event()
        entry = (self._now + max(0.0, seconds), wake)
        self._waits.append(entry)
        self._sleeping.set()
        try:
            if self.autojump:
                await self._sleep_autojumping(wake)
            else:
                await wake.wait()
        finally:
            if entry in self._waits:  # cancelled: no longer a sleeper
                self._waits.remove(entry)
        await checkpoint()

    async def _sleep_autojumping(self, wake: anyio.Event) -> None:
        """One sleeper drives: once every other task is blocked, jump to the earliest
        deadline; the others wait for their wake or for the driver to step down."""
        while not wake.is_set():
            if self._driving:
                bell = self._bell
                await bell.wait()
                continue
            self._driving = True
            try:
                while not wake.is_set():
                    await anyio.wait_all_tasks_blocked()
                    if self._waits:
                        earliest = min(deadline for deadline, _ in self._waits)
                        self.advance(max(0.0, earliest - self._now))
            finally:
                self._driving = False
                self._ring()

    async def wait_sleeper(self) -> float:
        """Wait until something sleeps on this clock; how long it asked to sleep (the
        latest sleeper's remaining delay)."""
        while not self._waits:
            self._sleeping = anyio.Event()
            await self._sleeping.wait()
        return self._waits[-1][0] - self._now

    def advance(self, seconds: float) -> None:
        """Move the clock *seconds* on, waking every sleep that is due."""
        if seconds < 0:
            msg = f"a clock only moves forward, got advance({seconds!r})"
            raise ValueError(msg)
        self._now += seconds
        due = [entry for entry in self._waits if entry[0] <= self._now]
        if not due:
            return
        self._waits = [entry for entry in self._waits if entry[0] > self._now]
        for _, wake in due:
            wake.set()
        self._ring()

    def _ring(self) -> None:
        bell, self._bell = self._bell, anyio.Event()
        bell.set()


def with_clock(sup: Supervisor | SupervisorBuilder, clock: object) -> Supervisor:
    """*sup* (built if a builder), reading *clock* for its restart windows and backoff
    delays, nested supervisors included. *sup* itself is left as built."""
    built = sup.build() if isinstance(sup, SupervisorBuilder) else sup
    return built._replace(config=dataclasses.replace(built.config, clock=clock))  # type: ignore[arg-type]


def _matches(event: Event, kinds: tuple[EventKind, ...], paths: set[str] | None) -> bool:
    return event.kind in kinds and (paths is None or event.path in paths)


def _paths(handle: RunHandle, path: str | None) -> set[str] | None:
    """The full paths *path* may name (relative to the root, or already full)."""
    if path is None:
        return None
    return {path, f"{handle.status().name}/{path}"}


async def wait_for_event(
    handle: RunHandle,
    kind: EventKind | tuple[EventKind, ...],
    path: str | None = None,
    *,
    events: EventStream | None = None,
) -> Event:
    """The next event of *kind* (one kind or a tuple), for the proc at *path* if given.

    It listens from the moment it is called: pass *events* (``handle.events()`` opened
    before the action that causes the event) to be sure not to miss one that comes at once.
    Add a deadline with ``anyio.fail_after`` as for any wait.

    Raises:
        AssertionError: the tree stopped before such an event came (the events seen are
            listed, so the test failure says what happened instead).
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    paths = _paths(handle, path)
    stream = handle.events() if events is None else events
    seen: list[str] = []
    async with stream:
        async for event in stream:
            if _matches(event, kinds, paths):
                return event
            seen.append(f"{event.kind.value} {event.path}")
    wanted = "/".join(k.value for k in kinds) + ("" if path is None else f" for {path}")
    msg = f"the tree stopped before an event {wanted}; events seen meanwhile: {seen[-20:]}"
    raise AssertionError(msg)


async def wait_for_state(handle: RunHandle, path: str, state: RunState) -> ProcSnapshot:
    """Wait until the proc at *path* is in *state*; its snapshot then.

    Checked now and after each event of the tree (every change of state is an event), so
    there is no polling and no sleep.

    Raises:
        KeyError: no proc has this path.
        AssertionError: the tree stopped and the proc is not (or no longer) in *state*.
    """
    stream = handle.events()
    async with stream:
        snapshot = handle.status()[path]
        if snapshot.state == state:
            return snapshot
        async for _ in stream:
            snapshot = handle.status()[path]
            if snapshot.state == state:
                return snapshot
    snapshot = handle.status()[path]
    if snapshot.state == state:
        return snapshot
    msg = f"the tree stopped with {snapshot.path} {snapshot.state}, never {state}"
    raise AssertionError(msg)


# -- the pytest plugin ----------------------------------------------------------------------


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A `VirtualClock` with autojump; ``supervisor_handle`` runs the tree on it."""
    return VirtualClock(autojump=True)


@pytest.fixture
async def supervisor_handle(
    anyio_backend: object, supervisor: object, request: pytest.FixtureRequest
) -> AsyncIterator[RunHandle]:
    """The `RunHandle` of the test's ``supervisor`` fixture's tree, running and ready.

    Runs on the test's backend (*anyio_backend*), without signal handling (pytest owns the
    signals). At teardown the tree is shut down gracefully; if it failed (now or during the
    test), the `SupervisorError` is raised, which fails the test with the report.
    """
    del anyio_backend  # requested so that anyio's plugin runs this fixture on that backend
    sup = _as_supervisor(supervisor)
    if "virtual_clock" in request.fixturenames:
        sup = with_clock(sup, request.getfixturevalue("virtual_clock"))
    with attached_run(sup) as (run, handle):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(_drive_quietly, run, handle)
            await run.ready_or_done.wait()
            if not run.all_ready:
                await handle.wait_stopped()
                _fail_for(handle, "before it was ready")
                msg = f"{run.path}: stopped before it was ready: {handle.report.reason}"
                raise RuntimeError(msg)
            try:
                yield handle
            finally:
                with anyio.CancelScope(shield=True):
                    handle.shutdown("test over")
                    await handle.wait_stopped()
        _fail_for(handle, "during the test")


def _as_supervisor(target: object) -> Supervisor:
    if isinstance(target, SupervisorBuilder):
        return target.build()
    if isinstance(target, Supervisor):
        return target
    msg = (
        "the `supervisor` fixture must return a Supervisor or a SupervisorBuilder, "
        f"got {type(target).__name__}"
    )
    raise TypeError(msg)


async def _drive_quietly(run: SupervisorRun, handle: RunHandle) -> None:
    """Run the tree; its failure is kept on the handle for teardown, not raised into the
    fixture's task group (that would cancel the test from under it)."""
    with contextlib.suppress(SupervisorError):  # raised at teardown, by _fail_for
        await drive(run, handle, handle_signals=False)


def _fail_for(handle: RunHandle, when: str) -> None:
    error = tree_error(handle)
    if error is not None:
        error.add_note(f"super_visor.testing: the tree failed {when}")
        raise error
