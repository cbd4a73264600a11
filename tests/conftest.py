"""Shared test set-up: both anyio backends, a hang guard, and a leak check after every test."""

from __future__ import annotations

import gc
import os
import signal
import threading
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio."""
    return str(request.param)


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
