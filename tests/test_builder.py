"""SupervisorBuilder: every ConfigError of API.md section 3, setting precedence, default names."""

from __future__ import annotations

import functools
import gc
import inspect
import logging
import math
import warnings

import anyio
import pytest

from super_visor import (
    CancellationToken,
    ConfigError,
    ManagedProc,
    ProcStatus,
    StartupError,
    Supervisor,
    SupervisorBuilder,
    SupervisorError,
)

from .fakes import Completes, NeverReady, Recorder, Stubborn
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes


class Idle(ManagedProc):
    """A proc for build-time tests; never run."""

    async def run_proc(self, token: CancellationToken) -> None:
        await token.wait()


class HTTPServer(ManagedProc):
    async def run_proc(self, token: CancellationToken) -> None:
        await token.wait()


class WebServer(ManagedProc):
    async def run_proc(self, token: CancellationToken) -> None:
        await token.wait()


class Database(ManagedProc):
    name = "db"

    async def run_proc(self, token: CancellationToken) -> None:
        await token.wait()


class SyncRunProc:
    name = "sync_run_proc"

    def run_proc(self, token: CancellationToken) -> None:
        """Wrongly synchronous."""


async def worker(token: CancellationToken) -> None:
    await token.wait()


def sync_worker(token: CancellationToken) -> None:
    """Wrongly synchronous."""


def _build_error(builder: SupervisorBuilder) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        builder.build()
    return info.value


def _check_message(exc: ConfigError) -> None:
    """The message is '<path>: <problem>; <fix>', all three non-empty."""
    assert exc.path
    assert exc.problem
    assert exc.fix
    assert str(exc) == f"{exc.path}: {exc.problem}; {exc.fix}"


# ------------------------------------------------------------------- ConfigError cases


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_non_proc_object_is_rejected_naming_it() -> None:
    exc = _build_error(SupervisorBuilder("app").add_proc(42))

    _check_message(exc)
    assert exc.path == "app/int"
    assert "42" in exc.problem
    assert "neither a proc nor an async function" in exc.problem
    assert "ManagedProc" in exc.fix


def test_non_proc_object_with_a_name_is_reported_under_that_name() -> None:
    exc = _build_error(SupervisorBuilder("app").add_proc("oops", name="web"))

    _check_message(exc)
    assert exc.path == "app/web"
    assert "'oops'" in exc.problem


def test_sync_function_is_rejected_with_an_async_fix() -> None:
    exc = _build_error(SupervisorBuilder("app").add_proc(sync_worker))

    _check_message(exc)
    assert exc.path == "app/sync_worker"
    assert "sync function" in exc.problem
    assert "async def" in exc.fix


def test_sync_run_proc_method_is_rejected() -> None:
    exc = _build_error(SupervisorBuilder("app").add_proc(SyncRunProc()))

    _check_message(exc)
    assert exc.path.startswith("app/")
    assert "SyncRunProc.run_proc is not an async function" in exc.problem
    assert "async def run_proc" in exc.fix


def test_coroutine_object_is_rejected_and_closed_without_a_warning() -> None:
    coro = worker(CancellationToken())

    exc = _build_error(SupervisorBuilder("app").add_proc(coro))

    _check_message(exc)
    assert exc.path == "app/worker"
    assert "coroutine object" in exc.problem
    assert "add_proc(worker)" in exc.fix
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del coro
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_class_instead_of_instance_is_rejected() -> None:
    exc = _build_error(SupervisorBuilder("app").add_proc(Idle))

    _check_message(exc)
    assert exc.path == "app/Idle"
    assert "got the class Idle, not an instance" in exc.problem
    assert "Idle(...)" in exc.fix


def test_duplicate_name_is_rejected() -> None:
    builder = SupervisorBuilder("app").add_proc(Idle()).add_proc(worker, name="idle")

    exc = _build_error(builder)

    _check_message(exc)
    assert exc.path == "app/idle"
    assert "two procs have this name" in exc.problem
    assert "name=" in exc.fix


def test_same_name_in_different_supervisors_is_allowed() -> None:
    inner = SupervisorBuilder("inner").add_proc(Idle()).build()

    sup = SupervisorBuilder("app").add_proc(Idle()).add_proc(inner).build()

    assert isinstance(sup, Supervisor)


@pytest.mark.parametrize("bad", ["a/b", "/", "web/"])
def test_proc_name_with_slash_is_rejected(bad: str) -> None:
    exc = _build_error(SupervisorBuilder("app").add_proc(Idle(), name=bad))

    _check_message(exc)
    assert exc.path.startswith("app")
    assert repr(bad) in exc.problem
    assert "'/' separates path segments" in exc.fix


