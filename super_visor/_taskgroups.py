"""run_beside: run one coroutine with helpers beside it, its exception raised unwrapped.

A task group wraps whatever escapes it in an ExceptionGroup, so ``except SupervisorError``
around it would never match. The main coroutine's exception is therefore caught inside the
group, the helpers are cancelled, and the exception is raised again outside, as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

__all__ = ("run_beside",)

T = TypeVar("T")


async def run_beside(
    main: Callable[[], Awaitable[T]], *helpers: Callable[[], Coroutine[object, object, None]]
) -> T:
    """Await ``main()`` while each helper runs in the background; cancel them after it.

    Returns what ``main()`` returned; anything it raised other than a cancellation is raised
    unwrapped once the helpers are gone (a helper's own exception still comes out of the
    task group).
    """
    outcome: list[T] = []
    error: BaseException | None = None
    async with anyio.create_task_group() as task_group:
        for helper in helpers:
            task_group.start_soon(helper)
        try:
            outcome.append(await main())
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:  # noqa: BLE001 (re-raised below, outside the group)
            error = exc
        finally:
            task_group.cancel_scope.cancel()
    if error is not None:
        raise error
    return outcome[0]
