"""run(): the synchronous entry point for ``main()``.

It is one of the two places (with the CLI) allowed to decide the process's fate: it chooses
the backend, reads the configuration (``.env``, environment; see ``_config``), maps the
outcome to an exit code and calls ``sys.exit``. The report goes to stderr, because stdout
belongs to the application. The live console (``_console``, which imports rich) is imported
only when it is shown, so ``import super_visor`` does not pay for rich.

Once the run is over, SIGINT/SIGTERM are ignored until the process exits: the root's handlers
give way to ``SIG_IGN`` directly (see ``_signals.leave_stop_signals_ignored``), so the tail of
a signal burst can neither kill the process (SIGTERM's default) nor raise KeyboardInterrupt
in the middle of the report. The report is printed whole and the exit code is the run's.

A proc's BaseException (``KeyboardInterrupt``, ``SystemExit``, ...) comes out of
``anyio.run`` as itself on asyncio and inside a ``BaseExceptionGroup`` on trio, where
``anyio.run`` would otherwise end with exit 1 for a Ctrl-C and lose ``SystemExit``'s status
(trio #3275). `exit_code_for` maps it the same way on both: 130, *n*, or 1.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from typing import TYPE_CHECKING, Literal, NoReturn, get_args

import anyio

from ._builder import SupervisorBuilder
from ._errors import ConfigError, SupervisorError
from ._supervisor import Supervisor

if TYPE_CHECKING:
    import socket
    from collections.abc import Awaitable, Iterator, Mapping

    from ._config import ConsoleMode, Settings
    from ._console import LiveConsole
    from ._logformat import LogFormat
    from ._outcome import SupervisorReport

__all__ = (
    "EXIT_CONFIG_ERROR",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "exit_code_for",
    "prepare",
    "run",
    "run_for_exit_code",
    "run_prepared",
)

EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2
EXIT_INTERRUPTED = 130  # KeyboardInterrupt: from a proc, or a Ctrl-C before our handlers

Backend = Literal["asyncio", "trio"]


def run(
    target: Supervisor | SupervisorBuilder,
    *,
    backend: Backend = "asyncio",
    handle_signals: bool = True,
    console: ConsoleMode = "auto",
    env_file: str | os.PathLike[str] | None = ".env",
    log_format: LogFormat = "plain",
    notify: bool = True,
    control: str | os.PathLike[str] | None = None,
) -> NoReturn:
    """Run *target* until it stops, print the report to stderr, exit with its code.

    Exit codes: 0 every proc stopped cleanly (also after one signal); 1 a proc failed or was
    abandoned; 2 `ConfigError` (the message is printed); 128+N when a second signal N forced
    the stop. A proc that raised ``KeyboardInterrupt`` gives 130, ``SystemExit(n)`` gives
    *n* (1 when *n* is not an int), any other BaseException 1; the report is printed first.
    A third stop request ends the process at once with 128+N (no report: the operator
    insisted). After the run, SIGINT/SIGTERM are ignored until the process exits.

    As PID 1 (a container without an init), the process first splits in two: a minimal
    init that reaps orphaned processes and forwards stop signals, and the app, whose own
    children are never reaped by anyone else (see ``_pid1``; ``docker run --init`` is the
    alternative).

    The configuration is read now, not at import: *env_file* (if it exists; None reads no
    file), then the environment, override the values in code (``SUPER_VISOR_GRACE``,
    ``SUPER_VISOR__WEB__GRACE``, ...; see "Operating super_visor"). *console* chooses the
    live tree: ``"auto"`` shows it when stdout and stderr are terminals; ``SUPER_VISOR_CONSOLE``
    overrides it. *log_format* is how log records reach stderr when the app has not
    configured logging itself: ``"plain"`` lines, or ``"json"``, one object per line with
    the ``sv_*`` fields (``SUPER_VISOR_LOG_FORMAT`` overrides it; JSON leaves the live tree
    off). Either way Uvicorn's and Hypercorn's lines go to the same handler.
    With *notify* and ``NOTIFY_SOCKET`` set, systemd is told about the tree
    (``Type=notify``: readiness, status, stopping, watchdog; see `Supervisor.start`).

    *control* (also ``SUPER_VISOR_CONTROL``, which wins) opens the control socket at that
    path for the run (``super-visor ctl``; see "Control socket" in the docs): mode 0600,
    same user only, removed at exit. A path that cannot be used is a `ConfigError` (exit 2).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       *log_format*, *notify* and *control*; a normal SIGTERM/SIGINT is logged at INFO.
    """
    sys.exit(
        run_for_exit_code(
            target,
            backend=backend,
            handle_signals=handle_signals,
            console=console,
            env_file=env_file,
            log_format=log_format,
            notify=notify,
            control=control,
        )
    )


def run_for_exit_code(
    target: Supervisor | SupervisorBuilder,
    *,
    backend: Backend = "asyncio",
    handle_signals: bool = True,
    console: ConsoleMode = "auto",
    env_file: str | os.PathLike[str] | None = ".env",
    log_format: LogFormat = "plain",
    notify: bool = True,
    control: str | os.PathLike[str] | None = None,
) -> int:
    """What `run` does, returning the exit code instead of exiting (for the CLI and tests)."""
    try:
        _check_backend(backend)
        sup, settings = prepare(target, console=console, env_file=env_file, log_format=log_format)
    except ConfigError as exc:
        print(f"super_visor: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG_ERROR
    return run_prepared(
        sup,
        settings,
        backend=backend,
        handle_signals=handle_signals,
        notify=notify,
        control=control,
    )


def prepare(
    target: Supervisor | SupervisorBuilder,
    *,
    console: ConsoleMode = "auto",
    env_file: str | os.PathLike[str] | None = ".env",
    flags: Mapping[str, tuple[str, str]] | None = None,
    log_format: str = "plain",
) -> tuple[Supervisor, Settings]:
    """Build *target*, resolve its configuration and apply it; raises `ConfigError`."""
    from ._logformat import check_log_format  # lazy: it imports logging and json

    check_log_format(log_format, "run(log_format=...)")
    if not isinstance(target, Supervisor | SupervisorBuilder):
        raise ConfigError(
            "run()",
            f"the target is a {type(target).__name__}, not a Supervisor or a SupervisorBuilder",
            "pass SupervisorBuilder(name).add_proc(...) or its .build()",
        )
    sup = target.build() if isinstance(target, SupervisorBuilder) else target
    from ._config import Settings  # lazy: only run() and the CLI read the environment

    settings = Settings.load(
        sup, env_file=env_file, flags=flags, console=console, log_format=log_format
    )
    return settings.apply(sup), settings


def run_prepared(
    sup: Supervisor,
    settings: Settings,
    *,
    backend: Backend,
    handle_signals: bool,
    notify: bool = True,
    control: str | os.PathLike[str] | None = None,
) -> int:
    """Run an already configured *sup* (see `prepare`); return the exit code.

    Leaves SIGINT/SIGTERM ignored: the caller is about to end the process with this code.
    As PID 1 it first forks (see `_pid1`): the app runs in the child, and the init holds
    none of what the app opens next (the control socket, the console, log handlers).
    """
    from ._pid1 import become_init_if_pid1  # lazy: only run() pays for it

    become_init_if_pid1(sup.name)  # as PID 1: returns in the app; the init never returns
    control = settings.control or control
    if control is None:
        return _run_configured(sup, settings, backend, handle_signals, notify, None)
    from ._control import bound_control_socket  # lazy: only runs that ask for it

    with contextlib.ExitStack() as stack:
        try:
            sock = stack.enter_context(bound_control_socket(control, tree=sup.name))
        except ConfigError as exc:
            print(f"super_visor: configuration error: {exc}", file=sys.stderr)  # noqa: T201
            return EXIT_CONFIG_ERROR
        return _run_configured(sup, settings, backend, handle_signals, notify, sock)


def _run_configured(
    sup: Supervisor,
    settings: Settings,
    backend: Backend,
    handle_signals: bool,
    notify: bool,
    control: socket.socket | None,
) -> int:
    from ._logformat import stderr_logging  # lazy, as in prepare()

    log_format = settings.log_format  # checked when it was read (prepare, Settings.load)
    live = _open_console(sup, settings.console if log_format == "plain" else False)
    if live is not None:
        sup = sup.with_callbacks(live.view.on_event)
    with stderr_logging(settings.log_level, log_format, live):
        report, code = _run_loop(sup, handle_signals, live, backend, notify, control)
    if report is None:
        return code
    if live is not None:
        live.print_report(report)
    else:
        print(report.render(), file=sys.stderr)  # noqa: T201
    return code


def _run_loop(
    sup: Supervisor,
    handle_signals: bool,
    live: LiveConsole | None,
    backend: Backend,
    notify: bool,
    control: socket.socket | None,
) -> tuple[SupervisorReport | None, int]:
    """Run the event loop; the report (None if there is none) and the exit code."""
    try:
        from ._signals import leave_stop_signals_ignored  # lazy: a cheap `import super_visor`

        with (
            leave_stop_signals_ignored(),
            _exit_when_only_abandoned_left(live),
            _owning_the_collector(),
        ):
            report = anyio.run(_start, sup, handle_signals, live, notify, control, backend=backend)
    except SupervisorError as exc:
        return exc.report, exc.report.exit_code
    except BaseException as exc:
        ended = _ended_by(exc)
        if ended is None:
            raise  # a bug of ours: let its traceback show
        return ended
    finally:
        _ignore_stop_signals()
    return report, report.exit_code


@contextlib.contextmanager
def _exit_when_only_abandoned_left(live: LiveConsole | None) -> Iterator[None]:
    """While the loop runs: once only abandoned procs are left (their tasks cannot be
    waited for, API.md section 8), print the report and end the process with its code."""
    from ._slot import ONLY_ABANDONED_LEFT  # lazy: part of the engine, which the run loads

    token = ONLY_ABANDONED_LEFT.set(functools.partial(_print_and_exit, live))
    try:
        yield
    finally:
        ONLY_ABANDONED_LEFT.reset(token)


@contextlib.contextmanager
def _owning_the_collector() -> Iterator[None]:
    """While the loop runs: the root run may pause and freeze the garbage collector around
    its start-up (``_gc``), since ``run()`` owns the process."""
    from ._gc import OWN_GC  # lazy: part of the engine, which the run loads

    token = OWN_GC.set(True)
    try:
        yield
    finally:
        OWN_GC.reset(token)


def _print_and_exit(live: LiveConsole | None, report: SupervisorReport) -> NoReturn:
    """The report, then ``os._exit``: a normal exit would wait for the abandoned tasks."""
    _ignore_stop_signals()
    if live is not None:
        live.print_report(report)
    else:
        print(report.render(), file=sys.stderr)  # noqa: T201
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(report.exit_code)


def _ended_by(exc: BaseException) -> tuple[SupervisorReport | None, int] | None:
    """The report and exit code of a run ended by a BaseException; None for an Exception.

    The report is the one the engine attached to the proc's exception; without one (a
    Ctrl-C before our handlers were in place) a single line says what ended the run.
    """
    from ._outcome import SupervisorReport, describe_error  # loaded by the run: free here

    nodes = list(_walk(exc))
    cause = next((e for e in nodes if not isinstance(e, Exception | BaseExceptionGroup)), None)
    if cause is None:
        return None
    reports = (getattr(e, "__super_visor_report__", None) for e in (cause, *nodes))
    report = next((r for r in reports if isinstance(r, SupervisorReport)), None)
    if report is None:
        message = f"super_visor: {describe_error(cause)} ended the run before its report"
        print(message, file=sys.stderr)  # noqa: T201
    return report, exit_code_for(cause)


def exit_code_for(error: BaseException) -> int:
    """The exit code for a proc's BaseException: 130 for KeyboardInterrupt, *n* for
    ``SystemExit(n)`` (0 for None, as Python does; 1 when *n* is not an int), else 1."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, SystemExit):
        code = error.code
        if code is None:
            return 0
        return code if isinstance(code, int) else EXIT_FAILED
    return EXIT_FAILED


