"""Restart policies x strategies at runtime (API.md section 6): who is restarted when a proc
ends, in which order, and what the report says, for every `Restart` and `Strategy`.

Procs are `Worker` fakes (``tests/fakes.py``) the test crashes or completes on demand;
each writes ``"<event> <name>"`` lines into a shared log, so a test reads the order of stops
and starts of a whole restart from one list.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Final

import anyio
import pytest

from super_visor import (
    ProcStatus,
    Restart,
    Strategy,
    SupervisorBuilder,
    SupervisorError,
)

from .fakes import Worker
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

#: What follows ``b`` ending when it is restarted, by strategy, for procs a, b, c.
RESTART_LINES: Final = {
    Strategy.ONE_FOR_ONE: ["start b"],
    Strategy.ONE_FOR_ALL: ["stop c", "stop a", "start a", "start b", "start c"],
    Strategy.REST_FOR_ONE: ["stop c", "start b", "start c"],
}
#: Who is restarted with b, by strategy.
RESTARTED: Final = {
    Strategy.ONE_FOR_ONE: {"b"},
    Strategy.ONE_FOR_ALL: {"a", "b", "c"},
    Strategy.REST_FOR_ONE: {"b", "c"},
}


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("policy", list(Restart))
@pytest.mark.parametrize("ending", ["crash", "complete"])
async def test_policy_times_strategy(strategy: Strategy, policy: Restart, ending: str) -> None:
    """b (under test) ends; a and c are PERMANENT bystanders. b is not significant, so a
    policy that does not restart it leaves the tree running without it."""
    log: list[str] = []
    a, b, c = Worker("a", log), Worker("b", log), Worker("c", log)
    sup = (
        SupervisorBuilder("app", strategy=strategy)
        .add_proc(a, restart=Restart.PERMANENT)
        .add_proc(b, restart=policy, significant=False)
        .add_proc(c, restart=Restart.PERMANENT)
        .build()
    )
    failed = ending == "crash"
    restarted = policy.wants_restart(failed=failed)
    # b failing for good makes its final outcome FAILED: running() raises at the end.
    expectation: AbstractContextManager[object] = (
        pytest.raises(SupervisorError) if failed and not restarted else nullcontext()
    )
    with expectation:
        async with sup.running() as handle:
            assert log == ["start a", "start b", "start c"]
            if failed:
                b.crash()
            else:
                b.complete("done")
            if restarted:
                await b.wait_run(2)
            await anyio.wait_all_tasks_blocked()
            assert log[3] == f"{ending} b"
            assert log[4:] == (RESTART_LINES[strategy] if restarted else [])
            assert not handle.stopped
    report = handle.report
    assert log[-3:] == ["stop c", "stop b", "stop a"] if restarted else ["stop c", "stop a"]
    assert {n: report[n].restarts for n in "abc"} == {
        n: int(restarted and n in RESTARTED[strategy]) for n in "abc"
    }
    if restarted:
        assert report["b"].status is ProcStatus.STOPPED
        assert len(report["b"].history) == int(failed)
    else:
        assert report["b"].status is (ProcStatus.FAILED if failed else ProcStatus.COMPLETED)
        assert report["b"].result == (None if failed else "done")
    assert max(w.max_active for w in (a, b, c)) == 1
