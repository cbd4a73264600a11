"""ProcStatus, ProcOutcome and SupervisorReport: lookup by path, exit codes, rendering."""

from __future__ import annotations

import dataclasses
import signal

import pytest

from super_visor import (
    ProcOutcome,
    ProcStatus,
    SupervisorBuilder,
    SupervisorError,
    SupervisorReport,
)

from .fakes import FailsBeforeReady, Recorder
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes


def _tree(*, failed: bool = False, forced_by_signal: int | None = None) -> SupervisorReport:
    error = ConnectionError("lost broker") if failed else None
    consumer = ProcOutcome(
        name="consumer",
        path="app/pipeline/consumer",
        status=ProcStatus.FAILED if failed else ProcStatus.STOPPED,
        error=error,
        restarts=2,
    )
    producer = ProcOutcome(name="producer", path="app/pipeline/producer", status=ProcStatus.FORCED)
    pipeline = ProcOutcome(
        name="pipeline",
        path="app/pipeline",
        status=ProcStatus.FAILED if failed else ProcStatus.STOPPED,
        children=(consumer, producer),
    )
    web = ProcOutcome(name="web", path="app/web", status=ProcStatus.STOPPED, result=8080)
    late = ProcOutcome(name="late", path="app/late", status=ProcStatus.NOT_STARTED)
    return SupervisorReport("app", (web, pipeline, late), "test over", forced_by_signal)


def test_proc_status_has_the_six_documented_members() -> None:
    assert {status.name for status in ProcStatus} == {
        "COMPLETED",
        "STOPPED",
        "FAILED",
        "FORCED",
        "NOT_STARTED",
        "ABANDONED",
    }


def test_proc_outcome_defaults_and_failed_flag() -> None:
    outcome = ProcOutcome(name="web", path="app/web", status=ProcStatus.COMPLETED)

    assert outcome.result is None
    assert outcome.error is None
    assert outcome.restarts == 0
    assert outcome.children == ()
    assert not outcome.failed
    assert ProcOutcome(name="w", path="app/w", status=ProcStatus.FAILED).failed


def test_proc_outcome_is_frozen() -> None:
    outcome = ProcOutcome(name="web", path="app/web", status=ProcStatus.COMPLETED)

    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.status = ProcStatus.FAILED  # type: ignore[misc]


def test_report_lookup_by_path_below_the_root() -> None:
    report = _tree()

    assert report["web"].result == 8080
    assert report["pipeline"].name == "pipeline"
    assert report["pipeline/consumer"].path == "app/pipeline/consumer"


def test_report_lookup_accepts_the_root_prefix() -> None:
    report = _tree()

    assert report["app/web"] is report["web"]
    assert report["app/pipeline/producer"] is report["pipeline/producer"]


@pytest.mark.parametrize("missing", ["nope", "pipeline/nope", "app", "consumer", "web/x"])
def test_report_lookup_of_an_unknown_path_raises_key_error_listing_known_paths(
    missing: str,
) -> None:
    report = _tree()

    with pytest.raises(KeyError) as info:
        report[missing]

    message = str(info.value)
    assert repr(missing) in message
    assert "'app'" in message
    assert "app/pipeline/consumer" in message


def test_report_walk_is_depth_first_in_declared_order() -> None:
    paths = [outcome.path for outcome in _tree().walk()]

    assert paths == [
        "app/web",
        "app/pipeline",
        "app/pipeline/consumer",
        "app/pipeline/producer",
        "app/late",
    ]


def test_failures_lists_failed_leaves_only() -> None:
    assert [o.path for o in _tree(failed=True).failures()] == ["app/pipeline/consumer"]
    assert _tree().failures() == []


def test_exit_code_is_zero_when_nothing_failed_even_with_forced_procs() -> None:
    assert _tree().exit_code == 0


def test_exit_code_is_one_when_a_proc_failed() -> None:
    assert _tree(failed=True).exit_code == 1


def test_exit_code_is_128_plus_the_forcing_signal() -> None:
    assert _tree(forced_by_signal=signal.SIGTERM).exit_code == 128 + 15
    assert _tree(failed=True, forced_by_signal=signal.SIGINT).exit_code == 128 + 2


def test_render_shows_the_reason_and_every_outcome_as_a_tree() -> None:
    lines = _tree(failed=True).render().splitlines()

    assert lines == [
        "app: stopped (test over)",
        "  web: stopped",
        "  pipeline: failed",
        "    consumer: failed after 2 restart(s) - ConnectionError: lost broker",
        "    producer: forced",
        "  late: not_started",
    ]


async def test_report_of_a_real_run_has_exit_code_zero_and_renders() -> None:
    log: list[str] = []
    sup = SupervisorBuilder("app").add_proc(Recorder("web", log)).build()

    async with sup.running() as handle:
        handle.shutdown("test over")

    report = handle.report
    assert report.exit_code == 0
    assert report.reason == "test over"
    assert report.render().splitlines() == ["app: stopped (test over)", "  web: stopped"]


async def test_report_of_a_failed_run_has_exit_code_one() -> None:
    log: list[str] = []
    sup = (
        SupervisorBuilder("app")
        .add_proc(Recorder("web", log))
        .add_proc(FailsBeforeReady("db", log, OSError("refused")))
        .build()
    )

    with pytest.raises(SupervisorError) as info:
        await sup.start(handle_signals=False)

    report = info.value.report
    assert report.exit_code == 1
    assert "db: failed" in report.render()
    assert "OSError: refused" in report.render()
