"""Targets for `Isolated` tests, imported in the child process only.

Each reads what it needs from the environment (the test passes ``env=``), so the same target
serves several tests; none of them is imported by the parent.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import anyio

from super_visor import CancellationToken, ManagedProc, Restart, SupervisorBuilder
from super_visor.procs import inherited_sockets


class ChildBoom(Exception):
    """Raised in the child; the parent imports this module only when a test does."""


async def ready_then_wait(token: CancellationToken) -> str:
    """Ready with a dict, then wait for the stop; returns the reason it got."""
    token.ready({"pid": os.getpid(), "answer": 42})
    await token.wait()
    return f"stopped: {token.reason}"


async def ready_then_return(token: CancellationToken) -> int:
    token.ready(os.getpid())
    return 7


async def ignores_token(token: CancellationToken) -> None:
    """Ready, then ignores its token and SIGTERM too: only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    token.ready(os.getpid())
    while True:
        time.sleep(0.05)  # noqa: ASYNC251 (blocks the loop on purpose, as a stuck call would)


async def forced_cleanly(token: CancellationToken) -> None:
    """Ignores its token; when forced (SIGTERM in the child), its clean-up writes a file."""
    token.ready(os.getpid())
    try:
        await anyio.sleep_forever()
    finally:
        with open(os.environ["MARK_FILE"], "w", encoding="utf-8") as mark:  # noqa: ASYNC230
            mark.write("cleaned up")


async def crash(token: CancellationToken) -> None:
    token.ready()
    msg = "child went boom"
    raise ChildBoom(msg)


async def crash_unknown(token: CancellationToken) -> None:
    """Raises a class defined here at run time: the parent can never import it."""
    token.ready()
    local = type("LocalError", (Exception,), {})
    msg = "no class for this in the parent"
    raise local(msg)


async def hard_exit(token: CancellationToken) -> None:
    token.ready()
    os._exit(3)


async def killed_by_signal(token: CancellationToken) -> None:
    token.ready()
    os.kill(os.getpid(), signal.SIGKILL)


async def bad_ready_value(token: CancellationToken) -> None:
    token.ready(threading.Lock())
    await token.wait()


async def bad_result(token: CancellationToken) -> object:
    token.ready()
    return threading.Lock()


async def count_runs(token: CancellationToken) -> None:
    """Appends a line to COUNT_FILE per run; fails the first two runs."""
    path = os.environ["COUNT_FILE"]
    with open(path, "a", encoding="utf-8") as count:  # noqa: ASYNC230 (a tiny local file)
        count.write("run\n")
    with open(path, encoding="utf-8") as count:  # noqa: ASYNC230
        runs = len(count.readlines())
    token.ready(runs)
    if runs < 3:
        msg = f"run {runs} fails"
        raise ChildBoom(msg)
    await token.wait()


async def which_backend(token: CancellationToken) -> str:
    name = anyio.get_cancelled_exc_class().__module__.partition(".")[0]
    token.ready(name)
    await token.wait()
    return name


async def serve_inherited(token: CancellationToken) -> None:
    """Accept connections on the socket the parent passed down; answer each with our pid."""
    (listener,) = inherited_sockets()
    listener.setblocking(False)
    token.ready(os.getpid())
    with token.cancel_scope():
        while True:
            await anyio.wait_readable(listener)
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                continue  # another replica took it
            with conn:
                conn.sendall(str(os.getpid()).encode())
    listener.close()


async def pid_and_wait(token: CancellationToken) -> None:
    token.ready(os.getpid())
    await token.wait()


async def cpu_job(token: CancellationToken) -> int:
    """A CPU-bound job: counts iterations of a pure-Python loop until stopped."""
    token.ready(os.getpid())
    done = 0
    while not token.cancelled:
        total = 0
        for i in range(20_000):
            total += i * i
        done += 1
        await anyio.lowlevel.checkpoint()
    return done


class Echo(ManagedProc):
    """A ManagedProc target: ready with its name."""

    name = "echo"

    async def run_proc(self, token: CancellationToken) -> str:
        token.ready(self.name)
        await token.wait()
        return "echo done"


echo = Echo()


async def _db(token: CancellationToken) -> None:
    token.ready("db-ready")
    await token.wait()


async def _web(token: CancellationToken) -> None:
    token.ready(8080)
    await token.wait()


async def _bad(token: CancellationToken) -> None:
    await anyio.lowlevel.checkpoint()
    msg = "worker failed in the isolated tree"
    raise ChildBoom(msg)


tree = (
    SupervisorBuilder("inner")
    .add_proc(_db, name="db", wait_ready=True)
    .add_proc(_web, name="web", wait_ready=True)
    .build()
)

failing_tree = (
    SupervisorBuilder("inner")
    .add_proc(_db, name="db", wait_ready=True)
    .add_proc(_bad, name="bad", restart=Restart.TEMPORARY)
)

not_a_proc = 42


async def asks_for_shutdown(token: CancellationToken) -> str:
    """Ready with its own path, then asks the whole (parent's) tree to shut down."""
    token.ready(f"{token.name} at {token.path}")
    token.request_shutdown("the isolated child asked")
    await token.wait()
    return f"stopped: {token.reason}"


async def blocks_loop(token: CancellationToken) -> None:
    """Ready, then blocks its event loop for good: only a signal handler can act."""
    token.ready(os.getpid())
    while True:
        time.sleep(0.05)  # noqa: ASYNC251 (on purpose: no EOF or stop frame can be read)


async def _deaf(token: CancellationToken) -> None:
    """Does not watch its token: only a force ends it."""
    await anyio.sleep_forever()


stuck_tree = (
    SupervisorBuilder("inner", grace=30.0)
    .add_proc(_db, name="db", wait_ready=True)
    .add_proc(_deaf, name="deaf")
)


async def _crash_loop(token: CancellationToken) -> None:
    token.ready()
    msg = "crashes at once, every time"
    raise ChildBoom(msg)


gives_up = SupervisorBuilder("inner", max_restarts=1, within=60.0).add_proc(
    _crash_loop, name="loop", restart=Restart.PERMANENT
)


async def never_ready(token: CancellationToken) -> None:
    """Forgets token.ready(): a gating Isolated proc waits for it in vain."""
    await token.wait()


async def logs_then_waits(token: CancellationToken) -> None:
    """Logs at INFO and, with a traceback, at ERROR; both must reach the parent's handlers."""
    logger = logging.getLogger("tests.isolated.child")
    logger.info("hello from pid %d", os.getpid())
    try:
        msg = "logged, not raised"
        raise ChildBoom(msg)
    except ChildBoom:
        logger.exception("with a traceback")
    logger.debug("below the parent's level: never sent")
    token.ready()
    await token.wait()


async def reaches_for_its_supervisor(token: CancellationToken) -> None:
    token.ready()
    token.supervisor.status()
