"""Adapters check their arguments when constructed: a ConfigError naming the argument.

Each of these used to be accepted and fail later, at start-up or at the stop (a stop signal
that is no signal), or never (a thread calling an async function made a coroutine nobody
awaited).
"""

from __future__ import annotations

import inspect
import re
import signal
import sys
import warnings
from typing import TYPE_CHECKING

import pytest

from super_visor import ConfigError
from super_visor.procs import (
    Command,
    FileProbe,
    HttpProbe,
    Hypercorn,
    LogLineProbe,
    Periodic,
    TcpProbe,
    TcpServer,
    Thread,
    Uvicorn,
)

if TYPE_CHECKING:
    from collections.abc import Callable


async def async_fn(*_args: object) -> None:
    pass  # pragma: no cover (never called)


def sync_fn(*_args: object) -> None:
    pass  # pragma: no cover (never called)


async def app(scope: object, receive: object, send: object) -> None:
    pass  # pragma: no cover (never served)


ARGV = [sys.executable, "-c", "pass"]

BAD = [
    pytest.param(lambda: Command(ARGV, name="c", stop_signal=999), "stop_signal", id="signal"),
    pytest.param(lambda: Command(ARGV, name="c", stop_signal=True), "stop_signal", id="sig-bool"),
    pytest.param(lambda: Command(ARGV, name="c", keep_lines=-1), "keep_lines", id="keep_lines"),
    pytest.param(lambda: Command(ARGV, name="c", ready="port 80"), "ready", id="ready"),  # type: ignore[arg-type]
    pytest.param(lambda: Command(ARGV, name=""), "the command name", id="name"),
    pytest.param(lambda: TcpProbe("127.0.0.1", 70000), "port", id="probe-port-high"),
    pytest.param(lambda: TcpProbe("127.0.0.1", 0), "port", id="probe-port-zero"),
    pytest.param(lambda: HttpProbe("http://127.0.0.1:70000/"), "Port out of range", id="url"),
    pytest.param(lambda: HttpProbe("http://127.0.0.1:0/"), "port 0", id="url-port-zero"),
    pytest.param(lambda: HttpProbe("http://h/", attempt_timeout=0), "attempt_timeout", id="att"),
    pytest.param(lambda: FileProbe("/x", attempt_timeout=-1), "attempt_timeout", id="file"),
    pytest.param(lambda: LogLineProbe("(unclosed"), "not a valid regular expression", id="re"),
    pytest.param(lambda: LogLineProbe(42), "pattern must be a str", id="re-type"),  # type: ignore[arg-type]
    pytest.param(lambda: TcpServer(async_fn, port=70000), "port", id="server-port"),
    pytest.param(
        lambda: TcpServer(sync_fn),  # type: ignore[arg-type]
        "handler must be an async function",
        id="handler",
    ),
    pytest.param(lambda: TcpServer(async_fn, grace=-1), "grace", id="server-grace"),
    pytest.param(
        lambda: Periodic(sync_fn, every=1),  # type: ignore[arg-type]
        "fn must be an async function",
        id="per",
    ),
    pytest.param(lambda: Thread(async_fn), "fn must be a plain (sync) function", id="thread"),
    pytest.param(lambda: Uvicorn(app, port=-1), "port", id="uvicorn-port"),
    pytest.param(lambda: Hypercorn(app, port=65536), "port", id="hypercorn-port"),
    pytest.param(
        lambda: Uvicorn(app, timeout_graceful_shutdown=3),
        "the drain is set by grace",
        id="uvicorn-drain",
    ),
    pytest.param(
        lambda: Hypercorn(app, graceful_timeout=3), "the drain is set by grace", id="hyp-drain"
    ),
]


@pytest.mark.parametrize(("make", "named"), BAD)
def test_a_bad_argument_is_a_config_error_naming_it(make: Callable[[], object], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make()
    exc = caught.value
    assert named in exc.problem
    assert "got " in exc.problem
    assert exc.fix
    assert str(exc) == f"{exc.path}: {exc.problem}; {exc.fix}"


def test_the_stop_signal_error_names_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        Command(ARGV, name="c", stop_signal=999)
    assert caught.value.path == "c"
    assert caught.value.problem == "stop_signal must be a signal of this platform, got 999"


@pytest.mark.parametrize(
    "make",
    [
        lambda coro: Thread(coro),
        lambda coro: Periodic(coro, every=1),
        lambda coro: TcpServer(coro),
    ],
    ids=["thread", "periodic", "tcp-server"],
)
def test_a_coroutine_object_passed_by_mistake_is_refused_and_closed(
    make: Callable[[object], object],
) -> None:
    coro = async_fn()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "never awaited" would be a warning: none may come
        with pytest.raises(ConfigError, match="got a coroutine object"):
            make(coro)
    assert inspect.getcoroutinestate(coro) == "CORO_CLOSED"


def test_good_arguments_are_accepted() -> None:
    probe = LogLineProbe(re.compile("up"))
    cmd = Command(ARGV, name="c", stop_signal=signal.SIGINT, keep_lines=0, ready=probe)
    assert cmd.stop_signal is signal.SIGINT
    assert TcpProbe("127.0.0.1", 65535).port == 65535
    assert TcpServer(async_fn, port=0).port == 0  # 0: the OS picks one
    assert Thread(lambda stop: None, name="t").name == "t"
    assert Periodic(async_fn, every=1).name == "async_fn"
    assert Uvicorn(app, port=0).port == 0
