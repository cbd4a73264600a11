"""run(): the synchronous entry point for ``main()``.

It is one of the two places (with the CLI) allowed to decide the process's fate: it chooses
the backend, maps the outcome to an exit code and calls ``sys.exit``. The report goes to
stderr, because stdout belongs to the application.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Literal, NoReturn

import anyio

from ._builder import SupervisorBuilder
from ._errors import ConfigError, SupervisorError

if TYPE_CHECKING:
    from ._outcome import SupervisorReport
    from ._supervisor import Supervisor

__all__ = ("EXIT_CONFIG_ERROR", "EXIT_FAILED", "EXIT_INTERRUPTED", "run", "run_for_exit_code")

EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2
EXIT_INTERRUPTED = 130  # a KeyboardInterrupt that reached us before our handlers were in place

Backend = Literal["asyncio", "trio"]


def run(
    target: Supervisor | SupervisorBuilder,
    *,
    backend: Backend = "asyncio",
    handle_signals: bool = True,
) -> NoReturn:
    """Run *target* until it stops, print the report to stderr, exit with its code.

    Exit codes: 0 every proc stopped cleanly (also after one signal); 1 a proc failed;
    2 `ConfigError` (the message is printed); 128+N when a second signal N forced the stop.

    .. versionadded:: 0.1
    """
    sys.exit(run_for_exit_code(target, backend=backend, handle_signals=handle_signals))


def run_for_exit_code(
    target: Supervisor | SupervisorBuilder,
    *,
    backend: Backend = "asyncio",
    handle_signals: bool = True,
) -> int:
    """What `run` does, returning the exit code instead of exiting (for the CLI and tests)."""
    try:
        sup = target.build() if isinstance(target, SupervisorBuilder) else target
    except ConfigError as exc:
        print(f"super_visor: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG_ERROR
    with _default_log_handler():
        try:
            report = anyio.run(_start, sup, handle_signals, backend=backend)
        except SupervisorError as exc:
            report = exc.report
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BaseExceptionGroup as group:
            if group.subgroup(KeyboardInterrupt) is None:
                raise
            return EXIT_INTERRUPTED
    print(report.render(), file=sys.stderr)  # noqa: T201
    return report.exit_code


async def _start(sup: Supervisor, handle_signals: bool) -> SupervisorReport:
    return await sup.start(handle_signals=handle_signals)


class _default_log_handler:
    """Show super_visor's INFO lines on stderr unless the app configured logging itself."""

    def __init__(self) -> None:
        self._handler: logging.Handler | None = None
        self._level = logging.NOTSET

    def __enter__(self) -> None:
        ours = logging.getLogger("super_visor")
        if logging.getLogger().handlers or ours.handlers:
            return
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._handler, self._level = handler, ours.level
        ours.addHandler(handler)
        if ours.level == logging.NOTSET:
            ours.setLevel(logging.INFO)

    def __exit__(self, *exc_info: object) -> None:
        if self._handler is not None:
            ours = logging.getLogger("super_visor")
            ours.removeHandler(self._handler)
            ours.setLevel(self._level)
