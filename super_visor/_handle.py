"""RunHandle: the controls of a running tree, and the driver behind ``Supervisor.running()``.

``running()`` runs the tree in a task beside the caller's ``async with`` block. That task is
shielded from the block's cancellation, so leaving the block by any way (return, exception,
cancellation from outside) still stops the tree gracefully: each proc gets its grace, then
force. A failure of the tree cancels the block and is raised when the block is left.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, final

import anyio

from ._controls import SupervisorControls
from ._errors import SupervisorError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from ._engine import SupervisorRun
    from ._events import EventStream
    from ._operator import ChildSpecFactory as ChildSpecFactory
    from ._outcome import SupervisorReport

__all__ = ("RunHandle", "run_in_background", "tree_error")


@contextlib.asynccontextmanager
async def run_in_background(
    run: SupervisorRun, *, handle_signals: bool
) -> AsyncIterator[RunHandle]:
    """The body of ``Supervisor.running()`` (see its docstring for the guarantees)."""
    from ._signals import receive_stop_signals, respond_to_signals  # lazy: a cheap import

    handle = RunHandle(run)
    body_error: Exception | None = None
    entered = False
    with receive_stop_signals(run) if handle_signals else contextlib.nullcontext() as signals:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(handle._drive, task_group.cancel_scope)
            if signals is not None:
                task_group.start_soon(respond_to_signals, signals, run)
            try:
                await run.ready_or_done.wait()
                if run.all_ready:
                    entered = True
                    yield handle
            except Exception as exc:  # noqa: BLE001 (re-raised below, unwrapped)
                body_error = exc
            finally:
                await handle._stop_gracefully("running() block exited")
            task_group.cancel_scope.cancel()
    _raise_failures(handle, body_error)
    if not entered:
        yield handle  # start-up was cut short without a failure (e.g. a signal)


def _raise_failures(handle: RunHandle, body_error: Exception | None) -> None:
    """The block's own exception wins (with a note when the tree failed too); else the
    tree's failure."""
    if body_error is not None:
        if handle._error is not None:  # both failed: keep the procs' failure visible
            body_error.add_note(f"super_visor: meanwhile the tree failed: {handle._error}")
        raise body_error
    if handle._error is not None:
        raise handle._error


@final
class RunHandle(SupervisorControls):
    """Controls a supervisor running under ``running()``: the root's `SupervisorControls`
    (paths relative to the root), plus its readiness, events, shutdown and report.

    .. versionadded:: 0.1
    """

    __slots__ = ("_asked", "_awaiting_stop", "_done", "_error", "_report", "_run")

    def __init__(self, run: SupervisorRun) -> None:
        super().__init__(run.operator)
        self._run = run
        self._report: SupervisorReport | None = None
        self._error: SupervisorError | None = None
        self._done = anyio.Event()
        #: The holder asked for the stop (``shutdown()``), or waits for it (``wait_stopped``):
        #: its block is not cancelled when the tree stops.
        self._asked = False
        self._awaiting_stop = False

    @property
    def ready(self) -> bool:
        """Whether the tree is ready: its start-up finished (every proc became ready once)
        and no shutdown has begun (False from its first moment, so probes drain traffic
        first). A proc restarting or stopped by an operator later does not change it:
        ``status()`` shows each proc's own readiness."""
        return self._run.all_ready and not self._run.stopping

    async def wait_ready(self) -> bool:
        """Wait until the whole tree is ready, or until start-up was cut short (a signal,
        a shutdown, a failure); return whether it became ready."""
        await self._run.ready_or_done.wait()
        return self._run.all_ready

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
        """Begin the graceful shutdown; returns at once. *reason* reaches every token.

        The ``running()`` block goes on (it may wait for the report); a tree that stops on
        its own instead (a significant proc ended, a signal, a proc's
        ``token.request_shutdown()``) cancels the block, unless it waits in `wait_stopped`.
        """
        self._asked = True
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
        """Wait until the tree has stopped and return its report (failed or not).

        A ``running()`` block waiting here when the tree stops on its own gets the report
        (it is not cancelled: this is what it was waiting for).
        """
        self._awaiting_stop = True
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
                await self._follow(self._run.run)
        except SupervisorError:
            scope.cancel()
        else:
            if not (self._asked or self._awaiting_stop):  # it stopped on its own, unasked
                scope.cancel()

    async def _follow(self, main: Callable[[], Awaitable[SupervisorReport]]) -> SupervisorReport:
        """Await *main* (the tree's run) and record its end here, whichever way it ends:
        ``stopped``, ``report`` and the streams of ``events()`` then say so."""
        try:
            self._report = await main()
        except SupervisorError as exc:
            self._error = exc
            self._report = exc.report
            raise
        finally:
            if self._report is None:  # forced from outside: the outcomes are still known
                self._report = self._run.report_so_far()
            self._run.hub.close_streams()
            self._done.set()
        return self._report


def tree_error(handle: RunHandle) -> SupervisorError | None:
    """The tree's failure, once it has stopped; None while it runs or when none failed."""
    return handle._error
