"""The ``super-visor`` command (also ``python -m super_visor``): run, check, tree, plan.

argparse, from the standard library, because the CLI is four subcommands with a handful of
flags: click and typer are in the package lists, but either would add a dependency (and
import time) to every installation for no feature we need. ``BooleanOptionalAction`` gives
``--console/--no-console``, and argparse exits 2 on a usage error, the same code as a
`ConfigError`, so "exit 2" always means "fix the input, nothing ran".

Like `run()`, this module may decide the process's fate and write to stdout: ``check``,
``tree`` and ``plan`` print their answer there (so it can be piped); errors and the report of
``run`` go to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import TYPE_CHECKING

from ._builder import SupervisorBuilder
from ._errors import ConfigError
from ._plan import format_plan, format_tree
from ._run import EXIT_CONFIG_ERROR, prepare, run_prepared
from ._supervisor import Supervisor

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("load_target", "main")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse *argv*, carry out the command and return its exit code (the script exits)."""
    args = _parser().parse_args(argv)
    try:
        target = load_target(args.target)
        env_file = _env_file(args)
        sup, settings = prepare(target, env_file=env_file, flags=_flags(args), console=args.console)
    except ConfigError as exc:
        print(f"super-visor: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG_ERROR
    if args.command == "run":
        return run_prepared(sup, settings, backend=args.backend, handle_signals=True)
    if args.command == "check":
        _out(f"{format_tree(sup)}\n\n{settings.render(sup)}\n\nok: {sup.name} is valid")
    elif args.command == "tree":
        _out(format_tree(sup))
    else:
        _out(format_plan(sup))
    return 0


def _out(text: str) -> None:
    print(text)  # noqa: T201 (the CLI's answer goes to stdout)


def load_target(spec: str) -> Supervisor | SupervisorBuilder:
    """Import ``module:attr`` and return the Supervisor or builder it names or makes.

    *attr* may be a `Supervisor`, a `SupervisorBuilder`, or a zero-argument callable
    returning one. The current directory is importable, as with ``python -m``.

    Raises:
        ConfigError: the module or attribute is missing, or is not one of those.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(spec, "expected module:attr", "e.g. super-visor run myapp.main:app")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            spec,
            f"cannot import module {module_name!r} ({exc})",
            "run from the directory that contains it, or install it",
        ) from exc
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(
                spec,
                f"module {module_name!r} has no attribute {attr!r}",
                "name the Supervisor, the SupervisorBuilder or a function returning one",
            )
        obj = getattr(obj, part)
    return _as_target(spec, obj)


def _as_target(spec: str, obj: object) -> Supervisor | SupervisorBuilder:
    if callable(obj) and not isinstance(obj, (Supervisor, SupervisorBuilder)):
        obj = obj()
    if isinstance(obj, (Supervisor, SupervisorBuilder)):
        return obj
    raise ConfigError(
        spec,
        f"is {obj!r}, not a Supervisor or a SupervisorBuilder",
        "point at the Supervisor, the SupervisorBuilder or a zero-argument function returning one",
    )


def _env_file(args: argparse.Namespace) -> str | None:
    if args.env_file is None:
        return ".env"  # read when present, like run()
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
    if args.console_flag is not None:
        flag = "--console" if args.console_flag else "--no-console"
        flags["SUPER_VISOR_CONSOLE"] = ("on" if args.console_flag else "off", flag)
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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in _COMMANDS.items():
        command = commands.add_parser(name, help=text, description=text)
        _add_common_arguments(command)
        if name == "run":
            command.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.set_defaults(console="auto")
    return parser


def _add_common_arguments(command: argparse.ArgumentParser) -> None:
    """The target and the configuration flags, which every subcommand takes."""
    command.add_argument("target", metavar="module:attr")
    command.add_argument("--env-file", help="a .env file to read (default: ./.env if any)")
    command.add_argument("--grace", help="seconds every proc gets to stop (overrides all)")
    command.add_argument("--log-level", help="level of the super_visor loggers (DEBUG, INFO, ...)")
    command.add_argument(
        "--console",
        dest="console_flag",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the live tree (default: when stdout and stderr are terminals)",
    )
