"""Calling an add_factory() factory and checking what it made, at each start.

A factory returns either a proc (a fresh one each time) or an *async context manager that
yields one*: the resource scope of the proc's subtree. The scope is entered when the proc
starts and exited once it has stopped, so resources the subtree shares (a channel, a pool)
are created fresh at every restart and closed after the last proc using them has stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from ._errors import StartupError
from ._validate import Problem, check_proc

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    from ._proc import SupportsRunProc

__all__ = ("ResourceScope", "call_factory", "check_product")


@final
class ResourceScope:
    """A factory product that is an async context manager yielding the proc to run."""

    __slots__ = ("manager",)

    def __init__(self, manager: AbstractAsyncContextManager[object]) -> None:
        self.manager = manager


def call_factory(path: str, factory: Callable[[], object]) -> SupportsRunProc | ResourceScope:
    """Return a fresh product of *factory*, or raise StartupError naming what came back."""
    product = factory()
    if hasattr(product, "__aenter__") and hasattr(product, "__aexit__"):
        return ResourceScope(product)
    return check_product(path, product, "its factory returned")


def check_product(path: str, product: object, source: str) -> SupportsRunProc:
    """*product* as a proc, or StartupError: it can only be checked at start.

    The rule is the builder's (`check_proc`); only the exception and the wording differ,
    because here the fix is in what the factory returns, not in an ``add_proc`` call.
    """
    proc = check_proc(product, path.rpartition("/")[2])
    if isinstance(proc, Problem):
        problem = (
            f"{source} {product!r}, which is not a proc ({proc.what}); "
            "return a ManagedProc instance, an "
            "object with 'async def run_proc(self, token)', an 'async def fn(token)', a "
            "Supervisor, or an async context manager yielding one of these"
        )
        raise StartupError(path, problem)
    return proc
