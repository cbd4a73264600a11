"""The ``super-visor`` command (also ``python -m super_visor``): run, check, tree, plan, ctl.

argparse, from the standard library, because the CLI is four subcommands with a handful of
flags: click and typer are in the package lists, but either would add a dependency (and
import time) to every installation for no feature we need. ``BooleanOptionalAction`` gives
``--console/--no-console``, and argparse exits 2 on a usage error, the same code as a
`ConfigError`, so "exit 2" always means "fix the input, nothing ran".

Like `run()`, this module may decide the process's fate and write to stdout: ``check``,
``tree`` and ``plan`` print their answer there (so it can be piped); errors and the report of
``run`` go to stderr. ``ctl`` (a running tree's control socket) lives in ``_ctl``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import traceback
from typing import TYPE_CHECKING

from . import __version__
from ._builder import SupervisorBuilder
from ._ctl import add_ctl_parser, ctl_command
from ._errors import ConfigError
from ._logformat import LOG_FORMATS
from ._plan import format_k8s, format_plan, format_systemd, format_tree
from ._run import EXIT_CONFIG_ERROR, prepare, run_prepared
from ._supervisor import Supervisor

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType

__all__ = ("load_target", "main")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse *argv*, carry out the command and return its exit code (the script exits).

    A reader that closed our stdout early (``super-visor tree app:sup | head -1``) is not
    an error: we stop writing, and the exit code is the command's own.
    """
    args = _parser().parse_args(argv)
    try:
        code = ctl_command(args) if args.command == "ctl" else _command(args)
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
        return 0
    return code


