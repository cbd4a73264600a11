"""A `RunHandle` attached to a run driven by someone else than ``running()``.

``run()`` with a control socket and the test kit's ``supervisor_handle`` fixture need the
handle's controls (status, stop, shutdown, ...) while the tree runs as ``start()`` runs it:
with ``start()``'s signal handling and exceptions, and without ``running()``'s habit of
cancelling the caller's block when the tree fails (a pytest fixture must not be cancelled
from inside: the anyio plugin runs fixture and test in one task, see tests/conftest.py).

`attached_run` opens the run exactly as ``start()``/``running()`` do (one run at a time) and
`drive` runs it, recording its end on the handle the way ``running()`` does, so
``handle.stopped``, ``handle.report``, ``is_running()`` and ``events()`` behave the same.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ._errors import SupervisorError
from ._handle import RunHandle
from ._signals import run_with_signals

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._engine import SupervisorRun
    from ._outcome import SupervisorReport
    from ._supervisor import Supervisor

__all__ = ("attached_run", "drive", "tree_error")


@contextlib.contextmanager
def attached_run(sup: Supervisor) -> Iterator[tuple[SupervisorRun, RunHandle]]:
    """A fresh run of *sup* and its handle; *sup* may run again once the block is left.

    Raises:
        RuntimeError: *sup* is already running (as ``start()`` does).
    """
    run = sup._begin()
    try:
        yield run, RunHandle(run)
    finally:
        sup._active = False


async def drive(run: SupervisorRun, handle: RunHandle, *, handle_signals: bool) -> SupervisorReport:
    """Run the tree to its end as ``start()`` does: return the report, or raise
    `SupervisorError` (or a proc's BaseException); the handle learns the end either way."""
    try:
        report = await (run_with_signals(run) if handle_signals else run.run())
    except SupervisorError as exc:
        handle._error = exc
        handle._report = exc.report
        raise
    else:
        handle._report = report
        return report
    finally:
        if handle._report is None:  # a BaseException: the outcomes are still known
            handle._report = run.report_so_far()
        run.hub.close_streams()
        handle._done.set()


def tree_error(handle: RunHandle) -> SupervisorError | None:
    """The tree's failure, once it has stopped; None while it runs or when none failed."""
    return handle._error
