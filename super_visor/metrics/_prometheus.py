"""`prometheus`: the tree's metrics in a ``prometheus_client`` registry (extra ``[prometheus]``).

The five metrics are made once per registry and shared by every callback made for it: a
second ``prometheus()`` on the same registry (a second tree, a test) would otherwise fail
with prometheus_client's "Duplicated timeseries". Two trees on one registry share the series
of a path, so give them different root names.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, final

from ._recorder import Recorder

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._events import Event

__all__ = ("prometheus",)

_SHARED: weakref.WeakKeyDictionary[Any, _PrometheusSink] = weakref.WeakKeyDictionary()


def prometheus(registry: object = None) -> Callable[[Event], None]:
    """An ``on_event`` callback keeping the tree's metrics in *registry*.

    *registry* is a ``prometheus_client.CollectorRegistry``; None means
    ``prometheus_client.REGISTRY``, the one ``start_http_server()`` and
    ``generate_latest()`` serve by default. The metrics are listed in `super_visor.metrics`.

    Raises:
        MissingExtraError: ``prometheus_client`` is not installed
            (``pip install 'super_visor[prometheus]'``).

    .. versionadded:: 0.2
    """
    from ..procs._common import require

    client = require("super_visor.metrics.prometheus()", "prometheus_client", "prometheus")
    if registry is None:
        registry = client.REGISTRY
    sink = _SHARED.get(registry)
    if sink is None:
        sink = _SHARED[registry] = _PrometheusSink(client, registry)
    return Recorder(sink)


@final
class _PrometheusSink:
    """The five metrics in one registry, labelled by proc path."""

    def __init__(self, client: Any, registry: object) -> None:
        def make(kind: str, name: str, text: str) -> Any:
            return getattr(client, kind)(name, text, ["path"], registry=registry)

        self._up = make("Gauge", "super_visor_proc_up", "1 while the proc is ready and running")
        # prometheus_client adds "_total" to a counter's name itself.
        self._restarts = make("Counter", "super_visor_proc_restarts", "Restarts of the proc")
        self._failures = make("Counter", "super_visor_proc_failures", "Failed runs of the proc")
        self._start = make(
            "Gauge", "super_visor_start_seconds", "Its last start, STARTING to READY"
        )
        self._stop = make("Gauge", "super_visor_stop_seconds", "Last stop, STOPPING to its end")

    def first_start(self, path: str) -> None:
        self._restarts.labels(path)
        self._failures.labels(path)

    def up(self, path: str, value: int) -> None:
        self._up.labels(path).set(value)

    def restarted(self, path: str) -> None:
        self._restarts.labels(path).inc()

    def failed(self, path: str) -> None:
        self._failures.labels(path).inc()

    def started(self, path: str, seconds: float) -> None:
        self._start.labels(path).set(seconds)

    def stopped(self, path: str, seconds: float) -> None:
        self._stop.labels(path).set(seconds)

    def forget(self, path: str) -> None:
        for metric in (self._up, self._restarts, self._failures, self._start, self._stop):
            metric.remove(path)  # a label set it never had is no error
