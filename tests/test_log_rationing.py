"""Rationed log lines (``_rationing``): when a whole tree stops, its first STOPPED lines are
logged one by one and the rest are counted in the root's "shutdown finished" line; every
STOPPED event is still delivered. A small tree shows every proc stopping, in order."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from super_visor import CancellationToken, Event, EventKind, SupervisorBuilder
from super_visor._rationing import STOPPED_LINES_PER_TREE_STOP

if TYPE_CHECKING:
    import pytest


async def idle(token: CancellationToken) -> None:
    await token.wait()


async def stop_tree_of(n: int, events: list[Event] | None) -> None:
    """Start and stop a tree of *n* idle procs; *events*: a callback records them there."""
    builder = SupervisorBuilder("app")
    if events is not None:
        builder.on_event(events.append)
    for i in range(n):
        builder.add_proc(idle, name=f"p{i}")
    async with builder.build().running() as handle:
        handle.shutdown("test over")


def stopped_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().endswith(": stopped")]


def finished_line(caplog: pytest.LogCaptureFixture) -> str:
    [line] = [r.getMessage() for r in caplog.records if "shutdown finished" in r.getMessage()]
    return line


async def test_a_small_tree_logs_every_proc_stopping_in_reverse_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="super_visor")
    await stop_tree_of(5, None)
    assert stopped_lines(caplog) == [f"app/p{i}: stopped" for i in reversed(range(5))]
    assert "not logged" not in finished_line(caplog)


async def test_a_large_tree_logs_its_first_stops_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="super_visor")
    n = STOPPED_LINES_PER_TREE_STOP + 30
    events: list[Event] = []
    await stop_tree_of(n, events)
    shown = [f"app/p{i}: stopped" for i in reversed(range(n))][:STOPPED_LINES_PER_TREE_STOP]
    assert stopped_lines(caplog) == shown
    assert finished_line(caplog).endswith("(30 more procs stopped, not logged one by one)")
    assert sum(e.kind is EventKind.STOPPED for e in events) == n  # every event still goes out


async def test_without_a_listener_the_lines_are_the_same(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="super_visor")
    n = STOPPED_LINES_PER_TREE_STOP + 30
    await stop_tree_of(n, None)  # no callback: events nobody hears are not even built
    shown = [f"app/p{i}: stopped" for i in reversed(range(n))][:STOPPED_LINES_PER_TREE_STOP]
    assert stopped_lines(caplog) == shown
    assert finished_line(caplog).endswith("(30 more procs stopped, not logged one by one)")


async def test_the_count_starts_again_with_each_run(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="super_visor")
    await stop_tree_of(STOPPED_LINES_PER_TREE_STOP + 1, [])
    caplog.clear()
    await stop_tree_of(3, [])
    assert len(stopped_lines(caplog)) == 3
