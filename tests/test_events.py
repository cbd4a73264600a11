"""Lifecycle events (``super_visor._events``): their order over a whole run, and safe delivery.

Events are collected with an ``on_event`` callback (synchronous, so the list is exactly the
order of emission) and compared as ``(kind, path)`` pairs.
"""

from __future__ import annotations

import logging

import anyio
import pytest

from super_visor import (
    CancellationToken,
    ConfigError,
    Event,
    EventKind,
    ProcStatus,
    Restart,
    SupervisorBuilder,
    SupervisorError,
)

K = EventKind


async def idle(token: CancellationToken) -> None:
    await token.wait()


def pairs(events: list[Event]) -> list[tuple[EventKind, str]]:
    return [(e.kind, e.path) for e in events]


async def test_a_full_lifecycle_in_order() -> None:
    events: list[Event] = []
    pipeline = SupervisorBuilder("pipeline").add_proc(idle, name="sink")
    sup = (
        SupervisorBuilder("app")
        .add_proc(idle, name="db")
        .add_proc(pipeline)
        .add_proc(idle, name="web")
        .on_event(events.append)
        .build()
    )
    async with sup.running() as handle:
        handle.shutdown("test over")
    assert pairs(events) == [
        (K.STARTING, "app/db"),
        (K.READY, "app/db"),
        (K.STARTING, "app/pipeline"),
        (K.STARTING, "app/pipeline/sink"),
        (K.READY, "app/pipeline/sink"),
        (K.READY, "app/pipeline"),
        (K.STARTING, "app/web"),
        (K.READY, "app/web"),
        (K.READY, "app"),  # the whole tree is ready
        (K.SHUTDOWN_BEGUN, "app"),
        (K.STOPPING, "app/web"),
        (K.STOPPED, "app/web"),
        (K.STOPPING, "app/pipeline"),
        (K.SHUTDOWN_BEGUN, "app/pipeline"),
        (K.STOPPING, "app/pipeline/sink"),
        (K.STOPPED, "app/pipeline/sink"),
        (K.SHUTDOWN_FINISHED, "app/pipeline"),
        (K.STOPPED, "app/pipeline"),
        (K.STOPPING, "app/db"),
        (K.STOPPED, "app/db"),
        (K.SHUTDOWN_FINISHED, "app"),
    ]
    assert events[9].detail == "test over"
    times = [e.time for e in events]
    assert times == sorted(times)


async def test_a_failure_in_order() -> None:
    events: list[Event] = []

    async def boom(token: CancellationToken) -> None:
        msg = "boom"
        raise RuntimeError(msg)

    sup = (
        SupervisorBuilder("app")
        .add_proc(idle, name="db")
        .add_proc(boom)
        .on_event(events.append)
        .build()
    )
    with pytest.raises(SupervisorError):
        await sup.start(handle_signals=False)
    assert pairs(events) == [
        (K.STARTING, "app/db"),
        (K.READY, "app/db"),
        (K.STARTING, "app/boom"),
        (K.FAILED, "app/boom"),
        (K.SHUTDOWN_BEGUN, "app"),
        (K.STOPPING, "app/db"),
        (K.STOPPED, "app/db"),
        (K.SHUTDOWN_FINISHED, "app"),
    ]
    failed = events[3]
    assert isinstance(failed.error, RuntimeError)
    assert failed.level == logging.ERROR


async def test_a_restart_in_order() -> None:
    events: list[Event] = []
    back_up = anyio.Event()
    runs: list[CancellationToken] = []

    def record(event: Event) -> None:
        events.append(event)
        if event.kind is K.READY and event.restarts == 1:
            back_up.set()

    async def flaky(token: CancellationToken) -> None:
        runs.append(token)
        if len(runs) == 1:
            msg = "first run fails"
            raise RuntimeError(msg)
        await token.wait()

    sup = (
        SupervisorBuilder("app").add_proc(flaky, restart=Restart.TRANSIENT).on_event(record).build()
    )
    async with sup.running() as handle:
        await back_up.wait()
        handle.shutdown("test over")
    # The first run raised before the supervisor saw it begin, so it was never READY.
    assert pairs(events) == [
        (K.STARTING, "app/flaky"),
        (K.RESTARTING, "app/flaky"),
        (K.READY, "app"),  # start-up is over: the restart goes on in the running tree
        (K.STARTING, "app/flaky"),
        (K.READY, "app/flaky"),
        (K.SHUTDOWN_BEGUN, "app"),
        (K.STOPPING, "app/flaky"),
        (K.STOPPED, "app/flaky"),
        (K.SHUTDOWN_FINISHED, "app"),
    ]
    assert isinstance(events[1].error, RuntimeError)
    assert [e.restarts for e in events if e.kind is K.STARTING] == [0, 1]
    assert handle.report["flaky"].status is ProcStatus.STOPPED
    assert handle.report["flaky"].restarts == 1


async def test_a_raising_callback_is_logged_and_the_tree_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Event] = []

    def broken(event: Event) -> None:
        msg = "callback bug"
        raise ValueError(msg)

    sup = (
        SupervisorBuilder("app")
        .add_proc(idle, name="web")
        .on_event(broken)
        .on_event(seen.append)  # the next callback still gets every event
        .build()
    )
    caplog.set_level(logging.ERROR, logger="super_visor")
    async with sup.running() as handle:
        handle.shutdown("test over")
    assert handle.report["web"].status is ProcStatus.STOPPED
    assert len(seen) == 7  # web: starting, ready, stopping, stopped; app: ready, shutdown x2
    errors = [r for r in caplog.records if "an on_event callback raised" in r.getMessage()]
    assert len(errors) == len(seen)
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ValueError)


async def test_a_slow_reader_does_not_slow_the_tree_and_drops_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sup = SupervisorBuilder("app").add_proc(idle, name="web").build()
    caplog.set_level(logging.WARNING, logger="super_visor")
    async with sup.running() as handle, handle.events(buffer=2) as stream:
        for n in range(5):  # the stream is not read while the tree works
            await handle.start_child(idle, name=f"conn-{n}")
        handle.shutdown("test over")
        await handle.wait_stopped()
        received = [event async for event in stream]
    assert len(received) == 2  # the oldest ones: a consistent prefix
    assert (received[0].kind, received[0].path) == (K.STARTING, "app/conn-0")
    assert stream.dropped > 0
    assert handle.report["web"].status is ProcStatus.STOPPED
    assert sum("too slow" in r.getMessage() for r in caplog.records) == 1  # warned once


async def test_with_callbacks_adds_callbacks_to_a_copy_only() -> None:
    from_builder: list[Event] = []
    added: list[Event] = []
    sup = SupervisorBuilder("app").add_proc(idle, name="web").on_event(from_builder.append).build()

    observed = sup.with_callbacks(added.append)

    assert observed is not sup
    async with observed.running() as handle:
        handle.shutdown("test over")
    assert pairs(added) == pairs(from_builder)
    assert (K.STARTING, "app/web") in pairs(added)
    from_builder.clear()
    added.clear()
    async with sup.running() as handle:
        handle.shutdown("test over")
    assert from_builder
    assert added == []  # the original is left as built


def test_with_callbacks_refuses_an_async_callback() -> None:
    async def record(event: Event) -> None:
        """Wrongly async: the supervisor calls callbacks synchronously."""

    sup = SupervisorBuilder("app").add_proc(idle, name="web").build()

    with pytest.raises(ConfigError) as info:
        sup.with_callbacks(record)

    assert info.value.path == "app"
    assert info.value.problem.startswith("with_callbacks takes a plain (sync) callable")