def test_empty_proc_name_is_rejected() -> None:
    exc = _build_error(SupervisorBuilder("app").add_proc(Idle(), name=""))

    _check_message(exc)
    assert exc.path.startswith("app")
    assert "non-empty" in exc.problem


def test_empty_proc_name_message_names_the_proc() -> None:
    exc = _build_error(SupervisorBuilder("app").add_proc(worker).add_proc(Idle(), name=""))

    assert "Idle" in str(exc) or "idle" in str(exc)


@pytest.mark.parametrize("bad", ["", "a/b"])
def test_bad_supervisor_name_is_rejected(bad: str) -> None:
    exc = _build_error(SupervisorBuilder(bad).add_proc(Idle()))

    _check_message(exc)
    assert repr(bad) in exc.problem


def test_bad_nested_supervisor_name_is_reported_under_the_parent() -> None:
    inner = SupervisorBuilder("x/y").add_proc(Idle())

    exc = _build_error(SupervisorBuilder("app").add_proc(worker).add_proc(inner, name="inner"))

    _check_message(exc)
    assert exc.path == "app/inner"
    assert "'x/y'" in exc.problem


def _with_proc_setting(field: str, seconds: float) -> SupervisorBuilder:
    if field == "grace":
        return SupervisorBuilder("app").add_proc(Idle(), wait_ready=True, grace=seconds)
    return SupervisorBuilder("app").add_proc(Idle(), wait_ready=True, ready_timeout=seconds)


def _with_default_setting(field: str, seconds: float) -> SupervisorBuilder:
    if field == "grace":
        return SupervisorBuilder("app", grace=seconds).add_proc(Idle())
    return SupervisorBuilder("app", ready_timeout=seconds).add_proc(Idle())


BAD_SECONDS = [-1.0, -0.001, math.nan, math.inf, -math.inf, True, False]


@pytest.mark.parametrize("field", ["grace", "ready_timeout"])
@pytest.mark.parametrize("bad", BAD_SECONDS, ids=repr)
def test_bad_seconds_given_to_add_proc_are_rejected(field: str, bad: float) -> None:
    exc = _build_error(_with_proc_setting(field, bad))

    _check_message(exc)
    assert exc.path == "app/idle"
    assert f"{field} must be a finite number of seconds >= 0, got {bad!r}" == exc.problem
    assert f"{field}=" in exc.fix


@pytest.mark.parametrize("field", ["grace", "ready_timeout"])
@pytest.mark.parametrize("bad", BAD_SECONDS, ids=repr)
def test_bad_seconds_as_builder_default_are_rejected(field: str, bad: float) -> None:
    exc = _build_error(_with_default_setting(field, bad))

    _check_message(exc)
    assert exc.path == "app"
    assert f"{field} must be a finite number of seconds >= 0, got {bad!r}" == exc.problem


@pytest.mark.parametrize("field", ["grace", "ready_timeout"])
@pytest.mark.parametrize("bad", BAD_SECONDS, ids=repr)
def test_bad_seconds_as_proc_attribute_are_rejected(field: str, bad: float) -> None:
    proc = Idle()
    setattr(proc, field, bad)

    exc = _build_error(SupervisorBuilder("app").add_proc(proc))

    _check_message(exc)
    assert exc.path == "app/idle"
    assert repr(bad) in exc.problem


@pytest.mark.parametrize("good", [0, 0.0, 1, 2.5])
def test_zero_and_positive_seconds_are_accepted(good: float) -> None:
    sup = (
        SupervisorBuilder("app", grace=good, ready_timeout=good)
        .add_proc(Idle(), grace=good, ready_timeout=good, wait_ready=True)
        .build()
    )

    assert isinstance(sup, Supervisor)


def test_same_proc_object_twice_is_rejected() -> None:
    proc = Idle()
    builder = SupervisorBuilder("app").add_proc(proc, name="a").add_proc(proc, name="b")

    exc = _build_error(builder)

    _check_message(exc)
    assert exc.path == "app/b"
    assert "already added as app/a" in exc.problem
    assert "add_factory" in exc.fix


def test_same_proc_object_in_parent_and_nested_supervisor_is_rejected() -> None:
    proc = Idle()
    inner = SupervisorBuilder("inner").add_proc(proc).build()

    exc = _build_error(SupervisorBuilder("app").add_proc(proc).add_proc(inner))

    _check_message(exc)
    assert exc.path == "app/inner"
    assert "app/idle" in exc.problem


