"""SupervisorBuilder and all validation: the only module that raises ConfigError.

Everything a user can get wrong in describing a tree is caught in ``build()``, before anything
runs, with a message naming the supervisor path, the proc, the problem and the fix. A bad tree
must never surface later as a hang or as a silently ignored setting.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import TYPE_CHECKING, Self, final

from ._errors import ConfigError
from ._proc import FunctionProc, function_name, is_async_callable
from ._restart import Backoff, Restart, Strategy
from ._spec import ProcSpec, SupervisorConfig, given_options
from ._supervisor import Supervisor

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._events import Event

__all__ = ("SupervisorBuilder",)


@final
class SupervisorBuilder:
    """Collects procs and settings, then `build()` validates them into a `Supervisor`.

    Settings are resolved per proc with this precedence: a keyword given to `add_proc` beats
    the same attribute on the proc object, which beats the builder's default given here.

    Args:
        name: the supervisor's name, the first segment of every proc path below it.
        grace: default seconds a proc may take to return after its token is cancelled
            before it is force-cancelled (5.0).
        ready_timeout: default bound, in seconds, on the wait for a gating proc's
            ``token.ready()``; None waits as long as it takes.
        strategy: which procs are restarted with a restarted proc (`Strategy.ONE_FOR_ONE`).
        max_restarts, within: restart intensity; one restart more than *max_restarts* within
            *within* seconds fails the supervisor with `RestartLimitExceeded` (3 within 5.0).
        backoff: default delay between restarts (None: restart at once).
        stuck_report_interval: seconds between log lines naming a proc that has not ended
            even after it was force-cancelled (a shielded scope or a blocking call).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        name: str,
        *,
        grace: float = 5.0,
        ready_timeout: float | None = None,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        within: float = 5.0,
        backoff: Backoff | None = None,
        stuck_report_interval: float = 5.0,
    ) -> None:
        self.name = name
        self._defaults: dict[str, object] = {
            "grace": grace,
            "ready_timeout": ready_timeout,
            "strategy": strategy,
            "max_restarts": max_restarts,
            "within": within,
            "backoff": backoff,
            "stuck_report_interval": stuck_report_interval,
        }
        self._entries: list[_Entry] = []
        self._callbacks: list[Callable[[Event], object]] = []

    def __repr__(self) -> str:
        return f"<SupervisorBuilder {self.name!r} with {len(self._entries)} proc(s)>"

    def add_proc(
        self,
        proc: object,
        *,
        name: str | None = None,
        grace: float | None = None,
        wait_ready: bool | None = None,
        ready_timeout: float | None = None,
        restart: Restart | None = None,
        significant: bool | None = None,
        backoff: Backoff | None = None,
    ) -> Self:
        """Add a proc: a `ManagedProc`, any object with ``async run_proc(token)``, an
        ``async def fn(token)``, a built `Supervisor`, or another `SupervisorBuilder` (built
        with this one). Procs start in the order they are added and stop in reverse.

        Nothing is checked here; `build()` checks everything at once.
        """
        options = given_options(
            name, grace, wait_ready, ready_timeout, restart, significant, backoff
        )
        self._entries.append(_Entry(proc, None, options))
        return self

    def add_factory(
        self,
        name: str,
        factory: Callable[[], object],
        *,
        grace: float | None = None,
        wait_ready: bool | None = None,
        ready_timeout: float | None = None,
        restart: Restart | None = None,
        significant: bool | None = None,
        backoff: Backoff | None = None,
    ) -> Self:
        """Add a proc made fresh by ``factory()`` at every start and restart.

        Use it when the proc holds state (a channel, a connection, a cache) that must not
        survive a restart. The product is checked at each start; a bad one is a
        `StartupError` then, since it cannot be known earlier.
        """
        options = given_options(
            name, grace, wait_ready, ready_timeout, restart, significant, backoff
        )
        self._entries.append(_Entry(None, factory, options))
        return self

    def on_event(self, callback: Callable[[Event], object]) -> Self:
        """Call ``callback(event)`` for every lifecycle event of this supervisor's tree.

        The callback runs synchronously in the supervisor's task, so keep it quick (append to
        a list, update a metric); for slow work use ``handle.events()``. An exception it
        raises is logged with its traceback and never breaks the tree.
        """
        if not callable(callback) or is_async_callable(callback):
            raise ConfigError(
                self.name,
                f"on_event takes a plain (sync) callable, got {callback!r}",
                "pass e.g. on_event(events.append); for async work use handle.events()",
            )
        self._callbacks.append(callback)
        return self

    def build(self) -> Supervisor:
        """Validate everything and return the `Supervisor`.

        Raises:
            ConfigError: for the first problem found, naming the supervisor path, the proc,
                the problem and the fix. Nothing has run.
        """
        return _Validator().build(self, self.name)


