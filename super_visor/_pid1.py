"""PID 1: when ``run()`` is a container's first process, it splits into an init and the app.

A container without an init (``docker run`` without ``--init``, a Kubernetes pod without
``shareProcessNamespace``) makes our process PID 1, and PID 1 inherits every orphan in the
container: a grandchild whose parent exited (a daemonising script, a shell's background job)
is re-parented to it, and stays a zombie until PID 1 waits for it. Two rules must hold:

1. orphans are reaped, so zombies do not pile up until the PID limit is hit;
2. children the app started itself are never reaped by anyone but the app, however late it
   waits for them: ``subprocess.Popen.wait()``, ``anyio.open_process`` and our ``Command``
   must still get their exit status (a reaped child's status is gone; ``wait`` would fail
   with ECHILD or report 0).

Options weighed:

- A ``waitpid(-1)`` loop in the app (on SIGCHLD) reaps orphans, but also the app's own
  children, breaking rule 2.
- ``waitid(P_ALL, WNOHANG | WNOWAIT)`` to peek, then reap only pids the app did not start:
  the app does not know them all (a library's ``Popen`` is not registered anywhere), and
  between the peek and the reap a pid can be reused; "not started by us" cannot be told
  apart from "started by code we do not see". Racy by construction.
- **Chosen**: fork before anything runs. The parent becomes a minimal init; the app runs in
  the child. Orphans are re-parented to PID 1, the init, which reaps every child it has with
  ``waitpid(-1)``: its only children are the app and those orphans. The app's own children
  are the app's children, not the init's, so the init can never reap them (rule 2 holds by
  construction, not by bookkeeping). This is what tini and dumb-init do, minus the exec.

The init forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the app (``docker
stop`` signals PID 1), except a signal the kernel raised for the terminal (Ctrl-C in
``docker run -it``), which reaches the app directly because it shares the terminal's
foreground process group: forwarding it too would count as a second request. It waits with
``sigwaitinfo`` on blocked signals, so no Python handler runs in between (PID 1 gets no
signal it has no handler for unless the signal is blocked and waited for), and exits with
the app's exit code (128+N when the app was killed by signal N).

The fork happens in ``run()`` before the event loop starts. It is refused when other threads
run: a forked child has only the calling thread, so their work would silently be lost; the
app then runs as PID 1 without reaping, with a warning naming ``docker run --init``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import NoReturn

__all__ = ("ACT_AS_INIT", "FORWARDED", "become_init_if_pid1")

#: Signals the init passes on to the app.
FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
#: ``si_code`` of a signal the kernel raised itself (the terminal's Ctrl-C, Ctrl-\).
_SI_KERNEL = 0x80

#: Private switch for tests, read when ``run()`` starts: ``1`` splits as if PID 1 (under
#: PR_SET_CHILD_SUBREAPER orphans are re-parented exactly as to PID 1), ``0`` never splits;
#: unset (or anything else): only when PID 1. An environment variable, not a module global,
#: so a test sets it for the one process it starts. Not ``SUPER_VISOR_*``: `Settings`
#: refuses variables of that prefix it does not know, and this one is not for users.
ACT_AS_INIT = "_SUPER_VISOR_ACT_AS_INIT"


def become_init_if_pid1(root: str) -> None:
    """When this process is PID 1 (or `ACT_AS_INIT` is ``1``), fork: return in the child
    (the app); the parent becomes the init and never returns. Otherwise, or on a platform
    without ``fork``, do nothing. *root* is the tree's name, for the warning when the split
    is refused."""
    switch = os.environ.get(ACT_AS_INIT, "")
    wanted = {"1": True, "0": False}.get(switch, os.getpid() == 1)
    if not wanted or not hasattr(os, "fork") or not hasattr(signal, "sigwaitinfo"):
        return
    import threading  # lazy: only PID 1 pays for it

    if threading.active_count() > 1:
        _warn_threads(root)
        return
    waited = {signal.SIGCHLD, *FORWARDED}
    saved = signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    sys.stdout.flush()
    sys.stderr.flush()
    app = os.fork()
    if app == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, saved)  # pending signals arrive now
        return
    _serve_as_init(app, waited)


def _warn_threads(root: str) -> None:
    from ._eventlog import get_logger, record_fields

    get_logger().warning(
        "running as PID 1 with other threads already started, so super_visor cannot split "
        "into an init and the app; orphaned processes will not be reaped. Start no thread "
        "before run(), or run the container with an init (docker run --init, or tini)",
        extra=record_fields(root, None),
    )


def _serve_as_init(app: int, waited: set[signal.Signals]) -> NoReturn:
    """Reap every child, forward stop signals to *app*; exit with *app*'s code.

    Never returns nor raises: an exception here would unwind the caller's frames, which
    belong to the app (now the child), so a bug ends the init with exit 1 after one line.
    """
    try:
        _init_loop(app, waited)
    except BaseException as exc:  # noqa: BLE001 (see the docstring)
        os.write(2, f"super_visor init (PID 1): {exc!r}; exiting\n".encode(errors="replace"))
    os._exit(1)


def _init_loop(app: int, waited: set[signal.Signals]) -> None:
    while True:
        info = signal.sigwaitinfo(waited)
        if info.si_signo != signal.SIGCHLD:
            if info.si_code != _SI_KERNEL:
                _forward(app, info.si_signo)
            continue
        code = _reap(app)
        if code is not None:
            _reap(None)  # the zombies that died with it
            os._exit(code)


def _forward(app: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the app just ended; its SIGCHLD is due
        os.kill(app, signum)


def _reap(app: int | None) -> int | None:
    """Wait for every child that has ended; the exit code of *app* if it was one of them."""
    code = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code  # no child left at all
        if pid == 0:
            return code  # children remain, none has ended
        if pid == app:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code  # killed by signal N: 128+N, as shells say
