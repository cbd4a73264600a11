"""TreeValidator: one ``build()`` of a tree, checking it as a whole.

Names unique per supervisor, no cycles, no proc object in two places: what no single
``add_proc`` call can check. Loaded by ``SupervisorBuilder.build()`` on first use.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, final

from ._errors import ConfigError
from ._proc import FunctionProc
from ._spec import ProcEntry
from ._supervisor import Supervisor

if TYPE_CHECKING:
    from collections.abc import Collection, Generator

    from ._builder import SupervisorBuilder
    from ._precedence import Defaults
    from ._proc import SupportsRunProc
    from ._spec import ProcSpec

__all__ = ("TreeValidator",)

T = TypeVar("T")
#: A step of a build: yields a nested builder (with its path) and is sent it built.
_Building: TypeAlias = "Generator[tuple[SupervisorBuilder, str], Supervisor | None, T]"


@final
class TreeValidator:
    """One build: the builders being built (to find cycles) and the proc objects seen.

    Nested builders are built by a loop over a stack of generators (`_build` yields each
    nested builder and is sent it built), not by recursion, so a tree nested thousands of
    levels deep builds without a Python frame per level.
    """

    def __init__(self, builder_type: type[SupervisorBuilder]) -> None:
        #: `SupervisorBuilder`, given rather than imported: the builder imports this module.
        self._builder_type = builder_type
        #: The builders being built, by id: a nested one already here is a cycle.
        self._building: set[int] = set()
        #: The proc objects added in this build (by id), with the path they were added at.
        self._seen: dict[int, str] = {}
        #: The ids of the proc objects inside the built supervisors added, and those.
        self._below: set[int] = set()
        self._nested: list[tuple[str, Supervisor]] = []

    def build(self, builder: SupervisorBuilder, path: str) -> Supervisor:
        """Build *builder* and every builder nested in it; keep its tree's proc index."""
        built = self.drive(self._build(builder, path))
        built._procs_below = self._index()
        return built

    def drive(self, step: _Building[T]) -> T:
        """Run *step*, building each nested builder it yields (innermost first) on a stack
        of generators, and sending it back built."""
        stack: list[_Building[Any]] = [step]
        built: Supervisor | None = None
        while True:
            try:
                request = stack[-1].send(built)
            except StopIteration as done:
                stack.pop()
                if not stack:
                    result: T = done.value
                    return result
                built = done.value
                continue
            stack.append(self._build(*request))
            built = None

    def _build(self, builder: SupervisorBuilder, path: str) -> _Building[Supervisor]:
        from ._precedence import supervisor_config
        from ._validate import check_name, valid

        where = path or "<root>"
        valid(where, check_name("the supervisor name", builder.name, "SupervisorBuilder('app')"))

        defaults = builder._defaults
        config = supervisor_config(path, defaults)
        if not builder._entries:
            raise ConfigError(path, "the supervisor has no procs", "add at least one proc")
        self._building.add(id(builder))
        specs: list[ProcSpec] = []
        names: set[str] = set()
        for entry in builder._entries:
            spec = yield from self._spec(path, entry, defaults)
            if spec.name in names:
                raise ConfigError(
                    f"{path}/{spec.name}",
                    "two procs have this name in one supervisor",
                    "give one of them another name with add_proc(..., name=...)",
                )
            names.add(spec.name)
            specs.append(spec)
        self._building.discard(id(builder))
        child_spec = functools.partial(_dynamic_spec, self._builder_type, path, defaults)
        return Supervisor._create(
            builder.name, tuple(specs), config, child_spec, tuple(builder._callbacks)
        )

    def _spec(self, path: str, entry: ProcEntry, defaults: Defaults) -> _Building[ProcSpec]:
        if entry.factory is not None:
            return _factory_spec(path, entry, defaults)
        from ._precedence import Picks, resolve_spec
        from ._validate import check_name, valid

        options = entry.options
        proc = yield from self._proc(path, entry.proc, options.get("name"))
        given = options.get("name", getattr(proc, "name", None))
        where = f"{path}/<{_label(entry.proc, None)}>"
        name = valid(where, check_name("the proc name", given, "add_proc(proc, name='web')"))
        if not isinstance(entry.proc, self._builder_type):  # its build remembered its procs
            self._remember(f"{path}/{name}", entry.proc, proc)
        own = None if isinstance(entry.proc, self._builder_type) else _own_settings(entry.proc)
        picks = Picks(f"{path}/{name}", own, options)
        return resolve_spec(picks, name, proc, None, defaults)

    def _proc(self, path: str, obj: object, name: object) -> _Building[SupportsRunProc]:
        if not isinstance(obj, self._builder_type):
            from ._validate import check_proc, valid

            given = name if isinstance(name, str) else None
            return valid(f"{path}/{_label(obj, name)}", check_proc(obj, given))
        if id(obj) in self._building:
            raise ConfigError(
                f"{path}/{obj.name}",
                "a supervisor is nested inside itself",
                "a supervisor cannot contain itself; nest a different builder",
            )
        nested_path = f"{path}/{name if isinstance(name, str) else obj.name}"
        built = yield (obj, nested_path)
        assert built is not None, "the build loop sends the nested builder built"
        self._seen[id(built)] = nested_path  # a fresh object: only for the tree's index
        return built

    def _remember(self, path: str, source: object, proc: SupportsRunProc) -> None:
        if isinstance(proc, FunctionProc):
            return  # one function may back several procs: each gets its own wrapper
        self._check(path, source)
        self._seen.setdefault(id(source), path)
        if isinstance(proc, Supervisor):
            self._adopt(path, proc)

    def _check(self, path: str, target: object) -> None:
        """Refuse *target* when it was already added in this build at another path."""
        first = self._seen.get(id(target))
        if first is None and id(target) in self._below:
            first = self._first_below(target)
        if first is not None and first != path:
            raise ConfigError(
                path,
                f"this proc object was already added as {first}",
                "create a separate instance for each place, or use add_factory()",
            )

    def _adopt(self, path: str, sup: Supervisor) -> None:
        """Remember the proc objects of a built supervisor's tree.

        Its index is merged small-into-large (the larger set is kept, the smaller copied
        in), and taken over from the supervisor when it is the larger, so a chain built
        bottom-up, each level adding the last, costs O(1) per level rather than O(tree).
        """
        below = _procs_below(sup)
        if _overlap(below, self._seen.keys()) or _overlap(below, self._below):
            for target in _tree_procs(sup):  # the slow way, for the message's first path
                self._check(path, target)
        if len(below) > len(self._below):
            sup._procs_below = None  # taken over; rebuilt by a walk if it is added again
            below, self._below = self._below, below
        self._below.update(below)
        self._nested.append((path, sup))

    def _first_below(self, target: object) -> str | None:
        """The path of the built supervisor added in this build whose tree holds *target*."""
        for path, sup in self._nested:
            if sup is target or any(p is target for p in _tree_procs(sup)):
                return path
        return None

    def _index(self) -> set[int]:
        """The ids of every proc object in the built tree, for a build that nests it."""
        self._below.update(self._seen)
        return self._below


