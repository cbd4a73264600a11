"""SupervisorControls: look at and act on the procs of one running supervisor, by path.

The same controls serve the root (`RunHandle` adds what only the caller of ``running()``
needs: the report, the event stream, the shutdown) and any nested supervisor (a proc's
``token.supervisor``). Paths are resolved here, relative to the supervisor the controls
belong to, down through the runs of nested supervisors; the actions themselves are the
engine's (``_operator``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._backoff import Backoff
    from ._operator import Operator
    from ._outcome import ProcOutcome
    from ._restart import Restart
    from ._slot import Slot
    from ._status import TreeStatus

__all__ = ("SupervisorControls", "locate")


class SupervisorControls:
    """The controls of one running supervisor: ``token.supervisor`` for a proc's own
    supervisor; `RunHandle` for the root.

    Paths are relative to this supervisor (``"pipeline/consumer"``), or full, as
    ``token.path`` shows them (``"app/pipeline/consumer"``). The actions (`stop`, `start`,
    `restart`, `abort`, `inject_failure`) reach any proc at any depth, static or dynamic;
    they are events (``EventKind.CONTROL``) and log lines naming who asked: ``"API"``, or
    what the keyword-only ``_by`` says (the control socket passes ``"socket"``; it is for
    such front ends, not for applications). They never add to ``restarts`` nor count toward
    the restart intensity.

    .. versionadded:: 0.2
    """

    __slots__ = ("_operator",)

    def __init__(self, operator: Operator) -> None:
        self._operator = operator

    def __repr__(self) -> str:
        return f"<SupervisorControls {self._operator.ctx.path}>"

    def status(self) -> TreeStatus:
        """A snapshot of the tree now: every proc's state, readiness, restarts, start time.

        Cheap enough to poll (it walks the tree once, without awaiting); it stays valid
        after the tree has stopped, showing the final states.
        """
        return self._operator.ctx.status()

    def is_running(self, path: str) -> bool:
        """Whether the proc at *path* runs now (its task is executing: starting, running or
        stopping); False once the tree has stopped.

        Raises:
            KeyError: no proc has this path.
        """
        from ._lifecycle import RunPhase  # loaded with the engine: free here, not at import

        slot = self._slot_at(path)
        return slot.live and self._operator.ctx.phase is not RunPhase.STOPPED

    def ready_value(self, path: str) -> object:
        """The value the proc at *path* (e.g. ``"web"`` or ``"pipeline/consumer"``) passed
        to ``token.ready()``; None if it has not called it."""
        return self._slot_at(path).ready_value

    async def stop(self, path: str, *, _by: str = "API") -> ProcOutcome:
        """Stop the proc at *path* gracefully (token, grace, then force), like the shutdown
        stops it (OTP ``terminate_child``); return its outcome once its clean-up has run.

        A static proc stays in the tree, ``stopped``, until `start` or `restart`; it is not
        an ended proc: its supervisor does not shut down because it was significant or was
        the last one running, and a restart of its group leaves it alone. A dynamic child
        is removed (as by `stop_child`; a failed one stays in the report). Stopping a proc
        that is not running just returns its outcome.

        Raises:
            KeyError: no proc has this path.
            RuntimeError: its supervisor has stopped, or start-up has not reached the proc.
        """
        operator, slot = self._locate(path)
        return await operator.stop(slot, _by)

    async def start(self, path: str, *, _by: str = "API") -> object:
        """Start the stopped (or ended) proc at *path* again, as at start-up: return once it
        has begun, or, when it gates, once it is ready (OTP ``restart_child``).

        Not a restart: its ``restarts`` stay as they are, and the restart intensity is not
        touched. A failure to start is raised here, and the proc stays stopped.

        Returns:
            Its ready value (None unless it passes one to ``token.ready()``).

        Raises:
            KeyError: no proc has this path.
            RuntimeError: the proc runs (use `restart`), or its supervisor is shutting down.
            StartupError: it failed or timed out before it was ready.
        """
        operator, slot = self._locate(path)
        return await operator.start(slot, _by)

    async def restart(self, path: str, *, _by: str = "API") -> object:
        """`stop` the proc at *path* (if it runs), then `start` it: that proc alone, not its
        restart group. Returns its ready value; raises as `start` does."""
        operator, slot = self._locate(path)
        return await operator.restart(slot, _by)

    def abort(self, path: str, *, _by: str = "API") -> None:
        """Force-cancel the proc at *path* now, skipping the rest of its grace (also while
        the tree shuts down); it ends ``forced`` and stays stopped, as after `stop`.

        Returns at once; its outcome is known once its task has ended (see `is_running`).
        A proc that is not running is left as it is.

        Raises:
            KeyError: no proc has this path.
            RuntimeError: its supervisor has stopped.
        """
        operator, slot = self._locate(path)
        operator.abort(slot, _by)

    def inject_failure(self, path: str, error: BaseException, *, _by: str = "API") -> None:
        """Make the current run of the proc at *path* raise *error*, wherever it waits, as
        if it had raised it itself: its outcome is ``failed`` with *error*, and its restart
        policy applies. For tests and drills. A nested supervisor first stops its procs
        (in reverse, each with its grace), then fails with *error*.

        Raises:
            KeyError: no proc has this path.
            RuntimeError: the proc is not running, or its supervisor has stopped.
        """
        operator, slot = self._locate(path)
        operator.inject_failure(slot, error, _by)

    async def start_child(
        self,
        proc: object,
        *,
        under: str | None = None,
        name: str | None = None,
        grace: float | None = None,
        wait_ready: bool | None = None,
        ready_timeout: float | None = None,
        restart: Restart | None = None,
        significant: bool | None = None,
        backoff: Backoff | None = None,
        abandon_after: float | None = None,
    ) -> object:
        """Start one more proc on the running supervisor (OTP ``start_child``).

        For per-connection or per-job procs. The same keywords and rules as ``add_proc``
        apply, but a dynamic child is not significant unless ``significant=True``, and it is
        always restarted on its own (one-for-one), whatever the supervisor's strategy. At
        shutdown dynamic children stop first, newest first. A child that ends cleanly on its
        own leaves the supervisor; a failed one stays in the report. *under* is the path of
        a nested supervisor to start it in (its own defaults apply); this one by default.

        Returns:
            Its ready value (None unless it gates and passes one to ``token.ready()``).

        Raises:
            ConfigError: the proc or an option is invalid, or the name is taken.
            StartupError: it failed or timed out before it was ready; it has been stopped.
            RuntimeError: the supervisor is shutting down or has stopped.
            KeyError: *under* names no running nested supervisor.
        """
        operator = self._operator if under is None else self._supervisor_at(under)
        from ._spec import given_options  # loaded by the build: free here, not at import

        options = given_options(
            name, grace, wait_ready, ready_timeout, restart, significant, backoff, abandon_after
        )
        child_spec = operator.child_spec
        assert child_spec is not None, f"{operator.ctx.path}: a run made by its supervisor"
        return await operator.start_child(child_spec(proc, options))

    async def stop_child(self, name: str, reason: str | None = None) -> ProcOutcome:
        """Stop a dynamic child (grace, then force) and remove it; return its outcome.

        Raises:
            KeyError: no dynamic child has this name (use `stop` for any other proc).
        """
        return await self._operator.stop_child(name, reason or "handle.stop_child() called")

    # ----------------------------------------------------------------- paths

    def _slot_at(self, path: str) -> Slot:
        """The proc at *path*: relative to this supervisor, or the full path."""
        return self._locate(path)[1]

    def _locate(self, path: str) -> tuple[Operator, Slot]:
        """The proc at *path* and the operator of the supervisor holding it."""
        operator = self._operator
        found = locate(operator, path)
        prefix = f"{operator.ctx.path}/"
        if found is None and path.startswith(prefix):
            found = locate(operator, path.removeprefix(prefix))
        if found is None:
            known = ", ".join(s.spec.name for s in operator.ctx.all_slots())
            msg = f"{operator.ctx.path}: no proc {path!r}; its procs are: {known}"
            raise KeyError(msg)
        return found

    def _supervisor_at(self, path: str) -> Operator:
        """The operator of the nested supervisor at *path* (its current or last run)."""
        slot = self._slot_at(path)
        nested = None if slot.attempt is None else slot.attempt.nested
        if nested is None:
            msg = f"{slot.path}: not a running supervisor; start_child(under=...) needs one"
            raise KeyError(msg)
        return nested.operator


def locate(operator: Operator, path: str) -> tuple[Operator, Slot] | None:
    """Walk *path* down from *operator*'s supervisor, into the runs of nested ones."""
    parts = path.split("/")
    for depth, name in enumerate(parts):
        slot = operator.named(name)
        if slot is None or depth == len(parts) - 1:
            return None if slot is None else (operator, slot)
        nested = None if slot.attempt is None else slot.attempt.nested
        if nested is None:
            return None
        operator = nested.operator
    return None
