"""A small application run by super_visor: a database, an HTTP server, a worker, a pipeline.

Run it, then open the printed address in a browser (or curl it)::

    python examples/demo.py              # runs until Ctrl-C
    python examples/demo.py --for 6      # stops by itself after 6 seconds
    python examples/demo.py --backend trio --port 8080

What to watch on stdout: the procs start in the order they are declared (db, http, worker,
pipeline/consumer, pipeline/producer) and stop in exactly the reverse order. The "db" and
"http" procs gate start-up: nothing after them starts before they called ``token.ready()``.
The final report goes to stderr, and the exit code is 0 after a clean stop (``--for`` or one
Ctrl-C).

Only the public API of super_visor and anyio are used, so the same code runs on asyncio and
on trio.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

import anyio
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream

import super_visor
from super_visor import CancellationToken, ManagedProc, SupervisorBuilder

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import Listener, SocketStream, TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream


def say(proc: str, message: str) -> None:
    """One line per event on stdout, flushed at once so a pipe sees it immediately."""
    print(f"[{proc}] {message}", flush=True)


@dataclass
class Stats:
    """Counters shared by the procs; the HTTP server shows them on its home page."""

    db_queries: int = 0
    jobs_done: int = 0
    items_produced: int = 0
    items_consumed: int = 0


async def run_until_cancelled(token: CancellationToken, fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``fn()`` until it returns or *token* is cancelled, whichever comes first.

    Use it around a call that waits on something other than the token (an accept loop, a
    stream): the token is watched in a sibling task that cancels the call.
    """
    async with anyio.create_task_group() as task_group:

        async def watch() -> None:
            await token.wait()
            task_group.cancel_scope.cancel()

        task_group.start_soon(watch)
        await fn()
        task_group.cancel_scope.cancel()


# --------------------------------------------------------------------------- the database


class Database(ManagedProc):
    """A pretend database connection pool.

    ``wait_ready = True``: the procs declared after it (which query it) start only once it
    is connected. ``ready_timeout`` bounds that wait: a database that does not answer within
    5 s fails start-up with `StartupError` instead of hanging the app.
    """

    name = "db"
    wait_ready = True
    ready_timeout = 5.0

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.connected = False

    async def run_proc(self, token: CancellationToken) -> str:
        say("db", "connecting...")
        await anyio.sleep(0.2)  # stands in for opening the connections
        self.connected = True
        say("db", "started (connected)")
        token.ready("demo-db")
        await token.wait()
        say("db", "stopping: closing the connections")
        await anyio.sleep(0.05)  # cleanup may await: the token asks, it does not cancel
        self.connected = False
        say("db", "stopped")
        return f"{self.stats.db_queries} queries served"

    async def query(self, sql: str) -> int:
        """A pretend query: answers the number of queries served so far."""
        if not self.connected:
            msg = f"the database is not connected (query: {sql!r})"
            raise RuntimeError(msg)
        await anyio.sleep(0.01)
        self.stats.db_queries += 1
        return self.stats.db_queries


# --------------------------------------------------------------------------- the HTTP server


class HttpServer(ManagedProc):
    """A tiny HTTP/1.1 server on anyio: ``GET /`` (JSON) and ``GET /health`` (text).

    Its ready value is the port it bound, so ``--port 0`` (the default) picks a free one and
    still tells the world which. On stop it first stops accepting connections, then gives the
    open ones up to one second to finish.
    """

    name = "http"
    wait_ready = True
    ready_timeout = 5.0

    def __init__(self, port: int, db: Database, stats: Stats) -> None:
        self.port = port
        self.db = db
        self.stats = stats

    async def run_proc(self, token: CancellationToken) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        async with listener, anyio.create_task_group() as connections:
            port = listener.extra(SocketAttribute.local_port)
            say("http", f"started: listening on http://127.0.0.1:{port}/")
            token.ready(port)
            await run_until_cancelled(token, lambda: self._accept(listener, connections))
            say("http", "stopping: no new connections; open ones get 1 s to finish")
            connections.cancel_scope.deadline = anyio.current_time() + 1.0
        say("http", "stopped")

    async def _accept(self, listener: Listener[SocketStream], connections: TaskGroup) -> None:
        # Connections run in `connections`, outside the accept loop's scope: cancelling
        # the accept loop leaves the requests already being answered alone.
        await listener.serve(self._handle, connections)

    async def _handle(self, stream: SocketStream) -> None:
        async with stream:
            try:
                reader = BufferedByteReceiveStream(stream)
                with anyio.fail_after(5):  # a client that never sends a request is dropped
                    head = await reader.receive_until(b"\r\n\r\n", 65536)
                await stream.send(await self._respond(head))
            except (TimeoutError, anyio.IncompleteRead, anyio.DelimiterNotFound):
                pass  # a broken or slow client: close the connection, keep serving
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the client went away while we answered

    async def _respond(self, head: bytes) -> bytes:
        method, _, rest = head.decode("latin-1").partition(" ")
        path = rest.partition(" ")[0]
        if method != "GET":
            return _http(405, "text/plain", "only GET is supported\n")
        if path == "/health":
            return _http(200, "text/plain", "ok\n")
        if path == "/":
            await self.db.query("SELECT count(*) FROM visits")
            page = {"app": "super_visor demo", **vars(self.stats)}
            return _http(200, "application/json", json.dumps(page, indent=2) + "\n")
        return _http(404, "text/plain", f"no page at {path}\n")


