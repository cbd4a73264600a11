"""Parking: the lightest way for a task to wait until a token is cancelled.

``await token.wait()`` is what nearly every idle proc of a tree is doing, so its cost is paid
once per proc: an `anyio.Event` with its waiting coroutines is about 1.5 KB per waiter. Here
a waiter is the least each backend needs, through its public API only:

- asyncio: a bare future of the running loop;
- trio: the task itself, parked with ``wait_task_rescheduled`` and rescheduled by `release`.

Both are coroutines (so ``task_group.start_soon(token.wait)`` works, as with an event) and
checkpoints that an enclosing cancel scope can cancel, like ``Event.wait()``. With
``_tasks``, this is the only module that touches a backend directly (the rest of
super_visor uses anyio only); any other backend gets an `anyio.Event`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    import asyncio  # noqa: TID251 (see the module docstring)
    from collections.abc import Coroutine

__all__ = ("Waiters", "park", "release")

#: What a token keeps for its waiters: futures (asyncio), trio tasks, or anyio events.
Waiters = list[Any]

#: Past this many waiters, ones that were cancelled meanwhile are swept out on the next park
#: (a proc that waits in a loop under timeouts must not grow its token forever).
_SWEEP_AT = 8

#: What `release` leaves in the list: a trio task parks only when its coroutine runs, which
#: may be after the release (``waiting = token.wait(); token.cancel(); await waiting``).
_RELEASED = object()


def park(waiters: Waiters) -> Coroutine[Any, Any, None]:
    """A coroutine that returns once `release` is called on *waiters*."""
    if waiters and waiters[0] is _RELEASED:
        return anyio.lowlevel.checkpoint()
    if len(waiters) >= _SWEEP_AT:
        _sweep(waiters)
    # Looked up, never imported: `import super_visor` must not pay for asyncio, and a loop
    # that runs has imported it.
    aio = sys.modules.get("asyncio")
    try:
        loop = None if aio is None else aio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        return _park_elsewhere(waiters)
    future: asyncio.Future[None] = loop.create_future()
    waiters.append(future)
    return _await_future(future)


def release(waiters: Waiters) -> None:
    """Wake every task parked on *waiters* (those cancelled meanwhile are skipped)."""
    future_type = _future_type()
    for waiter in waiters:
        if waiter is _RELEASED:
            continue
        if isinstance(waiter, future_type):
            if not waiter.done():
                waiter.set_result(None)
        elif isinstance(waiter, anyio.Event):
            waiter.set()
        else:
            sys.modules["trio"].lowlevel.reschedule(waiter)
    waiters[:] = [_RELEASED]


def _future_type() -> type[asyncio.Future[None]] | tuple[()]:
    """asyncio's Future when asyncio is imported (else no waiter can be one)."""
    aio = sys.modules.get("asyncio")
    return () if aio is None else aio.Future


def _park_elsewhere(waiters: Waiters) -> Coroutine[Any, Any, None]:
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        return _park_trio_task(waiters, trio.lowlevel)
    event = anyio.Event()
    waiters.append(event)
    return event.wait()


async def _await_future(future: asyncio.Future[None]) -> None:
    if future.done():  # released between wait() and its await: still a checkpoint
        await anyio.lowlevel.checkpoint()
    else:
        await future


async def _park_trio_task(waiters: Waiters, lowlevel: Any) -> None:
    if _RELEASED in waiters:
        await lowlevel.checkpoint()
        return
    task = lowlevel.current_task()
    waiters.append(task)

    def abort(_raise_cancel: object) -> object:
        waiters.remove(task)  # cancelled while parked: release() must not wake it later
        return lowlevel.Abort.SUCCEEDED

    await lowlevel.wait_task_rescheduled(abort)


def _sweep(waiters: Waiters) -> None:
    """Drop the asyncio futures whose waiting task was cancelled (trio tasks remove
    themselves when cancelled; anyio events stay, they are cheap to set)."""
    future_type = _future_type()
    waiters[:] = [w for w in waiters if not (isinstance(w, future_type) and w.done())]
