"""The public surface: __all__, the names API.md promises, __module__ and py.typed."""

from __future__ import annotations
import __future__

import enum
import importlib.resources
import inspect
import subprocess
import sys

import pytest

import super_visor

#: Every name API.md sections 1-7 says is importable from the top-level package.
API_MD_NAMES = (
    "Backoff",
    "CancellationToken",
    "ConfigError",
    "ManagedProc",
    "ProcOutcome",
    "ProcStatus",
    "Restart",
    "RestartLimitExceeded",
    "StartupError",
    "Strategy",
    "Supervisor",
    "SupervisorBuilder",
    "SupervisorError",
    "SupervisorReport",
    "run",
)


def _public_names() -> set[str]:
    for name in dir(super_visor):  # resolve the names exported lazily (on first use)
        getattr(super_visor, name)
    return {
        name
        for name, value in vars(super_visor).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and value is not __future__.annotations  # left behind by the __future__ import
    }


def test_all_is_a_sorted_tuple() -> None:
    assert isinstance(super_visor.__all__, tuple)
    assert list(super_visor.__all__) == sorted(super_visor.__all__)
    assert len(set(super_visor.__all__)) == len(super_visor.__all__)


def test_all_equals_the_public_names() -> None:
    assert set(super_visor.__all__) == _public_names()


@pytest.mark.parametrize("name", API_MD_NAMES)
def test_api_md_name_is_importable_and_exported(name: str) -> None:
    assert name in super_visor.__all__
    namespace: dict[str, object] = {}
    exec(f"from super_visor import {name}", namespace)
    assert namespace[name] is getattr(super_visor, name)


@pytest.mark.parametrize("name", sorted(super_visor.__all__))
def test_exported_classes_and_functions_claim_the_top_level_module(name: str) -> None:
    obj = getattr(super_visor, name)

    assert getattr(obj, "__module__", None) == "super_visor"


def test_py_typed_marker_is_shipped() -> None:
    assert importlib.resources.files("super_visor").joinpath("py.typed").is_file()


def test_enums_have_the_documented_members() -> None:
    assert issubclass(super_visor.Restart, enum.Enum)
    assert {m.name for m in super_visor.Restart} == {"PERMANENT", "TRANSIENT", "TEMPORARY"}
    assert {m.name for m in super_visor.Strategy} == {
        "ONE_FOR_ONE",
        "ONE_FOR_ALL",
        "REST_FOR_ONE",
    }


def test_builder_add_proc_takes_the_documented_keywords() -> None:
    parameters = inspect.signature(super_visor.SupervisorBuilder.add_proc).parameters

    for keyword in ("name", "grace", "wait_ready", "ready_timeout", "restart", "significant"):
        assert parameters[keyword].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[keyword].default is None


def test_builder_takes_the_documented_keywords_with_their_defaults() -> None:
    parameters = inspect.signature(super_visor.SupervisorBuilder).parameters

    assert parameters["grace"].default == 5.0
    assert parameters["strategy"].default is super_visor.Strategy.ONE_FOR_ONE
    assert parameters["max_restarts"].default == 3
    assert parameters["within"].default == 5.0
    assert "backoff" in parameters


def test_import_installs_no_signal_handlers_and_configures_no_logging() -> None:
    # A fresh interpreter, so that what earlier tests imported or configured cannot hide it.
    code = (
        "import logging, signal\n"
        "before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]\n"
        "import super_visor\n"
        "after = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]\n"
        "assert before == after, (before, after)\n"
        "assert not logging.getLogger().handlers\n"
        "assert not logging.getLogger('super_visor').handlers\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=30
    )

    assert result.returncode == 0, result.stderr


#: Our modules that only a run needs (the engine and what only it imports) or only a build
#: (specs, validation, precedence): ``import super_visor`` must load none of them.
RUN_TIME_MODULES = (
    "_backoff",
    "_diagnostics",
    "_dynamic",
    "_engine",
    "_eventlog",
    "_events",
    "_factory",
    "_lifecycle",
    "_operator",
    "_outcome",
    "_precedence",
    "_proc_task",
    "_restarter",
    "_shutdown",
    "_slot",
    "_spec",
    "_startup",
    "_status",
    "_tasks",
    "_validate",
)


def _run_fresh(code: str) -> None:
    """Run *code* in a fresh interpreter, where no earlier test has imported anything."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_import_loads_no_run_time_module() -> None:
    _run_fresh(
        "import sys, super_visor\n"
        f"names = [f'super_visor.{{m}}' for m in {RUN_TIME_MODULES!r}]\n"
        "loaded = [name for name in names if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )


def test_a_build_loads_no_part_of_the_engine() -> None:
    _run_fresh(
        "import sys, super_visor\n"
        "async def web(token): await token.wait()\n"
        "super_visor.SupervisorBuilder('app').add_proc(web).build()\n"
        "loaded = [m for m in ('super_visor._engine', 'super_visor._slot') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )


def test_every_exported_name_imports_in_a_fresh_interpreter() -> None:
    # In this process earlier tests have loaded everything; a lazy export must also
    # resolve when it is the first use of its module.
    for name in super_visor.__all__:
        _run_fresh(
            f"from super_visor import {name}\n"
            f"assert {name}.__module__ == 'super_visor', {name}.__module__\n"
        )
