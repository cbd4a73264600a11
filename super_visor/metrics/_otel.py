"""`opentelemetry`: the tree's metrics as OpenTelemetry instruments (extra ``[otel]``).

Only the OpenTelemetry *API* is needed: the application chooses the SDK, the reader and
the exporter (OTLP, Prometheus, ...) and super_visor records into whatever meter provider
it set up. Without one, the API's no-op provider never collects, and an update is a
field of a small table (one row per proc path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from ._recorder import Recorder

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._events import Event

__all__ = ("opentelemetry",)


def opentelemetry(meter: object = None) -> Callable[[Event], None]:
    """An ``on_event`` callback recording the tree's metrics with *meter*.

    *meter* is an ``opentelemetry.metrics.Meter``; None means
    ``opentelemetry.metrics.get_meter("super_visor")`` from the global meter provider.
    The counters are observable counters, the rest observable gauges, read at each
    collection; every point has a ``path`` attribute. The metrics are listed in
    `super_visor.metrics`.

    Raises:
        MissingExtraError: ``opentelemetry-api`` is not installed
            (``pip install 'super_visor[otel]'``).

    .. versionadded:: 0.2
    """
    from .. import __version__
    from ..procs._common import require

    metrics = require("super_visor.metrics.opentelemetry()", "opentelemetry.metrics", "otel")
    if meter is None:
        meter = metrics.get_meter("super_visor", __version__)
    return Recorder(_OtelSink(meter, metrics.Observation))


@final
class _Row:
    """The current values of one proc path (None: not measured yet)."""

    __slots__ = ("failures", "restarts", "start", "stop", "up")

    def __init__(self) -> None:
        self.up = 0
        self.restarts = 0
        self.failures = 0
        self.start: float | None = None
        self.stop: float | None = None


@final
class _OtelSink:
    """The five metrics as observable instruments reading one table, a row per proc path.

    Observable (asynchronous) instruments, not synchronous ones: a synchronous instrument
    reports every attribute set it ever recorded, at every collection, for the life of the
    meter provider, so the series of a dynamic child that left the tree would never go.
    Here `forget` drops the path's row and the next collection no longer reports it.

    The callbacks run in whatever thread collects (a periodic exporter has its own), while
    the recorder writes from the event loop: they read a copy of the table made in one step
    (``dict.copy``), and each value is a single attribute read.
    """

    def __init__(self, meter: Any, observation: Callable[..., object]) -> None:
        self._rows: dict[str, _Row] = {}
        self._observation = observation
        meter.create_observable_gauge(
            "super_visor_proc_up",
            callbacks=[self._observe("up")],
            description="1 while the proc is ready and running",
        )
        meter.create_observable_counter(
            "super_visor_proc_restarts_total",
            callbacks=[self._observe("restarts")],
            description="Restarts of the proc",
        )
        meter.create_observable_counter(
            "super_visor_proc_failures_total",
            callbacks=[self._observe("failures")],
            description="Failed runs of the proc",
        )
        meter.create_observable_gauge(
            "super_visor_start_seconds",
            callbacks=[self._observe("start")],
            unit="s",
            description="Its last start, STARTING to READY",
        )
        meter.create_observable_gauge(
            "super_visor_stop_seconds",
            callbacks=[self._observe("stop")],
            unit="s",
            description="Its last stop, STOPPING to its end",
        )

    def _observe(self, field: str) -> Callable[[object], list[object]]:
        """The callback reporting *field* of every row that has a value for it."""

        def observe(_options: object) -> list[object]:
            rows = self._rows.copy()
            return [
                self._observation(value, {"path": path})
                for path, row in rows.items()
                if (value := getattr(row, field)) is not None
            ]

        return observe

    def first_start(self, path: str) -> None:
        self._rows.setdefault(path, _Row())

    def up(self, path: str, value: int) -> None:
        self._rows[path].up = value

    def restarted(self, path: str) -> None:
        self._rows[path].restarts += 1

    def failed(self, path: str) -> None:
        self._rows[path].failures += 1

    def started(self, path: str, seconds: float) -> None:
        self._rows[path].start = seconds

    def stopped(self, path: str, seconds: float) -> None:
        self._rows[path].stop = seconds

    def forget(self, path: str) -> None:
        self._rows.pop(path, None)
