"""A deeply nested tree is described and configured without a Python frame per level.

Everything that looks at a whole tree (the builder's duplicate check, ``tree``/``plan``, the
configuration, the live console's rows) goes through the iterative ``Supervisor.walk``. Each
test runs the code under a recursion limit only `HEADROOM` frames above its own depth, with
a tree nested deeper than that: a walk that recursed once per level would fail.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from super_visor import Supervisor, SupervisorBuilder
from super_visor._config import Settings, proc_variable
from super_visor._console import TreeView
from super_visor._plan import format_plan, format_tree, shutdown_bound

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

    from super_visor import CancellationToken

#: Frames the code under test may use: plenty for iterating, too few to recurse per level.
HEADROOM = 150
#: Supervisors in the chain, nested one inside the next.
LEVELS = 2 * HEADROOM


async def idle(token: CancellationToken) -> None:
    await token.wait()


@contextlib.contextmanager
def headroom() -> Iterator[None]:
    """Allow the caller's block at most `HEADROOM` frames more than the caller has now."""
    depth = 0
    frame: FrameType | None = sys._getframe(2)  # the caller's (1 is contextmanager's)
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + HEADROOM)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


@pytest.fixture(scope="module")
def chain() -> Supervisor:
    """``s<LEVELS-1>/.../s1/s0``, each level with a leaf proc of grace 1s beside it.

    Built bottom-up, adding each built supervisor to the next builder, as an application
    composes supervisors; under `headroom`, so the builder is checked too.
    """
    with headroom():
        sup = SupervisorBuilder("s0").add_proc(idle, name="leaf", grace=1).build()
        for level in range(1, LEVELS):
            builder = SupervisorBuilder(f"s{level}").add_proc(sup)
            sup = builder.add_proc(idle, name="leaf", grace=1).build()
    return sup


def test_walk_reaches_the_deepest_proc(chain: Supervisor) -> None:
    with headroom():
        deepest = max(chain.walk(), key=lambda entry: entry.depth)

    assert deepest.depth == LEVELS - 1
    assert deepest.path.endswith("s1/s0/leaf")


def test_tree_and_plan_describe_every_level(chain: Supervisor) -> None:
    with headroom():
        tree, plan, bound = format_tree(chain), format_plan(chain), shutdown_bound(chain)

    assert len(tree.splitlines()) == 1 + 2 * LEVELS - 1  # the root, then its procs
    assert bound == LEVELS  # one leaf of 1s per level, stopped one after the other
    assert f"every proc ends by its force-cancel: {LEVELS}s" in plan


def test_settings_apply_to_the_deepest_proc(chain: Supervisor) -> None:
    deepest = max(chain.walk(), key=lambda entry: entry.depth)
    environ = {proc_variable(deepest.path, "grace"): "7"}

    with headroom():
        settings = Settings.load(chain, env_file=None, environ=environ)
        applied = settings.apply(chain)
        resolved = list(settings.resolved(applied))

    assert max(applied.walk(), key=lambda entry: entry.depth).spec.grace == 7
    assert (deepest.path, "grace", 7.0, "environment") in resolved


def test_console_has_a_row_per_proc(chain: Supervisor) -> None:
    with headroom():
        view = TreeView(chain, clock=lambda: 0.0)

    assert len(view._rows) == 2 * LEVELS - 1


#: The depth API.md section 8 promises: "trees nested 10,000 levels deep build, run and stop".
DEEP = 10_000
#: A failure at the bottom is checked a little less deep: twice Python's default recursion
#: limit proves it recurses nowhere, at a fraction of the cost of paths 10,000 levels long
#: in every level's error, note and log record.
DEEP_FAILURE = 2_000

#: Run in a fresh interpreter, at Python's default recursion limit (1000), so anything that
#: recursed once per level on the way (build, start, stop, the report, the errors) fails.
#: Logging is at WARNING, into a NullHandler: the failure below is logged at ERROR once
#: per level, and each record names its path, O(depth) characters.
DEEP_RUN = r"""
import json, logging, sys, time
import anyio
from super_visor import SupervisorBuilder, SupervisorError

logging.basicConfig(level=logging.WARNING, handlers=[logging.NullHandler()])
levels, failing_levels, backend = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
told = None

async def idle(token):
    await token.wait()

async def fail_when_told(token):
    await told.wait()
    raise ValueError("the deepest proc failed")

def chain(bottom, levels):
    sup = SupervisorBuilder("s0").add_proc(bottom, name="idle").build()
    for level in range(1, levels):
        sup = SupervisorBuilder(f"s{level}").add_proc(idle).add_proc(sup).build()
    return sup

async def main():
    global told
    told = anyio.Event()
    def deepest(levels):
        return "/".join(f"s{level}" for level in range(levels - 2, -1, -1)) + "/idle"

    times, began = {}, time.perf_counter()
    sup = chain(idle, levels)
    times["build"], began = time.perf_counter() - began, time.perf_counter()
    async with sup.running() as handle:
        times["run"], began = time.perf_counter() - began, time.perf_counter()
    times["stop"] = time.perf_counter() - began
    report = handle.report
    lines = report.render().splitlines()
    failing = chain(fail_when_told, failing_levels)
    try:
        async with failing.running():
            told.set()
            await anyio.sleep_forever()
    except SupervisorError as error:
        failed = error.report
    print(json.dumps({
        "times": times,
        "deepest": report[deepest(levels)].status.value,
        "lines": len(lines),
        "exit_code": report.exit_code,
        "failed_deepest": failed[deepest(failing_levels)].status.value,
        "failed_error": str(failed[deepest(failing_levels)].error),
        "failed_exit_code": failed.exit_code,
        "failures": [
            outcome.path == f"s{failing_levels - 1}/{deepest(failing_levels)}"
            for outcome in failed.failures()
        ],
    }))

anyio.run(main, backend=backend)
"""


# asyncio is slower: anyio's asyncio backend walks up every enclosing cancel scope each time
# one exits (CancelScope._restart_cancellation_in_parent), O(depth) per exit at this depth.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_tree_10000_levels_deep_builds_runs_stops_and_reports(backend: str) -> None:
    """No depth limit (API.md section 8): build, run, stop, index the report, render it, and
    report a failure at the very bottom as a `SupervisorError`, without recursion."""
    # (the failure part runs DEEP_FAILURE levels deep; see there)
    ran = subprocess.run(
        [sys.executable, "-c", DEEP_RUN, str(DEEP), str(DEEP_FAILURE), backend],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout)

    assert result["deepest"] == "stopped"
    assert result["lines"] == 2 * DEEP  # the header, then two procs per level but the last
    assert result["exit_code"] == 0
    assert result["failed_deepest"] == "failed"
    assert result["failed_error"] == "the deepest proc failed"
    assert result["failed_exit_code"] == 1
    assert result["failures"] == [True]  # the one failed leaf, found at the bottom