class _Entry:
    __slots__ = ("factory", "options", "proc")

    def __init__(self, proc: object, factory: object, options: dict[str, object]) -> None:
        self.proc = proc
        self.factory = factory
        self.options = options


class _Validator:
    """One build: tracks the builders being built (to find cycles) and the procs seen."""

    def __init__(self) -> None:
        self._building: list[SupervisorBuilder] = []
        self._seen: dict[int, str] = {}

    def build(self, builder: SupervisorBuilder, path: str) -> Supervisor:
        _check_name(path, builder.name, "the supervisor name", "SupervisorBuilder('app')")
        defaults = builder._defaults
        _check_supervisor_settings(path, defaults)
        if not builder._entries:
            raise ConfigError(path, "the supervisor has no procs", "add at least one proc")
        self._building.append(builder)
        specs: list[ProcSpec] = []
        names: set[str] = set()
        for entry in builder._entries:
            spec = self._spec(path, entry, defaults)
            if spec.name in names:
                raise ConfigError(
                    f"{path}/{spec.name}",
                    "two procs have this name in one supervisor",
                    "give one of them another name with add_proc(..., name=...)",
                )
            names.add(spec.name)
            specs.append(spec)
        self._building.pop()
        child_spec = functools.partial(_dynamic_spec, path, defaults)
        config = SupervisorConfig(
            strategy=defaults["strategy"],  # type: ignore[arg-type]
            max_restarts=defaults["max_restarts"],  # type: ignore[arg-type]
            within=defaults["within"],  # type: ignore[arg-type]
            stuck_report_interval=defaults["stuck_report_interval"],  # type: ignore[arg-type]
        )
        return Supervisor._create(
            builder.name, tuple(specs), config, child_spec, tuple(builder._callbacks)
        )

    def _spec(self, path: str, entry: _Entry, defaults: dict[str, object]) -> ProcSpec:
        options = entry.options
        if entry.factory is not None:
            proc = None
            name = options.get("name")
            _check_name(path, name, "the factory name", "add_factory('worker', make_worker)")
            assert isinstance(name, str)
            _check_factory(f"{path}/{name}", entry.factory)
            source: object = None
        else:
            proc = self._proc(path, entry.proc, options.get("name"))
            name = options.get("name", getattr(proc, "name", None))
            where = f"{path}/<{_label(entry.proc, None)}>"
            _check_name(where, name, "the proc name", "add_proc(proc, name='web')")
            assert isinstance(name, str)
            source = entry.proc
            if not isinstance(entry.proc, SupervisorBuilder):  # its build remembered its procs
                self._remember(f"{path}/{name}", entry.proc, proc)
        return _resolve(f"{path}/{name}", name, proc, entry.factory, source, options, defaults)

    def _proc(self, path: str, obj: object, name: object) -> object:
        if isinstance(obj, SupervisorBuilder):
            if any(obj is b for b in self._building):
                raise ConfigError(
                    f"{path}/{obj.name}",
                    "a supervisor is nested inside itself",
                    "a supervisor cannot contain itself; nest a different builder",
                )
            return self.build(obj, f"{path}/{name if isinstance(name, str) else obj.name}")
        problem = _proc_problem(obj)
        if problem is not None:
            raise ConfigError(f"{path}/{_label(obj, name)}", *problem)
        if hasattr(obj, "run_proc"):
            return obj
        fn_name = name if isinstance(name, str) else function_name(obj)
        if fn_name is None:
            raise ConfigError(
                f"{path}/{_label(obj, name)}",
                "this function proc has no usable name",
                "pass one with add_proc(fn, name='worker')",
            )
        return FunctionProc(obj, fn_name)  # type: ignore[arg-type]

    def _remember(self, path: str, source: object, proc: object) -> None:
        if isinstance(proc, FunctionProc):
            return  # one function may back several procs: each gets its own wrapper
        targets = [source] if not isinstance(proc, Supervisor) else [source, *_tree_procs(proc)]
        for target in targets:
            first = self._seen.setdefault(id(target), path)
            if first != path:
                raise ConfigError(
                    path,
                    f"this proc object was already added as {first}",
                    "create a separate instance for each place, or use add_factory()",
                )


