"""Supervisor: a validated tree of procs that can be started, embedded or nested.

A `Supervisor` is immutable configuration; each ``start()`` (or each run as a nested proc)
creates a fresh `SupervisorRun` holding the runtime state. That is what lets a parent restart
a nested supervisor, and what keeps a finished run's report independent of the next run.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, NamedTuple, final

import anyio

from ._engine import SupervisorRun, report_stuck
from ._errors import SupervisorError
from ._events import EventHub, EventKind
from ._signals import DUMP_SIGNAL, log_tree_dump, receive_stop_signals, signal_name
from ._spec import given_options
from ._token import CancellationToken

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from ._events import Event, EventStream
    from ._outcome import ProcOutcome, SupervisorReport
    from ._restart import Backoff, Restart, Strategy
    from ._spec import ProcSpec, SupervisorConfig

    #: Validates a dynamic child (proc, options) into a spec. Made by the builder, which
    #: owns all validation, and handed in so this module never imports the builder.
    ChildSpecFactory = Callable[[object, dict[str, object]], ProcSpec]

__all__ = ("RunHandle", "Supervisor", "TreeEntry")


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

    __slots__ = ("_active", "_callbacks", "_child_spec", "config", "name", "specs")

    name: str
    specs: tuple[ProcSpec, ...]
    #: The supervisor-wide settings (strategy, restart intensity, stuck reports).
    config: SupervisorConfig
    _active: bool
    _callbacks: tuple[Callable[[Event], object], ...]
    _child_spec: ChildSpecFactory

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
        from ._validate import check_callback, valid

        for callback in callbacks:
            valid(self.name, check_callback(callback, "with_callbacks"))
        return self._replace(callbacks=(*self._callbacks, *callbacks))

    async def run_proc(self, token: CancellationToken, /) -> SupervisorReport:
        """Run as a proc: start the procs, stop them in reverse once *token* is cancelled."""
        return await self._open_run(token, self.name).run()

    def _open_run(
        self, token: CancellationToken, path: str, parent_hub: EventHub | None = None
    ) -> SupervisorRun:
        if parent_hub is None:
            hub = EventHub(self._callbacks)
        else:
            hub = parent_hub.with_callbacks(self._callbacks)
        return SupervisorRun(path, self.specs, self.config, token, hub)

    async def start(self, *, handle_signals: bool = True) -> SupervisorReport:
        """Run the tree until it stops; return the report.

        Start-up runs the procs in declared order (gating ones release the next when ready).
        Shutdown begins on SIGINT/SIGTERM (with *handle_signals*, the default), when a
        significant proc ends, or on a start-up failure; procs stop in reverse order, each
        with its grace, then force. A second signal forces everything at once.

        Returns:
            The `SupervisorReport` when no proc's final outcome is FAILED.

        Raises:
            SupervisorError: when any proc failed; ``.report`` still names every outcome.
            RuntimeError: when this supervisor is already running.
        """
        run = self._begin()
        try:
            if not handle_signals:
                return await run.run()
            return await _run_with_signals(run)
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
        run = self._begin()
        handle = RunHandle(run, self._child_spec)
        body_error: Exception | None = None
        entered = False
        try:
            with receive_stop_signals() if handle_signals else contextlib.nullcontext() as sigs:
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(handle._drive, task_group.cancel_scope)
                    if sigs is not None:
                        task_group.start_soon(_respond_to_signals, sigs, run)
                    try:
                        await run.wait_ready_or_done()
                        if run.all_ready:
                            entered = True
                            yield handle
                    except Exception as exc:  # noqa: BLE001 (re-raised below, unwrapped)
                        body_error = exc
                    finally:
                        await handle._stop_gracefully("running() block exited")
                    task_group.cancel_scope.cancel()
        finally:
            self._active = False
        if body_error is not None:
            if handle._error is not None:  # both failed: keep the procs' failure visible
                body_error.add_note(f"super_visor: meanwhile the tree failed: {handle._error}")
            raise body_error
        if handle._error is not None:
            raise handle._error
        if not entered:
            yield handle  # start-up was cut short without a failure (e.g. a signal)

    def _begin(self) -> SupervisorRun:
        if self._active:
            msg = (
                f"{self.name}: this supervisor is already running; a supervisor runs once at "
                "a time (build another with SupervisorBuilder.build() to run two)"
            )
            raise RuntimeError(msg)
        self._active = True
        return self._open_run(CancellationToken(), self.name)


@final
class RunHandle:
    """Controls a supervisor running under ``running()``.

    .. versionadded:: 0.1
    """

    __slots__ = ("_child_spec", "_done", "_error", "_report", "_run")

    def __init__(self, run: SupervisorRun, child_spec: ChildSpecFactory) -> None:
        self._run = run
        self._child_spec = child_spec
        self._report: SupervisorReport | None = None
        self._error: SupervisorError | None = None
        self._done = anyio.Event()

    def ready_value(self, path: str) -> object:
        """The value the proc at *path* (e.g. ``"web"`` or ``"pipeline/consumer"``) passed
        to ``token.ready()``; None if it has not called it."""
        slot = self._run.find(path)
        if slot is None:
            known = ", ".join(s.spec.name for s in self._run.slots)
            msg = f"{self._run.path}: no proc {path!r}; its procs are: {known}"
            raise KeyError(msg)
        return slot.ready_value

    async def start_child(
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
    ) -> object:
        """Start one more proc on the running supervisor (OTP ``start_child``).

        For per-connection or per-job procs. The same keywords and rules as ``add_proc``
        apply, but a dynamic child is not significant unless ``significant=True``, and it is
        always restarted on its own (one-for-one), whatever the supervisor's strategy. At
        shutdown dynamic children stop first, newest first. A child that ends cleanly on its
        own leaves the supervisor; a failed one stays in the report.

        Returns:
            Its ready value (None unless it gates and passes one to ``token.ready()``).

        Raises:
            ConfigError: the proc or an option is invalid, or the name is taken.
            StartupError: it failed or timed out before it was ready; it has been stopped.
            RuntimeError: the supervisor is shutting down or has stopped.
        """
        options = given_options(
            name, grace, wait_ready, ready_timeout, restart, significant, backoff
        )
        return await self._run.start_child(self._child_spec(proc, options))

    async def stop_child(self, name: str, reason: str | None = None) -> ProcOutcome:
        """Stop a dynamic child (grace, then force) and remove it; return its outcome.

        Raises:
            KeyError: no dynamic child has this name (static procs cannot be stopped alone).
        """
        return await self._run.stop_child(name, reason or "handle.stop_child() called")

    def events(self, buffer: int = 1000) -> EventStream:
        """Subscribe to every lifecycle event of the tree from now on.

        ``async for event in handle.events(): ...`` ends when the tree has stopped. The
        stream holds at most *buffer* events; when its reader falls behind, the newest are
        dropped and counted in ``stream.dropped``, so a slow reader never holds up the tree.
        """
        stream = self._run.hub.open_stream(buffer)
        if self._done.is_set():
            self._run.hub.close_streams()  # the tree has stopped: nothing more will come
        return stream

    def shutdown(self, reason: str | None = None) -> None:
        """Begin the graceful shutdown; returns at once. *reason* reaches every token."""
        self._run.request_stop(reason or "handle.shutdown() called")

    @property
    def stopped(self) -> bool:
        """Whether the tree has stopped (its report exists)."""
        return self._done.is_set()

    async def _stop_gracefully(self, reason: str) -> None:
        """Shut down and wait, even when the caller is being cancelled from outside.

        Shielded on purpose, so "leaving the block stops the tree gracefully" holds for every
        way out of it: each proc still gets its grace and then force, so the wait is the sum
        of the graces at most, unless a proc survives force; that one is then named with
        its stack every few seconds (a hang we report rather than hide by abandoning it).
        """
        self.shutdown(reason)
        with anyio.CancelScope(shield=True):
            await self._done.wait()

    async def wait_stopped(self) -> SupervisorReport:
        """Wait until the tree has stopped and return its report (failed or not)."""
        await self._done.wait()
        assert self._report is not None
        return self._report

    @property
    def report(self) -> SupervisorReport:
        """The report, once the tree has stopped."""
        if self._report is None:
            msg = f"{self._run.path}: still running; the report exists once it has stopped"
            raise RuntimeError(msg)
        return self._report

    async def _drive(self, scope: anyio.CancelScope) -> None:
        """Run the tree for ``running()``. Shielded from the block's own cancellation, so a
        block cancelled from outside still stops the tree gracefully (its ``finally`` asks
        for the shutdown and waits); a second signal still forces the tree from inside."""
        try:
            with anyio.CancelScope(shield=True):
                self._report = await self._run.run()
        except SupervisorError as exc:
            self._error = exc
            self._report = exc.report
            scope.cancel()
        finally:
            if self._report is None:  # forced from outside: the outcomes are still known
                self._report = self._run.report_so_far()
            self._run.hub.close_streams()
            self._done.set()


async def _run_with_signals(run: SupervisorRun) -> SupervisorReport:
    """Run *run* with SIGINT/SIGTERM handled; errors are raised outside the task group so
    they are not wrapped in its ExceptionGroup."""
    report: SupervisorReport | None = None
    error: SupervisorError | None = None
    with receive_stop_signals() as signals:
        async with anyio.create_task_group() as task_group:
            if signals is not None:
                task_group.start_soon(_respond_to_signals, signals, run)
            try:
                report = await run.run()
            except SupervisorError as exc:
                error = exc
            finally:
                task_group.cancel_scope.cancel()
    if error is not None:
        raise error
    assert report is not None
    return report


async def _respond_to_signals(signals: AsyncIterator[int], run: SupervisorRun) -> None:
    """First signal: graceful shutdown. Second: force everything, then name what is stuck.

    SIGUSR1 is not a stop signal: it logs the tree with each proc's state and stack (a
    debugging aid for a live process) and counts towards nothing. Signals keep being read
    until the run ends, also after the force: on trio an unread signal is re-delivered when
    the receiver closes, and by then the default handler (death for SIGTERM) is back.
    """
    received = 0
    async with anyio.create_task_group() as task_group:
        async for signum in signals:
            if signum == DUMP_SIGNAL:
                log_tree_dump(run.path, run.all_slots(), run.live_slots())
                continue
            received += 1
            run.hub.emit(EventKind.SIGNAL_RECEIVED, run.path, detail=signal_name(signum))
            if received == 1:
                run.request_stop(f"signal {signal_name(signum)}")
            elif received == 2:
                run.force_all(signum, f"second signal {signal_name(signum)}")
                task_group.start_soon(_report_stuck_procs, run)


async def _report_stuck_procs(run: SupervisorRun) -> None:
    """After a forcing signal: name every proc still running, every few seconds."""
    interval = run.settings.stuck_report_interval
    while True:
        await anyio.sleep(interval)
        for slot in run.live_slots():
            report_stuck(run.hub, slot)
