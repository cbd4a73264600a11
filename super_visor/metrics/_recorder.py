"""From lifecycle events to metric updates, whatever the metrics library.

`Recorder` is the ``on_event`` callback: it keeps, per proc path, when the current start and
stop began, and tells a `Sink` what changed. A sink is a thin adapter over one library
(``_prometheus``, ``_otel``). The callback runs in the supervisor's task for every event, so
it does a dict lookup and at most two metric updates.

Durations are measured on ``time.monotonic()``, read when the event arrives, not from
``Event.time``: that is wall-clock time, which NTP or an operator may step while a proc
starts, turning a start-up into a negative or hour-long one.

Only paths seen STARTING are procs: the events of a supervisor as a whole (shutdown begun,
a signal, the root's own readiness) carry the supervisor's path and are not a proc's run.

Dynamic children (``start_child()``, one per connection or job, often each with a new name)
must not grow the metrics without bound. An event does not say whether its proc is dynamic,
so the recorder learns the tree's plan: the proc paths it has seen by the root's first READY
(the whole tree is started then). A proc outside that plan is dynamic, and when its run
ends without a restart (it leaves the tree) its entry and its series are dropped. A child
started again under the same name starts new series from zero. A recorder that never sees
the root's READY (subscribed on a nested supervisor, or a start-up that failed) drops none.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol, final

from .._events import EventKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._events import Event

__all__ = ("Recorder", "Sink")


class Sink(Protocol):
    """The metric updates of one library; *path* is the proc's full path."""

    def first_start(self, path: str) -> None:
        """A new path: its counters are made at 0, so ``rate()`` has a series to start from."""

    def up(self, path: str, value: int) -> None: ...
    def restarted(self, path: str) -> None: ...
    def failed(self, path: str) -> None: ...
    def started(self, path: str, seconds: float) -> None: ...
    def stopped(self, path: str, seconds: float) -> None: ...

    def forget(self, path: str) -> None:
        """A dynamic child left the tree: drop every series of *path*."""


#: The events that end a proc's run.
_ENDS = frozenset(
    {
        EventKind.STOPPED,
        EventKind.COMPLETED,
        EventKind.FAILED,
        EventKind.FORCED,
        EventKind.ABANDONED,
        EventKind.RESTARTING,
    }
)
#: The ends that count as a failure (RESTARTING only when it carries the crash).
_FAILURES = frozenset({EventKind.FAILED, EventKind.ABANDONED})


@final
class _Run:
    """The timing of one proc's current run (monotonic seconds)."""

    __slots__ = ("starting_at", "stopping_at")

    def __init__(self, starting_at: float) -> None:
        self.starting_at: float | None = starting_at
        self.stopping_at: float | None = None


@final
class Recorder:
    """An ``on_event`` callback keeping the metrics of every proc of a tree in *sink*.

    *clock* gives monotonic seconds for the start and stop durations (a test passes its own).
    """

    __slots__ = ("_clock", "_planned", "_runs", "_sink")

    def __init__(self, sink: Sink, clock: Callable[[], float] = time.monotonic) -> None:
        self._sink = sink
        self._clock = clock
        self._runs: dict[str, _Run] = {}
        #: The proc paths of the tree's plan, fixed at the root's first READY; None before.
        self._planned: frozenset[str] | None = None

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind is EventKind.STARTING:
            if event.path not in self._runs:
                self._sink.first_start(event.path)
            self._runs[event.path] = _Run(self._clock())
            self._sink.up(event.path, 0)
            return
        run = self._runs.get(event.path)
        if run is None:
            # A supervisor-level event, or a proc started before we subscribed.
            if kind is EventKind.READY and "/" not in event.path and self._planned is None:
                self._planned = frozenset(self._runs)  # the root's own READY: all started
            return
        if kind is EventKind.READY:
            self._ready(event, run)
        elif kind is EventKind.STOPPING:
            run.stopping_at = self._clock()
        elif kind in _ENDS:
            self._ended(event, run)
            if kind is not EventKind.RESTARTING and self._is_dynamic(event.path):
                del self._runs[event.path]
                self._sink.forget(event.path)

    def _is_dynamic(self, path: str) -> bool:
        return self._planned is not None and path not in self._planned

    def _ready(self, event: Event, run: _Run) -> None:
        if run.starting_at is not None:
            self._sink.started(event.path, self._clock() - run.starting_at)
            run.starting_at = None
        self._sink.up(event.path, 1)

    def _ended(self, event: Event, run: _Run) -> None:
        self._sink.up(event.path, 0)
        if run.stopping_at is not None and event.kind is not EventKind.RESTARTING:
            self._sink.stopped(event.path, self._clock() - run.stopping_at)
            run.stopping_at = None
        if event.kind is EventKind.RESTARTING:
            self._sink.restarted(event.path)
            if event.error is not None:
                self._sink.failed(event.path)
        elif event.kind in _FAILURES:
            self._sink.failed(event.path)