def _http(status: int, content_type: str, body: str) -> bytes:
    reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}
    data = body.encode()
    head = (
        f"HTTP/1.1 {status} {reasons[status]}\r\n"
        f"Content-Type: {content_type}; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


# --------------------------------------------------------------------------- the worker


class Worker(ManagedProc):
    """Does a periodic job (here: a query) every *interval* seconds until it is stopped.

    Waiting on ``token.wait()`` with a deadline, rather than sleeping, makes it react to a
    stop at once instead of at the end of the current interval.
    """

    name = "worker"

    def __init__(self, db: Database, stats: Stats, interval: float = 1.0) -> None:
        self.db = db
        self.stats = stats
        self.interval = interval

    async def run_proc(self, token: CancellationToken) -> int:
        say("worker", f"started: one job every {self.interval:g} s")
        while True:
            with anyio.move_on_after(self.interval):
                await token.wait()
            if token.cancelled:
                break
            await self.db.query("DELETE FROM sessions WHERE expired")
            self.stats.jobs_done += 1
            say("worker", f"job {self.stats.jobs_done} done")
        say("worker", f"stopped after {self.stats.jobs_done} job(s)")
        return self.stats.jobs_done


# --------------------------------------------------------------------------- the pipeline


class Consumer(ManagedProc):
    """Handles every item the producer sends.

    Declared *before* the producer, so it stops *after* it: when its turn comes, the
    producer has closed the stream, and every item sent was handled. That is what reverse
    stop order is for.
    """

    name = "consumer"

    def __init__(self, receive: MemoryObjectReceiveStream[int], stats: Stats) -> None:
        self.receive = receive
        self.stats = stats

    async def run_proc(self, token: CancellationToken) -> int:
        say("pipeline/consumer", "started")
        with self.receive:
            await run_until_cancelled(token, self._consume)
        say("pipeline/consumer", f"stopped after {self.stats.items_consumed} item(s)")
        return self.stats.items_consumed

    async def _consume(self) -> None:
        async for item in self.receive:  # ends when the producer closes its end
            self.stats.items_consumed += 1
            say("pipeline/consumer", f"handled item {item}")


class Producer(ManagedProc):
    """Sends a numbered item into the stream twice a second until it is stopped."""

    name = "producer"

    def __init__(self, send: MemoryObjectSendStream[int], stats: Stats) -> None:
        self.send = send
        self.stats = stats

    async def run_proc(self, token: CancellationToken) -> int:
        say("pipeline/producer", "started")
        with self.send:  # closing it tells the consumer that nothing more will come
            while True:
                with anyio.move_on_after(0.5):
                    await token.wait()
                if token.cancelled:
                    break
                self.stats.items_produced += 1
                await self.send.send(self.stats.items_produced)
        say("pipeline/producer", f"stopped after {self.stats.items_produced} item(s)")
        return self.stats.items_produced


# --------------------------------------------------------------------------- --for


class Countdown(ManagedProc):
    """Ends by itself after *seconds*; being significant (the default), that stops the app.

    If the app is stopped earlier (Ctrl-C), it returns as soon as its token is cancelled.
    """

    name = "countdown"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def run_proc(self, token: CancellationToken) -> None:
        with anyio.move_on_after(self.seconds):
            await token.wait()
        if not token.cancelled:
            say("countdown", f"{self.seconds:g} s are up: stopping the app")


# --------------------------------------------------------------------------- wiring


def build_app(port: int = 0, run_for: float | None = None) -> SupervisorBuilder:
    """Declare the app: procs start in this order and stop in reverse."""
    stats = Stats()
    db = Database(stats)
    send, receive = anyio.create_memory_object_stream[int](max_buffer_size=16)
    pipeline = (
        SupervisorBuilder("pipeline")
        .add_proc(Consumer(receive, stats))
        .add_proc(Producer(send, stats))
        .build()
    )
    app = (
        SupervisorBuilder("demo", grace=3.0)
        .add_proc(db)
        .add_proc(HttpServer(port, db, stats))
        .add_proc(Worker(db, stats))
        .add_proc(pipeline)
    )
    if run_for is not None:
        app.add_proc(Countdown(run_for))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument(
        "--for", dest="run_for", type=float, metavar="SECONDS", help="stop after SECONDS"
    )
    args = parser.parse_args()
    backend = cast("Literal['asyncio', 'trio']", args.backend)
    super_visor.run(build_app(args.port, args.run_for), backend=backend)


if __name__ == "__main__":
    main()
