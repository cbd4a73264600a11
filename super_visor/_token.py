"""CancellationToken: how a supervisor asks one proc to stop, and how the proc says it is ready.

The token knows nothing about procs or supervisors. The supervisor hooks in through two
private callbacks (``_on_cancel`` and ``_on_ready``) so that a cancel or a ready costs a plain
function call, not a task or a wake-up of the event loop.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import TYPE_CHECKING, Any, final

import anyio

from ._parking import park, release

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator

    from ._context import RunContext
    from ._controls import SupervisorControls
    from ._parking import Waiters
    from ._slot import Slot

__all__ = ("CancellationToken",)


@final
class CancellationToken:
    """A cooperative stop request for one proc, plus its readiness signal.

    Stopping is cooperative first: the supervisor cancels the token and gives the proc its
    grace period to return; only then does it force-cancel the proc's task. A proc that
    watches its token can therefore finish what it is doing, flush, and close cleanly.

    .. versionadded:: 0.1
    """

    __slots__ = (
        "__weakref__",
        "_cancelled",
        "_children",
        "_grace",
        "_on_cancel",
        "_on_ready",
        "_ready",
        "_ready_value",
        "_reason",
        "_run",
        "_slot",
        "_waiters",
    )

    def __init__(self) -> None:
        self._cancelled = False
        self._reason: str | None = None
        # Created on the first wait() only: most tokens of a large tree are cancelled before
        # anyone waits on them or are waited on once (see _parking: no event per token).
        self._waiters: Waiters | None = None
        self._children: weakref.WeakSet[CancellationToken] | None = None
        self._on_cancel: Callable[[str | None], None] | None = None
        self._on_ready: Callable[[object], None] | None = None
        self._ready = False
        self._ready_value: object = None
        #: The grace in force for the proc holding this token (set by its supervisor, after
        #: every override); adapters that enforce their grace themselves read it.
        self._grace: float | None = None
        #: The proc's slot and the run of its supervisor, set when a supervisor makes the
        #: token; None for a token made by hand. The path is derived from the slot only
        #: when asked for, so a quiet tree never builds its procs' paths.
        self._slot: Slot | None = None
        self._run: RunContext | None = None

    def __repr__(self) -> str:
        state = f"cancelled, reason={self._reason!r}" if self._cancelled else "active"
        return f"<CancellationToken {state}>"

    @property
    def name(self) -> str:
        """The proc's name in its supervisor (``"consumer"``); ``""`` for a token made by hand."""
        slot = self._slot
        return "" if slot is None else slot.spec.name

    @property
    def path(self) -> str:
        """The proc's full path (``"app/pipeline/consumer"``), as in its `ProcOutcome`;
        ``""`` for a token made by hand."""
        slot = self._slot
        return "" if slot is None else slot.path

    def request_shutdown(self, reason: str | None = None) -> None:
        """Ask the **whole tree** to shut down gracefully; returns at once.

        For a proc that learns the application must stop (a fatal condition, an admin
        command) without ending itself first: the procs stop in reverse order as for a
        signal, this one included, and *reason* becomes ``report.reason``. Idempotent, like
        every stop request: the first reason stands.

        Raises:
            RuntimeError: the token was made by hand, not by a supervisor.
        """
        run = self._supervised("request_shutdown()", "can ask its tree to shut down")
        run.root.request_stop(reason or f"proc '{self.path}' requested the shutdown")

    @property
    def supervisor(self) -> SupervisorControls:
        """The controls of this proc's own supervisor: the methods of `RunHandle` that act
        on procs (``status()``, ``stop()``, ``start()``, ``restart()``, ``abort()``,
        ``start_child()``, ...), with paths relative to that supervisor. A proc starts its
        supervisor's dynamic children through ``token.supervisor.start_child(...)``.

        Raises:
            RuntimeError: the token was made by hand, not by a supervisor.
        """
        return self._supervised("token.supervisor", "has one").operator.controls()

    def _supervised(self, what: str, only: str) -> RunContext:
        """The run of the supervisor holding this token; a clear error for a hand-made one."""
        run = self._run
        if run is None:
            msg = (
                f"{what}: this token was made by hand, not by a supervisor; only a proc run "
                f"by a supervisor {only}"
            )
            raise RuntimeError(msg)
        return run

    @property
    def cancelled(self) -> bool:
        """Whether a stop has been requested."""
        return self._cancelled

    @property
    def reason(self) -> str | None:
        """The reason given with the first `cancel()`, or ``None``."""
        return self._reason

    def wait(self) -> Coroutine[Any, Any, None]:
        """``await token.wait()`` returns once a stop has been requested (at once if it was).

        Always a checkpoint, so it can itself be cancelled by an enclosing scope. It hands
        back the event's own awaitable instead of being a coroutine itself: one frame less
        for every idle proc of a large tree.
        """
        if self._cancelled:
            return anyio.lowlevel.checkpoint()
        if self._waiters is None:
            self._waiters = []
        return park(self._waiters)

    def cancel(self, reason: str | None = None) -> None:
        """Ask the proc holding this token to stop.

        Idempotent: only the first reason is kept, because the report must say why the stop
        *started*, not who asked last. Never blocks; the supervisor enforces the grace period.
        Child tokens are cancelled too, with the same reason.
        """
        if self._cancelled:
            return
        self._cancelled = True
        self._reason = reason
        if self._waiters is not None:
            release(self._waiters)
        if self._on_cancel is not None:
            self._on_cancel(reason)
        if self._children is not None:
            for child in list(self._children):
                child.cancel(reason)

    def child(self) -> CancellationToken:
        """Return a token that is cancelled whenever this one is (never the other way).

        Hand it to a helper or a sub-task that must stop with the proc but may also be stopped
        on its own. Children are held weakly, so per-request child tokens do not pile up.
        Calling ``ready()`` on a child token has no effect on the proc's readiness.
        """
        child = CancellationToken()
        if self._cancelled:
            child.cancel(self._reason)
        else:
            if self._children is None:
                self._children = weakref.WeakSet()
            self._children.add(child)
        return child

    @contextlib.contextmanager
    def cancel_scope(self) -> Iterator[anyio.CancelScope]:
        """A cancel scope that is cancelled when this token is.

        For a proc that waits on something other than its token (an accept loop, a queue):
        ``with token.cancel_scope(): await queue.receive()`` returns at the stop request
        instead of at the next item. Whatever the block awaits is cancelled, so use it
        around waits, not around clean-up that must finish.
        """
        scope = anyio.CancelScope()
        watcher = self.child()  # held here; the token keeps children weakly
        if watcher.cancelled:
            scope.cancel()
        else:
            watcher._on_cancel = lambda _reason: scope.cancel()
        with scope:
            yield scope

    def ready(self, value: object = None) -> None:
        """Say that the proc is ready; *value* becomes its ready value.

        When the proc gates start-up (``wait_ready=True``) this releases the next proc. The
        value is what ``handle.ready_value(name)`` returns, e.g. the port a server bound.
        A second call is a no-op, so the first value stands.
        """
        if self._ready:
            return
        self._ready = True
        self._ready_value = value
        if self._on_ready is not None:
            self._on_ready(value)
