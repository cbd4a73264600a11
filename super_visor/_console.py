"""The live console: a rich tree of the procs while the app runs, a report table at the end.

This is the only module that imports rich, and nothing imports it until `run()` (or the CLI)
has decided to show the console, so ``import super_visor`` stays fast for everyone else.

Why it is built this way:

- It is driven by lifecycle events (an ``on_event`` callback on a copy of the supervisor), so
  it sees exactly what the logs see, nested supervisors and dynamic children included, and
  needs no access to the engine's internals. The callback only updates a dict: it runs in
  the supervisor's task and must stay cheap.
- The screen is redrawn by a task in the run's own task group, a few times a second (uptime
  and the grace countdown change without events). rich's own refresh thread is not used: it
  would read the rows while the supervisor writes them, from another thread.
- It draws on stderr, like the report: stdout belongs to the application. ``"auto"`` shows it
  only when stdout and stderr are both terminals (an interactive session); under CI,
  systemd or Kubernetes the plain log lines are what is wanted.
- Output the app prints while the tree is shown is routed above it by rich (``redirect_*``),
  and super_visor's own log lines go through a `rich.logging.RichHandler` on the same console,
  so nothing tears the display.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO, final

import anyio
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ._errors import SupervisorError
from ._events import EventKind
from ._outcome import describe_error

if TYPE_CHECKING:
    import logging
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from ._events import Event
    from ._outcome import SupervisorReport
    from ._supervisor import Supervisor

__all__ = ("LiveConsole", "TreeView", "report_table")

#: Levels of nesting the console draws; deeper procs are one "… N more levels" line.
DRAWN_DEPTH = 24

#: Redraws per second: often enough for a grace countdown, cheap for a big tree.
REFRESH_INTERVAL = 0.25

_STYLES = {
    "pending": "dim",
    "starting": "cyan",
    "running": "green",
    "stopping": "bold yellow",
    "stopped": "blue",
    "completed": "green",
    "failed": "bold red",
    "forced": "magenta",
    "restarting": "yellow",
    "stuck": "bold red reverse",
    "not_started": "dim",
    "abandoned": "bold red reverse",
}
_END_STATES = {
    EventKind.STOPPED: "stopped",
    EventKind.COMPLETED: "completed",
    EventKind.FAILED: "failed",
    EventKind.FORCED: "forced",
    EventKind.STUCK: "stuck",
    EventKind.ABANDONED: "abandoned",
}


@dataclass(slots=True)
class _Row:
    name: str
    grace: float | None
    gates: bool
    state: str = "pending"
    started_at: float | None = None
    stopping_at: float | None = None
    restarts: int = 0
    ready: bool = False
    error: str = ""

    @property
    def live(self) -> bool:
        return self.state in ("starting", "running", "stopping", "stuck")


@final
class TreeView:
    """What the console shows, kept up to date by `on_event`; `render` draws it.

    *clock* gives wall-clock seconds (events carry ``time.time()``); tests pass a fixed one.
    """

    def __init__(self, sup: Supervisor, clock: Callable[[], float] = time.time) -> None:
        self.root = sup.name
        self._clock = clock
        self._rows: dict[str, _Row] = {}
        self._children: dict[str, list[str]] = {sup.name: []}
        self.shutdown: str | None = None
        self.signals: list[str] = []
        for path, spec, _ in sup.walk():
            row_path = f"{sup.name}/{path}"
            self._add(row_path, spec.grace, gates=spec.wait_ready is True)
            if spec.nested is not None:
                self._children[row_path] = []

    def _add(self, path: str, grace: float | None, *, gates: bool) -> _Row:
        parent, _, name = path.rpartition("/")
        row = self._rows[path] = _Row(name=name, grace=grace, gates=gates)
        self._children.setdefault(parent, []).append(path)
        return row

    def on_event(self, event: Event) -> None:
        """Update the rows from one lifecycle event (an ``on_event`` callback)."""
        kind = event.kind
        if kind is EventKind.SIGNAL_RECEIVED:
            self.signals.append(event.detail)
            return
        if kind is EventKind.SHUTDOWN_BEGUN and event.path == self.root:
            self.shutdown = event.detail
            return
        row = self._rows.get(event.path)
        if row is None:
            if kind is not EventKind.STARTING:
                return  # a supervisor-level event of the root (shutdown finished, ...)
            row = self._add(event.path, None, gates=False)  # a dynamic child
        row.restarts = event.restarts
        if kind is EventKind.STARTING:
            row.state, row.started_at, row.ready, row.error = "starting", event.time, False, ""
        elif kind is EventKind.READY:
            row.state, row.ready = "running", True
        elif kind is EventKind.STOPPING:
            row.state, row.stopping_at = "stopping", event.time
        elif kind in _END_STATES:
            row.state = _END_STATES[kind]
        elif kind is EventKind.RESTARTING:
            row.state = "restarting"
        if event.error is not None:
            row.error = describe_error(event.error)

    def __rich__(self) -> Tree:
        return self.render()

    def render(self) -> Tree:
        """The tree as of now: a header saying what the root is doing, a line per proc.

        Drawn with a stack, not recursion, and at most `DRAWN_DEPTH` levels deep: rich
        indents each level by 4 columns, so deeper procs are summed up in one line.
        """
        now = self._clock()
        tree = Tree(self._header(now), guide_style="dim")
        stack = [(tree, self.root, 0)]
        while stack:
            branch, path, depth = stack.pop()
            for child in self._children.get(path, []):
                sub = branch.add(self._label(self._rows[child], now))
                if child not in self._children:
                    continue
                if depth + 1 < DRAWN_DEPTH:
                    stack.append((sub, child, depth + 1))
                else:
                    sub.add(Text(f"… {self._levels_below(child)} more levels", style="dim"))
        return tree

    def _levels_below(self, path: str) -> int:
        """How many levels of procs the nested supervisor at *path* holds."""
        deepest, stack = 0, [(path, 1)]
        while stack:
            current, level = stack.pop()
            for child in self._children.get(current, []):
                deepest = max(deepest, level)
                if child in self._children:
                    stack.append((child, level + 1))
        return deepest

    def _header(self, now: float) -> Text:
        text = Text.assemble((self.root, "bold"), " ")
        if self.shutdown is None:
            text.append("running", style="green")
            return text
        text.append(f"shutting down ({self.shutdown})", style="bold yellow")
        waited = self.waiting_on()
        if waited is not None:
            path, row = waited
            text.append(f" - waiting on {path}")
            if row.grace is not None and row.stopping_at is not None:
                left = row.grace - (now - row.stopping_at)
                text.append(f", {max(left, 0.0):.1f}s of its {row.grace:g}s grace left")
        return text

    def waiting_on(self) -> tuple[str, _Row] | None:
        """The innermost proc being stopped right now (a nested supervisor's child, not it)."""
        found = None
        for path, row in self._rows.items():
            if row.state in ("stopping", "stuck"):
                found = (path, row)  # rows are in tree order: the last one is the innermost
        return found

    def _label(self, row: _Row, now: float) -> Text:
        text = Text.assemble((row.name, "bold"), "  ", (row.state, _STYLES[row.state]))
        if row.live and row.started_at is not None:
            text.append(f"  up {_duration(now - row.started_at)}", style="dim")
        if row.gates:
            text.append("  ready" if row.ready else "  not ready yet", style="dim")
        if row.restarts:
            text.append(f"  restarts {row.restarts}", style="yellow")
        if row.state == "stopping" and row.grace is not None and row.stopping_at is not None:
            left = max(row.grace - (now - row.stopping_at), 0.0)
            text.append(f"  grace left {left:.1f}s", style="yellow")
        if row.error:
            text.append(f"  {row.error}", style="red")
        return text


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def report_table(report: SupervisorReport) -> Table:
    """The end-of-run table: one row per proc (nested ones indented), failures in red."""
    table = Table(title=f"{report.name}: stopped ({report.reason})", title_justify="left")
    for column in ("proc", "status", "restarts", "error"):
        table.add_column(column, overflow="fold")
    for outcome in report.walk():
        depth = min(outcome.path.count("/") - 1, DRAWN_DEPTH)  # deeper: no wider
        status = outcome.status.value
        error = ""
        if outcome.error is not None and not outcome.children:
            error = describe_error(outcome.error)
        table.add_row(
            "  " * depth + outcome.name,
            Text(status, style=_STYLES.get(status, "")),
            str(outcome.restarts),
            Text(error, style="red"),
        )
    return table


@final
class LiveConsole:
    """Shows a `TreeView` live on *stream* while a run goes on, then the report table."""

    def __init__(self, sup: Supervisor, stream: TextIO, *, capture_stdout: bool) -> None:
        self.view = TreeView(sup)
        self.console = Console(file=stream)
        self._live = Live(
            console=self.console,
            get_renderable=self.view.render,
            auto_refresh=False,
            transient=True,  # the report table replaces the tree at the end
            redirect_stdout=capture_stdout,
            redirect_stderr=True,
        )

    def log_handler(self) -> logging.Handler:
        """A handler that prints super_visor's log lines above the live tree."""
        return RichHandler(console=self.console, show_path=False)

    async def drive(self, start: Callable[[], Awaitable[SupervisorReport]]) -> SupervisorReport:
        """Show the tree while ``start()`` runs; its `SupervisorError` is raised unwrapped."""
        report: SupervisorReport | None = None
        error: SupervisorError | None = None
        with self:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(self._redraw)
                try:
                    report = await start()
                except SupervisorError as exc:
                    error = exc
                finally:
                    task_group.cancel_scope.cancel()
        if error is not None:
            raise error
        assert report is not None
        return report

    async def _redraw(self) -> None:
        while True:
            self._live.refresh()
            await anyio.sleep(REFRESH_INTERVAL)

    def __enter__(self) -> LiveConsole:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()

    def print_report(self, report: SupervisorReport) -> None:
        self.console.print(report_table(report))
