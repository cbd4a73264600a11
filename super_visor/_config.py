"""Configuration from the environment and ``.env``: change a running tree without editing code.

Twelve-factor overrides, read by `run()` and the CLI when they start (never at import), with
this precedence, lowest first:

1. code: the values given to ``SupervisorBuilder``/``add_proc`` and to ``run(console=...)``;
2. the ``.env`` file, read with python-dotenv's ``dotenv_values`` (``os.environ`` is never
   modified: a library must not change the process environment behind the app's back);
3. the real environment;
4. command-line flags (``super-visor run --grace 3``).

Tree-wide variables are ``SUPER_VISOR_<FIELD>``. A per-proc override is
``SUPER_VISOR__<PATH>__<FIELD>``: the proc's path below the root, each segment upper-cased
with every character other than ``A-Z``/``0-9`` turned into ``_``, joined by ``__`` (a double
underscore, so a single one may stay inside a name). ``web`` -> ``SUPER_VISOR__WEB__GRACE``,
``pipeline/consumer`` -> ``SUPER_VISOR__PIPELINE__CONSUMER__GRACE``, ``db-primary`` ->
``SUPER_VISOR__DB_PRIMARY__GRACE``. Variable names are matched case-insensitively.

Nothing is silently ignored: a malformed value, an unknown ``SUPER_VISOR_`` variable (a typo
would otherwise do nothing), an override naming a proc the tree does not have, or one that
matches two procs, is a `ConfigError` naming the variable, the value, where it came from and
what was expected. The resolved values are a frozen `Settings` that records each one's source
(``super-visor check`` prints it) and `Settings.apply` makes a new `Supervisor` from them,
leaving the original untouched (what each value changes in the tree is ``_overrides``; what
each field accepts, and its parser, is ``_config_fields``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from ._config_fields import FIELDS, ConsoleMode
from ._errors import ConfigError
from ._overrides import SPEC_FIELDS, SUPERVISOR_FIELDS, apply_settings, resolved_settings

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from ._logformat import LogFormat
    from ._supervisor import Supervisor

__all__ = ("PREFIX", "ConsoleMode", "Setting", "Settings", "proc_variable")

PREFIX = "SUPER_VISOR_"
_PER_PROC = "SUPER_VISOR__"
#: Fields a per-proc override may set; max_restarts and within only on a nested supervisor.
_PROC_FIELDS = (*SPEC_FIELDS, *SUPERVISOR_FIELDS)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """One resolved configuration value and where it came from.

    ``path`` is empty for a tree-wide setting, else the proc's path below the root
    (``"pipeline/consumer"``). ``source`` is ``"code"``, ``".env file <path>"``,
    ``"environment"`` or ``"command line (<flag>)"``.

    .. versionadded:: 0.1
    """

    variable: str
    field: str
    path: str
    value: object
    source: str


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The configuration of one run, resolved from code, ``.env``, environment and flags.

    Made by `Settings.load`, which checks every value; `apply` turns it into a new
    `Supervisor`. Immutable, so what ``super-visor check`` shows is exactly what runs.

    .. versionadded:: 0.1
    """

    #: Every value given by a ``.env`` file, the environment or a flag, plus ``console``,
    #: ``log_level`` and ``log_format`` (always present, from code when nobody set them).
    values: tuple[Setting, ...]

    @classmethod
    def load(
        cls,
        sup: Supervisor,
        *,
        env_file: str | os.PathLike[str] | None = ".env",
        environ: Mapping[str, str] | None = None,
        flags: Mapping[str, tuple[str, str]] | None = None,
        console: ConsoleMode = "auto",
        log_format: str = "plain",
    ) -> Settings:
        """Resolve the configuration of *sup* (nothing runs; *sup* is only read).

        Args:
            env_file: a ``.env`` file to read if it exists (None: read none). A path given
                by the user that must exist is checked by the caller (the CLI does).
            environ: the environment (default ``os.environ``, read, never written).
            flags: command-line values, ``{variable: (raw value, flag)}``.
            console: the code's choice, overridden by ``SUPER_VISOR_CONSOLE``.
            log_format: the code's choice, overridden by ``SUPER_VISOR_LOG_FORMAT``.

        Raises:
            ConfigError: a malformed value, an unknown variable or proc path.
        """
        layers: list[tuple[str, Mapping[str, str | None]]] = []
        if env_file is not None and os.path.isfile(env_file):
            layers.append((f".env file {os.fspath(env_file)}", _read_env_file(env_file)))
        layers.append(("environment", os.environ if environ is None else environ))
        merged: dict[str, tuple[str | None, str]] = {
            f"{PREFIX}CONSOLE": (str(console), "code"),
            f"{PREFIX}LOG_LEVEL": (None, "code"),
            f"{PREFIX}LOG_FORMAT": (log_format, "code"),
        }
        for source, values in layers:
            for key, raw in values.items():
                if key.upper().startswith(PREFIX):
                    merged[key.upper()] = (raw, source)
        for key, (raw, flag) in (flags or {}).items():
            merged[key.upper()] = (raw, f"command line ({flag})")
        targets = _Targets(sup)
        return cls(values=tuple(_parse(v, *merged[v], targets) for v in sorted(merged)))

    def get(self, field: str, path: str = "") -> Setting | None:
        """The setting for *field* (tree-wide, or for the proc at *path*), if any."""
        for setting in self.values:
            if setting.field == field and setting.path == path:
                return setting
        return None

    @property
    def console(self) -> ConsoleMode:
        """``True``, ``False`` or ``"auto"`` (on when stdout and stderr are terminals)."""
        setting = self.get("console")
        return "auto" if setting is None else setting.value  # type: ignore[return-value]

    @property
    def log_level(self) -> str | None:
        """The level name for the ``super_visor`` logger, or None to keep the default."""
        setting = self.get("log_level")
        return None if setting is None else setting.value  # type: ignore[return-value]

    @property
    def log_format(self) -> LogFormat:
        """``"plain"`` or ``"json"``: how ``run()`` writes log records to stderr."""
        setting = self.get("log_format")
        return "plain" if setting is None else setting.value  # type: ignore[return-value]

    @property
    def control(self) -> str | None:
        """The control socket's path from ``.env``, the environment or ``--control``."""
        setting = self.get("control")
        return None if setting is None else setting.value  # type: ignore[return-value]

    def apply(self, sup: Supervisor) -> Supervisor:
        """A new `Supervisor` with these values applied; *sup* itself is not changed.

        Tree-wide ``grace``/``ready_timeout`` apply to every proc that is not a nested
        supervisor (a nested one keeps taking as long as its children need);
        ``max_restarts``/``within`` apply to every supervisor. A per-proc value beats the
        tree-wide one.
        """
        return apply_settings(self, sup)

    def resolved(self, sup: Supervisor) -> Iterator[tuple[str, str, object, str]]:
        """``(path, field, value, source)`` for every proc's settings after `apply`."""
        yield from resolved_settings(self, sup)

    def render(self, sup: Supervisor) -> str:
        """The resolved configuration, one value per line with its source (for ``check``)."""
        lines = [f"configuration of {sup.name} (lowest first: code < .env < environment < flags):"]
        for setting in self.values:
            if not setting.path:
                shown = _show(setting.value) if setting.value is not None else "default"
                lines.append(f"  {setting.field} = {shown}  [{setting.source}]")
        for path, field, value, source in self.resolved(sup):
            lines.append(f"  {path or sup.name}: {field} = {_show(value)}  [{source}]")
        return "\n".join(lines)


