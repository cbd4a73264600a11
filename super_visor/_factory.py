"""Calling an add_factory() factory and checking what it made, at each start."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from ._errors import StartupError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._proc import SupportsRunProc

__all__ = ("call_factory",)


def call_factory(path: str, factory: Callable[[], object]) -> SupportsRunProc:
    """Return a fresh proc from *factory*, or raise StartupError naming what came back.

    The product can only be checked now: the factory runs at each start and restart.
    """
    product = factory()
    run_proc = getattr(product, "run_proc", None)
    if run_proc is None or not inspect.iscoroutinefunction(run_proc):
        if inspect.iscoroutine(product):
            product.close()
        problem = (
            f"its factory returned {product!r}, which is not a proc; return a ManagedProc, "
            "an object with 'async def run_proc(self, token)', or a Supervisor"
        )
        raise StartupError(path, problem)
    return product  # type: ignore[return-value]
