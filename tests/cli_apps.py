"""Small applications for the CLI and console tests, named as ``tests.cli_apps:<attr>``.

Procs print one line per event to stdout, flushed, so a test reading the pipe (or the
pseudo-terminal) knows where the application is without sleeping.
"""

from __future__ import annotations

import os

import anyio

from super_visor import CancellationToken, Supervisor, SupervisorBuilder


def emit(line: str) -> None:
    print(line, flush=True)  # noqa: T201 (stdout is these applications' output channel)


async def db(token: CancellationToken) -> None:
    emit("start db")
    token.ready("postgres://db")
    await token.wait()
    emit(f"stop db reason={token.reason}")


async def web(token: CancellationToken) -> None:
    emit("start web")
    await token.wait()
    emit(f"stop web reason={token.reason}")


async def consumer(token: CancellationToken) -> None:
    emit("start consumer")
    await token.wait()


async def waiting_forever(token: CancellationToken) -> None:
    """Waits in a function of its own, so a stack dump names it."""
    emit("start waiter")
    await token.wait()


async def quick(token: CancellationToken) -> None:
    """Completes on its own once the app has started: the app then stops by itself."""
    emit("start quick")
    await anyio.sleep(float(os.environ.get("QUICK_FOR", "0.3")))
    emit("quick done")


async def boom(token: CancellationToken) -> None:
    emit("start boom")
    msg = "boom went the proc"
    raise RuntimeError(msg)


def make_builder() -> SupervisorBuilder:
    pipeline = SupervisorBuilder("pipeline", grace=2.0).add_proc(consumer)
    return (
        SupervisorBuilder("app")
        .add_proc(db, wait_ready=True, ready_timeout=10.0, grace=3.0)
        .add_proc(pipeline)
        .add_proc(web)
    )


#: A built Supervisor that runs until a signal stops it.
app: Supervisor = make_builder().build()
#: A builder (built by the CLI) that stops by itself once ``quick`` completes.
finite = make_builder().add_proc(quick)


#: A zero-argument factory returning a Supervisor.
def factory() -> Supervisor:
    return make_builder().add_proc(quick).build()


failing = SupervisorBuilder("app").add_proc(web).add_proc(boom)
#: Two procs named "web": build() raises ConfigError.
duplicate = SupervisorBuilder("app").add_proc(web).add_proc(web)
#: Neither a Supervisor nor a builder.
not_a_supervisor = 42
#: Runs until SIGTERM; ``waiter`` waits in its own function (for the SIGUSR1 dump).
dumpable = (
    SupervisorBuilder("app")
    .add_proc(waiting_forever, name="waiter")
    .add_proc(SupervisorBuilder("pipeline").add_proc(consumer))
)
