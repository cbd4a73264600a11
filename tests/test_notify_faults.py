"""systemd notify against its own bugs and against other speakers in the same service: a
bug in a helper is logged once and leaves the tree alone; only the first root run of the
process speaks; children started by our procs cannot speak for us."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import pytest

from super_visor import ProcStatus, SupervisorBuilder, SupervisorError
from super_visor import _notify as notify_module
from super_visor.procs import Command

from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes
from .log_fields import sv_fields
from .test_notify import PERIOD_USEC, listener

if TYPE_CHECKING:
    from pathlib import Path

    from super_visor import CancellationToken

    from .notify_socket import NotifyListener

__all__ = ("listener",)  # the fixture, used here by name


def broken_status_line(*args: object) -> str:
    raise ZeroDivisionError("a bug in status_line")


async def brief(token: CancellationToken) -> None:
    token.request_shutdown("test over")
    await token.wait()


async def test_a_bug_in_a_helper_is_logged_once_and_the_tree_goes_on(
    listener: NotifyListener,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Fault injection: the one way to make the notifier's own code fail in a real run.
    monkeypatch.setattr(notify_module, "status_line", broken_status_line)
    monkeypatch.setenv("WATCHDOG_USEC", str(PERIOD_USEC))
    report = await SupervisorBuilder("app").add_proc(brief).build().start(handle_signals=False)
    assert report.reason == "test over"
    assert report["brief"].status is ProcStatus.STOPPED
    errors = [r for r in caplog.records if "systemd notify failed" in r.getMessage()]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR
    assert sv_fields(errors[0]) == ("app", None)
    assert not any(m.startswith("STATUS=") for m in listener.drain())


async def test_a_bug_in_the_last_flush_does_not_replace_the_error(
    listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify_module, "status_line", broken_status_line)

    async def failing(token: CancellationToken) -> None:
        raise KeyError("the proc's own failure")

    sup = SupervisorBuilder("app").add_proc(failing).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    assert caught.group_contains(KeyError)


async def test_a_tree_run_inside_a_proc_does_not_speak_for_the_service(
    listener: NotifyListener,
) -> None:
    inner_report: list[ProcStatus] = []

    async def own_tree(token: CancellationToken) -> None:
        inner = SupervisorBuilder("inner").add_proc(brief).build()
        report = await inner.start(handle_signals=False)  # notify=True by default
        inner_report.append(report["brief"].status)
        token.request_shutdown("test over")
        await token.wait()

    async with listener.receiving():
        await SupervisorBuilder("app").add_proc(own_tree).build().start(handle_signals=False)
    sent = listener.messages
    assert inner_report == [ProcStatus.STOPPED]
    assert sent.count("READY=1") == 1
    assert sent.count("STOPPING=1") == 1
    assert not any("inner" in m for m in sent if m.startswith("STATUS="))


async def test_the_claim_is_released_when_the_run_ends(listener: NotifyListener) -> None:
    async with listener.receiving():
        for _ in range(2):
            await SupervisorBuilder("app").add_proc(brief).build().start(handle_signals=False)
    assert listener.messages.count("STOPPING=1") == 2


@pytest.mark.parametrize("explicit_env", [False, True])
async def test_a_command_child_does_not_inherit_the_notify_variables(
    listener: NotifyListener,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    explicit_env: bool,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", str(PERIOD_USEC))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    monkeypatch.setenv("SV_TEST_KEPT", "yes")
    seen = tmp_path / "env.txt"
    code = (
        "import os, sys; open(sys.argv[1], 'w').write(' '.join(sorted(k for k in os.environ "
        "if k in ('NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'SV_TEST_KEPT'))))"
    )
    env = dict(os.environ) if explicit_env else None
    command = Command([sys.executable, "-c", code, str(seen)], name="child", env=env)
    report = await SupervisorBuilder("app").add_proc(command).build().start(handle_signals=False)
    assert report["child"].status is ProcStatus.COMPLETED
    assert seen.read_text() == "SV_TEST_KEPT"


async def test_notify_warnings_carry_the_structured_fields(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    await SupervisorBuilder("app").add_proc(brief).build().start(handle_signals=False)
    [record] = [r for r in caplog.records if "NOTIFY_SOCKET" in r.getMessage()]
    assert sv_fields(record) == ("app", None)
