"""The exception types: messages with paths, and SupervisorError keeping its report."""

from __future__ import annotations

import pytest

from super_visor import (
    ConfigError,
    ProcOutcome,
    ProcStatus,
    RestartLimitExceeded,
    StartupError,
    SupervisorBuilder,
    SupervisorError,
    SupervisorReport,
)

from .fakes import FailsBeforeReady, Recorder
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes


def _report() -> SupervisorReport:
    outcomes = (
        ProcOutcome(name="a", path="app/a", status=ProcStatus.FAILED, error=ValueError("a")),
        ProcOutcome(name="b", path="app/b", status=ProcStatus.FAILED, error=KeyError("b")),
    )
    return SupervisorReport("app", outcomes, "proc 'app/a' failed")


def _error() -> tuple[SupervisorError, ValueError, KeyError]:
    value_error, key_error = ValueError("a"), KeyError("b")
    error = SupervisorError("app: 2 proc(s) failed", [value_error, key_error], _report())
    return error, value_error, key_error


def test_exception_bases_match_their_meaning() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(StartupError, Exception)
    assert issubclass(RestartLimitExceeded, Exception)
    assert issubclass(SupervisorError, ExceptionGroup)


def test_config_error_keeps_its_parts_and_formats_them() -> None:
    exc = ConfigError("app/web", "grace must be >= 0, got -1", "pass e.g. grace=5.0")

    assert exc.path == "app/web"
    assert exc.problem == "grace must be >= 0, got -1"
    assert exc.fix == "pass e.g. grace=5.0"
    assert str(exc) == "app/web: grace must be >= 0, got -1; pass e.g. grace=5.0"


def test_startup_error_names_the_proc_path() -> None:
    exc = StartupError("app/db", "not ready within 1s (ready_timeout)")

    assert exc.path == "app/db"
    assert exc.problem == "not ready within 1s (ready_timeout)"
    assert str(exc) == "app/db: not ready within 1s (ready_timeout)"


def test_restart_limit_exceeded_names_the_supervisor_and_the_last_proc() -> None:
    exc = RestartLimitExceeded("app/pipeline", "app/pipeline/consumer", 3, 5.0)

    assert exc.path == "app/pipeline"
    assert exc.last_proc == "app/pipeline/consumer"
    assert (exc.restarts, exc.within) == (3, 5.0)
    assert str(exc).startswith("app/pipeline: more than 3 restarts within 5s")
    assert "app/pipeline/consumer" in str(exc)


def test_supervisor_error_keeps_report_and_exceptions() -> None:
    error, value_error, key_error = _error()

    assert error.exceptions == (value_error, key_error)
    assert error.report["a"].status is ProcStatus.FAILED


def test_split_keeps_the_report_on_both_halves() -> None:
    error, value_error, key_error = _error()

    match, rest = error.split(ValueError)

    assert isinstance(match, SupervisorError)
    assert isinstance(rest, SupervisorError)
    assert match.exceptions == (value_error,)
    assert rest.exceptions == (key_error,)
    assert match.report is error.report
    assert rest.report is error.report


def test_subgroup_keeps_the_report() -> None:
    error, _, key_error = _error()

    sub = error.subgroup(lambda exc: isinstance(exc, KeyError))

    assert isinstance(sub, SupervisorError)
    assert sub.exceptions == (key_error,)
    assert sub.report is error.report


def test_except_star_hands_back_supervisor_errors_with_the_report() -> None:
    error, value_error, key_error = _error()
    caught: dict[str, BaseExceptionGroup[Exception]] = {}

    try:
        raise error
    except* ValueError as values:
        caught["value"] = values
    except* KeyError as keys:
        caught["key"] = keys

    for name, leaf in (("value", value_error), ("key", key_error)):
        group = caught[name]
        assert isinstance(group, SupervisorError)
        assert group.report is error.report
        assert group.exceptions == (leaf,)


def test_except_star_re_raises_the_unmatched_rest_as_a_supervisor_error() -> None:
    error, _, key_error = _error()

    def handle_value_errors() -> None:
        try:
            raise error
        except* ValueError:
            pass

    with pytest.raises(SupervisorError) as info:
        handle_value_errors()

    assert info.value.exceptions == (key_error,)
    assert info.value.report is error.report


def test_split_of_nested_supervisor_errors_keeps_every_report() -> None:
    inner_report = SupervisorReport(
        "inner", (ProcOutcome(name="x", path="app/inner/x", status=ProcStatus.FAILED),), "r"
    )
    leaf = ValueError("deep")
    inner = SupervisorError("app/inner: 1 proc(s) failed", [leaf], inner_report)
    outer = SupervisorError("app: 2 proc(s) failed", [inner, KeyError("k")], _report())

    match, _ = outer.split(ValueError)

    assert isinstance(match, SupervisorError)
    assert match.report is outer.report
    nested = match.exceptions[0]
    assert isinstance(nested, SupervisorError)
    assert nested.report is inner_report
    assert nested.exceptions == (leaf,)


async def test_every_failed_proc_is_in_the_error_with_a_note_naming_its_path() -> None:
    log: list[str] = []
    first, second = OSError("a broke"), ValueError("b broke")
    sup = (
        SupervisorBuilder("app")
        .add_proc(FailsBeforeReady("a", log, first), significant=False)
        .add_proc(Recorder("ok", log), significant=False)
        .add_proc(FailsBeforeReady("b", log, second), significant=False)
        .build()
    )

    with pytest.raises(SupervisorError) as info:
        async with sup.running() as handle:
            handle.shutdown("test over")

    error = info.value
    assert set(error.exceptions) == {first, second}
    assert any("app/a" in note for note in getattr(first, "__notes__", []))
    assert any("app/b" in note for note in getattr(second, "__notes__", []))
    assert "app/a" in str(error)
    assert "app/b" in str(error)
    assert "app/ok" not in str(error)
    assert error.report["ok"].status is ProcStatus.STOPPED