def test_same_proc_object_in_nested_supervisor_then_parent_is_rejected() -> None:
    proc = Idle()
    inner = SupervisorBuilder("inner").add_proc(proc).build()

    exc = _build_error(SupervisorBuilder("app").add_proc(inner).add_proc(proc, name="again"))

    _check_message(exc)
    assert exc.path == "app/again"
    assert "app/inner" in exc.problem


def test_same_proc_object_in_parent_and_nested_builder_is_rejected() -> None:
    proc = Idle()
    inner = SupervisorBuilder("inner").add_proc(proc)

    exc = _build_error(SupervisorBuilder("app").add_proc(proc).add_proc(inner))

    _check_message(exc)
    assert exc.path == "app/inner/idle"
    assert "already added as app/idle" in exc.problem


def test_same_nested_supervisor_twice_is_rejected() -> None:
    inner = SupervisorBuilder("inner").add_proc(Idle()).build()
    builder = SupervisorBuilder("app").add_proc(inner, name="one").add_proc(inner, name="two")

    exc = _build_error(builder)

    _check_message(exc)
    assert exc.path == "app/two"
    assert "app/one" in exc.problem


def test_same_nested_builder_twice_is_rejected() -> None:
    inner = SupervisorBuilder("inner").add_proc(Idle())
    builder = SupervisorBuilder("app").add_proc(inner, name="one").add_proc(inner, name="two")

    exc = _build_error(builder)

    _check_message(exc)
    assert exc.path.startswith("app/two")
    assert "app/one" in exc.problem


def test_same_async_function_under_two_names_is_allowed() -> None:
    sup = SupervisorBuilder("app").add_proc(worker, name="a").add_proc(worker, name="b").build()

    assert isinstance(sup, Supervisor)


def test_nested_builder_with_proc_objects_builds() -> None:
    inner = SupervisorBuilder("inner").add_proc(Idle())

    sup = SupervisorBuilder("app").add_proc(Idle()).add_proc(inner).build()

    assert isinstance(sup, Supervisor)


def test_nested_builder_with_function_procs_builds() -> None:
    inner = SupervisorBuilder("inner").add_proc(worker)

    sup = SupervisorBuilder("app").add_proc(Idle()).add_proc(inner).build()

    assert isinstance(sup, Supervisor)


def test_builder_nested_directly_inside_itself_is_rejected() -> None:
    builder = SupervisorBuilder("app").add_proc(Idle())
    builder.add_proc(builder)

    exc = _build_error(builder)

    _check_message(exc)
    assert exc.path == "app/app"
    assert "nested inside itself" in exc.problem


def test_builder_nested_inside_itself_deeper_is_rejected() -> None:
    outer = SupervisorBuilder("outer").add_proc(Idle())
    middle = SupervisorBuilder("middle").add_proc(Idle())
    inner = SupervisorBuilder("inner").add_proc(Idle())
    outer.add_proc(middle)
    middle.add_proc(inner)
    inner.add_proc(outer)

    exc = _build_error(outer)

    _check_message(exc)
    assert exc.path == "outer/middle/inner/outer"
    assert "nested inside itself" in exc.problem


def test_empty_supervisor_is_rejected() -> None:
    exc = _build_error(SupervisorBuilder("app"))

    _check_message(exc)
    assert exc.path == "app"
    assert "no procs" in exc.problem
    assert "add at least one proc" in exc.fix


def test_empty_nested_supervisor_is_rejected_with_its_path() -> None:
    exc = _build_error(SupervisorBuilder("app").add_proc(Idle()).add_proc(SupervisorBuilder("in")))

    _check_message(exc)
    assert exc.path == "app/in"
    assert "no procs" in exc.problem


def test_async_factory_is_rejected() -> None:
    async def make() -> Idle:
        return Idle()

    exc = _build_error(SupervisorBuilder("app").add_factory("w", make))

    _check_message(exc)
    assert exc.path == "app/w"


def test_builder_methods_chain_and_build_makes_a_supervisor() -> None:
    builder = SupervisorBuilder("app")

    assert builder.add_proc(Idle()) is builder
    assert builder.add_factory("w", Idle) is builder
    assert isinstance(builder.build(), Supervisor)


def test_supervisor_cannot_be_made_directly() -> None:
    with pytest.raises(TypeError, match=r"SupervisorBuilder"):
        Supervisor()


def test_async_callable_object_and_partial_are_procs() -> None:
    class Callable_:
        async def __call__(self, token: CancellationToken) -> None:
            await token.wait()

    async def takes_extra(token: CancellationToken, extra: int) -> None:
        await token.wait()

    partial = functools.partial(takes_extra, extra=1)

    sup = SupervisorBuilder("app").add_proc(Callable_()).add_proc(partial).build()

    assert isinstance(sup, Supervisor)


