"""``run()``'s side of a run that ended by a BaseException, and of bad arguments.

The engine makes ``start()`` raise a proc's BaseException (on trio inside a
``BaseExceptionGroup``) carrying the report as ``__super_visor_report__``; here the event loop
is replaced by one that raises exceptions built by the test, so the mapping is pinned on its
own: the same exit code and the same report on both backends' shapes.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import CancellationToken, ProcOutcome, ProcStatus, SupervisorBuilder
from super_visor._outcome import SupervisorReport
from super_visor._run import EXIT_CONFIG_ERROR, exit_code_for, run_for_exit_code

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class Fatal(BaseException):
    """Neither KeyboardInterrupt nor SystemExit."""


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (KeyboardInterrupt(), 130),
        (SystemExit(3), 3),
        (SystemExit(0), 0),
        (SystemExit(None), 0),
        (SystemExit("bye"), 1),
        (SystemExit(2.5), 1),
        (Fatal(), 1),
    ],
    ids=["ki", "exit3", "exit0", "exit-none", "exit-str", "exit-float", "base"],
)
def test_exit_code_for_a_procs_base_exception(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


async def idle(token: CancellationToken) -> None:
    await token.wait()


def a_report() -> SupervisorReport:
    outcome = ProcOutcome(name="x", path="app/x", status=ProcStatus.FAILED, error=SystemExit(3))
    return SupervisorReport("app", (outcome,), "proc 'app/x' failed")


@pytest.fixture
def stop_signals_kept() -> Iterator[None]:
    """run_for_exit_code leaves SIGINT/SIGTERM ignored (the process is about to exit)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    assert all(signal.getsignal(sig) is signal.SIG_IGN for sig in saved)
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def loop_raising(error: BaseException) -> Callable[..., object]:
    def fake_run(*args: object, **kwargs: object) -> object:
        raise error

    return fake_run


def shapes(error: BaseException) -> list[BaseException]:
    """How each backend lets it out of anyio.run: as itself (asyncio), grouped (trio)."""
    return [error, BaseExceptionGroup("trio", [error])]


@pytest.mark.usefixtures("stop_signals_kept")
@pytest.mark.parametrize("shape", [0, 1], ids=["bare", "grouped"])
@pytest.mark.parametrize(
    ("error", "code"),
    [(KeyboardInterrupt(), 130), (SystemExit(3), 3), (SystemExit("bye"), 1), (Fatal(), 1)],
    ids=["ki", "exit3", "exit-str", "base"],
)
def test_run_prints_the_report_and_exits_with_the_mapped_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: BaseException,
    code: int,
    shape: int,
) -> None:
    error.__super_visor_report__ = a_report()  # type: ignore[attr-defined]
    monkeypatch.setattr(anyio, "run", loop_raising(shapes(error)[shape]))
    sup = SupervisorBuilder("app").add_proc(idle, name="x").build()
    assert run_for_exit_code(sup, console=False, env_file=None) == code
    err = capsys.readouterr().err
    assert "app: stopped (proc 'app/x' failed)" in err
    assert "x: failed - SystemExit: 3" in err


@pytest.mark.usefixtures("stop_signals_kept")
def test_the_report_may_hang_on_the_group(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    group = BaseExceptionGroup("trio", [SystemExit(4)])
    group.__super_visor_report__ = a_report()  # type: ignore[attr-defined]
    monkeypatch.setattr(anyio, "run", loop_raising(group))
    sup = SupervisorBuilder("app").add_proc(idle, name="x").build()
    assert run_for_exit_code(sup, console=False, env_file=None) == 4
    assert "app: stopped" in capsys.readouterr().err


@pytest.mark.usefixtures("stop_signals_kept")
@pytest.mark.parametrize("shape", [0, 1], ids=["bare", "grouped"])
def test_without_a_report_one_line_says_what_ended_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], shape: int
) -> None:
    """A Ctrl-C before the handlers were in place: no report exists; exit 130 anyway."""
    monkeypatch.setattr(anyio, "run", loop_raising(shapes(KeyboardInterrupt())[shape]))
    sup = SupervisorBuilder("app").add_proc(idle, name="x").build()
    assert run_for_exit_code(sup, console=False, env_file=None) == 130
    assert capsys.readouterr().err.splitlines() == [
        "super_visor: KeyboardInterrupt ended the run before its report"
    ]


@pytest.mark.usefixtures("stop_signals_kept")
def test_a_bug_of_ours_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anyio, "run", loop_raising(RuntimeError("a bug")))
    sup = SupervisorBuilder("app").add_proc(idle, name="x").build()
    with pytest.raises(RuntimeError, match="a bug"):
        run_for_exit_code(sup, console=False, env_file=None)


def test_run_with_a_target_that_is_not_a_tree_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_for_exit_code(42, env_file=None) == EXIT_CONFIG_ERROR  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "configuration error: run(): the target is a int, not a Supervisor" in err


def test_run_with_an_unknown_backend_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    sup = SupervisorBuilder("app").add_proc(idle, name="x").build()
    code = run_for_exit_code(sup, backend="curio", env_file=None)  # type: ignore[arg-type]
    assert code == EXIT_CONFIG_ERROR
    assert "unknown backend 'curio'; use one of 'asyncio', 'trio'" in capsys.readouterr().err
