"""The report always renders, names what stopped the tree, and counts ABANDONED as a failure."""

from __future__ import annotations

import signal
import sys

import pytest

from super_visor import CancellationToken, ProcOutcome, ProcStatus, SupervisorBuilder
from super_visor._errors import SupervisorError
from super_visor._outcome import SupervisorReport, describe_error


class Unprintable(Exception):
    """An error whose ``str()`` and ``repr()`` both raise."""

    def __str__(self) -> str:
        msg = "no str for you"
        raise RuntimeError(msg)

    def __repr__(self) -> str:
        msg = "no repr either"
        raise RuntimeError(msg)


def outcome(name: str, status: ProcStatus, error: BaseException | None = None) -> ProcOutcome:
    return ProcOutcome(name=name, path=f"app/{name}", status=status, error=error)


def test_describe_error_falls_back_to_the_type_name() -> None:
    assert describe_error(ValueError("bad port")) == "ValueError: bad port"
    assert describe_error(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert describe_error(Unprintable()) == "Unprintable"


def test_a_report_with_an_unprintable_error_renders() -> None:
    report = SupervisorReport(
        "app", (outcome("web", ProcStatus.FAILED, Unprintable()),), "proc 'app/web' failed"
    )
    assert report.render().splitlines() == [
        "app: stopped (proc 'app/web' failed)",
        "  web: failed - Unprintable",
    ]


async def test_a_proc_raising_an_unprintable_error_still_gets_its_report() -> None:
    async def broken(token: CancellationToken) -> None:
        raise Unprintable

    sup = SupervisorBuilder("app").add_proc(broken).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    assert "  broken: failed - Unprintable" in caught.value.report.render()


@pytest.mark.parametrize(
    ("forced_by", "header"),
    [
        (None, "app: stopped (signal SIGTERM)"),
        (signal.SIGINT, "app: stopped (signal SIGTERM, then SIGINT (forced))"),
        (signal.SIGTERM, "app: stopped (signal SIGTERM, then SIGTERM (forced))"),
    ],
)
def test_the_header_names_every_signal_that_shaped_the_stop(
    forced_by: int | None, header: str
) -> None:
    report = SupervisorReport(
        "app", (outcome("web", ProcStatus.FORCED),), "signal SIGTERM", forced_by
    )
    assert report.render().splitlines()[0] == header
    assert report.reason == "signal SIGTERM"  # the reason itself stays what started the stop


def test_a_forcing_signal_after_another_reason_is_named_too() -> None:
    report = SupervisorReport(
        "app", (outcome("web", ProcStatus.FORCED),), "proc 'app/db' failed", signal.SIGINT
    )
    assert report.render().splitlines()[0] == (
        "app: stopped (proc 'app/db' failed, then SIGINT (forced))"
    )


def test_abandoned_is_a_failure() -> None:
    abandoned = outcome("stuck", ProcStatus.ABANDONED)
    assert abandoned.failed
    assert ProcStatus.ABANDONED.value == "abandoned"
    report = SupervisorReport("app", (outcome("a", ProcStatus.STOPPED), abandoned), "test over")
    assert report.exit_code == 1
    assert report.failures() == [abandoned]
    assert report.render().splitlines()[2] == "  stuck: abandoned"


def test_abandoned_after_a_forcing_signal_exits_128_plus_n() -> None:
    report = SupervisorReport(
        "app", (outcome("stuck", ProcStatus.ABANDONED),), "signal SIGTERM", signal.SIGINT
    )
    assert report.exit_code == 128 + signal.SIGINT


def test_a_deep_report_renders_and_walks_without_recursion() -> None:
    depth = sys.getrecursionlimit() + 100
    leaf = outcome("leaf", ProcStatus.STOPPED)
    for level in range(depth):
        leaf = ProcOutcome(
            name=f"s{level}", path=f"app/s{level}", status=ProcStatus.STOPPED, children=(leaf,)
        )
    report = SupervisorReport("app", (leaf,), "test over")
    assert len(list(report.walk())) == depth + 1
    lines = report.render().splitlines()
    assert len(lines) == depth + 2
    assert lines[-1] == f"{'  ' * (depth + 1)}leaf: stopped"
