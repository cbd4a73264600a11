"""Uvicorn and Hypercorn serving a real Starlette app over 127.0.0.1, drained on stop.

Uvicorn runs on asyncio only, so its tests are parametrized to asyncio (plus one test on trio
that checks the clear error); Hypercorn runs on both backends.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from super_visor import (
    ConfigError,
    EventKind,
    ProcStatus,
    StartupError,
    SupervisorBuilder,
    SupervisorError,
)
from super_visor.procs import Hypercorn, MissingExtraError, Uvicorn

from ..fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

    from super_visor import CancellationToken, RunHandle

#: (server, backend) pairs that can run: Uvicorn is asyncio-only.
SERVERS = [
    pytest.param("uvicorn", "asyncio", id="uvicorn-asyncio"),
    pytest.param("hypercorn", "asyncio", id="hypercorn-asyncio"),
    pytest.param("hypercorn", "trio", id="hypercorn-trio"),
]


class App:
    """A Starlette app whose /slow request waits until the test releases it."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.entered = anyio.Event()
        self.release = anyio.Event()

        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            log.append("lifespan startup")
            yield
            log.append("lifespan shutdown")

        async def hello(_request: Request) -> PlainTextResponse:
            return PlainTextResponse("hello")

        async def slow(_request: Request) -> PlainTextResponse:
            self.entered.set()
            await self.release.wait()
            return PlainTextResponse("slow and done")

        routes = [Route("/", hello), Route("/slow", slow)]
        self.asgi = Starlette(routes=routes, lifespan=lifespan)


def make_server(kind: str, app: App, grace: float = 5.0) -> Uvicorn | Hypercorn:
    if kind == "uvicorn":
        return Uvicorn(app.asgi, name="web", grace=grace)
    return Hypercorn(app.asgi, name="web", grace=grace)


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Overrides conftest's: each test below names its backend(s) through ``SERVERS``."""
    return str(getattr(request, "param", "asyncio"))


def recorder(name: str, log: list[str]) -> object:
    async def proc(token: CancellationToken) -> None:
        log.append(f"start {name}")
        await token.wait()
        log.append(f"stop {name}")

    proc.__name__ = name
    return proc


@pytest.mark.parametrize(("kind", "anyio_backend"), SERVERS, indirect=["anyio_backend"])
async def test_serves_http_on_the_ready_port_with_lifespan_in_order(kind: str) -> None:
    log: list[str] = []
    app = App(log)
    sup = (
        SupervisorBuilder("app")
        .add_proc(recorder("db", log))
        .add_proc(make_server(kind, app))
        .add_proc(recorder("worker", log))
        .build()
    )
    async with sup.running() as handle:
        port = handle.ready_value("web")
        assert isinstance(port, int)
        assert port > 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            response = await client.get("/")
        assert response.status_code == 200
        assert response.text == "hello"
    assert log == [
        "start db",
        "lifespan startup",
        "start worker",
        "stop worker",
        "lifespan shutdown",
        "stop db",
    ]
    assert handle.report["web"].status is ProcStatus.STOPPED


async def _wait_until_stopping(handle: RunHandle, path: str) -> None:
    async with handle.events() as events:
        handle.shutdown("test over")
        async for event in events:
            if event.kind is EventKind.STOPPING and event.path == path:
                break
    await anyio.wait_all_tasks_blocked()  # the server has acted on its token by now


@pytest.mark.parametrize(("kind", "anyio_backend"), SERVERS, indirect=["anyio_backend"])
async def test_a_request_in_flight_finishes_and_a_new_one_is_refused(kind: str) -> None:
    app = App([])
    sup = SupervisorBuilder("app").add_proc(make_server(kind, app)).build()
    answers: list[httpx.Response] = []
    async with sup.running() as handle:
        base = f"http://127.0.0.1:{handle.ready_value('web')}"
        async with httpx.AsyncClient(base_url=base) as client:

            async def slow_request() -> None:
                answers.append(await client.get("/slow"))

            async with anyio.create_task_group() as requests:
                requests.start_soon(slow_request)
                await app.entered.wait()
                await _wait_until_stopping(handle, "app/web")
                async with httpx.AsyncClient(base_url=base) as late_client:
                    with pytest.raises(httpx.ConnectError):
                        await late_client.get("/")
                app.release.set()
    assert [(a.status_code, a.text) for a in answers] == [(200, "slow and done")]
    assert handle.report["web"].status is ProcStatus.STOPPED


@pytest.mark.parametrize(("kind", "anyio_backend"), SERVERS, indirect=["anyio_backend"])
async def test_a_request_outlasting_the_grace_is_cut_and_the_stop_stays_clean(kind: str) -> None:
    app = App([])
    sup = SupervisorBuilder("app").add_proc(make_server(kind, app, grace=0.3)).build()
    cut: list[str] = []
    async with sup.running() as handle:
        base = f"http://127.0.0.1:{handle.ready_value('web')}"
        async with httpx.AsyncClient(base_url=base) as client:

            async def slow_request() -> None:
                try:
                    response = await client.get("/slow")
                except httpx.HTTPError as exc:  # Hypercorn drops the connection
                    cut.append(type(exc).__name__)
                else:  # Uvicorn answers 500 when it cancels a request before its reply
                    cut.append(str(response.status_code))

            async with anyio.create_task_group() as requests:
                requests.start_soon(slow_request)
                await app.entered.wait()
                handle.shutdown("test over")
    assert len(cut) == 1
    assert cut[0] in ("500", "RemoteProtocolError", "ReadError")
    assert handle.report["web"].status is ProcStatus.STOPPED


@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_uvicorn_under_trio_is_a_clear_error() -> None:
    sup = SupervisorBuilder("app").add_proc(Uvicorn(App([]).asgi, name="web")).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    outer = caught.value.report["web"].error
    assert isinstance(outer, StartupError)
    cause = outer.__cause__
    assert isinstance(cause, ConfigError)
    assert "Uvicorn runs on asyncio only, but this supervisor runs on trio" in str(cause)
    assert "Hypercorn" in cause.fix


@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_uvicorn_start_up_failure_is_a_startup_error() -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as taken:
        port = taken.extra(anyio.abc.SocketAttribute.local_port)
        web = Uvicorn(App([]).asgi, name="web", port=port)
        sup = SupervisorBuilder("app").add_proc(web).build()
        with anyio.fail_after(10), pytest.raises(SupervisorError) as caught:
            await sup.start(handle_signals=False)
    cause = caught.value.report["web"].error.__cause__  # type: ignore[union-attr]
    assert isinstance(cause, StartupError)
    assert "Uvicorn did not start" in str(cause)


@pytest.mark.parametrize(("adapter", "extra"), [(Uvicorn, "uvicorn"), (Hypercorn, "hypercorn")])
def test_a_missing_extra_names_the_install_command(
    adapter: type[Uvicorn | Hypercorn], extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, extra, None)  # makes "import uvicorn" fail
    with pytest.raises(MissingExtraError) as caught:
        adapter(App([]).asgi)
    assert isinstance(caught.value, ImportError)
    assert f"pip install 'super_visor[{extra}]'" in str(caught.value)


def test_importing_super_visor_imports_no_server() -> None:
    code = (
        "import sys, super_visor, super_visor.procs; "
        "print(sorted(m for m in ('uvicorn', 'hypercorn', 'httpx', 'starlette') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.strip() == "[]"
