"""Escalation: a nested supervisor whose restart intensity trips fails, and its parent restarts
it, or fails too once its own limit trips (limits multiply across levels).
"""

from __future__ import annotations

import anyio
import pytest

from super_visor import (
    ProcStatus,
    Restart,
    RestartLimitExceeded,
    Supervisor,
    SupervisorBuilder,
    SupervisorError,
)

from .fakes import Worker
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes


def nested(crasher: Worker, *, max_restarts: int = 1) -> Supervisor:
    return (
        SupervisorBuilder("inner", max_restarts=max_restarts, within=60.0)
        .add_proc(crasher, restart=Restart.PERMANENT)
        .build()
    )


async def test_escalation_parent_restarts_the_nested_supervisor() -> None:
    """The inner limit trips (2 crashes, 1 allowed); the root restarts the whole subtree."""
    log: list[str] = []
    crasher = Worker("crasher", log, fail_runs={1, 2})
    keeper = Worker("keeper", log)
    sup = (
        SupervisorBuilder("app", max_restarts=1, within=60.0)
        .add_proc(keeper)
        .add_proc(nested(crasher), restart=Restart.PERMANENT)
        .build()
    )
    async with sup.running() as handle:
        await crasher.wait_run(3)
        await anyio.wait_all_tasks_blocked()
        assert not handle.stopped
        assert keeper.runs == 1  # ONE_FOR_ONE at the root: the keeper was left alone
    report = handle.report
    inner = report["inner"]
    assert inner.restarts == 1
    assert inner.status is ProcStatus.STOPPED
    assert len(inner.history) == 1
    assert isinstance(inner.history[0], SupervisorError)
    assert inner.history[0].subgroup(RestartLimitExceeded) is not None
    # The fresh inner run reports its own children: the crasher has not crashed in it.
    assert report["inner/crasher"].restarts == 0
    assert crasher.max_active == 1


async def test_escalation_root_fails_when_its_own_limit_trips() -> None:
    log: list[str] = []
    crasher = Worker("crasher", log, fail_runs=range(1, 100))
    keeper = Worker("keeper", log)
    sup = (
        SupervisorBuilder("app", max_restarts=1, within=60.0)
        .add_proc(keeper)
        .add_proc(nested(crasher), restart=Restart.PERMANENT)
        .build()
    )
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    # Limits multiply: 2 inner runs x 2 crasher runs each before the root gives up.
    assert crasher.runs == 4
    root_limit = [e for e in caught.value.exceptions if isinstance(e, RestartLimitExceeded)]
    assert len(root_limit) == 1
    assert root_limit[0].path == "app"
    assert root_limit[0].last_proc == "app/inner"
    inner_error = caught.value.report["inner"].error
    assert isinstance(inner_error, SupervisorError)
    inner_limits = inner_error.subgroup(RestartLimitExceeded)
    assert inner_limits is not None
    assert "app/inner" in str(inner_limits.exceptions[0])
    assert "app/inner/crasher" in str(inner_limits.exceptions[0])
    assert caught.value.report["inner"].restarts == 1
    assert log[-1] == "stop keeper"