def _walk(exc: BaseException) -> Iterator[BaseException]:
    """*exc* and everything inside it, groups opened, depth-first (no recursion)."""
    stack = [exc]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(reversed(current.exceptions))


def _ignore_stop_signals() -> None:
    """SIG_IGN for SIGINT/SIGTERM until the process exits (main thread only: elsewhere the
    app owns signals and Python refuses to set them)."""
    import signal  # lazy, as in _signals
    import threading

    from ._signals import STOP_SIGNALS

    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def _check_backend(backend: str) -> None:
    if backend not in get_args(Backend):
        raise ConfigError(
            "run()",
            f"unknown backend {backend!r}",
            f"use one of {', '.join(map(repr, get_args(Backend)))}",
        )


def _open_console(sup: Supervisor, mode: ConsoleMode) -> LiveConsole | None:
    stdout_tty = _isatty(sys.stdout)
    if mode is False or (mode == "auto" and not (stdout_tty and _isatty(sys.stderr))):
        return None
    from ._console import LiveConsole  # imported only now: rich is loaded only when shown

    return LiveConsole(sup, sys.stderr, capture_stdout=stdout_tty)


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


async def _start(
    sup: Supervisor,
    handle_signals: bool,
    live: LiveConsole | None,
    notify: bool,
    control: socket.socket | None,
) -> SupervisorReport:
    def start() -> Awaitable[SupervisorReport]:
        if control is None:
            return sup.start(handle_signals=handle_signals, notify=notify)
        from ._control import start_with_control  # lazy, as in run_prepared

        return start_with_control(sup, control, handle_signals=handle_signals, notify=notify)

    if live is None:
        return await start()
    return await live.drive(start)
