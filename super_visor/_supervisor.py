"""Supervisor: a validated tree of procs that can be started, embedded or nested.

A `Supervisor` is immutable configuration; each ``start()`` (or each run as a nested proc)
creates a fresh `SupervisorRun` holding the runtime state. That is what lets a parent restart
a nested supervisor, and what keeps a finished run's report independent of the next run.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, NamedTuple, final

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from ._clock import Clock
    from ._engine import SupervisorRun
    from ._events import Event, EventHub
    from ._handle import ChildSpecFactory, RunHandle
    from ._outcome import SupervisorReport
    from ._restart import Strategy
    from ._spec import ProcSpec, SupervisorConfig
    from ._token import CancellationToken


__all__ = ("Supervisor", "TreeEntry")


class TreeEntry(NamedTuple):
    """One proc met by `Supervisor.walk`."""

    #: Below the walked supervisor: ``"pipeline/consumer"``.
    path: str
    spec: ProcSpec
    #: 0 for the walked supervisor's own procs, 1 for theirs, and so on.
    depth: int


@final
class Supervisor:
    """A tree of procs, started in declared order and stopped in reverse.

    Made only by `SupervisorBuilder.build()`. A supervisor is itself a proc: add it to
    another builder to nest it; it is ready once all its procs are, and stops its own procs
    in reverse order as its step of the parent's shutdown.

    .. versionadded:: 0.1
    """

    __slots__ = ("_active", "_callbacks", "_child_spec", "_procs_below", "config", "name", "specs")

    name: str
    specs: tuple[ProcSpec, ...]
    #: The supervisor-wide settings (strategy, restart intensity, stuck reports).
    config: SupervisorConfig
    _active: bool
    _callbacks: tuple[Callable[[Event], object], ...]
    _child_spec: ChildSpecFactory
    #: The ids of the proc objects in this tree, kept by the build that made it, so a
    #: builder nesting it checks for a proc object in two places without walking it.
    _procs_below: set[int] | None

    def __init__(self) -> None:
        msg = "build a Supervisor with SupervisorBuilder(name).add_proc(...).build()"
        raise TypeError(msg)

    @classmethod
    def _create(
        cls,
        name: str,
        specs: tuple[ProcSpec, ...],
        config: SupervisorConfig,
        child_spec: ChildSpecFactory,
        callbacks: tuple[Callable[[Event], object], ...] = (),
    ) -> Supervisor:
        self = object.__new__(cls)
        self.name = name
        self.specs = specs
        self.config = config
        self._child_spec = child_spec
        self._callbacks = callbacks
        self._active = False
        self._procs_below = None
        return self

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} with {len(self.specs)} proc(s)>"

    @property
    def strategy(self) -> Strategy:
        """Which procs are restarted with a restarted proc."""
        return self.config.strategy

    @property
    def max_restarts(self) -> int:
        """Restarts allowed within `within` seconds before the supervisor gives up."""
        return self.config.max_restarts

    @property
    def within(self) -> float:
        """The restart intensity's window, in seconds."""
        return self.config.within

    def walk(self) -> Iterator[TreeEntry]:
        """Every proc of the tree, depth first in declared order (nested procs after their
        supervisor), each with its path below this supervisor and its depth (0 for ours).

        Iterative, not recursive: a tree nested thousands of levels deep walks like a flat one.
        """
        stack: list[tuple[str, int, Iterator[ProcSpec]]] = [("", 0, iter(self.specs))]
        while stack:
            prefix, depth, specs = stack[-1]
            spec = next(specs, None)
            if spec is None:
                stack.pop()
                continue
            path = f"{prefix}{spec.name}"
            yield TreeEntry(path, spec, depth)
            if spec.nested is not None:
                stack.append((f"{path}/", depth + 1, iter(spec.nested.specs)))

    def _replace(
        self,
        *,
        specs: tuple[ProcSpec, ...] | None = None,
        config: SupervisorConfig | None = None,
        callbacks: tuple[Callable[[Event], object], ...] | None = None,
    ) -> Supervisor:
        """A copy with some configuration replaced (environment overrides, the console's
        event hook). This one is left as built: a Supervisor is immutable configuration."""
        return Supervisor._create(
            self.name,
            self.specs if specs is None else specs,
            self.config if config is None else config,
            self._child_spec,
            self._callbacks if callbacks is None else callbacks,
        )

    def with_callbacks(self, *callbacks: Callable[[Event], object]) -> Supervisor:
        """A copy of this supervisor that also calls each of *callbacks* for every event.

        For code that receives a built supervisor and wants to observe it (a live view, a
        metrics bridge) without rebuilding it from its builder. The callbacks run after the
        ones given to ``on_event``, in the supervisor's task, so they must be quick and sync,
        like those. This supervisor is left as built, so a run of it does not call them.

        Raises:
            ConfigError: a callback is not a plain (sync) callable (as with ``on_event``).

        .. versionadded:: 0.1
        """
        from ._validate import check_callback, valid  # lazy, as in SupervisorBuilder

        for callback in callbacks:
            valid(self.name, check_callback(callback, "with_callbacks"))
        return self._replace(callbacks=(*self._callbacks, *callbacks))

    async def run_proc(self, token: CancellationToken, /) -> SupervisorReport:
        """Run as a proc: start the procs, stop them in reverse once *token* is cancelled."""
        return await self._open_run(token, self.name).run()

    def _open_run(
        self,
        token: CancellationToken,
        path: str,
        parent_hub: EventHub | None = None,
        clock: Clock | None = None,
    ) -> SupervisorRun:
        """A fresh run of this tree; a nested one shares its parent's hub and clock.

        The engine is imported here, on the first run, not with this module: building a
        tree needs none of it, and it is most of what ``import super_visor`` would cost.
        """
        from ._engine import SupervisorRun
        from ._events import EventHub

        if parent_hub is None:
            hub = EventHub(self._callbacks)
        else:
            hub = parent_hub.with_callbacks(self._callbacks)
        clock = self.config.clock if clock is None else clock
        return SupervisorRun(
            path, self.specs, self.config, token, hub, clock, child_spec=self._child_spec
        )

    async def start(self, *, handle_signals: bool = True, notify: bool = True) -> SupervisorReport:
        """Run the tree until it stops; return the report.

        Start-up runs the procs in declared order (gating ones release the next when ready).
        Shutdown begins on SIGINT/SIGTERM (with *handle_signals*, the default), when a
        significant proc ends, or on a start-up failure; procs stop in reverse order, each
        with its grace, then force. A second signal forces everything at once.

        With *notify* (the default) and ``NOTIFY_SOCKET`` set, systemd hears ``READY=1``
        once the whole tree is ready, ``STATUS=`` lines, ``STOPPING=1`` when the shutdown
        begins and, with ``WATCHDOG_USEC``, ``WATCHDOG=1`` pings (see "Deploying").

        Returns:
            The `SupervisorReport` when no proc's final outcome is FAILED.

        Raises:
            SupervisorError: when any proc failed; ``.report`` still names every outcome.
            RuntimeError: when this supervisor is already running.
        """
        run = self._begin()
        from ._signals import run_with_signals  # lazy: `import super_visor` stays cheap

        main = functools.partial(run_with_signals, run) if handle_signals else run.run
        try:
            if not notify:
                return await main()
            from ._notify import with_systemd_notify  # lazy: `import super_visor` stays cheap

            return await with_systemd_notify(run, self, main)
        finally:
            self._active = False

    @contextlib.asynccontextmanager
    async def running(self, *, handle_signals: bool = False) -> AsyncIterator[RunHandle]:
        """Run the tree in the background for the duration of an ``async with`` block.

        Enters once every proc is ready (for tests and embedding); when start-up fails, the
        ``async with`` raises `SupervisorError` without entering the block. Leaving the
        block shuts the tree down gracefully and waits for it, also when the block is left
        by a cancellation from outside. When a proc fails, the block is cancelled and the
        ``async with`` raises `SupervisorError`; the report is ``handle.report`` otherwise.
        An exception raised by the block itself propagates unchanged after shutdown (with a
        note when the tree failed too). With *handle_signals*, a signal during start-up
        stops the tree without a failure; the block is then entered with
        ``handle.stopped`` already True.
        """
        from ._handle import run_in_background  # lazy, as in _open_run

        run = self._begin()
        try:
            async with run_in_background(run, handle_signals=handle_signals) as handle:
                yield handle
        finally:
            self._active = False

    def _begin(self) -> SupervisorRun:
        if self._active:
            msg = (
                f"{self.name}: this supervisor is already running; a supervisor runs once at "
                "a time (build another with SupervisorBuilder.build() to run two)"
            )
            raise RuntimeError(msg)
        from ._slot import ONLY_ABANDONED_LEFT
        from ._token import CancellationToken

        self._active = True
        run = self._open_run(CancellationToken(), self.name)
        run.leftovers.on_only_left = ONLY_ABANDONED_LEFT.get()  # set by run() only
        return run
