"""Overrides are real (API.md section 8): the grace ``check`` shows is the one adapters enforce.

Each adapter enforces its grace itself (Command's SIGKILL, Thread's abandonment, the ASGI
servers' drain). A ``SUPER_VISOR__<PATH>__GRACE`` override reaches them through the token,
so an adapter built with a 30 s grace and overridden to a fraction of a second stops in that
fraction. Had only the supervisor's own deadline moved (the bug), the adapter would still
be waiting on its 30 s when the supervisor forced it: the outcome would be FORCED, not the
adapter's own clean verdict asserted below.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

from super_visor import ProcStatus, Settings, SupervisorBuilder, SupervisorError
from super_visor.procs import Command, Hypercorn, LogLineProbe, Thread, ThreadAbandoned

from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes
from .procs.helpers import alive, python
from .procs.test_asgi import App

if TYPE_CHECKING:
    from super_visor import Supervisor

# Says it is up, and answers SIGTERM with a line but keeps running: only SIGKILL ends it.
DEAF_TO_SIGTERM = """
    import signal, sys, time
    signal.signal(signal.SIGTERM, lambda *_: print("got TERM", flush=True))
    print("up", flush=True)
    while True:
        time.sleep(0.05)
"""


def overridden(sup: Supervisor, environ: dict[str, str]) -> Supervisor:
    """*sup* configured as ``run()`` would, from *environ* only."""
    return Settings.load(sup, env_file=None, environ=environ).apply(sup)


async def test_a_grace_override_moves_the_commands_sigkill(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="super_visor")
    cmd = Command(python(DEAF_TO_SIGTERM), name="deaf", ready=LogLineProbe("^up$"), grace=30)
    sup = overridden(
        SupervisorBuilder("app").add_proc(cmd).build(), {"SUPER_VISOR__DEAF__GRACE": "1"}
    )
    assert sup.specs[0].grace == 1.0
    assert sup.specs[0].force_reserve == 1.0

    with anyio.fail_after(20):  # generous, and still far below the command's own 30 s
        async with sup.running():
            pid = cmd.pid
    assert pid is not None
    assert not alive(pid)
    lines = [record.getMessage() for record in caplog.records]
    sigterm = lines.index("got TERM")  # the child's own output, logged as it came
    sigkill = lines.index(
        "deaf: still running 1.0s after SIGTERM; sending SIGKILL to its process group"
    )
    assert sigterm < sigkill


async def test_the_overridden_command_ends_as_a_clean_stop_not_forced() -> None:
    cmd = Command(python(DEAF_TO_SIGTERM), name="deaf", ready=LogLineProbe("^up$"), grace=30)
    sup = overridden(
        SupervisorBuilder("app").add_proc(cmd).build(), {"SUPER_VISOR__DEAF__GRACE": "0.5"}
    )
    with anyio.fail_after(20):
        async with sup.running() as handle:
            pass
    outcome = handle.report["deaf"]
    assert outcome.status is ProcStatus.STOPPED  # the command's own SIGKILL, in its window
    assert outcome.result == -signal.SIGKILL


async def test_a_grace_override_moves_the_threads_abandonment() -> None:
    let_go = threading.Event()

    def deaf(_stop: threading.Event) -> None:
        let_go.wait()

    worker = Thread(deaf, grace=30)
    sup = overridden(
        SupervisorBuilder("app").add_proc(worker).build(), {"SUPER_VISOR_GRACE": "0.2"}
    )
    try:
        with anyio.fail_after(20), pytest.raises(SupervisorError) as caught:
            async with sup.running():
                pass
    finally:
        let_go.set()
        assert worker.thread is not None
        worker.thread.join(5)
    outcome = caught.value.report["deaf"]
    assert outcome.status is ProcStatus.FAILED
    assert isinstance(outcome.error, ThreadAbandoned)
    assert outcome.error.grace == 0.2


async def test_a_grace_override_moves_the_servers_drain() -> None:
    app = App([])
    server = Hypercorn(app.asgi, name="web", grace=30)
    sup = overridden(
        SupervisorBuilder("app").add_proc(server).build(), {"SUPER_VISOR__WEB__GRACE": "0.3"}
    )
    cut: list[str] = []
    with anyio.fail_after(20):  # the request waits forever: only the drain's end cuts it
        async with sup.running() as handle:
            base = f"http://127.0.0.1:{handle.ready_value('web')}"
            async with httpx.AsyncClient(base_url=base) as client:

                async def slow_request() -> None:
                    try:
                        response = await client.get("/slow")
                    except httpx.HTTPError as exc:  # Hypercorn drops the connection
                        cut.append(type(exc).__name__)
                    else:  # a 500 when the cancelled request's reply was not begun
                        cut.append(str(response.status_code))

                async with anyio.create_task_group() as requests:
                    requests.start_soon(slow_request)
                    await app.entered.wait()
                    handle.shutdown("test over")
    assert cut in (["500"], ["RemoteProtocolError"], ["ReadError"])
    assert handle.report["web"].status is ProcStatus.STOPPED  # drained by Hypercorn, not forced
