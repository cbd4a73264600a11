"""What every adapter shares: the force reserve, optional extras, and which backend runs.

Kept apart from the adapters so that each of them imports only what it needs, and so that
``import super_visor.procs`` imports none of the optional servers (they load when an adapter
is *constructed*, never at import).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ("FORCE_RESERVE", "MissingExtraError", "backend_name", "require")

#: Seconds an adapter asks the supervisor for on top of its own grace. An adapter that
#: forces its work itself when its grace runs out (SIGKILL, cancelled requests, an abandoned
#: thread) needs a moment to do so and to clean up; without it the supervisor's own deadline
#: would race the adapter's and turn a clean, reported stop into a bare FORCED.
FORCE_RESERVE = 1.0


class MissingExtraError(ImportError):
    """An adapter needs an optional dependency that is not installed.

    The message names the install command, e.g. ``pip install 'super_visor[uvicorn]'``.
    ``extra`` is the extra's name and ``module`` the module that failed to import.

    .. versionadded:: 0.1
    """

    def __init__(self, adapter: str, module: str, extra: str) -> None:
        self.adapter = adapter
        self.module = module
        self.extra = extra
        super().__init__(
            f"{adapter} needs the '{module}' package, which is not installed; "
            f"install it with: pip install 'super_visor[{extra}]'",
            name=module,
        )


def require(adapter: str, module: str, extra: str) -> ModuleType:
    """Import *module* for *adapter*, or raise `MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(adapter, module, extra) from exc


def backend_name() -> str:
    """``"asyncio"`` or ``"trio"``: the backend running the current task.

    Only for servers that ship one entry point per backend (Hypercorn) or support one
    backend only (Uvicorn); everything else in super_visor is written once, on anyio. The
    cancellation class is public anyio API and tells the backends apart without importing
    either of them.
    """
    module = anyio.get_cancelled_exc_class().__module__
    return "asyncio" if module.startswith("asyncio") else module.partition(".")[0]
