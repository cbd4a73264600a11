"""The pytest plugin of ``super_visor.testing``, tested the way its users meet it: an inner
pytest run (in a subprocess, so the plugin is loaded through its ``pytest11`` entry point, as
after ``pip install super_visor``) of a test file that uses its fixtures on both backends."""

from __future__ import annotations

import time
from typing import Final

import anyio
import pytest

from super_visor import CancellationToken, EventKind, RunState, SupervisorBuilder
from super_visor.testing import VirtualClock, wait_for_event, wait_for_state, with_clock

pytest_plugins = ["pytester"]

INNER: Final = """
import time

import anyio
import pytest

from super_visor import Backoff, EventKind, Restart, RunState, SupervisorBuilder
from super_visor.testing import wait_for_event, wait_for_state

pytestmark = pytest.mark.anyio

HOUR = 3600.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.fixture
def commands():
    send, receive = anyio.create_memory_object_stream[str](10)
    with send, receive:
        yield send, receive


def worker_for(receive):
    async def worker(token):
        token.ready()
        async with anyio.create_task_group() as task_group:
            async def stop_on_token():
                await token.wait()
                task_group.cancel_scope.cancel()

            task_group.start_soon(stop_on_token)
            command = await receive.receive()
            task_group.cancel_scope.cancel()
        if not token.cancelled:
            raise RuntimeError(command)

    return worker


@pytest.fixture
def supervisor(commands, request):
    restart = getattr(request, "param", Restart.PERMANENT)
    return (
        SupervisorBuilder("app", max_restarts=1, within=HOUR)
        .add_proc(
            worker_for(commands[1]),
            name="worker",
            restart=restart,
            backoff=Backoff(initial=HOUR, maximum=HOUR, jitter=0.0),
        )
    )


async def test_the_handle_is_ready(supervisor_handle):
    assert supervisor_handle.ready
    assert supervisor_handle.status()["worker"].state is RunState.RUNNING


async def test_an_hour_of_backoff_passes_at_once(supervisor_handle, virtual_clock, commands):
    began, real = virtual_clock.now(), time.monotonic()
    events = supervisor_handle.events()
    await commands[0].send("crash, please")
    restarting = await wait_for_event(
        supervisor_handle, EventKind.RESTARTING, "worker", events=events
    )
    assert restarting.path == "app/worker"
    snapshot = await wait_for_state(supervisor_handle, "app/worker", RunState.RUNNING)
    assert snapshot.restarts == 1
    assert virtual_clock.now() - began >= HOUR
    assert time.monotonic() - real < 10.0


@pytest.mark.parametrize("supervisor", [Restart.TEMPORARY], indirect=True)
async def test_a_failed_tree_fails_the_test(supervisor_handle, commands):
    await commands[0].send("the tree fails")
    await wait_for_state(supervisor_handle, "worker", RunState.FAILED)
"""


def test_the_plugin_runs_the_fixtures_on_both_backends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    started = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "-W", "error")
    result.assert_outcomes(passed=6, errors=2)
    for backend in ("asyncio", "trio"):
        result.stdout.fnmatch_lines(
            [f"*test_an_hour_of_backoff_passes_at_once?{backend}? PASSED*"], consecutive=False
        )
        result.stdout.fnmatch_lines(
            [f"*test_a_failed_tree_fails_the_test?{backend}-Restart.TEMPORARY? ERROR*"]
        )
    result.stdout.fnmatch_lines(["*super_visor.testing: the tree failed during the test*"])
    result.stdout.fnmatch_lines(["*RuntimeError: the tree fails*"])
    assert time.monotonic() - started < 60.0  # the hour of backoff was virtual


def test_a_fixture_that_is_not_a_supervisor_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner="""
        import pytest

        pytestmark = pytest.mark.anyio

        @pytest.fixture
        def supervisor():
            return "app"

        async def test_it(supervisor_handle):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)  # anyio's own anyio_backend here: asyncio and trio
    result.stdout.fnmatch_lines(["*must return a Supervisor or a SupervisorBuilder, got str*"])


# -- the helpers, in-process ----------------------------------------------------------------


async def steady(token: CancellationToken) -> None:
    await token.wait()


async def test_wait_for_event_names_what_it_saw_when_the_tree_stops_first() -> None:
    sup = SupervisorBuilder("app").add_proc(steady, name="db").build()
    async with sup.running() as handle:
        events = handle.events()
        handle.shutdown("over")
        with pytest.raises(AssertionError) as caught:
            await wait_for_event(handle, EventKind.RESTARTING, "db", events=events)
    message = str(caught.value)
    assert message.startswith("the tree stopped before an event restarting for db")
    assert "stopped app/db" in message


async def test_wait_for_state_returns_at_once_when_already_there() -> None:
    sup = SupervisorBuilder("app").add_proc(steady, name="db").build()
    async with sup.running() as handle:
        snapshot = await wait_for_state(handle, "db", RunState.RUNNING)
        assert snapshot.path == "app/db"


async def test_autojump_waits_until_every_other_task_is_blocked() -> None:
    """The jump happens only once nothing else can run: a task that is busy (checkpointing
    without blocking) holds it back, and once it blocks, the sleep ends at once."""
    clock = VirtualClock(autojump=True)
    busy_done = anyio.Event()
    order: list[str] = []

    async def busy() -> None:
        for _ in range(50):
            await anyio.lowlevel.checkpoint()
        order.append("busy done")
        busy_done.set()

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(busy)
        await clock.sleep(60.0)
        order.append("slept")
    assert order == ["busy done", "slept"]
    assert clock.now() == 1060.0


async def test_autojump_wakes_sleepers_in_deadline_order() -> None:
    clock = VirtualClock(autojump=True)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(sleeper, "long", 30.0)
        task_group.start_soon(sleeper, "short", 10.0)
        task_group.start_soon(sleeper, "middle", 20.0)
    assert woke == [("short", 1010.0), ("middle", 1020.0), ("long", 1030.0)]


def test_advance_refuses_to_go_back() -> None:
    clock = VirtualClock()
    clock.advance(5.0)
    assert clock.now() == 1005.0
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1.0)


def test_with_clock_takes_a_builder_and_leaves_it_as_built() -> None:
    clock = VirtualClock()
    builder = SupervisorBuilder("app").add_proc(steady, name="db")
    sup = with_clock(builder, clock)
    assert sup.config.clock is clock
    assert builder.build().config.clock is not clock
