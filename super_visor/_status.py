"""TreeStatus: a snapshot of a running tree, for ``handle.status()``, probes and the console.

A snapshot, not a live view: it is built in one go from the procs' slots (no await in
between, so it is consistent) and then never changes, so a caller may keep it, walk it or
serialise it while the tree moves on. Built without recursion, like the report, so a tree
nested thousands of levels deep needs no frame per level.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from ._lifecycle import ProcState
from ._slot import not_started_children

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from ._outcome import ProcOutcome
    from ._slot import NestedRun, Slot

__all__ = ("ProcSnapshot", "RunState", "TreeStatus", "tree_status")


class RunState(enum.StrEnum):
    """Where a proc (or the tree) is now; a `str`, so it compares and serialises as text.

    The final states are the `ProcStatus` values of its last run.

    .. versionadded:: 0.2
    """

    NOT_STARTED = "not_started"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"
    FORCED = "forced"
    ABANDONED = "abandoned"

    @property
    def is_live(self) -> bool:
        """Whether a proc in this state has its task running: starting, running, or
        stopping (its cleanup still runs). Restarting is not: the task ended and the next
        has not begun."""
        return self in _RUNS_TASK


_RUNS_TASK = frozenset((RunState.STARTING, RunState.RUNNING, RunState.STOPPING))

#: The state of a slot that is not ENDED, by the name of its lifecycle state.
_LIVE = {
    ProcState.PENDING.name: RunState.NOT_STARTED,
    ProcState.STARTING.name: RunState.STARTING,
    ProcState.RUNNING.name: RunState.RUNNING,
    ProcState.STOPPING.name: RunState.STOPPING,
    ProcState.FORCING.name: RunState.STOPPING,
    ProcState.RESTARTING.name: RunState.RESTARTING,
}


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ProcSnapshot:
    """One proc as it was when the snapshot was taken.

    ``path`` is the full path (as ``token.path``); ``ready`` is whether it is ready now
    (running, and past its gate); ``started_at`` is the wall-clock time (``time.time()``)
    its current or last run began, None if it never began; ``children`` are a nested
    supervisor's procs (static in declared order, then dynamic in start order).

    .. versionadded:: 0.2
    """

    name: str
    path: str
    state: RunState
    ready: bool = False
    restarts: int = 0
    started_at: float | None = None
    dynamic: bool = False
    children: tuple[ProcSnapshot, ...] = ()

    def walk(self) -> Iterator[ProcSnapshot]:
        """This proc, then every proc below it, depth first, in declared order."""
        stack = [self]
        while stack:
            snapshot = stack.pop()
            yield snapshot
            stack.extend(reversed(snapshot.children))

    def uptime(self, at: float) -> float | None:
        """Seconds its current run has lasted at wall-clock time *at* (``time.time()``), or
        None when its task does not run (`RunState.is_live`); stopping still counts."""
        if self.started_at is None or not self.state.is_live:
            return None
        return max(0.0, at - self.started_at)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class TreeStatus:
    """The whole tree at one moment: ``for proc in status`` (the root's own procs),
    ``status.walk()`` (every proc), ``status["pipeline/consumer"]``.

    ``state`` is the root supervisor's phase (starting, running, stopping, stopped);
    ``ready`` is whether the whole tree is ready now (False again from the moment the
    shutdown begins); ``restart_limit_reached`` stays True for the rest of the run once
    any supervisor of the tree gave up.

    .. versionadded:: 0.2
    """

    name: str
    state: RunState
    ready: bool
    restart_limit_reached: bool
    procs: tuple[ProcSnapshot, ...]
    taken_at: float

    def __iter__(self) -> Iterator[ProcSnapshot]:
        return iter(self.procs)

    def walk(self) -> Iterator[ProcSnapshot]:
        """Every proc of the tree, depth first, in declared order."""
        for proc in self.procs:
            yield from proc.walk()

    def __getitem__(self, path: str) -> ProcSnapshot:
        """The proc at *path*, relative to the root (``"pipeline/consumer"``) or full."""
        wanted = {path, f"{self.name}/{path}"}
        for proc in self.walk():
            if proc.path in wanted:
                return proc
        msg = f"{self.name}: no proc {path!r} in this status"
        raise KeyError(msg)

    def as_dict(self) -> dict[str, object]:
        """The snapshot as JSON-ready data (``/status`` and the control socket's reply):
        ``{"name", "state", "ready", "restart_limit_reached", "procs": [...]}``, every proc
        in one flat list, depth first, each ``{"path", "name", "depth", "state", "ready",
        "restarts", "started_at", "uptime_s", "dynamic"}``; ``uptime_s`` is as of
        ``taken_at``. Flat, so a tree thousands of levels deep serialises without recursion.
        """
        procs: list[dict[str, object]] = []
        stack = [(0, proc) for proc in reversed(self.procs)]
        while stack:
            depth, proc = stack.pop()
            procs.append(_proc_dict(proc, depth, self.taken_at))
            stack.extend((depth + 1, child) for child in reversed(proc.children))
        return {
            "name": self.name,
            "state": self.state.value,
            "ready": self.ready,
            "restart_limit_reached": self.restart_limit_reached,
            "procs": procs,
        }


def _proc_dict(proc: ProcSnapshot, depth: int, at: float) -> dict[str, object]:
    uptime = proc.uptime(at)
    return {
        "path": proc.path,
        "name": proc.name,
        "depth": depth,
        "state": proc.state.value,
        "ready": proc.ready,
        "restarts": proc.restarts,
        "started_at": proc.started_at,
        "uptime_s": None if uptime is None else round(uptime, 3),
        "dynamic": proc.dynamic,
    }


def tree_status(
    run: NestedRun, *, state: str, ready: bool, restart_limit_reached: bool, mono_now: float
) -> TreeStatus:
    """The snapshot of *run*'s tree; *mono_now* is its clock's time, to date the starts."""
    wall_offset = time.time() - mono_now
    return TreeStatus(
        name=run.path,
        state=RunState(state),
        ready=ready,
        restart_limit_reached=restart_limit_reached,
        procs=_snapshots(run, wall_offset),
        taken_at=time.time(),
    )


@final
class _Frame:
    """One supervisor being snapshotted: its procs still to visit, and those done."""

    __slots__ = ("done", "owner", "static_count", "todo")

    def __init__(self, run: NestedRun, owner: Slot | None) -> None:
        self.todo = iter(run.all_slots())
        self.static_count = len(run.slots)
        self.owner = owner
        self.done: list[ProcSnapshot] = []


def _snapshots(run: NestedRun, wall_offset: float) -> tuple[ProcSnapshot, ...]:
    stack = [_Frame(run, None)]
    while True:
        frame = stack[-1]
        slot = next(frame.todo, None)
        if slot is None:
            stack.pop()
            if not stack:
                return tuple(frame.done)
            parent = stack[-1]
            assert frame.owner is not None, "only the root frame has no owner"
            entry = _entry(frame.owner, parent.static_count, wall_offset, tuple(frame.done))
            parent.done.append(entry)
            continue
        nested = None if slot.attempt is None else slot.attempt.nested
        if nested is not None:
            stack.append(_Frame(nested, slot))
        else:
            children = _from_outcomes(_ended_children(slot))
            frame.done.append(_entry(slot, frame.static_count, wall_offset, children))


def _entry(
    slot: Slot, static_count: int, wall_offset: float, children: tuple[ProcSnapshot, ...]
) -> ProcSnapshot:
    attempt = slot.attempt
    started = attempt is not None and attempt.began
    return ProcSnapshot(
        name=slot.spec.name,
        path=slot.path,
        state=_state_of(slot),
        ready=slot.state is ProcState.RUNNING,
        restarts=slot.restarts,
        started_at=attempt.started_at + wall_offset if started and attempt else None,
        dynamic=slot.index >= static_count,
        children=children,
    )


def _state_of(slot: Slot) -> RunState:
    state = slot.state
    if state is not ProcState.ENDED:
        return _LIVE[state.name]
    status = slot.status
    return RunState.NOT_STARTED if status is None else RunState(status.value)


def _ended_children(slot: Slot) -> Sequence[ProcOutcome]:
    """The procs below a proc that has no run of a nested supervisor to look into: the
    outcomes its last run left (a subtree reported by the proc), or, for a nested
    supervisor never started, its procs as NOT_STARTED."""
    attempt = slot.attempt
    if attempt is not None and attempt.children:
        return attempt.children
    if attempt is None and slot.spec.nested is not None:
        return not_started_children(slot.path, slot.spec)
    return ()


def _from_outcomes(outcomes: Sequence[ProcOutcome]) -> tuple[ProcSnapshot, ...]:
    """Snapshots of a finished subtree (bottom-up, without recursion)."""
    if not outcomes:
        return ()
    order: list[ProcOutcome] = []  # parents before children
    pending = list(outcomes)
    while pending:
        outcome = pending.pop()
        order.append(outcome)
        pending.extend(outcome.children)
    built: dict[int, ProcSnapshot] = {}
    for outcome in reversed(order):  # children first
        built[id(outcome)] = ProcSnapshot(
            name=outcome.name,
            path=outcome.path,
            state=RunState(outcome.status.value),
            restarts=outcome.restarts,
            children=tuple(built.pop(id(child)) for child in outcome.children),
        )
    return tuple(built.pop(id(outcome)) for outcome in outcomes)
