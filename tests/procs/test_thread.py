"""Thread: a blocking function stopped through its flag, or abandoned and reported."""

from __future__ import annotations

import threading

import anyio
import pytest

from super_visor import EventKind, ProcStatus, SupervisorBuilder, SupervisorError
from super_visor.procs import Thread, ThreadAbandoned

from ..fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes


async def test_the_stop_flag_ends_the_function_and_its_value_is_the_result() -> None:
    started = threading.Event()

    def poll(stop: threading.Event, every: float) -> str:
        started.set()
        rounds = 0
        while not stop.wait(every):
            rounds += 1
        return "flushed"

    worker = Thread(poll, 0.01, name="poller")
    sup = SupervisorBuilder("app").add_proc(worker).build()
    async with sup.running() as handle:
        assert worker.thread is not None
        assert worker.thread.daemon
    assert handle.report["poller"].status is ProcStatus.STOPPED
    assert handle.report["poller"].result == "flushed"
    assert not worker.thread.is_alive()


async def test_a_function_returning_on_its_own_completes() -> None:
    def compute(_stop: threading.Event) -> int:
        return 42

    sup = SupervisorBuilder("app").add_proc(Thread(compute)).build()
    report = await sup.start(handle_signals=False)
    assert report["compute"].status is ProcStatus.COMPLETED
    assert report["compute"].result == 42


async def test_an_exception_in_the_thread_fails_the_proc() -> None:
    class Corrupt(Exception):
        pass

    def read(_stop: threading.Event) -> None:
        raise Corrupt("bad block")

    sup = SupervisorBuilder("app").add_proc(Thread(read)).build()
    with pytest.raises(SupervisorError) as caught:
        await sup.start(handle_signals=False)
    assert isinstance(caught.value.report["read"].error, Corrupt)


async def test_a_thread_ignoring_its_flag_is_abandoned_and_reported() -> None:
    let_go = threading.Event()

    def deaf(_stop: threading.Event) -> None:
        let_go.wait()  # ignores the stop flag until the test lets it go

    worker = Thread(deaf, grace=0.1)
    sup = SupervisorBuilder("app").add_proc(worker).build()
    try:
        with pytest.raises(SupervisorError) as caught:
            async with sup.running():
                pass
        outcome = caught.value.report["deaf"]
        assert outcome.status is ProcStatus.FAILED
        assert isinstance(outcome.error, ThreadAbandoned)
        assert "abandoned" in caught.value.report.render()
        assert worker.thread is not None
        assert worker.thread.is_alive()  # really abandoned, not waited for
    finally:
        let_go.set()
        assert worker.thread is not None
        worker.thread.join(5)
    assert not worker.thread.is_alive()


async def test_the_grace_given_to_add_proc_is_the_one_the_thread_enforces() -> None:
    let_go = threading.Event()

    def deaf(_stop: threading.Event) -> None:
        let_go.wait()

    worker = Thread(deaf, grace=30)
    sup = SupervisorBuilder("app").add_proc(worker, grace=0.1).build()
    try:
        with anyio.fail_after(10):  # far below the thread's own 30 s: add_proc's 0.1 s wins
            with pytest.raises(SupervisorError) as caught:
                async with sup.running():
                    pass
        outcome = caught.value.report["deaf"]
        assert outcome.status is ProcStatus.FAILED
        assert isinstance(outcome.error, ThreadAbandoned)
        assert outcome.error.grace == 0.1
    finally:
        let_go.set()
        assert worker.thread is not None
        worker.thread.join(5)


async def test_force_cancel_abandons_the_thread_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    let_go = threading.Event()

    def deaf(_stop: threading.Event) -> None:
        let_go.wait()

    worker = Thread(deaf, grace=30)
    sup = SupervisorBuilder("app").add_proc(worker).build()
    try:
        with anyio.fail_after(10):  # far below the thread's 30 s grace
            async with sup.running() as handle, handle.events() as events:
                handle.shutdown("first request")
                async for event in events:
                    if event.kind is EventKind.STOPPING:
                        break
                # What a second SIGTERM does (see _signals): force everything at once.
                handle._run.force_all(None, "second request")
        assert handle.report["deaf"].status is ProcStatus.FORCED
        assert "force-cancelled; thread abandoned" in caplog.text
    finally:
        let_go.set()
        assert worker.thread is not None
        worker.thread.join(5)
