"""systemd notify (API.md section 9): what a real NOTIFY_SOCKET receives, and when.

Each test binds a real AF_UNIX datagram socket (a path in a temporary directory, or an
abstract name) and runs the tree with ``start()``. Order is checked by draining the socket
inside the event callbacks and the procs (see `NotifyListener.drain`), cadence by a reading
thread that stamps arrivals.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor import EventKind, Restart, SupervisorBuilder, SupervisorError

from .fakes import trio_worker_thread as trio_worker_thread  # session fixture, see fakes
from .notify_socket import NotifyListener

if TYPE_CHECKING:
    from collections.abc import Iterator

    from super_visor import CancellationToken, Event

#: A short watchdog period, so the tests see several pings in a second.
PERIOD_USEC = 200_000
PERIOD = PERIOD_USEC / 1_000_000


@pytest.fixture(params=["path", "abstract"])
def listener(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[NotifyListener]:
    """A real notify socket, named by ``NOTIFY_SOCKET`` (no watchdog unless a test sets it)."""
    notify = NotifyListener(abstract=request.param == "abstract")
    monkeypatch.setenv("NOTIFY_SOCKET", notify.address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        yield notify
    finally:
        notify.close()


class Journal:
    """Events and datagrams in the one order they happened (see the module docstring)."""

    def __init__(self, listener: NotifyListener) -> None:
        self.listener = listener
        self.entries: list[str] = []
        self.tree_ready = anyio.Event()

    def note(self, entry: str) -> None:
        self.entries.extend(f"sent {m}" for m in self.listener.drain())
        self.entries.append(entry)

    def on_event(self, event: Event) -> None:
        self.note(f"{event.kind.value} {event.path}")
        if event.kind is EventKind.READY and event.path == "app":
            self.tree_ready.set()

    def sent(self) -> list[str]:
        self.note("end")
        return [e.removeprefix("sent ") for e in self.entries if e.startswith("sent ")]

    def index(self, entry: str) -> int:
        return self.entries.index(entry)


def idle(name: str) -> object:
    async def proc(token: CancellationToken) -> None:
        await token.wait()

    proc.__name__ = name
    return proc


def tree(journal: Journal) -> SupervisorBuilder:
    """app: a, inner (b, c), last; last shuts the tree down once it is all ready."""

    async def last(token: CancellationToken) -> None:
        await journal.tree_ready.wait()
        token.request_shutdown("test over")
        await token.wait()
        journal.note("last saw its token cancelled")

    inner = SupervisorBuilder("inner").add_proc(idle("b")).add_proc(idle("c"))
    return (
        SupervisorBuilder("app")
        .on_event(journal.on_event)
        .add_proc(idle("a"))
        .add_proc(inner)
        .add_proc(last)
    )


async def test_ready_once_after_every_proc_is_ready(listener: NotifyListener) -> None:
    journal = Journal(listener)
    await tree(journal).build().start(handle_signals=False)
    sent = journal.sent()
    assert sent.count("READY=1") == 1
    ready_at = journal.index("sent READY=1")
    for path in ("app/a", "app/inner/b", "app/inner/c", "app/inner", "app/last"):
        assert journal.index(f"ready {path}") < ready_at
    assert journal.index("ready app") < ready_at
    assert [m for m in sent if not m.startswith("STATUS=")] == ["READY=1", "STOPPING=1"]


async def test_stopping_is_sent_before_any_proc_is_asked_to_stop(
    listener: NotifyListener,
) -> None:
    journal = Journal(listener)
    await tree(journal).build().start(handle_signals=False)
    journal.sent()
    stopping_at = journal.index("sent STOPPING=1")
    first_stop = min(i for i, e in enumerate(journal.entries) if e.startswith("stopping app/"))
    assert journal.index("shutdown_begun app") < stopping_at < first_stop
    assert stopping_at < journal.index("last saw its token cancelled")


async def test_status_lines_are_coalesced_and_the_latest_state_arrives(
    listener: NotifyListener,
) -> None:
    """A burst of 30 restarts is dozens of events but a few STATUS lines; the line saying
    all 30 arrives within a second (generously: two) of the burst's end."""
    runs = 0
    settled = anyio.Event()
    events = 0

    def count(_event: Event) -> None:
        nonlocal events
        events += 1

    async def flappy(token: CancellationToken) -> None:
        nonlocal runs
        runs += 1
        if runs <= 30:
            return  # ends cleanly: restarted at once (PERMANENT, no backoff)
        settled.set()
        await token.wait()

    async def watch(token: CancellationToken) -> None:
        await settled.wait()
        burst_end = time.monotonic()
        arrived = await listener.wait_until(lambda ms: any("30 restarts" in m for m in ms))
        assert arrived - burst_end < 2.0
        token.request_shutdown("test over")

    sup = (
        SupervisorBuilder("app", max_restarts=100, within=60)
        .on_event(count)
        .add_proc(flappy, restart=Restart.PERMANENT)
        .add_proc(watch)
        .build()
    )
    async with listener.receiving():
        await sup.start(handle_signals=False)
    statuses = [m for m in listener.messages if m.startswith("STATUS=")]
    assert events > 60
    assert 2 <= len(statuses) < events / 4
    assert statuses[-1].startswith("STATUS=stopped: 0/2 procs ready, 30 restarts; last: app ")
    assert all("\n" not in s for s in statuses)


