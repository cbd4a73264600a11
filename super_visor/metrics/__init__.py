"""Metrics of a supervision tree, for Prometheus or OpenTelemetry (optional extras).

Each function returns an ``on_event`` callback; pass it to ``SupervisorBuilder.on_event``
(or ``Supervisor.with_callbacks``) on the root, and it keeps these metrics, one series per
proc path (``path="app/pipeline/consumer"``), nested supervisors included:

- ``super_visor_proc_up{path}``: 1 from the proc's READY until its run ends, else 0;
- ``super_visor_proc_restarts_total{path}``: restarts (the RESTARTING events);
- ``super_visor_proc_failures_total{path}``: runs that failed (raised, also when the proc was
  restarted afterwards, or was abandoned);
- ``super_visor_start_seconds{path}``: how long its last start took, STARTING to READY;
- ``super_visor_stop_seconds{path}``: how long its last stop took, STOPPING to its end.

A dynamic child (``start_child()``, e.g. one per connection, each with a new name) keeps
its series while it is in the tree; when its run ends without a restart (stopped, completed
or failed for good) they are removed, so short-lived children do not grow the registry
without bound. A child started again under the same name starts its series from zero. Procs
of the tree's plan (every proc started by the time the whole tree is first ready) keep
theirs for the whole run. Durations are measured on the monotonic clock.

``import super_visor`` imports neither client library; they are imported when one of these
functions is called, and a missing one raises `~super_visor.procs.MissingExtraError` naming
``pip install 'super_visor[prometheus]'`` or ``'super_visor[otel]'``.

.. versionadded:: 0.2
"""

from __future__ import annotations

from ._otel import opentelemetry as opentelemetry
from ._prometheus import prometheus as prometheus

__all__ = ("opentelemetry", "prometheus")
