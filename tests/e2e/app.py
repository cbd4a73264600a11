"""A small application run by ``tests/test_signals_e2e.py`` in a real child process.

Usage: ``python tests/e2e/app.py --backend asyncio|trio --scenario NAME``.

Every proc writes one line per event to stdout, flushed at once, so the test can read the pipe
to know exactly where the application is (no sleeps):

- ``start X``: X's ``run_proc`` was entered;
- ``stop X reason=R``: X returned after its token was cancelled with reason R;
- ``stubborn X reason=R``: X saw its token cancelled and ignores it;
- ``forced X``: X was force-cancelled;
- ``handlers before|after SIGINT=... SIGTERM=...``: the signal handlers around ``start()``.

Scenarios (each a tree, run with ``super_visor.run`` unless said otherwise):

- ``basic``: ``app[a, inner[b, c], d]``, all idle until stopped;
- ``stubborn``: ``app[a, inner[b], c]`` where c ignores its token and has a long grace;
- ``gated``: ``app[a, gate, c, d]`` where gate is ready only once a line arrives on stdin;
- ``fail``: ``app[a, b]`` where b raises right after it started;
- ``config``: a tree with two procs named ``a`` (a ConfigError);
- ``handlers``: ``basic`` run with ``await sup.start()`` inside ``anyio.run``, printing the
  handlers before and after; the app installed its own SIGTERM handler first;
- ``after-run``: ``basic`` run with ``run_for_exit_code`` (what ``run()`` does before it exits),
  printing the handlers it leaves behind, then exiting with its code;
- ``block-sleep`` / ``block-spin``: ``app[a, inner[b], c]`` where c, once its token is cancelled,
  prints ``blocking c`` and blocks the event loop for good (``time.sleep``, ``while True``);
- ``block-stdin``: ``app[a, c]`` where a is stubborn and c, once its token is cancelled, prints
  ``blocking c`` and blocks the event loop reading stdin until a line arrives (``unblocked c``);
- ``shielded``: ``app[a, c]`` where c ignores its token and shields itself from force;
- ``raise-KIND``: ``app[a, inner[b], x]`` where x raises a BaseException right after it started
  (KIND: ``ki`` KeyboardInterrupt, ``exit3`` SystemExit(3), ``exit-str`` SystemExit("bye"),
  ``exit0`` SystemExit(0), ``exit-none`` SystemExit(None), ``base`` a BaseException subclass).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Literal

import anyio
import anyio.lowlevel

import super_visor
from super_visor import CancellationToken, SupervisorBuilder
from super_visor._run import run_for_exit_code

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import FrameType

    Proc = Callable[[CancellationToken], Awaitable[object]]

#: The grace of the stubborn proc: far longer than any test waits, so only force ends it.
STUBBORN_GRACE = 60.0


def emit(line: str) -> None:
    """One event on stdout, flushed so the test sees it at once."""
    print(line, flush=True)  # noqa: T201 (stdout is this application's output channel)


def idle(name: str) -> Proc:
    """A proc that runs until its token is cancelled and says how it ended."""

    async def proc(token: CancellationToken) -> None:
        emit(f"start {name}")
        try:
            await token.wait()
        except BaseException:
            emit(f"forced {name}")
            raise
        emit(f"stop {name} reason={token.reason}")

    return proc


def stubborn(name: str) -> Proc:
    """A proc that ignores its token: only a force-cancel ends it."""

    async def proc(token: CancellationToken) -> None:
        emit(f"start {name}")
        try:
            await token.wait()
            emit(f"stubborn {name} reason={token.reason}")
            await anyio.sleep_forever()
        except BaseException:
            emit(f"forced {name}")
            raise

    return proc


def gate(name: str) -> Proc:
    """A gating proc: ready only once a line arrives on stdin (EOF never releases it)."""

    async def release(token: CancellationToken) -> None:
        await anyio.wait_readable(sys.stdin.fileno())
        if os.read(sys.stdin.fileno(), 4096):
            emit(f"ready {name}")
            token.ready()

    async def proc(token: CancellationToken) -> None:
        emit(f"start {name}")
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(release, token)
            await token.wait()
            task_group.cancel_scope.cancel()
        emit(f"stop {name} reason={token.reason}")

    return proc


def failing(name: str) -> Proc:
    """A proc that raises right after it started."""

    async def proc(token: CancellationToken) -> None:
        emit(f"start {name}")
        await anyio.lowlevel.checkpoint()
        msg = f"boom from {name}"
        raise RuntimeError(msg)

    return proc


def blocker(name: str, how: str) -> Proc:
    """A proc whose cleanup blocks the event loop: forever, or until a line on stdin."""

    async def proc(token: CancellationToken) -> None:
        emit(f"start {name}")
        await token.wait()
        emit(f"blocking {name}")
        if how == "sleep":
            time.sleep(600)  # noqa: ASYNC251 (the point: a proc that blocks the event loop)
        elif how == "spin":
            while True:
                pass
        else:
            sys.stdin.readline()  # blocks the event loop, on purpose
            emit(f"unblocked {name}")

    return proc


def shielded(name: str) -> Proc:
    """A proc that ignores its token and shields itself from force: it never ends."""

    async def proc(token: CancellationToken) -> None:
        emit(f"start {name}")
        await token.wait()
        emit(f"shielded {name} reason={token.reason}")
        with anyio.CancelScope(shield=True):
            await anyio.sleep(600)

    return proc


class Fatal(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


RAISES: dict[str, BaseException] = {
    "ki": KeyboardInterrupt(),
    "exit3": SystemExit(3),
    "exit-str": SystemExit("bye"),
    "exit0": SystemExit(0),
    "exit-none": SystemExit(None),
    "base": Fatal("fatal from x"),
}


def raising(name: str, error: BaseException) -> Proc:
    """A proc that raises *error* right after it started."""

    async def proc(token: CancellationToken) -> None:
        emit(f"start {name}")
        await anyio.lowlevel.checkpoint()
        raise error

    return proc


def basic_tree() -> SupervisorBuilder:
    inner = SupervisorBuilder("inner").add_proc(idle("b"), name="b").add_proc(idle("c"), name="c")
    return (
        SupervisorBuilder("app")
        .add_proc(idle("a"), name="a")
        .add_proc(inner)
        .add_proc(idle("d"), name="d")
    )


def with_inner(last: Proc, name: str) -> SupervisorBuilder:
    """``app[a, inner[b], <name>]``: *last* stops first, with a grace no test waits out."""
    inner = SupervisorBuilder("inner").add_proc(idle("b"), name="b")
    return (
        SupervisorBuilder("app")
        .add_proc(idle("a"), name="a")
        .add_proc(inner)
        .add_proc(last, name=name, grace=STUBBORN_GRACE)
    )


def build(scenario: str) -> SupervisorBuilder:
    if scenario in ("basic", "handlers", "after-run"):
        return basic_tree()
    if scenario == "stubborn":
        inner = SupervisorBuilder("inner").add_proc(idle("b"), name="b")
        return (
            SupervisorBuilder("app")
            .add_proc(idle("a"), name="a")
            .add_proc(inner)
            .add_proc(stubborn("c"), name="c", grace=STUBBORN_GRACE)
        )
    if scenario == "gated":
        return (
            SupervisorBuilder("app")
            .add_proc(idle("a"), name="a")
            .add_proc(gate("gate"), name="gate", wait_ready=True)
            .add_proc(idle("c"), name="c")
            .add_proc(idle("d"), name="d")
        )
    if scenario == "fail":
        return (
            SupervisorBuilder("app").add_proc(idle("a"), name="a").add_proc(failing("b"), name="b")
        )
    if scenario == "block-stdin":
        return (
            SupervisorBuilder("app")
            .add_proc(stubborn("a"), name="a", grace=STUBBORN_GRACE)
            .add_proc(blocker("c", "stdin"), name="c", grace=STUBBORN_GRACE)
        )
    if scenario in ("block-sleep", "block-spin"):
        return with_inner(blocker("c", scenario.removeprefix("block-")), "c")
    if scenario == "shielded":
        return (
            SupervisorBuilder("app")
            .add_proc(idle("a"), name="a")
            .add_proc(shielded("c"), name="c", grace=0.0)
        )
    if scenario == "abandon":
        return (
            SupervisorBuilder("app", abandon_after=2.0)
            .add_proc(idle("a"), name="a")
            .add_proc(shielded("c"), name="c", grace=0.0)
        )
    if scenario.startswith("raise-"):
        return with_inner(raising("x", RAISES[scenario.removeprefix("raise-")]), "x")
    if scenario == "config":
        return SupervisorBuilder("app").add_proc(idle("a"), name="a").add_proc(idle("a2"), name="a")
    msg = f"unknown scenario {scenario!r}"
    raise SystemExit(msg)


def describe_handlers() -> str:
    return " ".join(
        f"{sig.name}={signal.getsignal(sig)!r}" for sig in (signal.SIGINT, signal.SIGTERM)
    )


def app_sigterm_handler(signum: int, frame: FrameType | None) -> None:
    """The application's own SIGTERM handler, which start() must put back."""
    emit("app handler called")


async def start_and_report_handlers(builder: SupervisorBuilder) -> None:
    sup = builder.build()
    emit(f"handlers before {describe_handlers()}")
    report = await sup.start()
    emit(f"handlers after {describe_handlers()}")
    emit(f"reason {report.reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("asyncio", "trio"), required=True)
    parser.add_argument("--scenario", required=True)
    args = parser.parse_args()
    backend: Literal["asyncio", "trio"] = args.backend
    builder = build(args.scenario)
    if args.scenario == "handlers":
        signal.signal(signal.SIGTERM, app_sigterm_handler)
        anyio.run(start_and_report_handlers, builder, backend=backend)
        return
    if args.scenario == "after-run":
        code = run_for_exit_code(builder, backend=backend, console=False, env_file=None)
        emit(f"handlers after-run {describe_handlers()}")
        sys.exit(code)
    super_visor.run(builder, backend=backend)


if __name__ == "__main__":
    main()
