"""Hypothesis strategies: random proc trees, and the scripted procs that run them.

A tree is described by immutable `Leaf` and `Node` values, so hypothesis can print and shrink
it; `instantiate` turns a description into a fresh `SupervisorBuilder` whose procs record what
they do in a shared `Journal`. The property tests (``tests/test_properties.py``) compare that
journal and the report against the declared tree.

Graces are tiny (0.01-0.05 s) and every delay is shorter still, so one tree runs in
milliseconds. Sleeps here are the procs' simulated work, never synchronisation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeAlias

import anyio
import anyio.lowlevel
from hypothesis import strategies as st

from super_visor import CancellationToken, SupervisorBuilder

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = (
    "MAX_DEPTH",
    "MAX_WIDTH",
    "Journal",
    "Kind",
    "Leaf",
    "Node",
    "ProcFailure",
    "Tree",
    "instantiate",
    "trees",
    "walk",
)

#: Supervisor levels, the root included.
MAX_DEPTH: Final = 3
#: Procs per supervisor.
MAX_WIDTH: Final = 6
GRACES: Final = (0.01, 0.02, 0.05)


class Kind(enum.Enum):
    """What a scripted leaf proc does."""

    #: Waits on its token, returns as soon as it is cancelled.
    IDLE = "idle"
    #: Raises before its first await.
    FAIL_AT_START = "fail_at_start"
    #: Raises after `Leaf.delay` unless its token is cancelled first (then returns).
    FAIL_LATER = "fail_later"
    #: Returns after `Leaf.delay` unless its token is cancelled first.
    COMPLETE = "complete"
    #: Takes `Leaf.delay` (well within its grace) to return once its token is cancelled.
    SLOW_STOP = "slow_stop"
    #: Ignores its token: only a force-cancel ends it (its grace is tiny).
    STUBBORN = "stubborn"
    #: Gates start-up; calls ``token.ready(path)`` after `Leaf.delay` (None: at once).
    GATE = "gate"
    #: Gates start-up and raises before it is ready (after a checkpoint when delay is set).
    GATE_FAIL = "gate_fail"

    @property
    def gates(self) -> bool:
        return self in (Kind.GATE, Kind.GATE_FAIL)

    @property
    def ends_on_its_own(self) -> bool:
        """Whether a run of it ends without being asked to stop."""
        return self in (Kind.FAIL_AT_START, Kind.FAIL_LATER, Kind.COMPLETE, Kind.GATE_FAIL)


@dataclass(frozen=True)
class Leaf:
    """A scripted proc."""

    kind: Kind
    grace: float
    delay: float | None
    significant: bool


@dataclass(frozen=True)
class Node:
    """A nested supervisor (the root is one too)."""

    children: tuple[Tree, ...]


Tree: TypeAlias = Leaf | Node


def _delays(kind: Kind, grace: float) -> st.SearchStrategy[float | None]:
    if kind in (Kind.FAIL_LATER, Kind.COMPLETE):
        return st.sampled_from([0.0, 0.001, 0.005, 0.02])
    if kind is Kind.SLOW_STOP:
        return st.just(grace / 5)
    if kind is Kind.GATE:
        return st.sampled_from([None, 0.0, 0.002])
    if kind is Kind.GATE_FAIL:
        return st.sampled_from([None, 0.0])
    return st.none()


@st.composite
def leaves(draw: st.DrawFn) -> Leaf:
    """One scripted proc; most are not significant-False (the default is True)."""
    kind = draw(st.sampled_from(Kind))
    grace = draw(st.sampled_from(GRACES))
    delay = draw(_delays(kind, grace))
    significant = draw(st.sampled_from([True, True, True, False]))
    return Leaf(kind, grace, delay, significant)


def nodes(depth: int = 1) -> st.SearchStrategy[Node]:
    """A supervisor at *depth* (1 = the root) with 1..MAX_WIDTH children."""
    child: st.SearchStrategy[Tree] = leaves()
    if depth < MAX_DEPTH:
        # Leaves first, so hypothesis shrinks towards flat trees.
        child = st.one_of(leaves(), leaves(), nodes(depth + 1))
    return st.builds(Node, st.lists(child, min_size=1, max_size=MAX_WIDTH).map(tuple))


def trees() -> st.SearchStrategy[Node]:
    """A root supervisor: depth <= MAX_DEPTH, width <= MAX_WIDTH."""
    return nodes(1)


# --------------------------------------------------------------------------- running a tree


class ProcFailure(Exception):
    """What a scripted proc raises; names the proc's path."""


