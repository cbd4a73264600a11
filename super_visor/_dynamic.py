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
from ._shutdown import stop_slot, wait_ended
from ._slot import Slot
from ._startup import start_slot

if TYPE_CHECKING:
    from ._context import RunContext
    from ._outcome import ProcOutcome
    from ._restarter import Restarter
    from ._spec import ProcSpec

__all__ = ("DynamicChildren",)


@final
class DynamicChildren:
    """The dynamic children of one supervisor run, in start order (newest last)."""

    __slots__ = ("_by_name", "_ctx", "_next_index", "_restarter", "children")

    def __init__(self, ctx: RunContext, restarter: Restarter, by_name: dict[str, Slot]) -> None:
        self._ctx = ctx
        self._restarter = restarter
        #: The run's registry of every proc by name (static and dynamic): names stay unique.
        self._by_name = by_name
        self.children: dict[str, Slot] = {}
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
        if _failed_to_start(slot):
            await self._discard_failed(slot)
        return slot.ready_value

    async def _discard_failed(self, slot: Slot) -> None:
        if slot.live:
            await stop_slot(self._ctx, slot, "failed to start")
        self.forget(slot)
        attempt = slot.attempt
        error = None if attempt is None else attempt.error
        if isinstance(error, StartupError):
            raise error
        raise StartupError(slot.path, "raised before it was ready") from error

    async def stop_child(self, name: str, reason: str) -> ProcOutcome:
        """Stop a dynamic child (grace, then force), remove it, return its outcome."""
        slot = self.children.get(name)
        if slot is None:
            known = ", ".join(self.children) or "none"
            msg = f"{self._ctx.path}: no dynamic child {name!r}; running dynamic children: {known}"
            raise KeyError(msg)
        if slot.state is ProcState.RUNNING or slot.state is ProcState.STARTING:
            await stop_slot(self._ctx, slot, reason)
        elif slot.live:
            await wait_ended(slot)  # the shutdown is already stopping it
        self.forget(slot)
        if slot.state is ProcState.RESTARTING:  # queued, or in its backoff (see _restarter)
            self._restarter.discard(slot)
            slot.move(ProcState.ENDED)
        return slot.outcome()

    def forget(self, slot: Slot) -> None:
        """*slot* leaves the supervisor."""
        self.children.pop(slot.spec.name, None)
        self._by_name.pop(slot.spec.name, None)


def _failed_to_start(slot: Slot) -> bool:
    """Whether a dynamic child failed before it was ready (start_child raises it)."""
    attempt = slot.attempt
    if attempt is None:
        return False
    if attempt.startup_error is not None:
        return True
    ended = slot.state is ProcState.ENDED
    return ended and (not attempt.began or isinstance(attempt.error, StartupError))