def _factory_spec(path: str, entry: ProcEntry, defaults: Defaults) -> ProcSpec:
    from ._precedence import Picks, resolve_spec
    from ._validate import check_factory, check_name, valid

    example = "add_factory('worker', make_worker)"
    name = valid(path, check_name("the factory name", entry.options.get("name"), example))
    factory = valid(f"{path}/{name}", check_factory(entry.factory))
    picks = Picks(f"{path}/{name}", None, entry.options)
    return resolve_spec(picks, name, None, factory, defaults)


def _dynamic_spec(
    builder_type: type[SupervisorBuilder],
    path: str,
    defaults: Defaults,
    proc: object,
    options: dict[str, object],
) -> ProcSpec:
    """Validate one child started on a running supervisor (``handle.start_child``).

    Same rules as ``add_proc``, except that a dynamic child is not significant unless told:
    a per-job or per-connection proc ending must not stop the application.
    """
    options = {"significant": False, **options}
    validator = TreeValidator(builder_type)
    return validator.drive(validator._spec(path, ProcEntry(proc, None, options), defaults))


def _procs_below(sup: Supervisor) -> set[int]:
    """The ids of the proc objects of *sup*'s tree: kept from its build, else walked."""
    if sup._procs_below is None:
        sup._procs_below = {id(proc) for proc in _tree_procs(sup)}
    return sup._procs_below


def _overlap(small: Collection[int], large: Collection[int]) -> bool:
    """Whether the two hold a common id, looking each of the smaller up in the larger."""
    if len(small) > len(large):
        small, large = large, small
    return any(item in large for item in small)


def _tree_procs(sup: Supervisor) -> list[object]:
    """Every proc object of *sup*'s tree, to refuse one object in two places."""
    return [
        entry.spec.proc
        for entry in sup.walk()
        if entry.spec.proc is not None and not isinstance(entry.spec.proc, FunctionProc)
    ]


def _own_settings(obj: object) -> object:
    """*obj* when its attributes are its settings as a proc, else None.

    A supervisor's own settings are for its children, not for it (a builder's too: see the
    caller), and a function's attributes are not settings at all.
    """
    own = inspect.isfunction(obj) or isinstance(obj, Supervisor)
    return None if own else obj


def _label(obj: object, name: object) -> str:
    if isinstance(name, str) and name:
        return name
    return getattr(obj, "__name__", None) or type(obj).__name__
