"""What a proc is: the ManagedProc base class, the protocol it satisfies, and function procs."""

from __future__ import annotations

import functools
import inspect
import re
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeGuard, final, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._token import CancellationToken

__all__ = ("FunctionProc", "ManagedProc", "SupportsRunProc", "is_async_callable", "snake_case")

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """``HTTPServer`` -> ``http_server``, ``Database`` -> ``database``."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


@runtime_checkable
class SupportsRunProc(Protocol):
    """Anything with ``async def run_proc(self, token)`` is a proc.

    ``runtime_checkable`` only checks that the attribute exists; the builder also checks that
    it is a coroutine function, so a sync ``run_proc`` is a `ConfigError`, not a hang.
    """

    async def run_proc(self, token: CancellationToken, /) -> object: ...


class ManagedProc:
    """Optional base class for procs.

    Subclass it and implement ``run_proc``. The proc's ``name`` defaults to the class name in
    snake_case (``WebServer`` -> ``web_server``); set a class attribute or pass ``name=`` to
    ``add_proc`` to choose another. Class attributes ``grace``, ``wait_ready``,
    ``ready_timeout``, ``restart`` and ``significant`` are read as the proc's own settings;
    keywords given to ``add_proc`` beat them.

    ``run_proc`` should return soon after ``token`` is cancelled; whatever it returns is kept
    as the outcome's ``result``.

    .. versionadded:: 0.1
    """

    name: ClassVar[str] = "managed_proc"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = snake_case(cls.__name__)

    async def run_proc(self, token: CancellationToken, /) -> object:
        """Run until done or until *token* is cancelled; subclasses must override it."""
        msg = f"{type(self).__name__} must override run_proc(self, token)"
        raise NotImplementedError(msg)


@final
class FunctionProc:
    """Adapts a plain ``async def fn(token)`` to the proc protocol."""

    __slots__ = ("fn", "name")

    def __init__(self, fn: Callable[[CancellationToken], Awaitable[object]], name: str) -> None:
        self.fn = fn
        self.name = name

    def __repr__(self) -> str:
        return f"FunctionProc({self.name!r})"

    async def run_proc(self, token: CancellationToken, /) -> object:
        return await self.fn(token)


def is_async_callable(obj: object) -> TypeGuard[Callable[..., Awaitable[object]]]:
    """True for coroutine functions, partials of them, and objects with ``async __call__``.

    ``inspect.iscoroutinefunction`` alone misses the last kind (PITFALLS 16). A type guard,
    so a caller that checked can wrap the function in a `FunctionProc` without a cast.
    """
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    return not inspect.isfunction(obj) and inspect.iscoroutinefunction(
        getattr(type(obj), "__call__", None)  # noqa: B004 (we need the method, not callable())
    )


def function_name(fn: object) -> str | None:
    """The natural proc name of a function, or None when it has none (e.g. a partial)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None)
    if isinstance(name, str) and name != "<lambda>":
        return name
    if not inspect.isfunction(fn) and not inspect.ismethod(fn):
        return snake_case(type(fn).__name__)
    return None
