"""The rules a user's input must satisfy, each written once, with its message.

The builder, the environment configuration, a factory's product and the procs adapters all
ask the same questions ("is this a number of seconds?", "is this a proc?"). Each rule lives
here once, so a rule and the words that explain it cannot drift apart between callers.

A rule is a function without side effects (one exception, explained at `check_proc`) that
returns the checked value (narrowed, so the caller's types follow from the check) or a
`Problem`: what is wrong with the value as given, and how to fix it. The caller knows the
path and which exception fits (`ConfigError` at build and from an adapter's constructor,
`StartupError` for a factory's product, a plain ``ValueError`` while parsing a variable), so
no rule raises; `valid` is the common "or raise ConfigError".

Messages follow the house shape ``<path>: <what is wrong>, got <repr>; <fix>``; tests pin
many of them word for word.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeGuard, TypeVar, final

from ._errors import ConfigError
from ._proc import FunctionProc, function_name, is_async_callable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._backoff import Backoff
    from ._proc import SupportsRunProc

__all__ = (
    "Problem",
    "check_backoff",
    "check_callback",
    "check_count",
    "check_factory",
    "check_function",
    "check_name",
    "check_port",
    "check_proc",
    "check_seconds",
    "check_type",
    "is_count",
    "is_seconds",
    "valid",
)

T = TypeVar("T")


@final
@dataclass(frozen=True, slots=True)
class Problem:
    """Why a value was refused; *what* and *fix* become the error's ``problem`` and ``fix``."""

    what: str
    fix: str


def valid(path: str, checked: T | Problem) -> T:
    """The checked value, or `ConfigError` at *path* saying what is wrong and the fix."""
    if isinstance(checked, Problem):
        raise ConfigError(path, checked.what, checked.fix)
    return checked


def is_seconds(value: object, *, positive: bool = False) -> TypeGuard[float]:
    """A finite number of seconds >= 0 (> 0 when *positive*).

    ``bool`` is refused although it is an ``int``: ``grace=True`` is a mistake, not 1.0s.
    NaN and infinity are refused because every deadline built from them would be wrong
    without any error (NaN compares false with everything; infinity never expires).
    """
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > 0 if positive else value >= 0)
    )


def check_seconds(
    field: str, value: object, *, default: str | None = None, positive: bool = False
) -> float | Problem:
    """*value* as seconds; the fix names what leaving it out means, given a *default*."""
    if is_seconds(value, positive=positive):
        return value
    bound = "> 0" if positive else ">= 0"
    omit = "" if default is None else f" or omit it to use {default}"
    return Problem(
        f"{field} must be a finite number of seconds {bound}, got {value!r}",
        f"pass e.g. {field}=5.0{omit}",
    )


def check_type(field: str, value: object, kind: type[T], example: str) -> T | Problem:
    """*value* if it is a *kind* (for ``int``, a ``bool`` is not one: see `is_seconds`)."""
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    return Problem(f"{field} must be a {kind.__name__}, got {value!r}", f"pass e.g. {example}")


