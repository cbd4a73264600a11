"""Property tests: random proc trees (``tests/strategies.py``) and the invariants of API.md.

Each example builds a fresh tree of scripted procs (idle, failing at start or later,
completing, slow to stop, stubborn, gating, failing before ready; some not significant),
runs it, and checks what the procs wrote to their journal against the report:

- start order is the declared depth-first pre-order, up to where start-up stopped;
- every started proc ended exactly once, before ``start()``/``running()`` returned;
- the procs one shutdown stopped (same ``token.reason``) ended in reverse start order;
- NOT_STARTED is exactly the procs start-up never reached;
- every failure is in the `SupervisorError` exactly once, and in the report exactly once;
- every path appears exactly once in ``report.walk()``, in declared order;
- each proc's status agrees with what it did.

The anyio pytest plugin runs these async ``@given`` tests on asyncio and on trio.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from super_visor import (
    CancellationToken,
    ProcOutcome,
    ProcStatus,
    RunHandle,
    StartupError,
    SupervisorBuilder,
    SupervisorError,
    SupervisorReport,
    TreeStatus,
)

from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes
from .strategies import Journal, Kind, Leaf, Node, instantiate, trees, walk

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .strategies import Tree

#: The hang guard of one example (the slowest tree stops in well under a second).
EXAMPLE_TIMEOUT: Final = 10.0

#: Examples per property and backend; raise it (``SUPER_VISOR_EXAMPLES=1000``) to hunt bugs.
EXAMPLES: Final = int(os.environ.get("SUPER_VISOR_EXAMPLES", "40"))

PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The function-scoped fixtures are the backend name and the leak check, which hold no
    # state that one example could pass on to the next.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

STOPPED_BY_US = (ProcStatus.STOPPED, ProcStatus.FORCED)
#: The statuses each kind may end with once it started (timing decides among them).
ALLOWED: Final[dict[Kind, frozenset[ProcStatus]]] = {
    Kind.IDLE: frozenset({ProcStatus.STOPPED}),
    Kind.FAIL_AT_START: frozenset({ProcStatus.FAILED}),
    Kind.FAIL_LATER: frozenset({ProcStatus.FAILED, ProcStatus.STOPPED}),
    Kind.COMPLETE: frozenset({ProcStatus.COMPLETED, ProcStatus.STOPPED}),
    Kind.SLOW_STOP: frozenset({ProcStatus.STOPPED, ProcStatus.FORCED}),
    Kind.STUBBORN: frozenset({ProcStatus.FORCED}),
    Kind.GATE: frozenset({ProcStatus.STOPPED}),
    Kind.GATE_FAIL: frozenset({ProcStatus.FAILED}),
}


# --------------------------------------------------------------------------- the invariants


def leaf_errors(error: BaseException) -> Iterator[BaseException]:
    """The failures in a `SupervisorError`, nested supervisors' groups walked into."""
    if isinstance(error, SupervisorError):
        for sub in error.exceptions:
            yield from leaf_errors(sub)
    else:
        yield error


def has_note_naming(error: BaseException, path: str) -> bool:
    return any(path in note for note in getattr(error, "__notes__", ()))


@dataclass(frozen=True, kw_only=True)
class Run:
    """One example's run: the tree as declared, what its procs journalled, what came back."""

    declared: list[tuple[str, Tree]]
    leaves: list[tuple[str, Leaf]]
    leaf_paths: list[str]
    outcomes: dict[str, ProcOutcome]
    starts: list[str]
    ends: list[str]
    journal: Journal
    report: SupervisorReport
    error: SupervisorError | None
    handle: RunHandle | None


def observe(
    tree: Node,
    journal: Journal,
    report: SupervisorReport,
    error: SupervisorError | None,
    handle: RunHandle | None,
) -> Run:
    """What the checks share, worked out once from one run."""
    declared = list(walk(tree))
    leaves = [(path, leaf) for path, leaf in declared if isinstance(leaf, Leaf)]
    return Run(
        declared=declared,
        leaves=leaves,
        leaf_paths=[path for path, _ in leaves],
        outcomes={outcome.path: outcome for outcome in report.walk()},
        starts=journal.paths("start"),
        ends=journal.paths("end"),
        journal=journal,
        report=report,
        error=error,
        handle=handle,
    )


