"""Slot: the runtime state of one proc inside one supervisor run.

A slot outlives restarts: each run of the proc gets a fresh token and cancel scope, while the
slot keeps the counts and the history a report needs. It holds no logic beyond moving through
the lifecycle and building the proc's outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from ._lifecycle import ProcState, check_transition
from ._outcome import ProcOutcome, ProcStatus

if TYPE_CHECKING:
    import anyio
    from anyio import TaskHandle

    from ._spec import ProcSpec
    from ._token import CancellationToken

__all__ = ("HISTORY_LIMIT", "Slot")

#: How many errors of earlier runs an outcome keeps to explain a restart storm.
HISTORY_LIMIT = 5


@final
class Slot:
    """Runtime state of one proc; mutated only by its supervisor run and its runner task."""

    __slots__ = (
        "_path",
        "backoff_attempt",
        "began",
        "children",
        "error",
        "forced",
        "gates",
        "history",
        "index",
        "parent_path",
        "ready_reached",
        "ready_value",
        "restarts",
        "result",
        "spec",
        "started_at",
        "startup_error",
        "state",
        "status",
        "task",
        "token",
        "waiter",
    )

    def __init__(self, spec: ProcSpec, parent_path: str, index: int) -> None:
        self.spec = spec
        #: The supervisor's path, shared by its slots; ``path`` is built only when needed.
        self.parent_path = parent_path
        self._path: str | None = None
        #: Position in declared order; stop order and restart groups are derived from it.
        self.index = index
        self.state = ProcState.PENDING
        self.token: CancellationToken | None = None
        #: The current run's task; cancelling it forces the proc (its scope is the task's).
        self.task: TaskHandle[None] | None = None
        #: Set by the supervisor while it waits for this proc to begin, be ready, or end.
        self.waiter: anyio.Event | None = None
        self.began = False
        #: Whether this run holds start-up until ready (decided at each start).
        self.gates = False
        #: Whether this run became ready (also when it called ready() while stopping).
        self.ready_reached = False
        self.forced = False
        self.ready_value: object = None
        #: Set when start-up gave up on this proc (ready_timeout); becomes its error.
        self.startup_error: BaseException | None = None
        #: When the current run started (anyio clock), for the backoff's stability rule.
        self.started_at = 0.0
        self.backoff_attempt = 0
        self.status: ProcStatus | None = None
        self.result: object = None
        self.error: BaseException | None = None
        self.restarts = 0
        self.history: tuple[BaseException, ...] = ()
        self.children: tuple[ProcOutcome, ...] = ()

    def __repr__(self) -> str:
        return f"<Slot {self.path} {self.state.name}>"

    @property
    def path(self) -> str:
        """``app/pipeline/consumer``; built on first use (a quiet tree never needs it)."""
        if self._path is None:
            self._path = f"{self.parent_path}/{self.spec.name}"
        return self._path

    @property
    def live(self) -> bool:
        """Whether a run of this proc may still be executing (its task not finished)."""
        return self.state in _LIVE

    def move(self, new: ProcState) -> None:
        check_transition(self.path, self.state, new)
        self.state = new

    def mark_begun(self) -> None:
        """Its run_proc is being entered; a proc that does not gate is ready from now on.

        The supervisor is woken here, before the proc runs, yet resumes only once this task
        yields, i.e. after run_proc reached its first await: "begun" as API.md defines it.
        """
        self.began = True
        if not self.gates:
            self.release_gate()

    def release_gate(self) -> None:
        """Ready from now on (without a ready value of its own)."""
        self.ready_reached = True
        if self.state is ProcState.STARTING:
            self.state = ProcState.RUNNING
            self.wake()

    def mark_ready(self, value: object) -> None:
        """The proc called ``token.ready(value)``: keep the value, release a gate."""
        self.ready_value = value
        self.release_gate()

    def wake(self) -> None:
        """Wake the supervisor if it waits on this proc (to begin, be ready, or end)."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set()

    def record_end(self, status: ProcStatus, result: object, error: BaseException | None) -> None:
        """Store how this run ended."""
        self.move(ProcState.ENDED)
        self.status = status
        self.result = result
        self.error = error

    def archive_error(self) -> None:
        """Keep the last error in the history before a restart wipes the run's state."""
        if self.error is not None:
            self.history = (*self.history, self.error)[-HISTORY_LIMIT:]

    def prepare_restart(self) -> None:
        """Forget the last run (keeping its error in the history) before starting again."""
        self.archive_error()
        self.restarts += 1
        self.status = None
        self.result = None
        self.error = None
        self.startup_error = None
        self.forced = False
        self.began = False
        self.ready_reached = False
        self.ready_value = None
        self.children = ()

    def outcome(self) -> ProcOutcome:
        status = self.status if self.status is not None else ProcStatus.NOT_STARTED
        children = self.children
        if status is ProcStatus.NOT_STARTED and not children:
            children = not_started_children(self.path, self.spec.proc)
        return ProcOutcome(
            name=self.spec.name,
            path=self.path,
            status=status,
            result=self.result,
            error=self.error,
            restarts=self.restarts,
            children=children,
            history=self.history,
        )


def not_started_children(path: str, proc: object) -> tuple[ProcOutcome, ...]:
    """For a nested supervisor start-up never reached: its procs, all NOT_STARTED, so the
    report still names every proc of the tree exactly once."""
    specs: tuple[ProcSpec, ...] = getattr(proc, "specs", ()) if hasattr(proc, "_open_run") else ()
    return tuple(
        ProcOutcome(
            name=spec.name,
            path=f"{path}/{spec.name}",
            status=ProcStatus.NOT_STARTED,
            children=not_started_children(f"{path}/{spec.name}", spec.proc),
        )
        for spec in specs
    )


_LIVE = (ProcState.STARTING, ProcState.RUNNING, ProcState.STOPPING, ProcState.FORCING)
