"""`opentelemetry`: the tree's metrics as OpenTelemetry instruments (extra ``[otel]``).

Only the OpenTelemetry *API* is needed: the application chooses the SDK, the reader and
the exporter (OTLP, Prometheus, ...) and super_visor records into whatever meter provider
it set up. Without one, the API's no-op provider makes every update free.
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
    Counters are OpenTelemetry counters, the rest synchronous gauges; every point has a
    ``path`` attribute. The metrics are listed in `super_visor.metrics`.

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
    return Recorder(_OtelSink(meter))


@final
class _OtelSink:
    """The five instruments of one meter; each point carries ``{"path": path}``."""

    def __init__(self, meter: Any) -> None:
        self._up = meter.create_gauge(
            "super_visor_proc_up", description="1 while the proc is ready and running"
        )
        self._restarts = meter.create_counter(
            "super_visor_proc_restarts_total", description="Restarts of the proc"
        )
        self._failures = meter.create_counter(
            "super_visor_proc_failures_total", description="Failed runs of the proc"
        )
        self._start = meter.create_gauge(
            "super_visor_start_seconds", unit="s", description="Its last start, STARTING to READY"
        )
        self._stop = meter.create_gauge(
            "super_visor_stop_seconds", unit="s", description="Its last stop, STOPPING to its end"
        )

    def first_start(self, path: str) -> None:
        self._restarts.add(0, {"path": path})
        self._failures.add(0, {"path": path})

    def up(self, path: str, value: int) -> None:
        self._up.set(value, {"path": path})

    def restarted(self, path: str) -> None:
        self._restarts.add(1, {"path": path})

    def failed(self, path: str) -> None:
        self._failures.add(1, {"path": path})

    def started(self, path: str, seconds: float) -> None:
        self._start.set(seconds, {"path": path})

    def stopped(self, path: str, seconds: float) -> None:
        self._stop.set(seconds, {"path": path})