def check_invariants(
    tree: Node,
    journal: Journal,
    report: SupervisorReport,
    error: SupervisorError | None,
    handle: RunHandle | None = None,
) -> None:
    """Check every invariant (the module docstring lists them) on one run of *tree*."""
    run = observe(tree, journal, report, error, handle)
    check_outcome_paths(run)
    check_start_order(run)
    check_started_procs_ended_once(run)
    check_not_started(run)
    check_start_up_gates(run)
    check_leaf_statuses(run)
    check_reverse_stop_order(run)
    check_nested_supervisors(run)
    check_failures_reported(run)
    check_handle(run)


def check_outcome_paths(run: Run) -> None:
    """Every outcome path exactly once, in declared order; nested children where declared."""
    report, declared, outcomes = run.report, run.declared, run.outcomes
    assert [outcome.path for outcome in report.walk()] == [path for path, _ in declared]
    assert [outcome.path for outcome in report.outcomes] == [
        path for path, _ in declared if path.count("/") == 1
    ]
    for path, node in declared:
        if isinstance(node, Node):
            children = [child.path for child in outcomes[path].children]
            assert children == [p for p, _ in declared if p.rpartition("/")[0] == path]


def check_start_order(run: Run) -> None:
    """Start order is the declared pre-order, up to where start-up stopped."""
    starts, leaf_paths = run.starts, run.leaf_paths
    assert starts == leaf_paths[: len(starts)], "start order is not the declared pre-order"


def check_started_procs_ended_once(run: Run) -> None:
    """Every started proc ended exactly once, before start()/running() gave the report."""
    starts, ends = run.starts, run.ends
    assert sorted(ends) == sorted(starts), "a started proc did not end exactly once"


def check_not_started(run: Run) -> None:
    """NOT_STARTED exactly for the procs start-up never reached."""
    starts, outcomes = run.starts, run.outcomes
    for path, _leaf in run.leaves:
        started = path in starts
        assert (outcomes[path].status is ProcStatus.NOT_STARTED) == (not started), path


def check_start_up_gates(run: Run) -> None:
    """A gate releases the next proc only once ready; a failure at start-up stops start-up."""
    journal, leaf_paths, starts = run.journal, run.leaf_paths, run.starts
    for index, (path, leaf) in enumerate(run.leaves[:-1]):
        following = leaf_paths[index + 1]
        if following not in starts:
            continue
        if leaf.kind is Kind.GATE:
            assert journal.events.index(("ready", path)) < journal.events.index(
                ("start", following)
            ), f"{following} started before gate {path} was ready"
        if leaf.kind is Kind.GATE_FAIL or (leaf.kind is Kind.FAIL_AT_START and leaf.significant):
            msg = f"{following} started although {path} failed start-up"
            raise AssertionError(msg)


def check_leaf_statuses(run: Run) -> None:
    """Each leaf's status agrees with how its run ended."""
    journal, outcomes, starts = run.journal, run.outcomes, run.starts
    for path, leaf in run.leaves:
        outcome = outcomes[path]
        if path not in starts:
            continue
        assert outcome.status in ALLOWED[leaf.kind], (path, outcome.status)
        how = journal.how[path]
        if how == "raised":
            assert outcome.status is ProcStatus.FAILED, path
        elif how == "cancelled":
            assert outcome.status is ProcStatus.FORCED, path
        elif journal.cancelled_at_end[path]:
            assert outcome.status in STOPPED_BY_US, path
        else:
            assert outcome.status is ProcStatus.COMPLETED, path
            assert outcome.result == f"{path} completed"
        if outcome.status in STOPPED_BY_US:
            assert journal.cancelled_at_end[path] or how == "cancelled", path
            assert journal.reason_at_end[path], f"{path} was stopped without a reason"


def shutdown_waves(run: Run) -> dict[str | None, list[str]]:
    """The procs we stopped, in the order they ended, grouped by the shutdown (its reason)."""
    waves: dict[str | None, list[str]] = defaultdict(list)
    for path in run.ends:
        if run.outcomes[path].status in STOPPED_BY_US:
            waves[run.journal.reason_at_end[path]].append(path)
    return waves


def check_reverse_stop_order(run: Run) -> None:
    """The procs one shutdown stopped ended in reverse start order, one after the other."""
    starts = run.starts
    for reason, stopped in shutdown_waves(run).items():
        in_start_order = [path for path in starts if path in stopped]
        assert stopped == in_start_order[::-1], f"shutdown ({reason}) not in reverse order"