async def test_watchdog_pings_every_half_period(
    listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", str(PERIOD_USEC))

    async def observed(token: CancellationToken) -> None:
        await listener.wait_until(lambda ms: ms.count("WATCHDOG=1") >= 6)
        token.request_shutdown("test over")

    sup = SupervisorBuilder("app").add_proc(observed).build()
    began = time.monotonic()
    async with listener.receiving():
        await sup.start(handle_signals=False)
    ended = time.monotonic()
    pings = [at for at, m in listener.stamped if m == "WATCHDOG=1"]
    assert len(pings) >= 6
    # Never more often than every half period (timers only run late), and never much
    # sparser (generous: a busy machine delays ticks).
    assert len(pings) <= (ended - began) / (PERIOD / 2) + 2
    assert max(b - a for a, b in itertools.pairwise(pings)) < 10 * PERIOD


async def test_no_watchdog_once_a_supervisor_gave_up(
    listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inner exceeds its restart limit; the tree goes on (inner is neither significant nor
    restarted), but the pings stop for good."""
    monkeypatch.setenv("WATCHDOG_USEC", str(PERIOD_USEC))
    journal = Journal(listener)
    gave_up = anyio.Event()

    def on_event(event: Event) -> None:
        journal.on_event(event)
        if event.kind is EventKind.RESTART_LIMIT:
            gave_up.set()

    async def crashy(token: CancellationToken) -> None:
        await anyio.sleep(PERIOD)  # a few pings go out before the limit
        raise RuntimeError("crash")

    async def survivor(token: CancellationToken) -> None:
        await gave_up.wait()
        await anyio.sleep(4 * PERIOD)  # long enough for 8 ticks
        journal.note("survivor done")
        token.request_shutdown("test over")

    inner = SupervisorBuilder("inner", max_restarts=1).add_proc(crashy, restart=Restart.PERMANENT)
    sup = (
        SupervisorBuilder("app")
        .on_event(on_event)
        .add_proc(inner, significant=False)
        .add_proc(survivor)
        .build()
    )
    with pytest.raises(SupervisorError):  # inner failed: the report says so
        await sup.start(handle_signals=False)
    journal.sent()
    limit_at = journal.index("restart_limit app/inner")
    before = journal.entries[:limit_at]
    after = journal.entries[limit_at:]
    assert "sent WATCHDOG=1" in before
    assert "sent WATCHDOG=1" not in after
    assert "survivor done" in after


async def test_no_watchdog_while_the_loop_is_blocked(
    listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proc blocks the loop for four periods: nothing is sent meanwhile, nor for the late
    tick right after it; the pings resume once the loop runs on time again."""
    monkeypatch.setenv("WATCHDOG_USEC", str(PERIOD_USEC))
    seen: dict[str, list[str]] = {}

    async def blocker(token: CancellationToken) -> None:
        await anyio.sleep(PERIOD)
        seen["before"] = listener.drain()
        time.sleep(4 * PERIOD)  # noqa: ASYNC251 (the point: a proc blocking the loop)
        seen["during"] = listener.drain()
        await anyio.sleep(PERIOD / 4)  # the watchdog task's late tick runs meanwhile
        seen["late tick"] = listener.drain()
        await anyio.sleep(2 * PERIOD)
        seen["after"] = listener.drain()
        token.request_shutdown("test over")

    with caplog_at_warning() as records:
        await SupervisorBuilder("app").add_proc(blocker).build().start(handle_signals=False)
    assert "WATCHDOG=1" in seen["before"]
    assert "WATCHDOG=1" not in seen["during"]
    assert "WATCHDOG=1" not in seen["late tick"]
    assert "WATCHDOG=1" in seen["after"]
    assert any("blocked for more than the watchdog period" in r for r in records)


class caplog_at_warning:
    """The WARNING messages of super_visor's logger during the block (no handler kept)."""

    def __init__(self) -> None:
        self.records: list[str] = []
        self._handler = logging.Handler()
        self._handler.emit = lambda record: self.records.append(record.getMessage())  # type: ignore[method-assign]

    def __enter__(self) -> list[str]:
        logging.getLogger("super_visor").addHandler(self._handler)
        return self.records

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger("super_visor").removeHandler(self._handler)


async def test_extend_timeout_during_a_slow_stop(listener: NotifyListener) -> None:
    """A proc takes 1.6 s of its 5 s grace to stop: the stop is long but within its plan,
    so systemd is asked to extend its timeout while it lasts, never beyond 3 s at a time."""

    async def slow(token: CancellationToken) -> None:
        await token.wait()
        await anyio.sleep(1.6)

    async def brief(token: CancellationToken) -> None:
        token.request_shutdown("test over")

    sup = SupervisorBuilder("app").add_proc(slow, grace=5).add_proc(brief).build()
    async with listener.receiving():
        await sup.start(handle_signals=False)
    sent = listener.messages
    extends = [m for m in sent if m.startswith("EXTEND_TIMEOUT_USEC=")]
    assert len(extends) >= 1
    assert all(0 < int(m.partition("=")[2]) <= 3_000_000 for m in extends)
    assert sent.index("STOPPING=1") < sent.index(extends[0])


async def test_a_quick_stop_asks_for_no_extension(listener: NotifyListener) -> None:
    journal = Journal(listener)
    await tree(journal).build().start(handle_signals=False)
    assert not any(m.startswith("EXTEND_TIMEOUT_USEC=") for m in journal.sent())


async def test_notify_false_sends_nothing(
    listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", str(PERIOD_USEC))
    journal = Journal(listener)
    await tree(journal).build().start(handle_signals=False, notify=False)
    assert journal.sent() == []


async def test_watchdog_pid_of_another_process_sends_no_ping(
    listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watchdog belongs to WATCHDOG_PID (here our parent): readiness is still ours."""
    import os

    monkeypatch.setenv("WATCHDOG_USEC", str(PERIOD_USEC))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getppid()))

    async def lingering(token: CancellationToken) -> None:
        await anyio.sleep(3 * PERIOD)  # several ticks' time
        token.request_shutdown("test over")

    journal = Journal(listener)
    sup = SupervisorBuilder("app").on_event(journal.on_event).add_proc(lingering).build()
    await sup.start(handle_signals=False)
    sent = journal.sent()
    assert "READY=1" in sent
    assert "WATCHDOG=1" not in sent


async def test_a_missing_socket_is_logged_once_and_the_tree_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/super-visor/notify.sock")
    monkeypatch.setenv("WATCHDOG_USEC", str(PERIOD_USEC))

    async def lingering(token: CancellationToken) -> None:
        await anyio.sleep(3 * PERIOD)
        token.request_shutdown("test over")

    with caplog_at_warning() as records:
        report = (
            await SupervisorBuilder("app").add_proc(lingering).build().start(handle_signals=False)
        )
    assert report.reason == "test over"
    assert len([r for r in records if "cannot notify systemd" in r]) == 1


async def test_a_socket_that_is_not_local_is_logged_and_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``vsock:`` (a VM's manager) is not spoken: the tree runs without notifying."""
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")

    async def brief(token: CancellationToken) -> None:
        token.request_shutdown("test over")

    with caplog_at_warning() as records:
        report = await SupervisorBuilder("app").add_proc(brief).build().start(handle_signals=False)
    assert report.reason == "test over"
    assert [r for r in records if "NOTIFY_SOCKET" in r] == [
        "app: NOTIFY_SOCKET='vsock:2:1234' is not a unix socket path or @name (only those "
        "are supported); the service manager will not hear from this service: unset "
        "NOTIFY_SOCKET, or pass notify=False"
    ]
