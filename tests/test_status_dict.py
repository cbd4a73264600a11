"""The one serialisation of a `TreeStatus`: which states are live, how uptime counts, and
the JSON shape that ``/status``, the control socket and ``super-visor ctl`` share."""

from __future__ import annotations

import json

import pytest

from super_visor._status import ProcSnapshot, RunState, TreeStatus

LIVE = {RunState.STARTING, RunState.RUNNING, RunState.STOPPING}


@pytest.mark.parametrize("state", list(RunState))
def test_a_state_is_live_while_the_procs_task_runs(state: RunState) -> None:
    assert state.is_live == (state in LIVE)


@pytest.mark.parametrize(
    ("state", "started_at", "uptime"),
    [
        (RunState.RUNNING, 100.0, 42.0),
        (RunState.STOPPING, 100.0, 42.0),  # its clean-up still runs: it counts
        (RunState.STARTING, 150.0, 0.0),  # a clock step back is not a negative uptime
        (RunState.RESTARTING, 100.0, None),
        (RunState.COMPLETED, 100.0, None),
        (RunState.RUNNING, None, None),
    ],
)
def test_uptime_counts_while_live(
    state: RunState, started_at: float | None, uptime: float | None
) -> None:
    proc = ProcSnapshot(name="p", path="app/p", state=state, started_at=started_at)
    assert proc.uptime(142.0) == uptime


def test_as_dict_is_the_status_document_depth_first() -> None:
    leaf = ProcSnapshot(name="c", path="app/b/c", state=RunState.STOPPING, started_at=10.0)
    nested = ProcSnapshot(
        name="b", path="app/b", state=RunState.RUNNING, ready=True, restarts=2, children=(leaf,)
    )
    done = ProcSnapshot(name="d", path="app/d", state=RunState.COMPLETED, started_at=5.0)
    status = TreeStatus(
        name="app",
        state=RunState.STOPPING,
        ready=False,
        restart_limit_reached=False,
        procs=(nested, done),
        taken_at=12.5,
    )
    document = status.as_dict()
    json.dumps(document)
    assert {key: document[key] for key in ("name", "state", "ready")} == {
        "name": "app",
        "state": "stopping",
        "ready": False,
    }
    procs = document["procs"]
    assert isinstance(procs, list)
    assert [(p["path"], p["depth"], p["uptime_s"]) for p in procs] == [
        ("app/b", 0, None),
        ("app/b/c", 1, 2.5),
        ("app/d", 0, None),
    ]
    assert procs[0]["restarts"] == 2
    assert procs[0]["ready"] is True