def check_nested_supervisors(run: Run) -> None:
    """Nested supervisors: NOT_STARTED only if none of their procs started; failed iff one did."""
    outcomes = run.outcomes
    for path, node in run.declared:
        if not isinstance(node, Node):
            continue
        outcome = outcomes[path]
        below = [o for o in outcome.walk() if o is not outcome and not o.children]
        if all(o.status is ProcStatus.NOT_STARTED for o in below):
            # Start-up never reached it, or (trio's scheduling allows it) its stop was
            # requested after it was started but before its first proc began.
            assert outcome.status in (ProcStatus.NOT_STARTED, ProcStatus.STOPPED), path
            continue
        assert outcome.status is not ProcStatus.NOT_STARTED, f"{path}: its procs started"
        if any(child.failed for child in outcome.children):
            assert outcome.status is ProcStatus.FAILED, path
            assert isinstance(outcome.error, SupervisorError), path
            assert has_note_naming(outcome.error, path)
        else:
            assert outcome.status in (ProcStatus.STOPPED, ProcStatus.COMPLETED), path
            assert isinstance(outcome.result, SupervisorReport), path


def check_failures_reported(run: Run) -> None:
    """Every failure in the report exactly once, and in the SupervisorError exactly once."""
    journal, outcomes, report, error = run.journal, run.outcomes, run.report, run.error
    declared, leaves = run.declared, run.leaves
    failed = [outcomes[path] for path in run.leaf_paths if outcomes[path].failed]
    assert sorted(journal.raised) == sorted(o.path for o in failed)
    assert [o.path for o in report.failures()] == [o.path for o in failed]
    for outcome in failed:
        check_failure(outcome, journal, dict(leaves)[outcome.path])
    if not failed:
        assert error is None
        assert report.exit_code == 0
    else:
        assert error is not None, "a proc failed but no SupervisorError was raised"
        assert error.report is report
        assert report.exit_code == 1
        in_group = [id(exc) for exc in leaf_errors(error)]
        assert sorted(in_group) == sorted(id(o.error) for o in failed)
        assert len(set(in_group)) == len(in_group), "a failure is in the group twice"
        for sub in error.exceptions:
            assert any(has_note_naming(sub, path) for path, _ in declared), sub


def check_handle(run: Run) -> None:
    """Under ``running()``: gates' ready values reach the handle, and if no proc ended on its
    own, the test's ``handle.shutdown("test over")`` is the reason of every stop.

    Only root-level gates: after the run, a nested supervisor's procs can no longer be looked up.
    """
    journal, handle, report, ends = run.journal, run.handle, run.report, run.ends
    waves = shutdown_waves(run)
    if handle is not None:
        for path, leaf in run.leaves:
            if leaf.kind is Kind.GATE and path.count("/") == 1:
                readied = ("ready", path) in journal.events
                expected = path if readied else None
                assert handle.ready_value(path.partition("/")[2]) == expected, path
    ended_on_their_own = [
        path for path in ends if journal.how[path] == "raised" or not journal.cancelled_at_end[path]
    ]
    if not ended_on_their_own and handle is not None:
        assert report.reason == "test over"
        assert all(reason == "test over" for reason in waves), waves


def check_failure(outcome: ProcOutcome, journal: Journal, leaf: Leaf) -> None:
    """A failed leaf carries what it raised (wrapped in StartupError when it gated)."""
    raised = journal.raised[outcome.path]
    if leaf.kind.gates:
        assert isinstance(outcome.error, StartupError), outcome
        assert outcome.error.__cause__ is raised
        assert outcome.path in str(outcome.error)
    else:
        assert outcome.error is raised
    assert has_note_naming(outcome.error, outcome.path)


# --------------------------------------------------------------------------- the properties


def note_statistics(report: SupervisorReport, error: SupervisorError | None) -> None:
    """What the examples covered (``pytest --hypothesis-show-statistics``)."""
    event("raised SupervisorError" if error is not None else "returned a report")
    for status in sorted({o.status for o in report.walk()}, key=lambda s: s.value):
        event(f"some proc {status.value}")