# ------------------------------------------------------------------- precedence


class AttrReadyTimeout(NeverReady):
    ready_timeout = 0.02


class AttrGrace(Stubborn):
    grace = 0.02


class AttrGates(NeverReady):
    wait_ready = True


class AttrInsignificant(Completes):
    significant = False


PRECEDENCE = [
    pytest.param(False, None, "0.01s", id="builder-default"),
    pytest.param(True, None, "0.02s", id="attribute-beats-default"),
    pytest.param(True, 0.03, "0.03s", id="keyword-beats-attribute"),
]


@pytest.mark.parametrize(("with_attribute", "keyword", "expected"), PRECEDENCE)
async def test_ready_timeout_precedence(
    with_attribute: bool, keyword: float | None, expected: str
) -> None:
    log: list[str] = []
    proc = AttrReadyTimeout("gate", log) if with_attribute else NeverReady("gate", log)
    sup = (
        SupervisorBuilder("app", ready_timeout=0.01)
        .add_proc(proc, wait_ready=True, ready_timeout=keyword)
        .build()
    )

    with pytest.raises(SupervisorError) as info:
        await sup.start(handle_signals=False)

    error = info.value.report["gate"].error
    assert isinstance(error, StartupError)
    assert f"not ready within {expected}" in str(error)


@pytest.mark.parametrize(("with_attribute", "keyword", "expected"), PRECEDENCE)
async def test_grace_precedence(
    with_attribute: bool,
    keyword: float | None,
    expected: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    proc = AttrGrace("stubborn", log) if with_attribute else Stubborn("stubborn", log)
    sup = SupervisorBuilder("app", grace=0.01).add_proc(proc, grace=keyword).build()
    caplog.set_level(logging.WARNING, logger="super_visor")

    async with sup.running() as handle:
        handle.shutdown("test over")

    assert handle.report["stubborn"].status is ProcStatus.FORCED
    assert f"app/stubborn: still running after its grace of {expected}" in caplog.text


async def test_wait_ready_attribute_gates_and_keyword_overrides_it() -> None:
    log: list[str] = []
    gated = SupervisorBuilder("app", ready_timeout=0.01).add_proc(AttrGates("g", log)).build()
    not_gated = (
        SupervisorBuilder("app", ready_timeout=0.01)
        .add_proc(AttrGates("g", log), wait_ready=False)
        .build()
    )

    with pytest.raises(SupervisorError) as info:
        await gated.start(handle_signals=False)
    async with not_gated.running() as handle:
        handle.shutdown("test over")

    assert isinstance(info.value.report["g"].error, StartupError)
    assert handle.report["g"].status is ProcStatus.STOPPED


async def test_significant_attribute_is_used_and_keyword_overrides_it() -> None:
    log: list[str] = []
    by_attribute = (
        SupervisorBuilder("app")
        .add_proc(Recorder("keeper", log))
        .add_proc(AttrInsignificant("one_shot", log))
        .build()
    )
    by_keyword = (
        SupervisorBuilder("app")
        .add_proc(Recorder("keeper", log))
        .add_proc(AttrInsignificant("one_shot", log), significant=True)
        .build()
    )

    async with by_attribute.running() as handle:
        await anyio.wait_all_tasks_blocked()
        assert not handle.stopped
        handle.shutdown("test over")
    report = await by_keyword.start(handle_signals=False)

    assert handle.report.reason == "test over"
    assert handle.report["one_shot"].status is ProcStatus.COMPLETED
    assert report.reason == "proc 'app/one_shot' completed"


# ------------------------------------------------------------------- default names


async def test_default_names_come_from_class_and_function_names() -> None:
    async def metrics_exporter(token: CancellationToken) -> None:
        await token.wait()

    sup = (
        SupervisorBuilder("app")
        .add_proc(HTTPServer())
        .add_proc(WebServer())
        .add_proc(Database())
        .add_proc(metrics_exporter)
        .add_proc(Idle(), name="chosen")
        .build()
    )

    async with sup.running() as handle:
        pass

    names = [outcome.name for outcome in handle.report.outcomes]
    assert names == ["http_server", "web_server", "db", "metrics_exporter", "chosen"]
    assert handle.report.outcomes[0].path == "app/http_server"


class NamedByAttribute:
    name = "named_by_attribute"

    async def run_proc(self, token: CancellationToken) -> None:
        await token.wait()


def test_plain_object_name_attribute_is_used() -> None:
    builder = SupervisorBuilder("app").add_proc(NamedByAttribute()).add_proc(NamedByAttribute())

    exc = _build_error(builder)

    assert exc.path == "app/named_by_attribute"
