"""Factories and resource scopes: ``add_factory`` makes a fresh proc, nested supervisor or
resource scope for every start and restart, and a product that is not a proc is a
`StartupError`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import (
    CancellationToken,
    ProcStatus,
    Restart,
    StartupError,
    Supervisor,
    SupervisorBuilder,
    SupervisorError,
)

from .fakes import Boom, Worker
from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream


async def test_factory_gives_fresh_state_at_every_restart() -> None:
    log: list[str] = []
    made: list[Worker] = []

    def make_worker() -> Worker:
        worker = Worker("w", log)
        made.append(worker)
        return worker

    sup = SupervisorBuilder("app").add_factory("w", make_worker, restart=Restart.PERMANENT).build()
    async with sup.running() as handle:
        for n in range(1, 4):
            made[-1].crash()
            await made[-1].wait_ended(1)
            await anyio.wait_all_tasks_blocked()  # the restart has run to completion
            assert len(made) == n + 1
            assert made[-1].runs == 1
    assert len(made) == 4
    assert len({id(w) for w in made}) == 4
    assert [w.runs for w in made] == [1, 1, 1, 1]  # no object ever ran twice
    assert handle.report["w"].restarts == 3


async def test_factory_may_build_a_fresh_nested_supervisor() -> None:
    log: list[str] = []
    made: list[Worker] = []

    def make_subtree() -> Supervisor:
        worker = Worker(f"w{len(made) + 1}", log)
        made.append(worker)
        return SupervisorBuilder("sub").add_proc(worker, name="w").build()

    sup = (
        SupervisorBuilder("app")
        # wait_ready: a factory's product is unknown until start, so say it gates (see
        # test_factory_nested_supervisor_gates_start_up below).
        .add_factory("sub", make_subtree, restart=Restart.TRANSIENT, wait_ready=True)
        .build()
    )
    async with sup.running() as handle:
        made[0].crash()  # TEMPORARY and significant in sub: sub fails, app restarts it
        await made[0].wait_ended(1)
        await anyio.wait_all_tasks_blocked()
        assert len(made) == 2
        await made[1].wait_run(1)
    assert log == ["start w1", "crash w1", "start w2", "stop w2"]
    assert handle.report["sub"].restarts == 1
    assert handle.report["sub/w"].restarts == 0


async def test_factory_nested_supervisor_gates_start_up() -> None:
    log: list[str] = []
    release = anyio.Event()

    async def slow_gate(token: CancellationToken) -> None:
        await release.wait()
        log.append("gate ready")
        token.ready()
        await token.wait()

    async def after(token: CancellationToken) -> None:
        log.append("after started")
        await token.wait()

    def make_subtree() -> Supervisor:
        return SupervisorBuilder("sub").add_proc(slow_gate, wait_ready=True).build()

    sup = SupervisorBuilder("app").add_factory("sub", make_subtree).add_proc(after).build()

    async def open_tree() -> None:
        async with sup.running():
            log.append("running() entered")

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(open_tree)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert log == ["gate ready", "after started", "running() entered"]


class Pipeline:
    """A factory of resource scopes: each scope creates a fresh stream and a nested
    supervisor whose consumer and producer share it, and closes the stream once the
    subtree has stopped. The first consumer crashes after three items."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.scopes = 0
        self.streams: list[tuple[MemoryObjectSendStream[int], MemoryObjectReceiveStream[int]]] = []
        self.received: list[list[int]] = []
        self.healthy = anyio.Event()

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[Supervisor]:
        self.scopes += 1
        n = self.scopes
        send, receive = anyio.create_memory_object_stream[int]()
        self.streams.append((send, receive))
        got: list[int] = []
        self.received.append(got)
        self.log.append(f"open scope {n}")
        try:
            async with send, receive:
                yield (
                    SupervisorBuilder("pipeline")
                    .add_proc(self._consumer(n, receive, got), name="consumer")
                    .add_proc(self._producer(n, send), name="producer")
                    .build()
                )
        finally:
            self.log.append(f"close scope {n}")

    def _consumer(
        self, n: int, receive: MemoryObjectReceiveStream[int], got: list[int]
    ) -> Callable[[CancellationToken], Awaitable[None]]:
        async def consumer(token: CancellationToken) -> None:
            self.log.append(f"start consumer {n}")
            with token.cancel_scope():
                async for item in receive:
                    got.append(item)
                    if n == 1 and len(got) == 3:
                        self.log.append(f"crash consumer {n}")
                        raise Boom("consumer choked")
                    if len(got) == 3:
                        self.healthy.set()
            self.log.append(f"stop consumer {n}")

        return consumer

    def _producer(
        self, n: int, send: MemoryObjectSendStream[int]
    ) -> Callable[[CancellationToken], Awaitable[None]]:
        async def producer(token: CancellationToken) -> None:
            self.log.append(f"start producer {n}")
            with token.cancel_scope():
                item = 0
                while True:
                    item += 1
                    await send.send(item)
            self.log.append(f"stop producer {n}")

        return producer


