"""SupervisorBuilder: describe a tree, then validate all of it at once in ``build()``.

Everything a user can get wrong in describing a tree is caught in ``build()``, before anything
runs, with a message naming the supervisor path, the proc, the problem and the fix. A bad tree
must never surface later as a hang or as a silently ignored setting. The rules themselves
(what counts as seconds, as a name, as a proc) live in ``_validate``, shared with the
environment configuration, the factories and the procs adapters, and which value each
setting of a proc takes is ``_precedence``. This module checks the tree as a whole: names
unique per supervisor, no cycles, no proc object in two places.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, final

from ._restart import Strategy

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._backoff import Backoff
    from ._events import Event
    from ._restart import Restart
    from ._spec import ProcEntry
    from ._supervisor import Supervisor

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
            *within* must be > 0: a window of 0 would hold no restart, so no limit at all.
        backoff: default delay between restarts (None: restart at once).
        stuck_report_interval: seconds between log lines naming a proc that has not ended
            even after it was force-cancelled (a shielded scope or a blocking call).
        abandon_after: default seconds, counted from the force-cancel, after which a proc
            that survives it (a shield, a blocking call) is abandoned and the shutdown moves
            on (10.0). Finite and >= 0, so one stuck proc cannot hold up the whole stop.

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
        abandon_after: float = 10.0,
    ) -> None:
        from ._precedence import Defaults  # lazy, like every part of build(): cheap import

        self.name = name
        self._defaults = Defaults(
            grace=grace,
            ready_timeout=ready_timeout,
            strategy=strategy,
            max_restarts=max_restarts,
            within=within,
            backoff=backoff,
            stuck_report_interval=stuck_report_interval,
            abandon_after=abandon_after,
        )
        self._entries: list[ProcEntry] = []
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
        abandon_after: float | None = None,
    ) -> Self:
        """Add a proc: a `ManagedProc`, any object with ``async run_proc(token)``, an
        ``async def fn(token)``, a built `Supervisor`, or another `SupervisorBuilder` (built
        with this one). Procs start in the order they are added and stop in reverse.

        Nothing is checked here; `build()` checks everything at once, including that the
        proc can be called with exactly one positional argument (the token) and that a
        *ready_timeout* is only given to a proc that gates start-up (where it applies).
        *abandon_after* overrides the builder's default for this proc.
        """
        from ._spec import ProcEntry, given_options  # lazy, like build(): a cheap import

        options = given_options(
            name, grace, wait_ready, ready_timeout, restart, significant, backoff, abandon_after
        )
        self._entries.append(ProcEntry(proc, None, options))
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
        abandon_after: float | None = None,
    ) -> Self:
        """Add a proc made fresh by ``factory()`` at every start and restart.

        Use it when the proc holds state (a channel, a connection, a cache) that must not
        survive a restart. The product is checked at each start; a bad one is a
        `StartupError` then, since it cannot be known earlier.
        """
        from ._spec import ProcEntry, given_options  # lazy, as in add_proc

        options = given_options(
            name, grace, wait_ready, ready_timeout, restart, significant, backoff, abandon_after
        )
        self._entries.append(ProcEntry(None, factory, options))
        return self

    def on_event(self, callback: Callable[[Event], object]) -> Self:
        """Call ``callback(event)`` for every lifecycle event of this supervisor's tree.

        The callback runs synchronously in the supervisor's task, so keep it quick (append to
        a list, update a metric); for slow work use ``handle.events()``. An exception it
        raises is logged with its traceback and never breaks the tree.
        """
        from ._validate import check_callback, valid  # lazy, as in add_proc

        valid(self.name, check_callback(callback, "on_event"))
        self._callbacks.append(callback)
        return self

    def build(self) -> Supervisor:
        """Validate everything and return the `Supervisor`.

        Raises:
            ConfigError: for the first problem found, naming the supervisor path, the proc,
                the problem and the fix. Nothing has run.
        """
        from ._tree_validator import TreeValidator  # lazy: only build() needs it

        return TreeValidator(SupervisorBuilder).build(self, self.name)