def _read_env_file(env_file: str | os.PathLike[str]) -> Mapping[str, str | None]:
    """The values of a ``.env`` file; one that is not UTF-8 is a `ConfigError` naming it
    (python-dotenv would raise a bare UnicodeDecodeError naming neither file nor fix)."""
    # Imported here, lazily: `import super_visor` must stay fast.
    from dotenv import dotenv_values

    try:
        return dotenv_values(env_file, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            os.fspath(env_file),
            f"a .env file must be UTF-8 text, got byte {exc.object[exc.start : exc.start + 1]!r} "
            f"at offset {exc.start}",
            "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 .env)",
        ) from None


def proc_variable(path: str, field: str) -> str:
    """The variable overriding *field* of the proc at *path* (below the root).

    ``proc_variable("pipeline/consumer", "grace")`` -> ``SUPER_VISOR__PIPELINE__CONSUMER__GRACE``.
    """
    segments = "__".join(_segment(part) for part in path.split("/"))
    return f"{_PER_PROC}{segments}__{field.upper()}"


def _suggest(variable: str, known: list[str]) -> str | None:
    """The closest known variable name, for a "did you mean" (difflib loaded only now)."""
    import difflib  # only on this error path: keeps `import super_visor` fast

    close = difflib.get_close_matches(variable, known, n=1)
    return close[0] if close else None


