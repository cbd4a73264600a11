"""Configuration from code, ``.env``, the environment and flags (``super_visor._config``).

Every test passes its own environment mapping (``environ=``) and its own ``.env`` file, so the
real ``os.environ`` is neither read nor changed.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import (
    CancellationToken,
    ConfigError,
    ProcStatus,
    Settings,
    Supervisor,
    SupervisorBuilder,
)
from super_visor._config import proc_variable
from tests.fakes import trio_worker_thread

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("trio_worker_thread",)


async def idle(token: CancellationToken) -> None:
    await token.wait()


async def stubborn(token: CancellationToken) -> None:
    await token.wait()
    await anyio.sleep_forever()  # only force ends it


def tree() -> Supervisor:
    pipeline = SupervisorBuilder("pipeline").add_proc(idle, name="consumer")
    return (
        SupervisorBuilder("app", grace=4.0, max_restarts=3, within=5.0)
        .add_proc(idle, name="db-Primary", grace=7.0)
        .add_proc(pipeline)
        .add_proc(idle, name="web")
        .build()
    )


def load(
    env: dict[str, str] | None = None,
    dotenv: str | None = None,
    tmp_path: Path | None = None,
    flags: dict[str, tuple[str, str]] | None = None,
    sup: Supervisor | None = None,
) -> Settings:
    env_file = None
    if dotenv is not None:
        assert tmp_path is not None
        env_file = tmp_path / ".env"
        env_file.write_text(dotenv, encoding="utf-8")
    return Settings.load(sup or tree(), env_file=env_file, environ=env or {}, flags=flags)


def grace_of(sup: Supervisor, name: str) -> float | None:
    return next(spec.grace for spec in sup.specs if spec.name == name)


# ----------------------------------------------------------------- precedence


def test_code_values_stand_when_nothing_is_set() -> None:
    sup = tree()
    applied = load().apply(sup)
    assert grace_of(applied, "web") == 4.0
    assert grace_of(applied, "db-Primary") == 7.0
    assert applied.max_restarts == 3


@pytest.mark.parametrize(
    ("dotenv", "env", "flag", "expected", "source"),
    [
        ("SUPER_VISOR_GRACE=1\n", None, None, 1.0, ".env file"),
        ("SUPER_VISOR_GRACE=1\n", "2", None, 2.0, "environment"),
        (None, "2", None, 2.0, "environment"),
        ("SUPER_VISOR_GRACE=1\n", "2", "3", 3.0, "command line (--grace)"),
        ("SUPER_VISOR_GRACE=1\n", None, "3", 3.0, "command line (--grace)"),
    ],
)
def test_precedence_code_dotenv_environment_flags(
    tmp_path: Path,
    dotenv: str | None,
    env: str | None,
    flag: str | None,
    expected: float,
    source: str,
) -> None:
    settings = load(
        env={"SUPER_VISOR_GRACE": env} if env is not None else None,
        dotenv=dotenv,
        tmp_path=tmp_path,
        flags={"SUPER_VISOR_GRACE": (flag, "--grace")} if flag is not None else None,
    )
    setting = settings.get("grace")
    assert setting is not None
    assert setting.value == expected
    assert setting.source.startswith(source)
    applied = settings.apply(tree())
    assert grace_of(applied, "web") == expected
    assert grace_of(applied, "db-Primary") == expected  # tree-wide beats the code's keyword


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("READY_TIMEOUT", "2.5", 2.5),
        ("READY_TIMEOUT", "none", None),
        ("MAX_RESTARTS", "10", 10),
        ("WITHIN", "60", 60.0),
        ("CONSOLE", "off", False),
        ("CONSOLE", "YES", True),
        ("CONSOLE", "auto", "auto"),
        ("LOG_LEVEL", "debug", "DEBUG"),
    ],
)
def test_every_tree_wide_variable_parses(field: str, raw: str, expected: object) -> None:
    setting = load(env={f"SUPER_VISOR_{field}": raw}).get(field.lower())
    assert setting is not None
    assert setting.value == expected
    assert setting.source == "environment"


def test_console_and_log_level_default_to_the_code_values() -> None:
    sup = tree()
    assert Settings.load(sup, env_file=None, environ={}, console=False).console is False
    settings = Settings.load(sup, env_file=None, environ={"SUPER_VISOR_CONSOLE": "on"})
    assert settings.console is True  # the environment beats run(console=...)
    assert settings.log_level is None
    assert load(env={"SUPER_VISOR_LOG_LEVEL": "error"}).log_level == "ERROR"


def test_applied_intensity_reaches_every_supervisor() -> None:
    applied = load(env={"SUPER_VISOR_MAX_RESTARTS": "9", "SUPER_VISOR_WITHIN": "30"}).apply(tree())
    nested = applied.specs[1].proc
    assert isinstance(nested, Supervisor)
    assert (applied.max_restarts, applied.within) == (9, 30.0)
    assert (nested.max_restarts, nested.within) == (9, 30.0)


# ----------------------------------------------------------------- per-proc overrides


def test_variable_names_follow_the_path() -> None:
    assert proc_variable("web", "grace") == "SUPER_VISOR__WEB__GRACE"
    assert proc_variable("pipeline/consumer", "grace") == "SUPER_VISOR__PIPELINE__CONSUMER__GRACE"
    assert proc_variable("db-Primary", "ready_timeout") == "SUPER_VISOR__DB_PRIMARY__READY_TIMEOUT"


def test_per_proc_override_beats_tree_wide_whatever_the_source(tmp_path: Path) -> None:
    settings = load(
        env={"SUPER_VISOR_GRACE": "2"},
        dotenv="SUPER_VISOR__PIPELINE__CONSUMER__GRACE=9\nsuper_visor__db_primary__grace=0.5\n",
        tmp_path=tmp_path,
    )
    applied = settings.apply(tree())
    nested = applied.specs[1].proc
    assert isinstance(nested, Supervisor)
    assert grace_of(nested, "consumer") == 9.0
    assert grace_of(applied, "db-Primary") == 0.5  # lower-case variable, '-' -> '_'
    assert grace_of(applied, "web") == 2.0
    assert applied.specs[1].grace is None  # a nested supervisor keeps "as its children need"


def test_per_proc_intensity_on_a_nested_supervisor() -> None:
    applied = load(env={"SUPER_VISOR__PIPELINE__MAX_RESTARTS": "0"}).apply(tree())
    nested = applied.specs[1].proc
    assert isinstance(nested, Supervisor)
    assert nested.max_restarts == 0
    assert applied.max_restarts == 3


def test_apply_returns_a_new_supervisor_and_leaves_the_original_alone() -> None:
    sup = tree()
    specs = sup.specs
    nested = specs[1].proc
    applied = load(env={"SUPER_VISOR_GRACE": "1", "SUPER_VISOR_MAX_RESTARTS": "8"}).apply(sup)
    assert applied is not sup
    assert sup.specs is specs
    assert grace_of(sup, "web") == 4.0
    assert sup.max_restarts == 3
    assert sup.specs[1].proc is nested
    assert isinstance(nested, Supervisor)
    assert nested.max_restarts == 3


def test_settings_are_frozen() -> None:
    settings = load(env={"SUPER_VISOR_GRACE": "1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.values = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.values[0].value = 3  # type: ignore[misc]


def test_render_names_each_value_and_its_source(tmp_path: Path) -> None:
    settings = load(
        env={"SUPER_VISOR__WEB__GRACE": "2"},
        dotenv="SUPER_VISOR_MAX_RESTARTS=5\n",
        tmp_path=tmp_path,
    )
    text = settings.render(tree())
    assert "web: grace = 2  [environment]" in text
    assert "db-Primary: grace = 7  [code]" in text
    assert f"app: max_restarts = 5  [.env file {tmp_path / '.env'}]" in text
    assert "console = auto  [code]" in text


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        ("SUPER_VISOR_GRACE", "abc", "a finite number of seconds >= 0"),
        ("SUPER_VISOR_GRACE", "-1", "a finite number of seconds >= 0"),
        ("SUPER_VISOR_GRACE", "nan", "a finite number of seconds >= 0"),
        ("SUPER_VISOR_GRACE", "inf", "a finite number of seconds >= 0"),
        ("SUPER_VISOR_GRACE", "", "a finite number of seconds >= 0"),
        ("SUPER_VISOR_READY_TIMEOUT", "soon", "or 'none'"),
        ("SUPER_VISOR_MAX_RESTARTS", "2.5", "a whole number >= 0"),
        ("SUPER_VISOR_MAX_RESTARTS", "-1", "a whole number >= 0"),
        ("SUPER_VISOR_WITHIN", "1e999", "a finite number of seconds > 0"),
        ("SUPER_VISOR_CONSOLE", "maybe", "one of auto, on, off"),
        ("SUPER_VISOR_LOG_LEVEL", "LOUD", "one of DEBUG, INFO"),
        ("SUPER_VISOR__WEB__GRACE", "x", "a finite number of seconds >= 0"),
        ("SUPER_VISOR__PIPELINE__MAX_RESTARTS", "many", "a whole number >= 0"),
    ],
)
def test_a_malformed_value_names_variable_value_and_expectation(
    variable: str, raw: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(env={variable: raw})
    message = str(caught.value)
    assert message.startswith(f"{variable}: got {raw!r} (from environment), expected ")
    assert expected in message
    assert f"set e.g. {variable}=" in message
    assert caught.value.path == variable


def test_a_malformed_flag_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"from command line \(--grace\)"):
        load(flags={"SUPER_VISOR_GRACE": ("soon", "--grace")})


def test_a_dotenv_line_without_a_value_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"a line without '=' in \.env has no value"):
        load(dotenv="SUPER_VISOR_GRACE\n", tmp_path=tmp_path)


def test_an_unknown_proc_path_is_an_error_not_ignored() -> None:
    with pytest.raises(ConfigError) as caught:
        load(env={"SUPER_VISOR__WEBB__GRACE": "1"})
    assert str(caught.value) == (
        "SUPER_VISOR__WEBB__GRACE: names a proc that app does not have (set to '1', from "
        "environment); did you mean SUPER_VISOR__WEB__GRACE?"
    )


def test_a_path_below_a_leaf_is_unknown() -> None:
    with pytest.raises(ConfigError, match="names a proc that app does not have"):
        load(env={"SUPER_VISOR__WEB__INNER__GRACE": "1"})


def test_a_misspelt_tree_wide_variable_is_an_error() -> None:
    with pytest.raises(ConfigError, match="did you mean SUPER_VISOR_GRACE"):
        load(env={"SUPER_VISOR_GRAEC": "1"})


def test_an_unknown_field_is_an_error() -> None:
    with pytest.raises(ConfigError, match="not 'colour'"):
        load(env={"SUPER_VISOR__WEB__COLOUR": "red"})


def test_intensity_on_a_leaf_proc_is_an_error() -> None:
    with pytest.raises(ConfigError, match="app/web is not a supervisor"):
        load(env={"SUPER_VISOR__WEB__MAX_RESTARTS": "1"})


def test_two_procs_with_the_same_variable_are_an_error() -> None:
    sup = SupervisorBuilder("app").add_proc(idle, name="db-x").add_proc(idle, name="db_x").build()
    with pytest.raises(ConfigError, match="matches two procs, app/db-x and app/db_x"):
        load(env={"SUPER_VISOR__DB_X__GRACE": "1"}, sup=sup)


def test_other_variables_are_not_ours() -> None:
    settings = load(env={"DATABASE_URL": "x", "SUPER_VISORY": "y", "PATH": "/bin"})
    assert {s.field for s in settings.values} == {"console", "log_level", "log_format"}


def test_dotenv_is_read_without_touching_os_environ(tmp_path: Path) -> None:
    assert "SUPER_VISOR_WITHIN" not in os.environ
    settings = load(dotenv="SUPER_VISOR_WITHIN=11\n", tmp_path=tmp_path)
    assert settings.get("within") is not None
    assert "SUPER_VISOR_WITHIN" not in os.environ


def test_a_missing_dotenv_file_is_skipped(tmp_path: Path) -> None:
    settings = Settings.load(tree(), env_file=tmp_path / "absent.env", environ={})
    assert settings.get("grace") is None


def test_nothing_is_read_at_import() -> None:
    """A bad value breaks run()/the CLI with exit 2, never ``import super_visor``."""
    done = subprocess.run(
        [sys.executable, "-c", "import super_visor"],
        env={**os.environ, "SUPER_VISOR_GRACE": "not a number"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_run_exits_2_on_a_malformed_value() -> None:
    code = (
        "import super_visor, tests.cli_apps as a\n"
        "super_visor.run(a.finite, console=False, env_file=None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "SUPER_VISOR__DB__GRACE": "-3"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "super_visor: configuration error: SUPER_VISOR__DB__GRACE: got '-3'" in done.stderr
    assert done.stdout == ""  # nothing ran


# ----------------------------------------------------------------- the applied tree runs


async def test_an_override_takes_effect_in_a_run() -> None:
    sup = (
        SupervisorBuilder("app", grace=60.0)
        .add_proc(idle, name="first")
        .add_proc(stubborn, name="slow")
        .build()
    )
    applied = Settings.load(sup, env_file=None, environ={"SUPER_VISOR__SLOW__GRACE": "0.05"}).apply(
        sup
    )
    with anyio.fail_after(10):  # with the code's grace of 60 s this would time out
        async with applied.running() as handle:
            handle.shutdown("test over")
    assert handle.report["slow"].status is ProcStatus.FORCED
    assert handle.report["first"].status is ProcStatus.STOPPED


# ----------------------------------------------------------------- the log formats


def test_the_log_formats_are_one_list_for_run_the_environment_and_the_cli() -> None:
    """``run(log_format=)``, ``SUPER_VISOR_LOG_FORMAT`` and ``--log-format`` accept exactly
    `LOG_FORMATS`: adding a format there is enough for all three."""
    from super_visor._cli import _parser
    from super_visor._logformat import LOG_FORMATS, check_log_format

    assert set(LOG_FORMATS) == {"plain", "json"}
    for name in LOG_FORMATS:
        assert check_log_format(name, "run(log_format=...)") == name
        assert load(env={"SUPER_VISOR_LOG_FORMAT": f" {name.upper()} "}).log_format == name
        args = _parser().parse_args(["run", "tests.cli_apps:app", "--log-format", name])
        assert args.log_format == name
    with pytest.raises(ConfigError, match="expected one of plain, json"):
        load(env={"SUPER_VISOR_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="unknown log format 'xml'"):
        check_log_format("xml", "run(log_format=...)")


def test_import_super_visor_imports_neither_logging_nor_json() -> None:
    """The log formats are checked by `run()`, not at import: ``import super_visor`` must
    stay cheap (logging with its dependencies is a third of it)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, super_visor\n"
            "assert 'logging' not in sys.modules and 'json' not in sys.modules, "
            "sorted(m for m in ('logging', 'json') if m in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