def is_count(value: object) -> TypeGuard[int]:
    """A whole number >= 0 (not a ``bool``), such as a number of restarts."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_count(field: str, value: object, example: str) -> int | Problem:
    """*value* as a count; a wrong type and a negative number have different fixes."""
    if is_count(value):
        return value
    checked = check_type(field, value, int, f"{field}={example}")
    if isinstance(checked, Problem):
        return checked
    return Problem(f"{field} must be >= 0, got {value!r}", f"pass e.g. {example}")


def check_port(field: str, value: object, *, pick: bool) -> int | Problem:
    """*value* as a TCP port: 1..65535, or 0 when *pick* (0 asks the OS to pick one)."""
    low = 0 if pick else 1
    if is_count(value) and low <= value <= 65535:
        return value
    meaning = " (0: let the OS pick one)" if pick else ""
    return Problem(
        f"{field} must be a whole number within {low}..65535{meaning}, got {value!r}",
        f"pass e.g. {field}=8000",
    )


def check_name(what: str, value: object, example: str) -> str | Problem:
    """*value* as one path segment: a name that is a non-empty string without ``/``."""
    if not isinstance(value, str):
        return Problem(f"{what} must be a string, got {value!r}", f"e.g. {example}")
    if not value or "/" in value:
        return Problem(
            f"{what} must be non-empty and contain no '/', got {value!r}",
            "'/' separates path segments; choose e.g. 'web' or 'db-primary'",
        )
    return value


def check_backoff(backoff: Backoff) -> Backoff | Problem:
    """*backoff* if its fields make sense together (its type is checked by the caller)."""
    for field in ("initial", "maximum", "factor"):
        checked = check_seconds(f"backoff.{field}", getattr(backoff, field), default="Backoff()")
        if isinstance(checked, Problem):
            return checked
    if backoff.initial > backoff.maximum:
        return Problem(
            f"backoff.initial ({backoff.initial!r}) exceeds backoff.maximum "
            f"({backoff.maximum!r}), so every delay would be cut to the maximum",
            f"raise maximum, e.g. Backoff(initial={backoff.initial!r}, "
            f"maximum={backoff.initial * 10!r})",
        )
    if not 0 <= backoff.jitter <= 1:
        return Problem(f"backoff.jitter must be within [0, 1], got {backoff.jitter!r}", "e.g. 0.1")
    if backoff.factor < 1:
        return Problem(f"backoff.factor must be >= 1, got {backoff.factor!r}", "e.g. factor=2.0")
    return backoff


def _is_sync_callable(value: object) -> TypeGuard[Callable[..., object]]:
    return callable(value) and not is_async_callable(value)


def check_factory(value: object) -> Callable[[], object] | Problem:
    """*value* as a factory: called synchronously at each start, so it must not be async."""
    if _is_sync_callable(value):
        return value
    return Problem(
        f"the factory must be a plain callable returning a proc, got {value!r}",
        "pass e.g. add_factory('worker', lambda: Worker(queue))",
    )


def check_callback(value: object, method: str) -> Callable[..., object] | Problem:
    """*value* as an event callback given to *method*: it runs in the supervisor's task,
    synchronously, so an async one would only make a coroutine that nobody awaits."""
    if _is_sync_callable(value):
        return value
    return Problem(
        f"{method} takes a plain (sync) callable, got {value!r}",
        f"pass e.g. {method}(events.append); for async work use handle.events()",
    )


def _has_async_run_proc(obj: object) -> TypeGuard[SupportsRunProc]:
    return inspect.iscoroutinefunction(getattr(obj, "run_proc", None))


def check_proc(obj: object, name: str | None) -> SupportsRunProc | Problem:
    """*obj* as a proc: itself when it has ``async run_proc``, an async function wrapped
    under *name* (or its own name), else why it is not a proc.

    The one side effect is on purpose: a coroutine object given by mistake is closed, or
    Python would later warn "coroutine was never awaited" far from the actual mistake.
    """
    if inspect.iscoroutine(obj):
        obj.close()
        return Problem(
            "got a coroutine object, not a proc",
            "pass the function itself: add_proc(worker), not add_proc(worker(token))",
        )
    if isinstance(obj, type):
        cls = obj.__name__
        return Problem(f"got the class {cls}, not an instance", f"pass {cls}(...)")
    run_proc = getattr(obj, "run_proc", None)
    if run_proc is not None:
        if not _has_async_run_proc(obj):
            return Problem(
                f"{type(obj).__name__}.run_proc is not an async function",
                "declare it as 'async def run_proc(self, token)'",
            )
        label = f"{type(obj).__name__}.run_proc"
        fix = "declare it 'async def run_proc(self, token)'; keep other values on the object"
        return _token_problem(label, obj.run_proc, fix) or obj
    if is_async_callable(obj):
        label = function_name(obj) or "the function"
        fix = f"declare it 'async def {label}(token)'; bind other values with functools.partial"
        return _token_problem(label, obj, fix) or _function_proc(obj, name)
    return _not_awaitable(obj)


def _token_problem(label: str, fn: Callable[..., object], fix: str) -> Problem | None:
    """Why ``fn(token)`` cannot be called, or None when it can (or cannot be known).

    Checked here, not left to the first start: a proc declared ``async def f()`` or
    ``async def f(token, x)`` would otherwise pass ``build()`` and ``check`` and fail only
    at run time, with a TypeError that names neither the proc nor the fix. Defaults and
    ``*args`` that let one positional argument bind are fine; a bound method's ``self`` is
    already bound. A callable whose signature cannot be read (some C callables) is
    accepted: refusing what we cannot inspect would refuse working procs.
    """
    function = getattr(fn, "__func__", fn)  # a bound method: checked through its function
    known = _TAKE_A_TOKEN_BOUND if function is not fn else _TAKE_A_TOKEN
    if _remembered(known, function):
        return None
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(None)
    except TypeError:
        return Problem(
            f"{label} must take exactly one positional argument (the token), "
            f"got {label}{signature}",
            fix,
        )
    _remember(known, function)
    return None


#: Functions (and, apart, the functions of bound methods) known to take one positional
#: argument. ``inspect.signature`` costs ~40 us, and one worker function behind 10,000 procs
#: is common; weak, so a cached function can still be collected. A pure result, not state.
_TAKE_A_TOKEN: weakref.WeakSet[object] = weakref.WeakSet()
_TAKE_A_TOKEN_BOUND: weakref.WeakSet[object] = weakref.WeakSet()


def _remembered(known: weakref.WeakSet[object], function: object) -> bool:
    try:
        return function in known
    except TypeError:  # not weakly referenceable (some callables): never cached
        return False


def _remember(known: weakref.WeakSet[object], function: object) -> None:
    with contextlib.suppress(TypeError):
        known.add(function)


def check_function(
    field: str, value: object, *, want_async: bool, fix: str
) -> Callable[..., object] | Problem:
    """*value* as a function an adapter will call: async when *want_async*, else sync.

    A coroutine object (``fn()`` instead of ``fn``) is closed, as in `check_proc`. The
    other way round matters as much: a thread that calls an async function only makes a
    coroutine nobody awaits, and a sync function awaited by a schedule fails at its first
    tick, long after the mistake.
    """
    kind = "an async function" if want_async else "a plain (sync) function"
    if inspect.iscoroutine(value):
        value.close()
        return Problem(f"{field} must be {kind}, got a coroutine object {value!r}", fix)
    if callable(value) and is_async_callable(value) == want_async:
        return value
    return Problem(f"{field} must be {kind}, got {value!r}", fix)


def _not_awaitable(obj: object) -> Problem:
    if callable(obj):
        return Problem(
            "got a sync function; a proc must be awaitable",
            "declare it 'async def', or run blocking code with anyio.to_thread.run_sync",
        )
    return Problem(
        f"got {obj!r}, which is neither a proc nor an async function",
        "pass a ManagedProc, an object with 'async def run_proc(self, token)', "
        "an 'async def fn(token)', or a Supervisor",
    )


def _function_proc(
    fn: Callable[..., Awaitable[object]], given: str | None
) -> FunctionProc | Problem:
    name = function_name(fn) if given is None else given
    if name is None:
        return Problem(
            "this function proc has no usable name", "pass one with add_proc(fn, name='worker')"
        )
    return FunctionProc(fn, name)
