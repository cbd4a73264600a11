"""CancellationToken: cancel, wait, reason, child tokens and ready."""

from __future__ import annotations

import anyio
import pytest

from super_visor import CancellationToken, SupervisorBuilder

from .fakes import Gate
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes


def test_new_token_is_not_cancelled_and_has_no_reason() -> None:
    token = CancellationToken()

    assert not token.cancelled
    assert token.reason is None


def test_cancel_sets_cancelled_and_reason() -> None:
    token = CancellationToken()

    token.cancel("shutting down")

    assert token.cancelled
    assert token.reason == "shutting down"


def test_cancel_is_idempotent_and_keeps_the_first_reason() -> None:
    token = CancellationToken()

    token.cancel("first")
    token.cancel("second")
    token.cancel()

    assert token.cancelled
    assert token.reason == "first"


def test_cancel_without_reason_leaves_reason_none() -> None:
    token = CancellationToken()

    token.cancel()

    assert token.cancelled
    assert token.reason is None


async def test_wait_blocks_until_cancel_then_returns() -> None:
    token = CancellationToken()
    returned = anyio.Event()

    async def waiter() -> None:
        await token.wait()
        returned.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert not returned.is_set()

        token.cancel("go")
        await returned.wait()


async def test_wait_returns_at_once_when_already_cancelled() -> None:
    token = CancellationToken()
    token.cancel()

    await token.wait()

    assert token.cancelled


async def test_wait_wakes_every_waiter() -> None:
    token = CancellationToken()
    woken: list[int] = []

    async def waiter(n: int) -> None:
        await token.wait()
        woken.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(3):
            tg.start_soon(waiter, n)
        await anyio.wait_all_tasks_blocked()
        token.cancel()

    assert sorted(woken) == [0, 1, 2]


async def test_wait_can_be_cancelled_by_an_enclosing_scope() -> None:
    token = CancellationToken()

    with anyio.move_on_after(0.01) as scope:
        await token.wait()

    assert scope.cancelled_caught
    assert not token.cancelled


async def test_a_wait_cancelled_by_its_scope_is_not_woken_later_and_others_are() -> None:
    token = CancellationToken()
    woken: list[str] = []

    async def waits(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            await token.wait()
            woken.append(name)

    gives_up, stays = anyio.CancelScope(), anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(waits, "gives up", gives_up)
        tg.start_soon(waits, "stays", stays)
        await anyio.wait_all_tasks_blocked()
        gives_up.cancel()
        await anyio.wait_all_tasks_blocked()
        token.cancel()

    assert woken == ["stays"]


async def test_waiting_again_and_again_under_timeouts_keeps_the_token_small() -> None:
    token = CancellationToken()
    for _ in range(200):
        with anyio.CancelScope() as scope:
            scope.cancel()
            await token.wait()
        with anyio.move_on_after(0):
            await token.wait()

    assert token._waiters is not None
    assert len(token._waiters) <= 8  # the cancelled waits were swept out
    token.cancel()


async def test_wait_is_a_coroutine_function_result_a_task_group_can_run() -> None:
    token = CancellationToken()
    async with anyio.create_task_group() as tg:
        tg.start_soon(token.wait)
        await anyio.wait_all_tasks_blocked()
        token.cancel()  # the task group ends only once the spawned wait returned

    assert token.cancelled


def test_child_is_cancelled_with_its_parent_and_gets_the_reason() -> None:
    parent = CancellationToken()
    child = parent.child()
    grandchild = child.child()

    parent.cancel("parent stopping")

    assert child.cancelled
    assert child.reason == "parent stopping"
    assert grandchild.cancelled
    assert grandchild.reason == "parent stopping"


def test_cancelling_a_child_never_cancels_its_parent_or_siblings() -> None:
    parent = CancellationToken()
    child = parent.child()
    sibling = parent.child()

    child.cancel("only me")

    assert child.cancelled
    assert not parent.cancelled
    assert not sibling.cancelled


def test_child_of_a_cancelled_token_is_born_cancelled_with_the_reason() -> None:
    parent = CancellationToken()
    parent.cancel("too late")

    child = parent.child()

    assert child.cancelled
    assert child.reason == "too late"


def test_cancelled_child_keeps_its_own_reason_when_the_parent_is_cancelled() -> None:
    parent = CancellationToken()
    child = parent.child()
    child.cancel("own reason")

    parent.cancel("parent reason")

    assert child.reason == "own reason"


async def test_child_wait_returns_when_the_parent_is_cancelled() -> None:
    parent = CancellationToken()
    child = parent.child()
    returned = anyio.Event()

    async def waiter() -> None:
        await child.wait()
        returned.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert not returned.is_set()
        parent.cancel()

    assert returned.is_set()


def test_ready_outside_a_supervisor_is_harmless_and_repeatable() -> None:
    token = CancellationToken()

    token.ready(1)
    token.ready(2)

    assert not token.cancelled


async def test_second_ready_call_is_a_no_op_and_the_first_value_stands() -> None:
    log: list[str] = []
    # Gate calls token.ready(value) and then token.ready("second call is ignored").
    sup = SupervisorBuilder("app").add_proc(Gate("g", log, value=8080), wait_ready=True).build()

    async with sup.running() as handle:
        assert handle.ready_value("g") == 8080


@pytest.mark.parametrize("reason", ["a", "signal SIGTERM", ""])
def test_repr_names_state_and_reason(reason: str) -> None:
    token = CancellationToken()
    assert "active" in repr(token)

    token.cancel(reason)

    assert repr(reason) in repr(token)


async def test_wait_is_a_checkpoint_even_when_the_stop_comes_before_its_await() -> None:
    token = CancellationToken()
    waiting = token.wait()
    token.cancel()

    with anyio.CancelScope() as scope:
        scope.cancel()
        await waiting  # a checkpoint: the cancelled scope is delivered here

    assert scope.cancelled_caught


async def test_a_wait_awaited_only_after_the_stop_returns() -> None:
    token = CancellationToken()
    waiting = token.wait()
    token.cancel()

    with anyio.fail_after(5):
        await waiting
