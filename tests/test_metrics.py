"""``super_visor.metrics``: Prometheus and OpenTelemetry callbacks over real trees (API.md §9).

Prometheus is read from a fresh ``CollectorRegistry``; OpenTelemetry from the SDK's
``InMemoryMetricReader``. Times are checked only from below (a gate that sleeps 50 ms took
at least that long to start), never from above: the machine may be busy.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import anyio
import prometheus_client
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from super_visor import (
    CancellationToken,
    Event,
    EventKind,
    Restart,
    SupervisorBuilder,
    SupervisorError,
)
from super_visor.metrics import opentelemetry, prometheus
from super_visor.metrics._prometheus import _PrometheusSink
from super_visor.metrics._recorder import Recorder
from super_visor.testing import wait_for_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from super_visor import RunHandle, Supervisor

PATHS = ("app/db", "app/pipeline", "app/pipeline/consumer", "app/web")


async def idle(token: CancellationToken) -> None:
    await token.wait()


async def slow_gate(token: CancellationToken) -> None:
    await anyio.sleep(0.05)
    token.ready("db")
    await token.wait()


class CrashOnce:
    """Crashes on its first run, then idles: one restart after one failure."""

    name = "consumer"

    def __init__(self) -> None:
        self.runs = 0

    async def run_proc(self, token: CancellationToken) -> None:
        self.runs += 1
        if self.runs == 1:
            msg = "first run crashes"
            raise RuntimeError(msg)
        await token.wait()


def tree(callback: object) -> Supervisor:
    pipeline = SupervisorBuilder("pipeline").add_proc(CrashOnce(), restart=Restart.PERMANENT)
    return (
        SupervisorBuilder("app")
        .add_proc(slow_gate, name="db", wait_ready=True)
        .add_proc(pipeline)
        .add_proc(idle, name="web")
        .on_event(callback)  # type: ignore[arg-type]
        .build()
    )


async def wait_until_running(path: str, ready: anyio.Event) -> None:
    await ready.wait()


# ----------------------------------------------------------------- Prometheus


@pytest.mark.anyio
async def test_prometheus_keeps_one_series_per_proc_path_nested_included() -> None:
    registry = CollectorRegistry()
    sup = tree(prometheus(registry))

    def value(name: str, path: str) -> float | None:
        return registry.get_sample_value(name, {"path": path})

    async with sup.running():
        # The restart happened during start-up; the tree is ready now.
        for path in PATHS:
            assert value("super_visor_proc_up", path) == 1, path
            start = value("super_visor_start_seconds", path)
            assert start is not None
            assert start >= 0
        assert value("super_visor_start_seconds", "app/db") >= 0.05  # type: ignore[operator]
        assert value("super_visor_proc_restarts_total", "app/pipeline/consumer") == 1
        assert value("super_visor_proc_failures_total", "app/pipeline/consumer") == 1
        assert value("super_visor_proc_restarts_total", "app/web") == 0
    for path in PATHS:
        assert value("super_visor_proc_up", path) == 0, path
        stop = value("super_visor_stop_seconds", path)
        assert stop is not None, path
        assert stop >= 0
    assert value("super_visor_proc_up", "app") is None  # the root is not a proc of itself
    assert value("super_visor_proc_failures_total", "app/web") == 0


@pytest.mark.anyio
async def test_a_final_failure_counts_once_and_is_not_a_restart() -> None:
    registry = CollectorRegistry()

    async def boom(token: CancellationToken) -> None:
        msg = "boom"
        raise ValueError(msg)

    sup = (
        SupervisorBuilder("app")
        .add_proc(idle, name="web")
        .add_proc(boom)
        .on_event(prometheus(registry))
        .build()
    )
    with pytest.raises(SupervisorError):
        await sup.start(handle_signals=False)
    assert registry.get_sample_value("super_visor_proc_failures_total", {"path": "app/boom"}) == 1
    assert registry.get_sample_value("super_visor_proc_restarts_total", {"path": "app/boom"}) == 0
    assert registry.get_sample_value("super_visor_proc_up", {"path": "app/boom"}) == 0


def test_two_callbacks_on_one_registry_share_its_metrics() -> None:
    registry = CollectorRegistry()
    prometheus(registry)
    prometheus(registry)  # prometheus_client alone would raise "Duplicated timeseries"
    names = {metric.name for metric in registry.collect()}
    assert {"super_visor_proc_up", "super_visor_proc_restarts"} <= names


def test_durations_are_monotonic_time_not_the_events_wall_clock() -> None:
    """The start and stop durations come from the recorder's monotonic clock: a wall
    clock stepped back by an hour between STARTING and READY changes nothing."""
    registry = CollectorRegistry()
    now = [100.0]
    record = Recorder(_PrometheusSink(prometheus_client, registry), clock=lambda: now[0])

    def at(kind: EventKind, wall: float, monotonic: float) -> None:
        now[0] = monotonic
        record(Event(kind=kind, path="app/db", time=wall))

    at(EventKind.STARTING, wall=5000.0, monotonic=100.0)
    at(EventKind.READY, wall=1400.0, monotonic=102.5)  # NTP stepped the wall clock back
    at(EventKind.STOPPING, wall=1500.0, monotonic=110.0)
    at(EventKind.STOPPED, wall=9000.0, monotonic=110.25)
    value = registry.get_sample_value
    assert value("super_visor_start_seconds", {"path": "app/db"}) == 2.5
    assert value("super_visor_stop_seconds", {"path": "app/db"}) == 0.25


# ----------------------------------------------------------------- dynamic children

#: The procs of `dynamic_tree`'s plan: their series stay for the whole run.
PLANNED = {"app/web", "app/pipeline", "app/pipeline/consumer"}
SERIES = (
    "super_visor_proc_up",
    "super_visor_proc_restarts_total",
    "super_visor_proc_failures_total",
    "super_visor_start_seconds",
    "super_visor_stop_seconds",
)


def dynamic_tree(*callbacks: Callable[[Event], None]) -> Supervisor:
    pipeline = SupervisorBuilder("pipeline").add_proc(idle, name="consumer")
    builder = SupervisorBuilder("app").add_proc(idle, name="web").add_proc(pipeline)
    for callback in callbacks:
        builder = builder.on_event(callback)
    return builder.build()


async def come_and_go(handle: RunHandle, count: int) -> None:
    """*count* per-connection children with new names, each started and stopped."""
    for number in range(count):
        await handle.start_child(idle, name=f"conn-{number}")
        await handle.stop_child(f"conn-{number}")


def prometheus_paths(registry: CollectorRegistry, name: str) -> set[str]:
    return {
        sample.labels["path"]
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == name
    }


async def leave_every_way(
    sup: Supervisor, registry: CollectorRegistry, seen: dict[str, object]
) -> None:
    """Dynamic children leave (stopped, failed for good) or restart; *seen* gets what the
    registry showed on the way."""
    async with sup.running() as handle:
        await handle.start_child(idle, name="conn-stopped")
        seen["while_running"] = prometheus_paths(registry, "super_visor_proc_up")
        await handle.stop_child("conn-stopped")
        events = handle.events()
        await handle.start_child(idle, name="conn-failed", restart=Restart.TEMPORARY)
        handle.inject_failure("conn-failed", RuntimeError("the client sent garbage"))
        await wait_for_event(handle, EventKind.FAILED, "conn-failed", events=events)
        await handle.start_child(
            idle, name="conn-kept", under="pipeline", restart=Restart.PERMANENT
        )
        events = handle.events()
        handle.inject_failure("pipeline/conn-kept", RuntimeError("a crash, then a restart"))
        await wait_for_event(handle, EventKind.READY, "pipeline/conn-kept", events=events)
        seen["restarts"] = registry.get_sample_value(
            "super_visor_proc_restarts_total", {"path": "app/pipeline/conn-kept"}
        )
        await handle.stop("web")  # planned: it stays in the tree, stopped
        seen["before_shutdown"] = {name: prometheus_paths(registry, name) for name in SERIES}


@pytest.mark.anyio
async def test_a_dynamic_childs_series_go_when_it_leaves_the_tree() -> None:
    """Stopped, failed for good, or stopped by the shutdown: a dynamic child's series go.
    A restart is not leaving, and a planned proc keeps its series when it stops."""
    registry = CollectorRegistry()
    seen: dict[str, object] = {}
    with pytest.raises(SupervisorError, match="app/conn-failed"):  # a failure stays reported
        await leave_every_way(dynamic_tree(prometheus(registry)), registry, seen)
    assert "app/conn-stopped" in seen["while_running"]  # type: ignore[operator]
    assert seen["restarts"] == 1  # a restart is not leaving: the series stay, counting it
    before_shutdown = {*PLANNED, "app/pipeline/conn-kept"}
    assert seen["before_shutdown"] == {
        "super_visor_proc_up": before_shutdown,
        "super_visor_proc_restarts_total": before_shutdown,
        "super_visor_proc_failures_total": before_shutdown,
        "super_visor_start_seconds": before_shutdown,
        "super_visor_stop_seconds": {"app/web"},  # the only one stopped so far
    }
    assert registry.get_sample_value("super_visor_proc_up", {"path": "app/web"}) == 0
    # The shutdown ended conn-kept for good; the planned procs keep their last values.
    for name in SERIES:
        assert prometheus_paths(registry, name) == PLANNED, name


@pytest.mark.anyio
async def test_many_short_lived_children_leave_no_series_behind() -> None:
    registry = CollectorRegistry()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        sup = dynamic_tree(opentelemetry(provider.get_meter("test")), prometheus(registry))
        async with sup.running() as handle:
            await come_and_go(handle, 1)
            first = points(reader)
            await come_and_go(handle, 40)
            after = points(reader)
    finally:
        provider.shutdown()
    assert after.keys() == first.keys()
    assert {path for _, path in after} == PLANNED
    assert prometheus_paths(registry, "super_visor_proc_up") == PLANNED


# ----------------------------------------------------------------- OpenTelemetry


@pytest.mark.anyio
async def test_opentelemetry_records_the_same_metrics_with_a_path_attribute() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        sup = tree(opentelemetry(provider.get_meter("test")))
        async with sup.running():
            running = points(reader)
        stopped = points(reader)
    finally:
        provider.shutdown()
    for path in PATHS:
        assert running["super_visor_proc_up", path] == 1, path
        assert running["super_visor_start_seconds", path] >= 0
        assert stopped["super_visor_proc_up", path] == 0, path
        assert stopped["super_visor_stop_seconds", path] >= 0
    assert running["super_visor_start_seconds", "app/db"] >= 0.05
    assert stopped["super_visor_proc_restarts_total", "app/pipeline/consumer"] == 1
    assert stopped["super_visor_proc_failures_total", "app/pipeline/consumer"] == 1


def points(reader: InMemoryMetricReader) -> dict[tuple[str, str], float]:
    """(metric name, path) -> the point's value, from one collection."""
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[tuple[str, str], float] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    path = str((point.attributes or {})["path"])
                    found[metric.name, path] = point.value  # type: ignore[union-attr]
    return found


# ----------------------------------------------------------------- imports


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_import_super_visor_imports_no_metrics_library() -> None:
    done = _python(
        """
        import sys
        import super_visor
        import super_visor.metrics  # the functions import their library when called
        for name in ("prometheus_client", "opentelemetry"):
            assert name not in sys.modules, name
        """
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("function", "module", "extra"),
    [("prometheus", "prometheus_client", "prometheus"), ("opentelemetry", "opentelemetry", "otel")],
)
def test_a_missing_library_names_the_extra(function: str, module: str, extra: str) -> None:
    done = _python(
        f"""
        import sys
        sys.modules[{module!r}] = None  # as if it were not installed: importing it fails
        from super_visor.metrics import {function}
        try:
            {function}()
        except ImportError as exc:
            print(exc)
        """
    )
    assert done.returncode == 0, done.stderr
    assert f"pip install 'super_visor[{extra}]'" in done.stdout
    assert f"super_visor.metrics.{function}()" in done.stdout
