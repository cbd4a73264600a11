"""Faults: a proc that ignores its force-cancel, a proc that calls sys.exit(), a Ctrl-C in code.

- ``stuck`` shields its cleanup from cancellation. After its grace it is force-cancelled,
  which it survives; ``abandon_after`` seconds later it is abandoned (ABANDONED, a failure,
  logged with its stack) and the shutdown moves on to ``db``. ``start()`` still waits for the
  task itself at the very end (``run()`` would print the report and exit 1 instead).
- ``sys.exit()`` in a proc asks for a clean stop of the whole tree, in reverse order.
- ``KeyboardInterrupt`` raised by a proc stops the tree in reverse too; ``start()`` then
  raises it, with the report attached.
"""

from __future__ import annotations

import sys

import anyio

from super_visor import CancellationToken, SupervisorBuilder, SupervisorError, SupervisorReport


async def db(token: CancellationToken) -> None:
    print("db: open", flush=True)
    await token.wait()
    print("db: closed", flush=True)


async def stuck(token: CancellationToken) -> None:
    await token.wait()
    print("stuck: cleaning up, and ignoring any force-cancel", flush=True)
    with anyio.CancelScope(shield=True):
        await anyio.sleep(0.6)
    print("stuck: finally ended", flush=True)


async def quitter(token: CancellationToken) -> None:
    await anyio.sleep(0.05)
    print("quitter: sys.exit()", flush=True)
    sys.exit()


async def interrupter(token: CancellationToken) -> None:
    await anyio.sleep(0.05)
    print("interrupter: raising KeyboardInterrupt", flush=True)
    raise KeyboardInterrupt


async def abandoned() -> None:
    sup = (
        SupervisorBuilder("app", abandon_after=0.2).add_proc(db).add_proc(stuck, grace=0.1).build()
    )
    try:
        async with sup.running() as handle:
            handle.shutdown("example over")
    except SupervisorError as error:
        for outcome in error.report.outcomes:
            print(f"  {outcome.name}: {outcome.status.value}", flush=True)


async def clean_exit() -> None:
    sup = SupervisorBuilder("app").add_proc(db).add_proc(quitter).build()
    report = await sup.start(handle_signals=False)
    print(f"sys.exit() in a proc: {report.reason}, exit code {report.exit_code}", flush=True)


async def interrupted() -> None:
    sup = SupervisorBuilder("app").add_proc(db).add_proc(interrupter).build()
    try:
        await sup.start(handle_signals=False)
    except KeyboardInterrupt as interrupt:
        report = getattr(interrupt, "__super_visor_report__", None)
        assert isinstance(report, SupervisorReport)
        print(f"start() raised KeyboardInterrupt; {report['interrupter'].status.value}")


async def main() -> None:
    await abandoned()
    await clean_exit()
    await interrupted()


if __name__ == "__main__":
    anyio.run(main)
