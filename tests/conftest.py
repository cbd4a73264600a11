"""Shared test set-up: both anyio backends, a hang guard, and a leak check after every test."""

from __future__ import annotations

import functools
import gc
import inspect
import os
import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import anyio
import pytest

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator, Iterator

#: Seconds an async test may run before the hang guard cancels it (see `pytest_pyfunc_call`).
HANG_GUARD: Final = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hang_guard(seconds): cancel this async test after *seconds* instead of the default "
        f"{HANG_GUARD:g} (for a @given test: each example)",
    )


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio."""
    return str(request.param)


def _guard_seconds(item: pytest.Function) -> float:
    marker = item.get_closest_marker("hang_guard")
    if marker is None:
        return HANG_GUARD
    (seconds,) = marker.args
    return float(seconds)


def _guarded(
    test: Callable[..., Awaitable[object]], seconds: float, nodeid: str
) -> Callable[..., Awaitable[object]]:
    """*test*, run under ``fail_after(seconds)`` in the task that runs it."""
    reason = (
        f"{nodeid} still running after {seconds:g} s: it hangs, or give it longer with "
        "@pytest.mark.hang_guard(seconds)"
    )

    @functools.wraps(test)
    async def guarded(**kwargs: object) -> object:
        with anyio.fail_after(seconds, reason=reason):
            return await test(**kwargs)

    return guarded


@contextmanager
def _replaced(owner: object, attribute: str, value: object) -> Iterator[None]:
    saved = getattr(owner, attribute)
    setattr(owner, attribute, value)
    try:
        yield
    finally:
        setattr(owner, attribute, saved)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """Guard every async test with ``fail_after``, so a hang fails in seconds, not at CI's limit.

    The cancel scope must be entered by the task that runs the test body. An async autouse
    fixture cannot do it: the anyio plugin runs fixtures and the test one after the other in
    one runner task, so a scope held open across the fixture's ``yield`` cancels the test but
    is exited out of order (asyncio: the runner task dies; trio: the run hangs). Instead the
    plugin's own ``pytest_pyfunc_call``, which runs inside this wrapper, is handed a wrapped
    test function. A hypothesis ``@given`` test calls into the runner once per example, so
    there each example is guarded, through hypothesis' ``inner_test`` hook for plugins.
    """
    if "anyio_backend" not in pyfuncitem.funcargs:
        return (yield)
    hypothesis = getattr(pyfuncitem.obj, "hypothesis", None)
    owner, attribute = (pyfuncitem, "obj") if hypothesis is None else (hypothesis, "inner_test")
    test = getattr(owner, attribute)
    # A hypothesis test run before (on the other backend) still holds the anyio plugin's wrapper.
    test = getattr(test, "_anyio_original_func", test)
    if not inspect.iscoroutinefunction(test):
        return (yield)
    guarded = _guarded(test, _guard_seconds(pyfuncitem), pyfuncitem.nodeid)
    with _replaced(owner, attribute, guarded):
        return (yield)


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves signal handlers changed, threads running or fds open.

    Tasks cannot outlive a test: the anyio runner ends its event loop after each test and
    would report (asyncio) or refuse (trio) leftover tasks; we check what survives a loop.
    """
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    threads = set(threading.enumerate())
    fds = _open_fds()
    yield
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers, "signal handlers leaked"
    # trio keeps an idle worker thread cached for 10 s after a timer or to_thread call;
    # it belongs to trio's thread cache, not to anything the test started.
    extra_threads = [
        t
        for t in set(threading.enumerate()) - threads
        if t.is_alive() and not t.name.startswith("Trio thread")
    ]
    for thread in extra_threads:
        if thread.name.startswith("asyncio-waitpid-"):
            # asyncio's child watcher: one thread per child process, which returns from
            # waitpid() once the child is reaped. Give it a moment to finish; if it does
            # not, the child was never reaped, and that is a leak.
            thread.join(timeout=2.0)
    extra_threads = [t for t in extra_threads if t.is_alive()]
    assert not extra_threads, f"threads leaked: {extra_threads}"
    leaked = _open_fds() - fds
    if leaked:
        # A socket whose connect was cancelled inside the event loop's own code is closed
        # when it is collected: collect, so only fds that something still holds count.
        gc.collect()
        leaked = _open_fds() - fds
    # The event loop's own fds (selector, wakeup pipe) are closed with the loop; anything left
    # belongs to a resource the test or the library forgot.
    if leaked:
        details = {fd: _describe_fd(fd) for fd in leaked}
        live = {fd: d for fd, d in details.items() if d is not None}
        assert not live, f"file descriptors leaked: {live}"


def _describe_fd(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None  # closed between the listing and now
