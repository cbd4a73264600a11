"""Grace and force: stopping is cooperative first, forced second.

On shutdown each proc's token is cancelled and the proc gets its ``grace`` (seconds) to
return. ``tidy`` watches its token, cleans up (awaiting is fine: nothing is cancelled yet) and
returns in time: ``STOPPED``. ``stubborn`` ignores its token, so when its grace of 0.3 s runs
out it is force-cancelled: ``FORCED``. That is logged as a warning but is not a failure:
``start()`` still returns a report and the exit code stays 0.
"""

from __future__ import annotations

import anyio

from super_visor import CancellationToken, ProcStatus, SupervisorBuilder


async def tidy(token: CancellationToken) -> str:
    await token.wait()
    print("tidy: flushing buffers", flush=True)
    await anyio.sleep(0.1)  # cleanup may await: the token asks, it does not cancel
    return "flushed"


async def stubborn(token: CancellationToken) -> None:
    try:
        await anyio.sleep(60)  # never looks at its token
    finally:
        print("stubborn: force-cancelled", flush=True)


async def timer(token: CancellationToken) -> None:
    with anyio.move_on_after(0.2):
        await token.wait()


async def main() -> None:
    app = (
        SupervisorBuilder("app", grace=2.0)  # the default grace of every proc
        .add_proc(tidy)
        .add_proc(stubborn, grace=0.3)  # a keyword on add_proc beats the default
        .add_proc(timer)
        .build()
    )
    report = await app.start(handle_signals=False)
    print(report.render(), flush=True)
    assert report["tidy"].status is ProcStatus.STOPPED
    assert report["tidy"].result == "flushed"
    assert report["stubborn"].status is ProcStatus.FORCED
    print(f"exit code: {report.exit_code}", flush=True)


if __name__ == "__main__":
    anyio.run(main)
