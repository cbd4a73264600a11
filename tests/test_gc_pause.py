"""The garbage collector around a bulk start (``_gc``): ``run()`` owns the process, so the
root run pauses the collector during start-up and freezes what start-up made; the collector
is back as it was once the run ends. ``start()`` leaves it alone."""

from __future__ import annotations

import gc
import signal
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import CancellationToken, SupervisorBuilder
from super_visor._run import Backend, run_for_exit_code

if TYPE_CHECKING:
    from collections.abc import Iterator

BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])


@pytest.fixture(autouse=True)
def stop_signals_restored() -> Iterator[None]:
    """run_for_exit_code leaves SIGINT/SIGTERM ignored (the process is about to exit)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


class Watcher:
    """Records the collector's state when it begins, then (*wait*) once it runs again."""

    def __init__(self, *, wait: bool = True) -> None:
        self.wait = wait
        self.at_begin: bool | None = None
        self.after_startup: tuple[bool, int] | None = None

    async def run_proc(self, token: CancellationToken) -> None:
        self.at_begin = gc.isenabled()
        while self.wait and not gc.isenabled():
            await anyio.lowlevel.checkpoint()  # start-up ends once every proc has begun
        self.after_startup = (gc.isenabled(), gc.get_freeze_count())
        token.request_shutdown("seen")


def tree(watcher: Watcher) -> SupervisorBuilder:
    async def idle(token: CancellationToken) -> None:
        await token.wait()

    return SupervisorBuilder("app").add_proc(idle).add_proc(watcher, name="watcher")


@BACKENDS
def test_run_pauses_the_collector_during_startup_then_freezes_what_it_made(
    backend: Backend,
) -> None:
    watcher = Watcher()
    code = run_for_exit_code(
        tree(watcher), backend=backend, console=False, env_file=None, handle_signals=False
    )
    assert code == 0
    assert watcher.at_begin is False
    assert watcher.after_startup is not None
    enabled, frozen = watcher.after_startup
    assert enabled
    assert frozen > 0
    # Once the run is over, the collector is as it was, and nothing stays frozen.
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


@BACKENDS
def test_run_leaves_a_disabled_collector_disabled(backend: Backend) -> None:
    watcher = Watcher(wait=False)
    gc.disable()
    try:
        run_for_exit_code(
            tree(watcher), backend=backend, console=False, env_file=None, handle_signals=False
        )
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert watcher.after_startup == (False, 0)  # neither enabled nor frozen by the run


async def test_start_leaves_the_collector_alone() -> None:
    watcher = Watcher()
    await tree(watcher).build().start(handle_signals=False)
    assert watcher.at_begin is True
    assert watcher.after_startup == (True, 0)
