"""Command: an OS program as a proc, in its own process group, stopped by signal then killed.

Why a process group (PITFALLS 13): ``kill()`` reaches only the direct child, so a shell
script's children or a server's workers would be orphaned. The child is started in a new
session (``start_new_session=True``: a new session and process group whose id is the child's
pid), and every signal goes to the whole group with `os.killpg` (the helpers are in
``_pgroup``).

The stop, in order:

1. ``stop_signal`` (SIGTERM) to the group;
2. wait up to ``grace`` for the child to exit *and* for its output pipes to close (a pipe
   closes only when no process of the group holds it any more: a grandchild still writing
   keeps it open, so this waits for the group without polling it);
3. SIGKILL to the group, then reap the child.

Whatever happens, the clean-up (SIGKILL to the group, close the pipes, reap) runs in a
shielded, bounded scope: a supervisor force-cancelling this proc, or an error anywhere, still
leaves no zombie and no orphan in the group. A group member that left the group itself
(``setsid``, a daemonising double fork) is beyond reach, as is everything when our own
process is killed with SIGKILL; see docs/how-to/real-procs.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from typing import TYPE_CHECKING, final

import anyio

from .._errors import ConfigError, StartupError
from .._events import EventKind, record_fields
from .._notify import child_environment
from .._validate import Problem, check_count, check_name, check_seconds, valid
from ._common import FORCE_RESERVE
from ._output import OutputRing
from ._pgroup import signal_group, wait_group_gone

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from anyio.abc import Process

    from .._token import CancellationToken
    from ._probes import Probe

__all__ = ("Command", "CommandFailed")

#: Bound on the shielded clean-up: after SIGKILL a reap takes microseconds, unless the child
#: is in uninterruptible sleep (a dead NFS mount), which nothing can shorten (anyio #757).
_CLEANUP_TIMEOUT = 5.0
#: How long the pumps may go on reading after the group was killed (buffered output).
_DRAIN_TIMEOUT = 1.0


class CommandFailed(Exception):
    """A `Command`'s program exited with a non-zero code or was killed by a signal.

    Raised from the proc, so it is the proc's outcome ``error``. The message says the exit
    code or the signal and quotes the last lines the program printed. The parts stay
    available: ``name``, ``returncode`` (negative for a signal, as in `subprocess`),
    ``signal`` (the signal number, or None) and ``last_lines``.

    A stop that super_visor asked for is not a failure: exiting with 0 or by the stop
    signal (also as exit code 128+N), or being SIGKILLed after the grace, returns normally.

    .. versionadded:: 0.1
    """

    def __init__(self, name: str, returncode: int, last_lines: Sequence[str]) -> None:
        self.name = name
        self.returncode = returncode
        self.signal = -returncode if returncode < 0 else None
        self.last_lines = tuple(last_lines)
        tail = "\n".join(f"  {line}" for line in self.last_lines) or "  (no output)"
        super().__init__(f"command {name!r} {describe_exit(returncode)}; last output:\n{tail}")


def describe_exit(returncode: int) -> str:
    """``exited with code 3`` or ``was killed by signal SIGKILL (9)``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "an unknown signal"
    return f"was killed by signal {name} ({-returncode})"