def _command(args: argparse.Namespace) -> int:
    try:
        target = load_target(args.target)
        env_file = _env_file(args)
        sup, settings = prepare(target, env_file=env_file, flags=_flags(args), console=args.console)
    except ConfigError as exc:
        if args.debug:
            traceback.print_exception(exc)
        print(f"super-visor: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG_ERROR
    if args.command == "run":
        return run_prepared(sup, settings, backend=args.backend, handle_signals=True)
    if args.command == "check":
        _out(f"{format_tree(sup)}\n\n{settings.render(sup)}\n\nok: {sup.name} is valid")
    elif args.command == "tree":
        _out(format_tree(sup))
    else:
        _out(_PLAN_FORMATS[args.format](sup))
    return 0


#: ``plan --format``: the plans for people, or the settings for a service manager.
_PLAN_FORMATS = {"text": format_plan, "systemd": format_systemd, "k8s": format_k8s}


def _out(text: str) -> None:
    print(text)  # noqa: T201 (the CLI's answer goes to stdout)


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of what is still
    buffered does not print "Exception ignored ... BrokenPipeError" (the recipe in the
    `signal` module's documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def load_target(spec: str) -> Supervisor | SupervisorBuilder:
    """Import ``module:attr`` and return the Supervisor or builder it names or makes.

    *attr* may be a `Supervisor`, a `SupervisorBuilder`, or a zero-argument callable
    returning one. The current directory is importable, as with ``python -m``.

    Raises:
        ConfigError: whenever the target cannot be loaded, with the cause kept as
            ``__cause__`` (``--debug`` prints it): the module, or a module it imports, is
            missing; the module has a syntax error or raises at import; the attribute is
            missing; a factory needs arguments or raises; the result is of another type.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(spec, "expected module:attr", "e.g. super-visor run myapp.main:app")
    obj: object = _import(spec, module_name)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(
                spec,
                f"module {module_name!r} has no attribute {attr!r}",
                "name the Supervisor, the SupervisorBuilder or a function returning one",
            )
        obj = getattr(obj, part)
    return _as_target(spec, obj)


def _import(spec: str, module_name: str) -> ModuleType:
    """The module, or a `ConfigError` saying which of the ways to fail an import it was."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None:  # raised by the module's own code, not by the import system
            raise _raised_at_import(spec, module_name, exc) from exc
        raise _not_found(spec, module_name, exc.name) from exc
    except SyntaxError as exc:
        raise ConfigError(
            spec,
            f"module {module_name!r} has a syntax error at {exc.filename}:{exc.lineno}: {exc.msg}",
            "fix the file (python -m py_compile FILE checks it)",
        ) from exc
    except Exception as exc:
        raise _raised_at_import(spec, module_name, exc) from exc


def _not_found(spec: str, module_name: str, missing: str) -> ConfigError:
    """The module itself (or its package) is missing, or something it imports is."""
    if module_name == missing or module_name.startswith(f"{missing}."):
        return ConfigError(
            spec,
            f"cannot import module {module_name!r} (no module named {missing!r})",
            "run from the directory that contains it, or install it",
        )
    return ConfigError(
        spec,
        f"module {module_name!r} imports {missing!r}, which is not installed",
        f"install it (e.g. pip install {missing.partition('.')[0]}) in the environment "
        "that runs super-visor",
    )


def _raised_at_import(spec: str, module_name: str, exc: Exception) -> ConfigError:
    return ConfigError(
        spec,
        f"importing module {module_name!r} raised {_describe(exc)}",
        "fix the error (--debug prints the traceback)",
    )


def _describe(exc: BaseException) -> str:
    """``Type: message``; a message whose ``str()`` itself raises is left out."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 (a broken __str__ must not hide the real error)
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _as_target(spec: str, obj: object) -> Supervisor | SupervisorBuilder:
    if callable(obj) and not isinstance(obj, (Supervisor, SupervisorBuilder)):
        obj = _call_factory(spec, obj)
    if isinstance(obj, (Supervisor, SupervisorBuilder)):
        return obj
    raise ConfigError(
        spec,
        f"is {obj!r}, not a Supervisor or a SupervisorBuilder",
        "point at the Supervisor, the SupervisorBuilder or a zero-argument function returning one",
    )


def _call_factory(spec: str, factory: Callable[..., object]) -> object:
    """``factory()``: one needing arguments, or raising, is a `ConfigError` naming it."""
    label = getattr(factory, "__qualname__", None) or repr(factory)
    try:
        inspect.signature(factory).bind()
    except TypeError:
        raise ConfigError(
            spec,
            f"is a function that needs arguments, got {label}{inspect.signature(factory)}",
            "point at a function that takes none, e.g. one calling it with your values",
        ) from None
    except ValueError:
        pass  # no signature to read (a C callable): just call it
    try:
        return factory()
    except ConfigError:
        raise  # already names the proc and the fix (a build() inside the factory)
    except Exception as exc:
        raise ConfigError(
            spec,
            f"calling {label}() raised {_describe(exc)}",
            "fix the factory (--debug prints the traceback)",
        ) from exc


def _env_file(args: argparse.Namespace) -> str | None:
    if args.env_file is None:
        return ".env"  # read when present, like run()
    if args.env_file == "none":
        return None
    if not os.path.isfile(args.env_file):
        raise ConfigError(
            "--env-file",
            f"{args.env_file!r} is not a file",
            "pass the path of an existing .env file, or leave the flag out",
        )
    return str(args.env_file)


def _flags(args: argparse.Namespace) -> dict[str, tuple[str, str]]:
    """The flags as configuration values (they beat .env and the environment)."""
    flags: dict[str, tuple[str, str]] = {}
    if args.grace is not None:
        flags["SUPER_VISOR_GRACE"] = (args.grace, "--grace")
    if args.log_level is not None:
        flags["SUPER_VISOR_LOG_LEVEL"] = (args.log_level, "--log-level")
    if args.log_format is not None:
        flags["SUPER_VISOR_LOG_FORMAT"] = (args.log_format, "--log-format")
    if args.console_flag is not None:
        flag = "--console" if args.console_flag else "--no-console"
        flags["SUPER_VISOR_CONSOLE"] = ("on" if args.console_flag else "off", flag)
    if getattr(args, "control", None) is not None:  # only `run` has --control
        flags["SUPER_VISOR_CONTROL"] = (args.control, "--control")
    return flags


#: The subcommands and their help, in the order ``--help`` lists them.
_COMMANDS = {
    "run": "run the tree until it stops (SIGINT/SIGTERM stop it; SIGUSR1 dumps it)",
    "check": "build and validate; print the tree and the configuration with sources",
    "tree": "print the tree",
    "plan": "print the start and stop plans and the worst-case shutdown time",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="super-visor",
        description="Run or inspect a super_visor tree named module:attr (a Supervisor, a "
        "SupervisorBuilder, or a zero-argument function returning one).",
        epilog="Exit codes: 0 clean stop; 1 a proc failed; 2 bad input (nothing ran); "
        "128+N a second signal N forced the stop.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in _COMMANDS.items():
        command = commands.add_parser(name, help=text, description=text)
        _add_common_arguments(command)
        if name == "run":
            command.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
            command.add_argument(
                "--control",
                metavar="PATH",
                help="serve a control socket at PATH for `super-visor ctl` (mode 0600, same "
                "user only; also SUPER_VISOR_CONTROL)",
            )
        if name == "plan":
            command.add_argument(
                "--format",
                choices=tuple(_PLAN_FORMATS),
                default="text",
                help="text: the plans; systemd, k8s: a unit's or a Deployment's settings "
                "(stop timeout, watchdog, probes) derived from them, ready to paste",
            )
    add_ctl_parser(commands)
    parser.set_defaults(console="auto")
    return parser


def _add_common_arguments(command: argparse.ArgumentParser) -> None:
    """The target and the configuration flags, which every subcommand takes."""
    command.add_argument("target", metavar="module:attr")
    command.add_argument(
        "--env-file", help="a .env file to read (default: ./.env if any; 'none': no file)"
    )
    command.add_argument(
        "--grace",
        help="seconds each proc gets to stop, as SUPER_VISOR_GRACE: beats the code, .env "
        "and the environment, but a per-proc SUPER_VISOR__<PATH>__GRACE wins, and nested "
        "supervisors keep taking as long as their procs need",
    )
    command.add_argument("--log-level", help="level of the super_visor loggers (DEBUG, INFO, ...)")
    command.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="how run writes log lines to stderr: plain, or json (one object per line, with "
        "the sv_* fields); as SUPER_VISOR_LOG_FORMAT (default: plain)",
    )
    command.add_argument(
        "--console",
        dest="console_flag",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the live tree (default: when stdout and stderr are terminals)",
    )
    command.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback of an error loading the target, not only its message",
    )
