"""Bad input is always a clear ConfigError (API.md section 8, "Bad input"), at build or load.

A proc that cannot take its token, ``within=0``, a ``ready_timeout`` that cannot apply, a
``.env`` that is not UTF-8, and a per-proc variable with a misspelt field: each is refused
before anything runs, with a message naming the path, the value and the fix.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pytest

from super_visor import (
    CancellationToken,
    ConfigError,
    ManagedProc,
    Settings,
    Supervisor,
    SupervisorBuilder,
)

if TYPE_CHECKING:
    from pathlib import Path


def build_error(builder: SupervisorBuilder) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        builder.build()
    exc = caught.value
    assert str(exc) == f"{exc.path}: {exc.problem}; {exc.fix}"
    return exc


# ------------------------------------------------------------- the token argument


async def no_token() -> None:
    pass  # pragma: no cover (refused at build)


async def token_and_more(token: CancellationToken, extra: int) -> None:
    pass  # pragma: no cover (refused at build)


async def keyword_only_required(token: CancellationToken, *, extra: int) -> None:
    pass  # pragma: no cover (refused at build)


class NoTokenProc(ManagedProc):
    async def run_proc(self) -> None:  # type: ignore[override]
        pass  # pragma: no cover (refused at build)


class TwoArgsProc(ManagedProc):
    async def run_proc(self, token: CancellationToken, extra: int) -> None:  # type: ignore[override]
        pass  # pragma: no cover (refused at build)


@pytest.mark.parametrize(
    ("proc", "shown"),
    [
        (no_token, "no_token()"),
        (token_and_more, "token_and_more(token: 'CancellationToken', extra: 'int')"),
        (keyword_only_required, "keyword_only_required(token: 'CancellationToken', *, "),
        (NoTokenProc(), "NoTokenProc.run_proc()"),
        (TwoArgsProc(), "TwoArgsProc.run_proc(token: "),
    ],
    ids=["no-arg", "two-args", "keyword-only", "method-no-arg", "method-two-args"],
)
def test_a_proc_that_cannot_take_exactly_the_token_is_refused(proc: object, shown: str) -> None:
    exc = build_error(SupervisorBuilder("app").add_proc(proc, name="p"))

    assert exc.path == "app/p"
    assert "must take exactly one positional argument (the token)" in exc.problem
    assert f"got {shown}" in exc.problem
    assert "async def" in exc.fix


async def with_default(token: CancellationToken, extra: int = 1) -> None:
    await token.wait()  # pragma: no cover (never run)


async def star_args(*args: object) -> None:
    pass  # pragma: no cover (never run)


class CallableProc:
    async def __call__(self, token: CancellationToken) -> None:
        await token.wait()  # pragma: no cover (never run)


class Bound:
    async def serve(self, token: CancellationToken) -> None:
        await token.wait()  # pragma: no cover (never run)


async def unreadable(token: CancellationToken) -> None:
    await token.wait()  # pragma: no cover (never run)


unreadable.__signature__ = 42  # type: ignore[attr-defined]  # inspect.signature raises


@pytest.mark.parametrize(
    "proc",
    [
        with_default,
        star_args,
        CallableProc(),
        Bound().serve,
        functools.partial(token_and_more, extra=1),
        unreadable,
    ],
    ids=["default", "star-args", "async-call", "bound-method", "partial", "unreadable"],
)
def test_a_proc_callable_with_just_the_token_is_accepted(proc: object) -> None:
    assert isinstance(SupervisorBuilder("app").add_proc(proc, name="p").build(), Supervisor)


def test_a_factory_product_that_cannot_take_the_token_is_refused_at_start() -> None:
    from super_visor._errors import StartupError
    from super_visor._factory import check_product

    with pytest.raises(StartupError, match="must take exactly one positional argument"):
        check_product("app/p", no_token, "its factory returned")


# ------------------------------------------------------------------------ within


async def idle(token: CancellationToken) -> None:
    await token.wait()  # pragma: no cover (never run)


def test_within_zero_is_refused() -> None:
    exc = build_error(SupervisorBuilder("app", within=0).add_proc(idle))

    assert exc.path == "app"
    assert exc.problem == "within must be a finite number of seconds > 0, got 0"


def test_within_zero_from_the_environment_is_refused() -> None:
    sup = SupervisorBuilder("app").add_proc(idle).build()
    with pytest.raises(ConfigError, match=r"got '0' \(from environment\), expected .* > 0"):
        Settings.load(sup, env_file=None, environ={"SUPER_VISOR_WITHIN": "0"})


# ----------------------------------------------------------------- ready_timeout


class TimedButNotGating(ManagedProc):
    ready_timeout = 3.0

    async def run_proc(self, token: CancellationToken) -> None:
        await token.wait()  # pragma: no cover (never run)


def test_ready_timeout_keyword_on_a_proc_that_does_not_gate_is_refused() -> None:
    exc = build_error(SupervisorBuilder("app").add_proc(idle, ready_timeout=3.0))

    assert exc.path == "app/idle"
    assert "got ready_timeout=3.0 without wait_ready=True" in exc.problem
    assert "wait_ready=True" in exc.fix


def test_ready_timeout_attribute_on_a_proc_that_does_not_gate_is_refused() -> None:
    exc = build_error(SupervisorBuilder("app").add_proc(TimedButNotGating()))

    assert exc.path == "app/timed_but_not_gating"


def test_ready_timeout_with_wait_ready_false_is_refused() -> None:
    proc = TimedButNotGating()
    build_error(SupervisorBuilder("app").add_proc(proc, wait_ready=False, ready_timeout=1))


def test_ready_timeout_where_it_applies_is_accepted() -> None:
    sup = (
        SupervisorBuilder("app", ready_timeout=5.0)  # a default: only gating procs use it
        .add_proc(idle)
        .add_proc(TimedButNotGating(), wait_ready=True)
        .add_factory("made", lambda: idle, ready_timeout=2.0)  # gates if it makes a supervisor
        .build()
    )
    assert [spec.ready_timeout for spec in sup.specs] == [5.0, 3.0, 2.0]


def test_ready_timeout_override_for_a_proc_that_does_not_gate_is_refused() -> None:
    sup = SupervisorBuilder("app").add_proc(idle).build()
    with pytest.raises(ConfigError) as caught:
        Settings.load(sup, env_file=None, environ={"SUPER_VISOR__IDLE__READY_TIMEOUT": "3"})

    assert caught.value.path == "SUPER_VISOR__IDLE__READY_TIMEOUT"
    assert "app/idle does not gate start-up" in caught.value.problem
    assert "got '3' (from environment)" in caught.value.problem


# --------------------------------------------------------------------- .env files


def test_an_env_file_that_is_not_utf8_is_a_config_error_naming_it(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"SUPER_VISOR_GRACE=3\n# caf\xe9\n")
    sup = SupervisorBuilder("app").add_proc(idle).build()

    with pytest.raises(ConfigError) as caught:
        Settings.load(sup, env_file=env_file, environ={})

    assert caught.value.path == str(env_file)
    assert "must be UTF-8 text, got byte b'\\xe9'" in caught.value.problem
    assert "UTF-8" in caught.value.fix


def test_a_misspelt_per_proc_field_names_the_value_and_its_file(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("SUPER_VISOR__IDLE__GRAEC=1\n", "utf-8")
    sup = SupervisorBuilder("app").add_proc(idle).build()

    with pytest.raises(ConfigError) as caught:
        Settings.load(sup, env_file=env_file, environ={})

    message = str(caught.value)
    assert message.startswith("SUPER_VISOR__IDLE__GRAEC: ")
    assert f"(set to '1', from .env file {env_file})" in message
    assert "did you mean SUPER_VISOR__IDLE__GRACE?" in message