def _dynamic_spec(
    path: str, defaults: dict[str, object], proc: object, options: dict[str, object]
) -> ProcSpec:
    """Validate one child started on a running supervisor (``handle.start_child``).

    Same rules as ``add_proc``, except that a dynamic child is not significant unless told:
    a per-job or per-connection proc ending must not stop the application.
    """
    options = {**options}
    options.setdefault("significant", False)
    return _Validator()._spec(path, _Entry(proc, None, options), defaults)


def _tree_procs(sup: Supervisor) -> list[object]:
    found: list[object] = []
    for spec in sup.specs:
        if spec.proc is not None and not isinstance(spec.proc, FunctionProc):
            found.append(spec.proc)
            if isinstance(spec.proc, Supervisor):
                found.extend(_tree_procs(spec.proc))
    return found


def _label(obj: object, name: object) -> str:
    if isinstance(name, str) and name:
        return name
    return getattr(obj, "__name__", None) or type(obj).__name__


def _proc_problem(obj: object) -> tuple[str, str] | None:
    """(problem, fix) when *obj* cannot be a proc, else None."""
    if inspect.iscoroutine(obj):
        obj.close()  # otherwise Python warns "coroutine was never awaited"
        return (
            "got a coroutine object, not a proc",
            "pass the function itself: add_proc(worker), not add_proc(worker(token))",
        )
    if isinstance(obj, type):
        return (f"got the class {obj.__name__}, not an instance", f"pass {obj.__name__}(...)")
    run_proc = getattr(obj, "run_proc", None)
    if run_proc is not None:
        if inspect.iscoroutinefunction(run_proc):
            return None
        return (
            f"{type(obj).__name__}.run_proc is not an async function",
            "declare it as 'async def run_proc(self, token)'",
        )
    if is_async_callable(obj):
        return None
    if callable(obj):
        return (
            "got a sync function; a proc must be awaitable",
            "declare it 'async def', or run blocking code with anyio.to_thread.run_sync",
        )
    return (
        f"got {obj!r}, which is neither a proc nor an async function",
        "pass a ManagedProc, an object with 'async def run_proc(self, token)', "
        "an 'async def fn(token)', or a Supervisor",
    )


def _check_factory(path: str, factory: object) -> None:
    if not callable(factory) or is_async_callable(factory):
        raise ConfigError(
            path,
            f"the factory must be a plain callable returning a proc, got {factory!r}",
            "pass e.g. add_factory('worker', lambda: Worker(queue))",
        )


def _check_name(path: str, name: object, what: str, example: str) -> None:
    where = path if what != "the supervisor name" else (path or "<root>")
    if not isinstance(name, str):
        raise ConfigError(where, f"{what} must be a string, got {name!r}", f"e.g. {example}")
    if not name or "/" in name:
        raise ConfigError(
            where,
            f"{what} must be non-empty and contain no '/', got {name!r}",
            "'/' separates path segments; choose e.g. 'web' or 'db-primary'",
        )


def _check_seconds(path: str, field: str, value: object, *, default: str) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
    if not ok:
        raise ConfigError(
            path,
            f"{field} must be a finite number of seconds >= 0, got {value!r}",
            f"pass e.g. {field}=5.0 or omit it to use {default}",
        )


def _check_type(path: str, field: str, value: object, kind: type, example: str) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(
            path, f"{field} must be a {kind.__name__}, got {value!r}", f"pass e.g. {example}"
        )


