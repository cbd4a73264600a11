"""A real ``NOTIFY_SOCKET`` for tests: an AF_UNIX datagram socket playing systemd's part.

Two ways to read it. `drain()` takes, without blocking, whatever has been sent so far:
sending is synchronous (the kernel queues the datagram on our socket before ``sendto``
returns), so a drain inside an event callback or a proc sees exactly what was sent before
that moment, which is how order is tested. `receiving()` (a task of the test's event loop)
and `reading()` (a thread, for synchronous tests) stamp every datagram as it arrives, for
the tests that run longer than the socket's queue (``/proc/sys/net/unix/max_dgram_qlen``,
often 10) would hold.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from typing import TYPE_CHECKING, final

import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

__all__ = ("NotifyListener",)

_STOP = b"\0stop-reading"


@final
class NotifyListener:
    """The service manager's end: bind, point ``NOTIFY_SOCKET`` at it, read the transcript."""

    def __init__(self, *, abstract: bool = False) -> None:
        self._dir: str | None = None
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"super-visor-test-{uuid.uuid4().hex}"
            self.socket.bind(f"\0{name}")
            #: What ``NOTIFY_SOCKET`` holds.
            self.address = f"@{name}"
        else:
            self._dir = tempfile.mkdtemp(prefix="sv-notify-")  # short: sun_path holds 108 bytes
            self.address = os.path.join(self._dir, "notify.sock")
            self.socket.bind(self.address)
        #: Every message received so far, in order, with ``time.monotonic()`` on arrival.
        self.stamped: list[tuple[float, str]] = []
        self._arrived = threading.Condition()
        self._news: anyio.Event | None = None

    @property
    def messages(self) -> list[str]:
        with self._arrived:
            return [message for _, message in self.stamped]

    def close(self) -> None:
        self.socket.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def drain(self) -> list[str]:
        """Receive every datagram queued now (without blocking); return them."""
        got = []
        while True:
            try:
                data = self.socket.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            got.append(data.decode())
        with self._arrived:
            self.stamped.extend((time.monotonic(), message) for message in got)
        return got

    @contextlib.asynccontextmanager
    async def receiving(self) -> AsyncIterator[None]:
        """Receive in a task of the running event loop for the duration of the block."""
        self._news = anyio.Event()
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(self._receive)
            try:
                yield
            finally:
                task_group.cancel_scope.cancel()
        self.drain()

    async def _receive(self) -> None:
        while True:
            await anyio.wait_readable(self.socket)
            if self.drain() and self._news is not None:
                self._news.set()
                self._news = anyio.Event()

    async def wait_until(self, predicate: Callable[[list[str]], bool]) -> float:
        """Wait (with `receiving`) until *predicate(messages)* holds; return the arrival
        time of the last message then."""
        while not predicate(self.messages):
            assert self._news is not None, "use 'async with listener.receiving()'"
            await self._news.wait()
        return self.stamped[-1][0]

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Receive in a thread for the duration of the block."""
        thread = threading.Thread(target=self._read, name="notify-listener")
        thread.start()
        try:
            yield
        finally:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as poke:
                poke.sendto(_STOP, self.socket.getsockname())
            thread.join()

    def _read(self) -> None:
        while (data := self.socket.recv(4096)) != _STOP:
            with self._arrived:
                self.stamped.append((time.monotonic(), data.decode()))
                self._arrived.notify_all()

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float) -> float:
        """Block until *predicate(messages)* holds (with `reading`); return the arrival time
        of the last message then. Raises TimeoutError with the transcript otherwise."""
        with self._arrived:
            done = self._arrived.wait_for(
                lambda: predicate([m for _, m in self.stamped]), timeout=timeout
            )
            if not done:
                msg = f"not received within {timeout}s; transcript: {self.stamped}"
                raise TimeoutError(msg)
            return self.stamped[-1][0] if self.stamped else time.monotonic()
