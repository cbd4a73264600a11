"""From lifecycle events to metric updates, whatever the metrics library.

`Recorder` is the ``on_event`` callback: it keeps, per proc path, when the current start and
stop began (event times, wall clock), and tells a `Sink` what changed. A sink is a thin
adapter over one library (``_prometheus``, ``_otel``). The callback runs in the supervisor's
task for every event, so it does a dict lookup and at most two metric updates.

Only paths seen STARTING are procs: the events of a supervisor as a whole (shutdown begun,
a signal, the root's own readiness) carry the supervisor's path and are not a proc's run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, final

from .._events import EventKind

if TYPE_CHECKING:
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
    """The timing of one proc's current run (event times, seconds)."""

    __slots__ = ("starting_at", "stopping_at")

    def __init__(self, starting_at: float) -> None:
        self.starting_at: float | None = starting_at
        self.stopping_at: float | None = None


@final
class Recorder:
    """An ``on_event`` callback keeping the metrics of every proc of a tree in *sink*."""

    __slots__ = ("_runs", "_sink")

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._runs: dict[str, _Run] = {}

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind is EventKind.STARTING:
            if event.path not in self._runs:
                self._sink.first_start(event.path)
            self._runs[event.path] = _Run(event.time)
            self._sink.up(event.path, 0)
            return
        run = self._runs.get(event.path)
        if run is None:
            return  # a supervisor-level event, or a proc started before we subscribed
        if kind is EventKind.READY:
            self._ready(event, run)
        elif kind is EventKind.STOPPING:
            run.stopping_at = event.time
        elif kind in _ENDS:
            self._ended(event, run)

    def _ready(self, event: Event, run: _Run) -> None:
        if run.starting_at is not None:
            self._sink.started(event.path, max(event.time - run.starting_at, 0.0))
            run.starting_at = None
        self._sink.up(event.path, 1)

    def _ended(self, event: Event, run: _Run) -> None:
        self._sink.up(event.path, 0)
        if run.stopping_at is not None and event.kind is not EventKind.RESTARTING:
            self._sink.stopped(event.path, max(event.time - run.stopping_at, 0.0))
            run.stopping_at = None
        if event.kind is EventKind.RESTARTING:
            self._sink.restarted(event.path)
            if event.error is not None:
                self._sink.failed(event.path)
        elif event.kind in _FAILURES:
            self._sink.failed(event.path)