async def test_resource_scope_pipeline_recovers_with_fresh_streams() -> None:
    log: list[str] = []
    pipeline = Pipeline(log)
    sup = (
        SupervisorBuilder("app")
        .add_factory("pipeline", pipeline.scope, restart=Restart.TRANSIENT, wait_ready=True)
        .build()
    )
    async with sup.running() as handle:
        await pipeline.healthy.wait()
    assert log == [
        "open scope 1",
        "start consumer 1",
        "start producer 1",
        "crash consumer 1",
        "stop producer 1",
        "close scope 1",  # closed only after the whole subtree stopped
        "open scope 2",
        "start consumer 2",
        "start producer 2",
        "stop producer 2",
        "stop consumer 2",
        "close scope 2",
    ]
    assert pipeline.received[0] == [1, 2, 3]
    assert pipeline.received[1][:3] == [1, 2, 3]  # a fresh producer on a fresh stream
    (send1, receive1), (send2, receive2) = pipeline.streams
    assert send1 is not send2
    assert receive1 is not receive2
    for stream in (send1, send2):
        with pytest.raises(anyio.ClosedResourceError):
            stream.send_nowait(0)
    report = handle.report
    assert report["pipeline"].restarts == 1
    assert report["pipeline"].status is ProcStatus.STOPPED
    assert report["pipeline/consumer"].status is ProcStatus.STOPPED
    (earlier,) = report["pipeline"].history
    assert isinstance(earlier, SupervisorError)
    assert earlier.subgroup(Boom) is not None


@pytest.mark.parametrize("product", [42, "worker", None])
async def test_bad_factory_product_is_a_startup_error(product: object) -> None:
    log: list[str] = []
    first = Worker("first", log)
    sup = SupervisorBuilder("app").add_proc(first).add_factory("bad", lambda: product).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    startup = caught.value.subgroup(StartupError)
    assert startup is not None
    (error,) = startup.exceptions
    assert isinstance(error, StartupError)
    assert "app/bad" in str(error)
    assert "not a proc" in str(error)
    assert caught.value.report["bad"].status is ProcStatus.FAILED
    assert log == ["start first", "stop first"]


async def test_factory_returning_a_class_is_a_startup_error() -> None:
    sup = SupervisorBuilder("app").add_factory("bad", lambda: Worker).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    assert isinstance(caught.value.report["bad"].error, StartupError)


async def test_factory_may_return_an_async_function() -> None:
    runs: list[int] = []

    def make() -> Callable[[CancellationToken], Awaitable[None]]:
        async def fresh(token: CancellationToken) -> None:
            runs.append(len(runs) + 1)
            await token.wait()

        return fresh

    sup = SupervisorBuilder("app").add_factory("fresh", make).build()
    async with sup.running():
        assert runs == [1]


async def test_scope_yielding_a_non_proc_is_a_startup_error() -> None:
    @asynccontextmanager
    async def bad_scope() -> AsyncIterator[object]:
        yield 42

    sup = SupervisorBuilder("app").add_factory("bad", bad_scope).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    error = caught.value.report["bad"].error
    assert isinstance(error, StartupError)
    assert "app/bad" in str(error)


async def test_bad_factory_product_at_a_restart_is_a_startup_error() -> None:
    log: list[str] = []
    first = Worker("w", log)
    products: list[object] = [first, "not a proc"]
    sup = (
        SupervisorBuilder("app")
        .add_factory("w", lambda: products.pop(0), restart=Restart.PERMANENT)
        .build()
    )

    async def complete_once() -> None:
        async with sup.running() as handle:
            first.complete()
            await handle.wait_stopped()  # the restart fails and stops the tree

    with pytest.raises(SupervisorError) as caught:
        await complete_once()
    startup = caught.value.subgroup(StartupError)
    assert startup is not None
    assert "app/w" in str(startup.exceptions[0])
