"""A proc that survives its force-cancel is abandoned after ``abandon_after`` (API.md §8).

Its outcome is ABANDONED (a failure, its stack logged) and the shutdown moves on to the
procs before it; ``start()`` cannot leave a live task behind, so it still waits for the
task, and the outcome stays ABANDONED when the task ends later.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import (
    CancellationToken,
    Event,
    EventKind,
    ProcStatus,
    Supervisor,
    SupervisorBuilder,
    SupervisorError,
)

from .fakes import Recorder

if TYPE_CHECKING:
    from collections.abc import Callable


def abandon_after(sup: Supervisor, seconds: float) -> Supervisor:
    specs = tuple(dataclasses.replace(spec, abandon_after=seconds) for spec in sup.specs)
    return sup._replace(specs=specs)


class Shielded:
    """Ignores its force-cancel until the test releases it."""

    name = "shielded"

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.release = anyio.Event()

    async def run_proc(self, token: CancellationToken) -> None:
        await token.wait()
        self.log.append("stopping shielded")
        with anyio.CancelScope(shield=True):
            await self.release.wait()
        self.log.append("shielded ended at last")


def release_on_abandon(proc: Shielded, events: list[Event]) -> Callable[[Event], None]:
    def on_event(event: Event) -> None:
        events.append(event)
        if event.kind is EventKind.ABANDONED and event.path.endswith("/shielded"):
            proc.log.append("abandoned shielded")
        if event.kind is EventKind.STOPPED and event.path == "app/first":
            proc.release.set()  # the shutdown moved on: now let the abandoned task end

    return on_event


async def test_a_proc_surviving_its_force_is_abandoned_and_the_stop_moves_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="super_visor")
    log: list[str] = []
    events: list[Event] = []
    shielded = Shielded(log)
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("first", log))
        .add_proc(shielded, grace=0.05)
        .add_proc(Recorder("last", log))
        .on_event(release_on_abandon(shielded, events))
        .build()
    )
    with pytest.raises(SupervisorError) as caught:
        await _stop_at_once(abandon_after(sup, 0.1))
    report = caught.value.report
    assert log.index("abandoned shielded") < log.index("stopping first")
    assert log[-1] == "shielded ended at last"  # start() waited for the task after all
    assert report["shielded"].status is ProcStatus.ABANDONED  # and the outcome stands
    assert report["first"].status is ProcStatus.STOPPED
    abandoned = [e for e in events if e.kind is EventKind.ABANDONED]
    assert [e.path for e in abandoned] == ["app/shielded"]
    assert "its stack" in abandoned[0].detail
    records = [r for r in caplog.records if "abandoned" in r.getMessage()]
    assert records
    assert records[0].levelno == logging.ERROR


async def test_an_abandoned_proc_fails_the_run() -> None:
    log: list[str] = []
    shielded = Shielded(log)
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("first", log))
        .add_proc(shielded, grace=0.05)
        .on_event(release_on_abandon(shielded, []))
        .build()
    )
    with pytest.raises(SupervisorError) as caught:
        await _stop_at_once(abandon_after(sup, 0.1))
    assert caught.value.report["shielded"].status is ProcStatus.ABANDONED
    [error] = caught.value.exceptions
    assert "app/shielded" in str(error)
    assert "abandoned" in str(error)


async def _stop_at_once(sup: Supervisor) -> None:
    async with sup.running() as handle:
        handle.shutdown("test over")


async def test_a_nested_supervisor_with_an_abandoned_proc_is_abandoned_too() -> None:
    log: list[str] = []
    events: list[Event] = []
    shielded = Shielded(log)
    inner = abandon_after(SupervisorBuilder("inner").add_proc(shielded, grace=0.05).build(), 0.1)
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("first", log))
        .add_proc(inner)
        .on_event(release_on_abandon(shielded, events))
        .build()
    )
    with pytest.raises(SupervisorError) as caught:
        await _stop_at_once(sup)
    report = caught.value.report
    assert report["inner"].status is ProcStatus.ABANDONED
    assert report["inner/shielded"].status is ProcStatus.ABANDONED
    assert report["first"].status is ProcStatus.STOPPED
    paths = [e.path for e in events if e.kind is EventKind.ABANDONED]
    assert paths == ["app/inner/shielded", "app/inner"]


async def test_a_factory_products_force_reserve_delays_the_force() -> None:
    class Drains:
        """Enforces its own grace (like Command): asks for a reserve before the force."""

        name = "drains"
        force_reserve = 30.0

        async def run_proc(self, token: CancellationToken) -> str:
            await token.wait()
            await anyio.sleep(0.3)  # its own drain: longer than the grace, within the reserve
            return "drained"

    sup = SupervisorBuilder("app").add_factory("drains", Drains, grace=0.05).build()
    async with sup.running() as handle:
        handle.shutdown("test over")
    assert handle.report["drains"].status is ProcStatus.STOPPED
    assert handle.report["drains"].result == "drained"


async def test_forcing_everything_before_any_shutdown_forces_each_proc_once() -> None:
    log: list[str] = []
    release = anyio.Event()

    async def slow(token: CancellationToken) -> None:
        with anyio.CancelScope(shield=True):
            await release.wait()

    sup = SupervisorBuilder("app").add_proc(Recorder("first", log)).add_proc(slow).build()
    async with sup.running() as handle:
        handle._run.force_all(None, "forced from outside")
        release.set()
        await handle.wait_stopped()  # or the block is cancelled: the tree stopped itself
    report = handle.report
    assert report["slow"].status is ProcStatus.FORCED
    assert report["first"].status is ProcStatus.FORCED
    assert report.reason == "forced from outside"
