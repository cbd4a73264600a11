"""How configuration overrides land in a built tree (`Settings.apply` and ``check``'s view).

Kept apart from ``_config``, which reads and checks the variables: this is the other half,
what a checked value changes. Two rules decide it. A per-proc value beats the tree-wide one.
A tree-wide ``grace``/``ready_timeout`` skips nested supervisors, which keep taking as long
as their own procs need (a tree-wide grace of 3s must not cut a nested supervisor's whole
shutdown to 3s); a tree-wide ``abandon_after`` applies to every proc, nested supervisors
included. ``max_restarts``/``within`` apply to every supervisor.

The grace a proc ends up with is also the grace it enforces itself: the supervisor hands
``spec.grace`` to the proc's token when it starts it (``token._grace``), and the adapters
(`Command`'s SIGKILL, the ASGI servers' drain, `Thread`) read it there. So a value ``check``
shows as applied is the value in force, not only the supervisor's own deadline.

Both walks go through `Supervisor.walk`, never recursion, so a deep tree costs no stack.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._config import Setting, Settings
    from ._spec import ProcSpec
    from ._supervisor import Supervisor

__all__ = ("SPEC_FIELDS", "SUPERVISOR_FIELDS", "apply_settings", "resolved_settings")

#: Settings of one proc's spec, and of a supervisor's config, that a variable may override.
SPEC_FIELDS = ("grace", "ready_timeout", "abandon_after")
SUPERVISOR_FIELDS = ("max_restarts", "within")
#: Tree-wide values of these skip nested supervisors: they take as long as their procs need.
_AS_LONG_AS_PROCS_NEED = ("grace", "ready_timeout")


def apply_settings(settings: Settings, sup: Supervisor) -> Supervisor:
    """Rebuild the tree bottom-up, each nested supervisor after its procs.

    The reversed pre-order of `Supervisor.walk` meets every proc before its supervisor, so
    no recursion is needed and a deeply nested tree cannot exhaust the stack.
    """
    done: dict[str, ProcSpec] = {}
    for path, spec, _ in reversed(list(sup.walk())):
        nested = spec.nested
        if nested is not None:
            nested = _apply_supervisor(settings, nested, path, done)
        done[path] = _apply_spec(settings, spec, path, nested)
    return _apply_supervisor(settings, sup, "", done)


def _apply_supervisor(
    settings: Settings, sup: Supervisor, path: str, done: dict[str, ProcSpec]
) -> Supervisor:
    """*sup* with its procs' new specs (taken out of *done*) and its own settings applied."""
    prefix = f"{path}/" if path else ""
    specs = tuple(done.pop(f"{prefix}{spec.name}") for spec in sup.specs)
    changes: dict[str, object] = {}
    for field in SUPERVISOR_FIELDS:
        setting = _supervisor_setting(settings, field, path)
        if setting is not None:
            changes[field] = setting.value
    config = dataclasses.replace(sup.config, **changes)  # type: ignore[arg-type]
    return sup._replace(specs=specs, config=config)


def _apply_spec(
    settings: Settings, spec: ProcSpec, path: str, nested: Supervisor | None
) -> ProcSpec:
    changes: dict[str, object] = {} if nested is None else {"proc": nested, "nested": nested}
    for field in SPEC_FIELDS:
        setting = _proc_setting(settings, field, path, nested=nested is not None)
        if setting is not None:
            changes[field] = setting.value
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


def _proc_setting(settings: Settings, field: str, path: str, *, nested: bool) -> Setting | None:
    """The proc's own override, else the tree-wide one, which a nested supervisor ignores
    for its grace and ready_timeout: it keeps taking as long as its procs need."""
    skip = nested and field in _AS_LONG_AS_PROCS_NEED
    return settings.get(field, path) or (None if skip else settings.get(field))


def _supervisor_setting(settings: Settings, field: str, path: str) -> Setting | None:
    return settings.get(field, path) or settings.get(field)


def resolved_settings(
    settings: Settings, sup: Supervisor
) -> Iterator[tuple[str, str, object, str]]:
    """``(path, field, value, source)`` of every setting `apply_settings` would leave, in
    tree order, each supervisor's own settings before its procs'."""
    yield from _supervisor_resolved(settings, sup, "")
    for path, spec, _ in sup.walk():
        nested = spec.nested is not None
        for field in SPEC_FIELDS:
            setting = _proc_setting(settings, field, path, nested=nested)
            value = getattr(spec, field) if setting is None else setting.value
            if setting is None and nested and value is None:
                continue  # "as long as its children need": nothing to show
            yield path, field, value, "code" if setting is None else setting.source
        if spec.nested is not None:
            yield from _supervisor_resolved(settings, spec.nested, path)


def _supervisor_resolved(
    settings: Settings, sup: Supervisor, path: str
) -> Iterator[tuple[str, str, object, str]]:
    for field in SUPERVISOR_FIELDS:
        setting = _supervisor_setting(settings, field, path)
        value = getattr(sup.config, field) if setting is None else setting.value
        yield path, field, value, "code" if setting is None else setting.source