@pytest.mark.hang_guard(EXAMPLE_TIMEOUT)
@PROPERTY_SETTINGS
@given(tree=trees(), app_time=st.sampled_from([0.0, 0.005, 0.02]), nest_builders=st.booleans())
async def test_running_then_shutdown(tree: Node, app_time: float, nest_builders: bool) -> None:
    """Run a random tree under ``running()``, let it work for *app_time*, shut it down.

    *app_time* is not synchronisation: the invariants hold whatever it is; it only varies
    how far the procs that fail or complete "after a bit" got before the shutdown. Nested
    supervisors are added as builders or as built supervisors (*nest_builders*).
    """
    journal = Journal()
    sup = instantiate(tree, journal, nest_builders=nest_builders).build()
    handle: RunHandle | None = None
    during: TreeStatus | None = None
    error: SupervisorError | None = None
    try:
        async with sup.running() as handle:
            during = handle.status()
            await anyio.sleep(app_time)
            handle.shutdown("test over")
        report = handle.report
    except SupervisorError as exc:
        error = exc
        report = exc.report
    check_invariants(tree, journal, report, error, handle)
    if handle is not None and during is not None:
        assert [p.path for p in during.walk()] == [o.path for o in report.walk()]
        check_final_status(handle, report)
    note_statistics(report, error)


def check_final_status(handle: RunHandle, report: SupervisorReport) -> None:
    """After the run, ``status()`` shows every proc of the report, in the same depth-first
    order, in the state of its outcome."""
    status = handle.status()
    assert status.state.value == "stopped"
    assert not status.ready
    shown = [(proc.path, proc.state.value) for proc in status.walk()]
    assert shown == [(outcome.path, outcome.status.value) for outcome in report.walk()]


def ends_itself(tree: Node) -> bool:
    """Whether some significant leaf ends on its own, so ``start()`` returns unprompted."""
    return any(
        isinstance(leaf, Leaf) and leaf.significant and leaf.kind.ends_on_its_own
        for _, leaf in walk(tree)
    )


@pytest.mark.hang_guard(EXAMPLE_TIMEOUT)
@PROPERTY_SETTINGS
@given(tree=trees())
async def test_start_until_a_proc_ends(tree: Node) -> None:
    """Run a random tree with ``start()`` until a significant proc ends and stops it all."""
    assume(ends_itself(tree))
    journal = Journal()
    sup = instantiate(tree, journal).build()
    error: SupervisorError | None = None
    try:
        report = await sup.start(handle_signals=False)
    except SupervisorError as exc:
        error = exc
        report = exc.report
    check_invariants(tree, journal, report, error)
    note_statistics(report, error)
    assert "root/" in report.reason, report.reason  # a proc (named by its path) stopped it


# ------------------------------------------------------------------- examples and known bugs


def test_nested_builders_with_proc_objects_build() -> None:
    """``add_proc(builder)`` nests a supervisor (add_proc's docstring) like ``add_proc(sup)``.

    Regression: build() used to reject it ("this proc object was already added").
    """
    tree = Node((Leaf(Kind.IDLE, 0.01, None, significant=True),))
    root = instantiate(Node((tree,)), Journal(), nest_builders=True).build()
    assert [spec.name for spec in root.specs] == ["sup0"]


async def test_not_started_nested_supervisor_lists_its_procs() -> None:
    """Every declared proc has an outcome: start-up never reached ``sup1/idle0`` either."""
    tree = Node(
        (
            Leaf(Kind.FAIL_AT_START, 0.01, None, significant=True),
            Node((Leaf(Kind.IDLE, 0.01, None, significant=True),)),
        )
    )
    sup = instantiate(tree, Journal()).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    report = caught.value.report
    assert report["sup1"].status is ProcStatus.NOT_STARTED
    assert report["sup1/idle0"].status is ProcStatus.NOT_STARTED
    assert [o.path for o in report.walk()] == [
        "root/fail_at_start0",
        "root/sup1",
        "root/sup1/idle0",
    ]


async def test_gate_raising_after_stop_requested_is_a_startup_error() -> None:
    """API.md: a gating proc that raises before ``token.ready()`` fails start-up with a
    `StartupError` whose ``__cause__`` is the original error, also when start-up was already
    being stopped (here: an earlier proc failed while the gate held start-up)."""
    entered = anyio.Event()
    original = ValueError("raised before ready")

    async def trigger(token: CancellationToken) -> None:
        await entered.wait()  # the gate has begun and holds start-up
        msg = "trigger"
        raise RuntimeError(msg)

    async def gate(token: CancellationToken) -> None:
        entered.set()
        await token.wait()  # never ready: its stop is requested while it gates
        raise original

    sup = (
        SupervisorBuilder("app", grace=1.0)
        .add_proc(trigger)
        .add_proc(gate, wait_ready=True)
        .build()
    )
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    error = caught.value.report["gate"].error
    assert isinstance(error, StartupError), repr(error)
    assert error.__cause__ is original
