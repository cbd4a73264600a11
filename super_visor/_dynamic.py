"""Dynamic children: procs started on a running supervisor (OTP's ``start_child``).

They are kept apart from the declared procs: they are started and stopped one by one on
request, restart one-for-one whatever the strategy, stop first (newest first) at shutdown,
and leave the supervisor when they end cleanly. One that fails to start is stopped and its
error is raised to the caller, not put in the report: the caller has it, and the tree runs on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from ._errors import ConfigError, StartupError
from ._lifecycle import ProcState, RunPhase
from ._outcome import ProcStatus
from ._shutdown import stop_slot, wait_ended
from ._slot import Slot
from ._startup import start_slot

if TYPE_CHECKING:
    from ._context import RunContext
    from ._outcome import ProcOutcome
    from ._restarter import Restarter
    from ._spec import ProcSpec

__all__ = ("DynamicChildren", "failed_to_start", "start_failure")


@final
class DynamicChildren:
    """The dynamic children of one supervisor run, in start order (newest last)."""

    __slots__ = ("_by_name", "_ctx", "_next_index", "_restarter", "children", "departed")

    def __init__(self, ctx: RunContext, restarter: Restarter, by_name: dict[str, Slot]) -> None:
        self._ctx = ctx
        self._restarter = restarter
        #: The run's registry of every proc by name (static and dynamic): names stay unique.
        self._by_name = by_name
        self.children: dict[str, Slot] = {}
        #: Children stopped with ``stop_child()`` that had failed: gone from the supervisor
        #: (their name is free again) but kept for the report.
        self.departed: list[Slot] = []
        self._next_index = len(ctx.slots)

    def is_dynamic(self, slot: Slot) -> bool:
        return slot.index >= len(self._ctx.slots)

    async def start_child(self, spec: ProcSpec, phase: RunPhase, reason: str | None) -> object:
        """Start a dynamic child; return its ready value or raise why it did not start."""
        ctx = self._ctx
        if phase is RunPhase.STOPPING or phase is RunPhase.STOPPED:
            state = "has stopped" if phase is RunPhase.STOPPED else "is shutting down"
            msg = f"{ctx.path}: the supervisor {state} ({reason}); cannot start {spec.name!r}"
            raise RuntimeError(msg)
        if spec.name in self._by_name:
            raise ConfigError(
                f"{ctx.path}/{spec.name}",
                "a proc with this name is already in this supervisor",
                "give the child a unique name, e.g. name=f'conn-{n}'",
            )
        slot = Slot(spec, ctx.path, self._next_index)
        self._next_index += 1
        self.children[spec.name] = self._by_name[spec.name] = slot
        await start_slot(ctx, slot)
        if failed_to_start(slot):
            await self._discard_failed(slot)
        return slot.ready_value

    async def _discard_failed(self, slot: Slot) -> None:
        if slot.live:
            await stop_slot(self._ctx, slot, "failed to start")
        self.forget(slot)
        raise start_failure(slot)

    def listed(self) -> list[Slot]:
        """The children for the report, in start order: current ones and departed failures."""
        if not self.departed:
            return [*self.children.values()]
        return sorted([*self.children.values(), *self.departed], key=lambda slot: slot.index)

    async def stop_child(self, name: str, reason: str, phase: RunPhase) -> ProcOutcome:
        """Stop a dynamic child (grace, then force), remove it, return its outcome.

        A child that failed (also while being stopped) stays in the report.
        """
        slot = self.children.get(name)
        running = slot is not None and (slot.live or slot.state is ProcState.RESTARTING)
        if slot is None or not running or phase is RunPhase.STOPPED:
            raise KeyError(self._not_running(name, phase))
        if slot.state is ProcState.RUNNING or slot.state is ProcState.STARTING:
            await stop_slot(self._ctx, slot, reason)
        elif slot.live:
            await wait_ended(slot)  # the shutdown is already stopping it
        if slot.state is ProcState.RESTARTING:  # queued, or in its backoff (see _restarter)
            self._restarter.discard(slot)
            slot.move(ProcState.ENDED)
        self.depart(slot)
        return slot.outcome()

    def depart(self, slot: Slot) -> None:
        """*slot* leaves the supervisor for good; kept for the report if it failed."""
        self.forget(slot)
        if slot.status is ProcStatus.FAILED:
            self.departed.append(slot)

    def _not_running(self, name: str, phase: RunPhase) -> str:
        path = self._ctx.path
        if phase is RunPhase.STOPPED:
            return f"{path}: no running dynamic child {name!r}: the supervisor has stopped"
        running = [n for n, s in self.children.items() if s.live]
        known = ", ".join(running) or "none"
        return f"{path}: no running dynamic child {name!r}; running dynamic children: {known}"

    def forget(self, slot: Slot) -> None:
        """*slot* leaves the supervisor."""
        self.children.pop(slot.spec.name, None)
        self._by_name.pop(slot.spec.name, None)


def start_failure(slot: Slot) -> StartupError:
    """The error to raise for a proc that failed to start (`failed_to_start`)."""
    attempt = slot.attempt
    error = None if attempt is None else attempt.error
    if isinstance(error, StartupError):
        return error
    failure = StartupError(slot.path, "raised before it was ready")
    failure.__cause__ = error
    return failure


def failed_to_start(slot: Slot) -> bool:
    """Whether a dynamic child (or a proc an operator started) failed before it was ready
    (start_child and handle.start() raise it): start-up
    gave up on it, it never began (its factory failed), or it gated and raised (a nested
    supervisor whose own start-up failed included)."""
    attempt = slot.attempt
    if attempt is None:
        return False
    if attempt.startup_error is not None:
        return True
    if slot.state is not ProcState.ENDED:
        return False
    gated_and_raised = attempt.gates and not attempt.ready_reached and attempt.error is not None
    return not attempt.began or gated_and_raised
