"""A hypothesis state machine that crashes random procs of a random tree.

The tree (a root and up to one level of nested supervisors, random strategies, every proc
PERMANENT) runs in a blocking portal (``anyio.from_thread.start_blocking_portal``) on the
backend under test, so the synchronous `RuleBasedStateMachine` can drive it step by step.
Each step crashes one proc and waits, by events, until the tree is quiet again. After every
step the machine checks against a model of OTP's rules:

- each proc runs at most once at a time;
- every proc's run count matches what the model expected from the crashes so far;
- the log of the step is exactly: the crash, the stops of the strategy's sibling set in reverse
  declared order, then its starts in declared order (nested supervisors expanded);

and at teardown: the report's restart counts match the model (a restarted subtree reports its
children afresh), the shutdown stops everything in reverse declared order, nothing still runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final

import anyio
import anyio.from_thread
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from super_visor import Restart, Strategy, SupervisorBuilder
from super_visor._restart import restart_group

from .fakes import Worker

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from anyio.from_thread import BlockingPortal

    from super_visor import RunHandle, Supervisor

STEP_TIMEOUT: Final = 10
#: Trees per backend; raise it (``SUPER_VISOR_EXAMPLES=500``) to hunt bugs.
EXAMPLES: Final = int(os.environ.get("SUPER_VISOR_EXAMPLES", "30"))


class Journal(list[str]):
    """The shared log; `wait_len` waits (on an event, not a poll) until it has *n* lines."""

    def __init__(self) -> None:
        super().__init__()
        self._grew: anyio.Event | None = None

    def append(self, line: str) -> None:
        super().append(line)
        if self._grew is not None:
            self._grew.set()

    async def wait_len(self, n: int) -> None:
        while len(self) < n:
            self._grew = anyio.Event()
            await self._grew.wait()


@dataclass(eq=False)
class Node:
    """A proc of the model: a leaf (``worker`` set) or a nested supervisor (``children``)."""

    name: str
    strategy: Strategy = Strategy.ONE_FOR_ONE
    worker: Worker | None = None
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None
    restarts: int = 0  # as the report will say: 0 again in a fresh run of its parent
    runs: int = 1

    def leaves(self) -> list[Node]:
        if self.worker is not None:
            return [self]
        return [leaf for child in self.children for leaf in child.leaves()]

    def starts(self) -> list[str]:
        return [f"start {leaf.name}" for leaf in self.leaves()]

    def stops(self) -> list[str]:
        if self.worker is not None:
            return [f"stop {self.name}"]
        return [line for child in reversed(self.children) for line in child.stops()]

    def restarted(self) -> None:
        """The model of one restart of this node: a subtree starts afresh."""
        self.restarts += 1
        for leaf in self.leaves():
            leaf.runs += 1
        if self.worker is None:
            for node in self.walk():
                if node is not self:
                    node.restarts = 0

    def walk(self) -> list[Node]:
        return [self, *(n for child in self.children for n in child.walk())]


def build(node: Node) -> Supervisor:
    builder = SupervisorBuilder(node.name, strategy=node.strategy, max_restarts=10_000)
    for child in node.children:
        proc = child.worker if child.worker is not None else build(child)
        builder.add_proc(proc, restart=Restart.PERMANENT)
    return builder.build()


SHAPES = st.lists(
    st.one_of(st.none(), st.tuples(st.sampled_from(Strategy), st.integers(1, 3))),
    min_size=1,
    max_size=4,
)


class RestartMachine(RuleBasedStateMachine):
    backend: ClassVar[str] = "asyncio"

    def __init__(self) -> None:
        super().__init__()
        self.log = Journal()
        self.root = Node("app")
        self.portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self.running_cm: AbstractContextManager[RunHandle] | None = None

    @initialize(strategy=st.sampled_from(Strategy), shape=SHAPES)
    def start_tree(self, strategy: Strategy, shape: list[tuple[Strategy, int] | None]) -> None:
        self.root.strategy = strategy
        for index, item in enumerate(shape):
            if item is None:
                self._leaf(self.root, f"p{index}")
            else:
                sub = Node(f"s{index}", strategy=item[0], parent=self.root)
                self.root.children.append(sub)
                for leaf in range(item[1]):
                    self._leaf(sub, f"s{index}l{leaf}")
        self.portal_cm = anyio.from_thread.start_blocking_portal(self.backend)
        self.portal = self.portal_cm.__enter__()
        self.running_cm = self.portal.wrap_async_context_manager(build(self.root).running())
        self.handle = self.running_cm.__enter__()
        assert self.log == self.root.starts()

    def _leaf(self, parent: Node, name: str) -> None:
        parent.children.append(Node(name, worker=Worker(name, self.log), parent=parent))

    @rule(pick=st.integers(0, 1_000))
    def crash(self, pick: int) -> None:
        leaves = self.root.leaves()
        leaf = leaves[pick % len(leaves)]
        parent = leaf.parent
        assert parent is not None
        group = restart_group(parent.strategy, parent.children, parent.children.index(leaf))
        expected = [f"crash {leaf.name}"]
        expected += [line for node in reversed(group) if node is not leaf for line in node.stops()]
        expected += [line for node in group for line in node.starts()]
        for node in group:
            node.restarted()
        before = len(self.log)
        self.portal.call(self._crash_and_settle, leaf, before + len(expected))
        assert self.log[before:] == expected

    async def _crash_and_settle(self, leaf: Node, lines: int) -> None:
        assert leaf.worker is not None
        with anyio.fail_after(STEP_TIMEOUT):
            leaf.worker.crash()
            await self.log.wait_len(lines)
            await anyio.wait_all_tasks_blocked()

    @invariant()
    def one_run_at_a_time_and_counts_match(self) -> None:
        for leaf in self.root.leaves():
            assert leaf.worker is not None
            assert leaf.worker.max_active <= 1, leaf.name
            assert leaf.worker.runs == leaf.runs, leaf.name

    def teardown(self) -> None:
        try:
            if self.running_cm is not None:
                before = len(self.log)
                self.running_cm.__exit__(None, None, None)
                assert self.log[before:] == self.root.stops()
                report = self.handle.report
                for node in self.root.walk()[1:]:
                    path = self._path(node)
                    assert report[path].restarts == node.restarts, path
                for leaf in self.root.leaves():
                    assert leaf.worker is not None
                    assert leaf.worker.active == 0
        finally:
            if self.portal_cm is not None:
                self.portal_cm.__exit__(None, None, None)

    @staticmethod
    def _path(node: Node) -> str:
        names = []
        current: Node | None = node
        while current is not None and current.parent is not None:
            names.append(current.name)
            current = current.parent
        return "/".join(reversed(names))


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_random_crashes_follow_otp_rules(backend: str) -> None:
    """Sync test: the machine runs its own event loop in a portal thread on *backend*."""
    RestartMachine.backend = backend
    run_state_machine_as_test(
        RestartMachine,
        settings=settings(max_examples=EXAMPLES, stateful_step_count=10, deadline=None),
    )