def _segment(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def _show(value: object) -> str:
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


class _Targets:
    """The procs of a tree by the variable prefix naming them (to resolve and to suggest)."""

    def __init__(self, sup: Supervisor) -> None:
        self.root = sup.name
        #: Two paths may share a key ("db-a" and "db.a"): kept, to be refused when used.
        self.by_key: dict[str, list[tuple[str, bool]]] = {}
        #: Paths of the procs that never gate start-up: a ready_timeout cannot apply there.
        self.never_gate: set[str] = set()
        for path, spec, _ in sup.walk():
            key = proc_variable(path, "x")[: -len("__X")]
            self.by_key.setdefault(key, []).append((path, spec.nested is not None))
            if spec.wait_ready is False:
                self.never_gate.add(path)

    def valid_variables(self) -> list[str]:
        return [
            f"{key}__{field.upper()}"
            for key, found in self.by_key.items()
            for field in (_PROC_FIELDS if found[0][1] else SPEC_FIELDS)
        ]


def _parse(variable: str, raw: str | None, source: str, targets: _Targets) -> Setting:
    """Check one variable and parse its value; every problem is a `ConfigError`."""
    field, path = _locate(variable, raw, source, targets)
    expected, example, parse = FIELDS[field]
    if raw is None and source == "code":
        return Setting(variable=variable, field=field, path=path, value=None, source=source)
    try:
        if raw is None:
            raise ValueError(raw)
        value = parse(raw)
    except (ValueError, KeyError):
        raise ConfigError(
            variable,
            f"got {raw!r} (from {source}), expected {expected}",
            f"set e.g. {variable}={example}"
            + ("" if raw is not None else " (a line without '=' in .env has no value)"),
        ) from None
    return Setting(variable=variable, field=field, path=path, value=value, source=source)


def _locate(variable: str, raw: str | None, source: str, targets: _Targets) -> tuple[str, str]:
    """(field, path) that *variable* names; path is "" for a tree-wide variable."""
    if not variable.startswith(_PER_PROC):
        return _tree_wide_field(variable, raw, source, targets), ""
    key, field = _split_per_proc(variable)
    found = targets.by_key.get(key, [])
    if field not in _PROC_FIELDS or len(found) != 1:
        raise _bad_target(variable, raw, source, targets, field, found)
    path, nested = found[0]
    if field in SUPERVISOR_FIELDS and not nested:
        raise ConfigError(
            variable,
            f"{targets.root}/{path} is not a supervisor, so it has no {field} (from {source})",
            f"set {field} on its supervisor, or {PREFIX}{field.upper()} for the whole tree",
        )
    if field == "ready_timeout" and path in targets.never_gate:
        raise ConfigError(
            variable,
            f"{targets.root}/{path} does not gate start-up, so a ready_timeout cannot "
            f"apply to it, got {raw!r} (from {source})",
            "remove the variable, or make the proc gate (wait_ready=True) in code",
        )
    return field, path


def _tree_wide_field(variable: str, raw: str | None, source: str, targets: _Targets) -> str:
    field = variable[len(PREFIX) :].lower()
    if field in FIELDS:
        return field
    known = [f"{PREFIX}{name.upper()}" for name in FIELDS] + targets.valid_variables()
    close = _suggest(variable, known)
    hint = f"did you mean {close}?" if close else "known: " + ", ".join(known[:6])
    raise ConfigError(
        variable,
        f"unknown super_visor variable (set to {raw!r}, from {source})",
        f"{hint} (per-proc overrides are {_PER_PROC}<PATH>__<FIELD>)",
    )


def _split_per_proc(variable: str) -> tuple[str, str]:
    """(the proc's key, the field in lower case) of a per-proc variable."""
    for field in _PROC_FIELDS:  # READY_TIMEOUT/MAX_RESTARTS contain '_', not '__'
        if variable.endswith(f"__{field.upper()}"):
            return variable[: -len(field) - 2], field
    key, _, field = variable.rpartition("__")
    return key, field.lower()


def _bad_target(
    variable: str,
    raw: str | None,
    source: str,
    targets: _Targets,
    field: str,
    found: list[tuple[str, bool]],
) -> ConfigError:
    if len(found) > 1:
        paths = " and ".join(f"{targets.root}/{p}" for p, _ in found)
        return ConfigError(
            variable,
            f"matches two procs, {paths} (from {source})",
            "rename one of them so their names differ in more than '-', '.' or case",
        )
    if field not in _PROC_FIELDS:
        endings = [f"__{name.upper()}" for name in _PROC_FIELDS]
        close = _suggest(f"__{field.upper()}", endings)
        hint = f"did you mean {variable[: -len(field) - 2]}{close}? " if close else ""
        return ConfigError(
            variable,
            f"a per-proc override sets one of {', '.join(_PROC_FIELDS)}, not {field!r} "
            f"(set to {raw!r}, from {source})",
            f"{hint}end the variable with {', '.join(endings)}",
        )
    valid = targets.valid_variables()
    close = _suggest(variable, valid)
    hint = f"did you mean {close}?" if close else "valid ones: " + ", ".join(valid[:8])
    return ConfigError(
        variable,
        f"names a proc that {targets.root} does not have (set to {raw!r}, from {source})",
        hint,
    )