def _check_supervisor_settings(path: str, d: dict[str, object]) -> None:
    _check_seconds(path, "grace", d["grace"], default="the default (5.0)")
    if d["ready_timeout"] is not None:
        _check_seconds(path, "ready_timeout", d["ready_timeout"], default="no timeout")
    _check_type(path, "strategy", d["strategy"], Strategy, "strategy=Strategy.ONE_FOR_ONE")
    _check_type(path, "max_restarts", d["max_restarts"], int, "max_restarts=3")
    if d["max_restarts"] < 0:  # type: ignore[operator]
        raise ConfigError(
            path, f"max_restarts must be >= 0, got {d['max_restarts']!r}", "pass e.g. 3"
        )
    _check_seconds(path, "within", d["within"], default="the default (5.0)")
    if d["backoff"] is not None:
        _check_type(path, "backoff", d["backoff"], Backoff, "backoff=Backoff(initial=0.1)")
        _check_backoff(path, d["backoff"])  # type: ignore[arg-type]
    _check_seconds(path, "stuck_report_interval", d["stuck_report_interval"], default="5.0")
    if d["stuck_report_interval"] == 0:
        raise ConfigError(path, "stuck_report_interval must be > 0, got 0", "pass e.g. 5.0")


def _check_backoff(path: str, backoff: Backoff) -> None:
    for field in ("initial", "maximum", "factor"):
        _check_seconds(path, f"backoff.{field}", getattr(backoff, field), default="Backoff()")
    if backoff.initial > backoff.maximum:
        raise ConfigError(
            path,
            f"backoff.initial ({backoff.initial!r}) exceeds backoff.maximum "
            f"({backoff.maximum!r}), so every delay would be cut to the maximum",
            f"raise maximum, e.g. Backoff(initial={backoff.initial!r}, "
            f"maximum={backoff.initial * 10!r})",
        )
    if not 0 <= backoff.jitter <= 1:
        raise ConfigError(
            path, f"backoff.jitter must be within [0, 1], got {backoff.jitter!r}", "e.g. 0.1"
        )
    if backoff.factor < 1:
        raise ConfigError(
            path, f"backoff.factor must be >= 1, got {backoff.factor!r}", "e.g. factor=2.0"
        )


def _resolve(
    path: str,
    name: str,
    proc: object,
    factory: object,
    source: object,
    options: dict[str, object],
    defaults: dict[str, object],
) -> ProcSpec:
    """Apply the precedence keyword > proc attribute > builder default, and check each value."""

    def pick(field: str, default: object) -> object:
        if field in options:
            return options[field]
        if inspect.isfunction(source) or isinstance(source, (Supervisor, SupervisorBuilder)):
            return default  # a supervisor's own settings are for its children, not for it
        value = getattr(source, field, None)
        return default if value is None else value

    nested = isinstance(proc, Supervisor)
    grace = pick("grace", None if nested else defaults["grace"])
    if grace is not None:
        _check_seconds(path, "grace", grace, default="the builder default")
    ready_timeout = pick("ready_timeout", None if nested else defaults["ready_timeout"])
    if ready_timeout is not None:
        _check_seconds(path, "ready_timeout", ready_timeout, default="no timeout")
    # A factory's product is known only at start: gate then if it is a supervisor.
    wait_ready = pick("wait_ready", nested if factory is None else None)
    if wait_ready is not None:
        _check_type(path, "wait_ready", wait_ready, bool, "wait_ready=True")
    restart = pick("restart", Restart.TEMPORARY)
    _check_type(path, "restart", restart, Restart, "restart=Restart.PERMANENT")
    significant = pick("significant", True)
    _check_type(path, "significant", significant, bool, "significant=False")
    backoff = pick("backoff", defaults["backoff"])
    if backoff is not None:
        _check_type(path, "backoff", backoff, Backoff, "backoff=Backoff(initial=0.1)")
        _check_backoff(path, backoff)  # type: ignore[arg-type]
    return ProcSpec(
        name=name,
        proc=proc,  # type: ignore[arg-type]
        factory=factory,  # type: ignore[arg-type]
        grace=grace,  # type: ignore[arg-type]
        wait_ready=wait_ready,  # type: ignore[arg-type]
        ready_timeout=ready_timeout,  # type: ignore[arg-type]
        restart=restart,  # type: ignore[arg-type]
        significant=significant,  # type: ignore[arg-type]
        backoff=backoff,  # type: ignore[arg-type]
        nested=proc if nested else None,  # type: ignore[arg-type]
    )