@dataclass
class Journal:
    """What the scripted procs did, in the order they did it (shared by one tree's procs)."""

    #: ("start" | "ready" | "end", path), in order.
    events: list[tuple[str, str]] = field(default_factory=list)
    #: How each run ended: "returned", "raised" or "cancelled".
    how: dict[str, str] = field(default_factory=dict)
    #: ``token.cancelled`` / ``token.reason`` when the run ended.
    cancelled_at_end: dict[str, bool] = field(default_factory=dict)
    reason_at_end: dict[str, str | None] = field(default_factory=dict)
    #: The exception each failing proc raised.
    raised: dict[str, ProcFailure] = field(default_factory=dict)

    def paths(self, event: str) -> list[str]:
        return [path for kind, path in self.events if kind == event]


class ScriptedProc:
    """A leaf proc that behaves as its `Leaf` says and writes everything to the journal."""

    def __init__(self, leaf: Leaf, path: str, journal: Journal) -> None:
        self.leaf = leaf
        self.path = path
        self.journal = journal

    def __repr__(self) -> str:
        return f"ScriptedProc({self.path})"

    async def run_proc(self, token: CancellationToken) -> object:
        journal = self.journal
        journal.events.append(("start", self.path))
        how = "cancelled"
        try:
            result = await self._script(token)
        except ProcFailure as exc:
            how = "raised"
            journal.raised[self.path] = exc
            raise
        else:
            how = "returned"
            return result
        finally:
            journal.how[self.path] = how
            journal.cancelled_at_end[self.path] = token.cancelled
            journal.reason_at_end[self.path] = token.reason
            journal.events.append(("end", self.path))

    def _ready(self, token: CancellationToken) -> None:
        if not token.cancelled:
            self.journal.events.append(("ready", self.path))
            token.ready(self.path)

    def _failure(self) -> ProcFailure:
        return ProcFailure(f"{self.path} failed on purpose")

    async def _script(self, token: CancellationToken) -> object:
        kind, delay = self.leaf.kind, self.leaf.delay
        if kind is Kind.IDLE:
            await token.wait()
        elif kind is Kind.FAIL_AT_START:
            raise self._failure()
        elif kind in (Kind.FAIL_LATER, Kind.COMPLETE):
            assert delay is not None
            with anyio.move_on_after(delay):
                await token.wait()
            if not token.cancelled:
                if kind is Kind.FAIL_LATER:
                    raise self._failure()
                return f"{self.path} completed"
        elif kind is Kind.SLOW_STOP:
            assert delay is not None
            await token.wait()
            await anyio.sleep(delay)
        elif kind is Kind.STUBBORN:
            await anyio.sleep_forever()
        elif kind is Kind.GATE:
            if delay is not None:
                with anyio.move_on_after(delay):
                    await token.wait()
            self._ready(token)
            await token.wait()
        elif kind is Kind.GATE_FAIL:
            if delay is not None:
                await anyio.lowlevel.checkpoint()
            raise self._failure()
        return None


def leaf_name(index: int, leaf: Leaf) -> str:
    return f"{leaf.kind.value}{index}"


def node_name(index: int) -> str:
    return f"sup{index}"


def instantiate(
    tree: Node, journal: Journal, path: str = "root", *, nest_builders: bool = True
) -> SupervisorBuilder:
    """A fresh builder (fresh proc objects) for *tree*.

    Nested supervisors are added as builders (``add_proc(builder)``) with *nest_builders*,
    else built (``add_proc(builder.build())``, the nesting API.md shows).
    """
    builder = SupervisorBuilder(path.rpartition("/")[2])
    for index, child in enumerate(tree.children):
        if isinstance(child, Node):
            nested = instantiate(
                child, journal, f"{path}/{node_name(index)}", nest_builders=nest_builders
            )
            builder.add_proc(nested if nest_builders else nested.build())
        else:
            child_name = leaf_name(index, child)
            builder.add_proc(
                ScriptedProc(child, f"{path}/{child_name}", journal),
                name=child_name,
                grace=child.grace,
                wait_ready=child.kind.gates,
                significant=child.significant,
            )
    return builder


def walk(tree: Node, path: str = "root") -> Iterator[tuple[str, Tree]]:
    """Every proc below *tree* as (path, description), depth-first in declared order."""
    for index, child in enumerate(tree.children):
        if isinstance(child, Node):
            child_path = f"{path}/{node_name(index)}"
            yield child_path, child
            yield from walk(child, child_path)
        else:
            yield f"{path}/{leaf_name(index, child)}", child