@final
class Command:
    """Run a program as a proc: started in its own process group, stopped by signal.

    Args:
        argv: the program and its arguments, e.g. ``[sys.executable, "worker.py"]``. A
            single string is refused: there is no shell, so nothing would split it.
        name: the proc name (and the logger ``super_visor.procs.<name>``).
        env: the child's whole environment (like `subprocess`: it *replaces* ours; pass
            ``{**os.environ, "KEY": "value"}`` to add to it). None inherits ours. Either
            way ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` are left out:
            systemd's notifications are this process's to send.
        cwd: the child's working directory.
        ready: a readiness probe (`TcpProbe`, `HttpProbe`, `LogLineProbe`, `FileProbe`).
            With one, the command gates start-up: the next proc starts once the probe passed,
            and the probe's value is the ready value. Without one the ready value is the pid.
        stop_signal: sent to the whole group to ask it to stop (SIGTERM; SIGINT suits
            programs that treat Ctrl-C as their clean stop).
        grace: seconds between ``stop_signal`` and SIGKILL.
        keep_lines: how many of the last output lines a failure quotes.

    The child's stdout and stderr are read line by line, logged at INFO on the logger
    ``super_visor.procs.<name>`` (``extra={"stream": "stdout"}`` or ``"stderr"``), and the
    last ``keep_lines`` are kept for error messages. Its stdin is ``/dev/null``.

    Outcomes:

    - it exits 0 on its own: the proc completes, returning 0;
    - it exits non-zero or dies by a signal on its own: `CommandFailed`;
    - a stop was requested: it gets ``stop_signal``, then SIGKILL after ``grace``; the proc
      returns the exit code (negative: the signal). Only a non-zero exit code other than
      128+``stop_signal`` is a `CommandFailed` then;
    - the probe does not pass within its timeout, or the child exits first:
      `~super_visor.StartupError` naming the command, the probe and the last output lines.

    *grace* is the proc's grace like any other (``check`` shows it, ``add_proc(cmd,
    grace=...)`` and ``SUPER_VISOR__<PATH>__GRACE`` override it), and whatever value is in
    force is the SIGKILL delay. The supervisor waits one second more (``force_reserve``)
    before it force-cancels the proc, room for the SIGKILL and the reap, so a child that
    ignores its stop signal still ends as a reported, clean stop rather than ``FORCED``.

    Every argument is checked here: a bad one is a `~super_visor.ConfigError` naming it.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        name: str,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        ready: Probe | None = None,
        stop_signal: int = signal.SIGTERM,
        grace: float = 5.0,
        keep_lines: int = 50,
    ) -> None:
        valid(name, check_name("the command name", name, "Command([...], name='redis')"))
        _check_argv(name, argv)
        #: The SIGKILL delay when no supervisor says otherwise (the token carries the grace
        #: in force after overrides, and that one wins: see `_Run.kill_after`).
        self.grace = valid(name, check_seconds("grace", grace))
        #: Room the supervisor leaves after the grace for the SIGKILL and the reap, so a
        #: child that ignores its stop signal still ends as a reported, clean stop.
        self.force_reserve = FORCE_RESERVE
        self.argv = tuple(os.fspath(arg) for arg in argv)
        self.name = name
        self.env = None if env is None else dict(env)
        self.cwd = cwd
        self.ready = _check_probe(name, ready)
        self.stop_signal = _check_signal(name, stop_signal)
        #: Gate start-up only when there is something to wait for; the probe's own timeout
        #: bounds that wait, and the supervisor's ready_timeout (a little later) backs it up.
        self.wait_ready = ready is not None
        self.ready_timeout = None if ready is None else ready.timeout + FORCE_RESERVE
        self.keep_lines = valid(name, check_count("keep_lines", keep_lines, "50"))
        self.logger = logging.getLogger(f"super_visor.procs.{name}")
        #: The pid (= process group id) of the running child, None when none runs.
        self.pid: int | None = None

    def __repr__(self) -> str:
        return f"Command({list(self.argv)!r}, name={self.name!r})"

    async def _spawn(self) -> Process:
        """Start the child as the leader of a new process group (see the module docstring)."""
        process = await anyio.open_process(
            self.argv,
            stdin=subprocess.DEVNULL,
            env=child_environment(self.env),
            cwd=self.cwd,
            start_new_session=True,
        )
        self.pid = process.pid
        return process

    async def run_proc(self, token: CancellationToken, /) -> object:
        output = OutputRing(self.logger, self.keep_lines, path=token.path or self.name)
        process = await self._spawn()
        run = _Run(self, process, output)
        try:
            async with anyio.create_task_group() as pumps:
                output.expect(2)
                assert process.stdout is not None
                assert process.stderr is not None
                pumps.start_soon(output.pump, process.stdout, "stdout")
                pumps.start_soon(output.pump, process.stderr, "stderr")
                await run.supervise(token)
                with anyio.move_on_after(_DRAIN_TIMEOUT):
                    await output.closed.wait()
                pumps.cancel_scope.cancel()  # a process that left the group holds a pipe
        finally:
            self.pid = None
            with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True):
                signal_group(process.pid, signal.SIGKILL)
                await process.aclose()
                await wait_group_gone(process.pid)
        return run.verdict()


def _check_argv(name: str, argv: object) -> None:
    """A single string is refused: there is no shell, so nothing would split it."""
    if isinstance(argv, (str, bytes)) or not argv:
        raise ConfigError(
            name,
            f"argv must be a non-empty list of arguments, got {argv!r}",
            "pass e.g. Command(['redis-server', '--port', '6380'], name='redis')",
        )


def _check_probe(name: str, ready: object) -> Probe | None:
    """*ready* when it is a probe (or None): a string such as "port 80" would otherwise
    fail only at start, inside the run."""
    from ._probes import Probe  # at call time: _probes is not needed to import this module

    if ready is None or isinstance(ready, Probe):
        return ready
    return valid(
        name,
        Problem(
            f"ready must be a readiness probe or None, got {ready!r}",
            "pass e.g. ready=TcpProbe('127.0.0.1', 8080) or ready=LogLineProbe('listening')",
        ),
    )


def _check_signal(name: str, stop_signal: object) -> signal.Signals:
    """*stop_signal* as a `signal.Signals`; a number that is no signal here is refused now,
    not when the stop comes and the child would get nothing before its SIGKILL."""
    if isinstance(stop_signal, int) and not isinstance(stop_signal, bool):
        with contextlib.suppress(ValueError):
            return signal.Signals(stop_signal)
    return valid(
        name,
        Problem(
            f"stop_signal must be a signal of this platform, got {stop_signal!r}",
            "pass e.g. stop_signal=signal.SIGTERM or signal.SIGINT",
        ),
    )


@final
class _Run:
    """One run of a command: readiness, waiting, stopping, and the verdict."""

    def __init__(self, command: Command, process: Process, output: OutputRing) -> None:
        self.command = command
        #: Seconds from the stop signal to SIGKILL: the grace in force (see `supervise`).
        self.kill_after = command.grace
        self.process = process
        self.output = output
        self.stopping = False
        self.killed = False
        self.startup_error: StartupError | None = None

    async def supervise(self, token: CancellationToken) -> None:
        if token._grace is not None:  # the supervisor's value, after every override
            self.kill_after = token._grace
        with token.cancel_scope():
            try:
                value = await self._wait_ready()
            except StartupError as exc:
                # Kept, not raised: raised inside the task group it would come out wrapped
                # in an ExceptionGroup. verdict() raises it after the stop and the clean-up.
                self.startup_error = exc
            else:
                token.ready(value)
                await self.process.wait()
        self.stopping = self.process.returncode is None
        await self._wind_down()

    async def _wait_ready(self) -> object:
        probe = self.command.ready
        if probe is None:
            return self.process.pid
        found: list[object] = []
        with anyio.move_on_after(probe.timeout):
            async with anyio.create_task_group() as race:

                async def run_probe() -> None:
                    found.append(await probe.wait_ready(self.output))
                    race.cancel_scope.cancel()

                async def watch_exit() -> None:
                    await self.process.wait()
                    race.cancel_scope.cancel()

                race.start_soon(run_probe)
                race.start_soon(watch_exit)
        if found:
            return found[0]
        raise self._not_ready(probe)

    def _not_ready(self, probe: Probe) -> StartupError:
        returncode = self.process.returncode
        if returncode is not None:
            problem = f"{describe_exit(returncode)} before {probe!r} passed"
        else:
            problem = f"{probe!r} did not pass within {probe.timeout:g}s (its timeout)"
        name = self.command.name
        return StartupError(name, f"command {problem}; last output:\n{self.output.tail()}")

    async def _wind_down(self) -> None:
        """Signal the group (the child, or what it left behind), wait, then SIGKILL it."""
        command = self.command
        pid = self.process.pid
        signal_group(pid, command.stop_signal)
        with anyio.move_on_after(self.kill_after):
            await self.process.wait()
            await self.output.closed.wait()
        self.killed = self.process.returncode is None
        if self.killed or not self.output.closed.is_set():
            command.logger.warning(
                "%s: still running %ss after %s; sending SIGKILL to its process group",
                command.name,
                self.kill_after,
                command.stop_signal.name,
                extra=record_fields(self.output.path, EventKind.FORCED),
            )
            signal_group(pid, signal.SIGKILL)
            await self.process.wait()

    def verdict(self) -> int:
        """The exit code when the run ended as it should, else the error it is."""
        if self.startup_error is not None:
            raise self.startup_error
        returncode = self.process.returncode
        assert returncode is not None, "verdict() before the child was reaped"
        clean = returncode == 0
        if self.stopping:
            stop = int(self.command.stop_signal)
            clean = clean or returncode in (-stop, 128 + stop)
            clean = clean or (self.killed and returncode == -signal.SIGKILL)
        if not clean:
            raise CommandFailed(self.command.name, returncode, self.output.lines)
        return returncode
