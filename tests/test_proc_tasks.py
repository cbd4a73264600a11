"""`ProcTasks` (``super_visor._tasks``), tested directly: where a run's proc tasks run.

The proc tasks are spawned on the backend without anyio's task handle, and a keeper task in
the run's task group holds them. These tests check the keeper's promises one at a time,
with an anyio task group standing in for the run's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

from super_visor import (
    CancellationToken,
    Event,
    EventKind,
    Restart,
    SupervisorBuilder,
    SupervisorError,
)
from super_visor._tasks import open_proc_tasks

from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from super_visor._tasks import ForceScope


class Escaped(Exception):
    """What a proc task lets escape (in the engine, only a bug of ours would)."""


async def wait_then_log(scope: ForceScope, release: anyio.Event, log: list[str]) -> None:
    with scope:
        await release.wait()
        log.append("task ended")


async def escape(scope: ForceScope) -> None:
    with scope:
        await anyio.lowlevel.checkpoint()
        raise Escaped


async def never_spawned(scope: ForceScope) -> None:
    raise AssertionError  # pragma: no cover (spawn refuses before calling it)


async def test_spawn_after_close_raises_naming_the_path() -> None:
    async with anyio.create_task_group() as tg:
        tasks = await open_proc_tasks("app/sub", tg)
        tasks.close()
        with pytest.raises(RuntimeError, match=r"^app/sub: the run has ended"):
            _ = tasks.spawn(tasks.new_scope(), never_spawned, tasks.new_scope())


async def test_soon_calls_its_function_only_after_the_caller_yielded() -> None:
    log: list[str] = []
    called = anyio.Event()

    def callback(what: str) -> None:
        log.append(what)
        called.set()

    async with anyio.create_task_group() as tg:
        tasks = await open_proc_tasks("t", tg)
        tasks.soon(callback, "soon")
        log.append("after soon")
        assert log == ["after soon"]  # not called before the caller yields
        await tasks.checkpoint()
        await called.wait()
        tasks.close()
    assert log == ["after soon", "soon"]


async def test_keeper_returns_once_closed_and_every_task_ended() -> None:
    log: list[str] = []
    release = anyio.Event()
    async with anyio.create_task_group() as outer:
        outer.start_soon(release_later, release, log)
        async with anyio.create_task_group() as tg:
            tasks = await open_proc_tasks("t", tg)
            scope = tasks.new_scope()
            _ = tasks.spawn(scope, wait_then_log, scope, release, log)
            tasks.close()
            log.append("closed")
        log.append("task group exited")
    assert log == ["closed", "releasing", "task ended", "task group exited"]


async def release_later(release: anyio.Event, log: list[str]) -> None:
    await anyio.wait_all_tasks_blocked()  # the keeper waits for the task by now
    log.append("releasing")
    release.set()


async def test_keeper_with_no_task_returns_once_closed() -> None:
    async with anyio.create_task_group() as tg:
        tasks = await open_proc_tasks("t", tg)
        tasks.close()
    # reaching here is the test: the hang guard fails it otherwise


async def test_keeper_cancelled_cancels_every_task_and_waits_for_it() -> None:
    log: list[str] = []
    async with anyio.create_task_group() as tg:
        tasks = await open_proc_tasks("t", tg)
        scope = tasks.new_scope()
        _ = tasks.spawn(scope, wait_then_shielded_cleanup, scope, log)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert log == ["cancelled", "cleaned up"]


async def wait_then_shielded_cleanup(scope: ForceScope, log: list[str]) -> None:
    with scope:
        try:
            await anyio.sleep_forever()
        finally:
            log.append("cancelled")
            with anyio.CancelScope(shield=True):
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
            log.append("cleaned up")


async def test_an_error_escaping_a_task_surfaces_from_the_task_group() -> None:
    with pytest.raises(BaseExceptionGroup) as caught:
        await let_one_escape(cancel=False)
    assert caught.group_contains(Escaped)


async def test_an_error_escaping_a_task_surfaces_also_when_the_keeper_is_cancelled() -> None:
    with pytest.raises(BaseExceptionGroup) as caught:
        await let_one_escape(cancel=True)
    assert caught.group_contains(Escaped)


async def let_one_escape(*, cancel: bool) -> None:
    """Spawn a task that lets an error escape; then close, or cancel the task group."""
    async with anyio.create_task_group() as tg:
        tasks = await open_proc_tasks("t", tg)
        scope = tasks.new_scope()
        _ = tasks.spawn(scope, escape, scope)
        if cancel:
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        else:
            tasks.close()


# ------------------------------------------------------- through the public API: lifetimes


def waits_then_logs_end(
    name: str, log: list[str]
) -> Callable[[CancellationToken], Awaitable[None]]:
    """A proc that waits for its stop and logs ``end <name>`` in ``finally``."""

    async def proc(token: CancellationToken) -> None:
        try:
            await token.wait()
        finally:
            log.append(f"end {name}")

    return proc


def cleans_up_shielded(name: str, log: list[str]) -> Callable[[CancellationToken], Awaitable[None]]:
    """A proc that, stopped or cancelled, shields a short cleanup (simulated work, not
    synchronisation) and then logs ``end <name>``."""

    async def proc(token: CancellationToken) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.move_on_after(5.0, shield=True):
                await anyio.sleep(0.01)
            log.append(f"end {name}")

    return proc


def tree(log: list[str], on_event: Callable[[Event], object]) -> SupervisorBuilder:
    """a (waits), b (shields its cleanup), inner/c (nested, waits), d (shields, nested)."""
    inner = (
        SupervisorBuilder("inner", grace=0.05)
        .add_proc(waits_then_logs_end("c", log), name="c")
        .add_proc(cleans_up_shielded("d", log), name="d")
    )
    return (
        SupervisorBuilder("app", grace=0.05)
        .add_proc(waits_then_logs_end("a", log), name="a")
        .add_proc(cleans_up_shielded("b", log), name="b")
        .add_proc(inner)
        .on_event(on_event)
    )


ENDS = ["end a", "end b", "end c", "end d"]


async def test_every_proc_has_ended_when_start_returns() -> None:
    log: list[str] = []

    async def done(token: CancellationToken) -> None:
        await anyio.lowlevel.checkpoint()

    sup = tree(log, lambda _: None).add_proc(done).build()  # done ending stops the tree
    await sup.start(handle_signals=False)
    assert sorted(log) == ENDS


async def test_every_proc_has_ended_when_start_raises() -> None:
    log: list[str] = []

    async def crash(token: CancellationToken) -> None:
        await anyio.lowlevel.checkpoint()
        raise Escaped

    sup = tree(log, lambda _: None).add_proc(crash).build()
    with pytest.raises(SupervisorError):
        await sup.start(handle_signals=False)
    assert sorted(log) == ENDS


async def test_a_crash_looping_proc_has_ended_when_start_raises() -> None:
    """A proc restarted in place until the restart limit: no run of it outlives start()."""
    log: list[str] = []

    async def crash(token: CancellationToken) -> None:
        try:
            await anyio.lowlevel.checkpoint()
            raise Escaped
        finally:
            log.append("end crash")

    sup = (
        SupervisorBuilder("app", max_restarts=5, within=60.0)
        .add_proc(waits_then_logs_end("a", log), name="a")
        .add_proc(crash, restart=Restart.PERMANENT)
        .build()
    )
    with pytest.raises(SupervisorError):
        await sup.start(handle_signals=False)
    assert log == ["end crash"] * 6 + ["end a"]


async def cancel_once_ready(
    sup_start: Callable[[], Awaitable[object]], log: list[str], ready: anyio.Event
) -> None:
    """Run *sup_start* in a cancel scope that another task cancels once the tree is ready;
    log ``scope exited`` right after the scope."""
    scope = anyio.CancelScope()

    async def run() -> None:
        with scope:
            await sup_start()
        log.append("scope exited")

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await ready.wait()
        scope.cancel()


def set_on_tree_ready(ready: anyio.Event) -> Callable[[Event], None]:
    def on_event(event: Event) -> None:
        if event.kind is EventKind.READY and event.path == "app":
            ready.set()

    return on_event


async def test_an_enclosing_scope_cancelling_start_ends_every_proc_first() -> None:
    log: list[str] = []
    ready = anyio.Event()
    sup = tree(log, set_on_tree_ready(ready)).build()
    await cancel_once_ready(lambda: sup.start(handle_signals=False), log, ready)
    assert sorted(log[:-1]) == ENDS
    assert log[-1] == "scope exited"


async def test_an_enclosing_scope_cancelling_running_ends_every_proc_first() -> None:
    log: list[str] = []
    ready = anyio.Event()
    sup = tree(log, set_on_tree_ready(ready)).build()

    async def run() -> None:
        async with sup.running():
            await anyio.sleep_forever()

    await cancel_once_ready(run, log, ready)
    assert sorted(log[:-1]) == ENDS
    assert log[-1] == "scope exited"
