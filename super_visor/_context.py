"""RunContext: what the parts of a supervisor run (start-up, shutdown, restarts, dynamic
children, operator actions, the proc task) need from the run that coordinates them.

A Protocol rather than an import of ``_engine``: the parts sit below the coordinator and
never import it, so imports point one way (trio's ``Runner`` holds its parts the same way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import contextvars
    from contextlib import AbstractContextManager

    import anyio

    from ._clock import Clock
    from ._events import EventHub
    from ._lifecycle import RunPhase
    from ._operator import Operator
    from ._slot import Attempt, Leftovers, Slot
    from ._spec import SupervisorConfig
    from ._status import TreeStatus
    from ._tasks import ProcTasks

__all__ = ("RunContext",)


class RunContext(Protocol):
    """The shared state and the few decisions the run keeps for itself."""

    path: str
    hub: EventHub
    config: SupervisorConfig
    clock: Clock
    #: The run's static procs, in declared order.
    slots: list[Slot]
    #: How many procs' tasks may still run.
    live: int
    #: Procs this run abandoned (their tasks may still run; see ``_shutdown``).
    leftovers: Leftovers
    #: The root run of the tree (this one at the root).
    root: RunContext
    #: Every proc was started and became ready (stays True once reached).
    all_ready: bool
    #: On the root: some supervisor of the tree gave up (restart limit) during this run.
    restart_limit_reached: bool
    phase: RunPhase
    #: Why it is stopping (None until a stop is requested).
    reason: str | None
    #: The operator actions on its procs (``handle.stop()`` and the like).
    operator: Operator
    #: Where its procs' tasks run.
    proc_tasks: ProcTasks

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested (the run is stopping or has stopped)."""
        ...

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        """The run's task group: helpers (an operator's watch) run in it."""
        ...

    def status(self) -> TreeStatus:
        """A snapshot of this run's tree now."""
        ...

    def all_slots(self) -> list[Slot]:
        """Static procs in declared order, then dynamic children in start order."""
        ...

    def request_stop(self, reason: str | None) -> None:
        """Begin the graceful shutdown (idempotent)."""
        ...

    def is_dynamic(self, slot: Slot) -> bool:
        """Whether *slot* was started with ``start_child()``."""
        ...

    def cut_short_on_stop(self, timeout: float | None = None) -> AbstractContextManager[object]:
        """A scope for a wait (a gate, a backoff) that a stop request ends at once."""
        ...

    def proc_ended(
        self,
        slot: Slot,
        attempt: Attempt,
        result: object,
        error: BaseException | None,
        *,
        cancelled: bool,
        here: contextvars.Context | None = None,
    ) -> Attempt | None:
        """Record how a run of *slot* ended and carry out what follows (`after_end`); the
        restart the calling task is to run itself, if any (*here*: the caller is the task
        the proc ran in, and that is the context it began with)."""
        ...
