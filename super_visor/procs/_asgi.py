"""Uvicorn and Hypercorn: a real ASGI server in-process, as a proc.

Both run the app's ASGI ``lifespan`` inside the proc, so a FastAPI or Starlette app's
start-up handlers run after the procs declared before it are ready, and its shutdown
handlers run before they are stopped.

The drain on stop, in this order: stop accepting new connections, let requests in flight
finish within the grace, close idle keep-alive connections, cancel what is left, run the
lifespan shutdown. Each server does it through its own mechanism (PITFALLS 15):

- Uvicorn: our `uvicorn.Server` subclass never touches signal handlers (``serve()`` would
  otherwise install its own and re-raise the signal afterwards, so the supervisor would see
  SIGTERM twice); the token drives ``should_exit``, and ``timeout_graceful_shutdown`` is the
  grace. Uvicorn runs on asyncio only.
- Hypercorn: ``serve(..., shutdown_trigger=token.wait)`` installs no handlers at all, and
  ``graceful_timeout`` is the grace. It has one entry point per backend, asyncio and trio.

The servers are imported when an adapter is constructed, never by ``import super_visor``.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import TYPE_CHECKING, Any, final

import anyio

from .._errors import ConfigError, StartupError
from .._validate import check_port, check_seconds, valid
from ._common import FORCE_RESERVE, backend_name, require

if TYPE_CHECKING:
    import socket

    from .._token import CancellationToken

__all__ = ("Hypercorn", "Uvicorn")

#: Hypercorn announces each listener as "Running on http://127.0.0.1:8000 (CTRL + C ...)",
#: on both backends, right after it listens and after the lifespan start-up completed.
_HYPERCORN_RUNNING = re.compile(r"^Running on https?://\S*:(\d+)")


@final
class Uvicorn:
    """Serve the ASGI *app* with Uvicorn on *host*:*port*, inside this process (asyncio only).

    Ready once the lifespan start-up completed and the server listens; the ready value is
    the bound port, so ``port=0`` (the default) lets the OS pick one. On stop the server
    drains (see the module notes): requests in flight get the proc's grace, then Uvicorn
    cancels them and runs the lifespan shutdown. That grace is *grace* unless
    ``add_proc(..., grace=...)`` or a ``SUPER_VISOR_..._GRACE`` override set another: the
    value ``check`` shows is the drain in force. The supervisor waits one second more
    (``force_reserve``) before it would force the proc, room for that last step.

    ``**config`` goes to `uvicorn.Config` (e.g. ``proxy_headers=True``). Two settings differ
    from Uvicorn's: ``log_config=None``, so Uvicorn's loggers (start-up and access lines)
    propagate to your logging set-up, or to ``run()``'s stderr handler in its format
    (``log_format="json"`` included), instead of replacing it with Uvicorn's own; and
    ``timeout_graceful_shutdown`` is the grace in force (passing it in ``**config`` is a
    `~super_visor.ConfigError`: use *grace*).

    On trio, start-up fails with a `~super_visor.ConfigError` naming the fix: use `Hypercorn`
    or the asyncio backend. Without Uvicorn installed, constructing this raises
    `MissingExtraError` naming ``pip install 'super_visor[uvicorn]'``.

    .. versionadded:: 0.1
    """

    wait_ready = True
    app: object
    host: str
    port: int
    name: str
    grace: float
    force_reserve: float

    def __init__(
        self,
        app: object,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "uvicorn",
        grace: float = 5.0,
        **config: Any,
    ) -> None:
        require("super_visor.procs.Uvicorn", "uvicorn", "uvicorn")
        _init_server(self, app, host, port, name, grace)
        _refuse_own_drain(name, config, "timeout_graceful_shutdown")
        self.config: dict[str, Any] = {"log_config": None, **config}

    def __repr__(self) -> str:
        return f"Uvicorn({self.name!r}, {self.host}:{self.port})"

    async def run_proc(self, token: CancellationToken, /) -> None:
        _require_asyncio(self.name)
        import uvicorn

        app: Any = self.app
        settings = {"timeout_graceful_shutdown": _drain(self, token), **self.config}
        config = uvicorn.Config(app, host=self.host, port=self.port, **settings)
        server = _uvicorn_server_class()(config, token)
        failure: SystemExit | None = None
        try:
            async with anyio.create_task_group() as watcher:
                watcher.start_soon(_drain_on_stop, token, server)
                try:
                    await server.serve()
                except SystemExit as exc:  # how Uvicorn reports a failed start-up
                    failure = exc
                watcher.cancel_scope.cancel()
        finally:
            with anyio.move_on_after(FORCE_RESERVE, shield=True):
                await server.close_listeners()  # forced: do not leave the port open
        if failure is not None:
            raise StartupError(
                self.name,
                "Uvicorn did not start (the lifespan start-up failed or the address is in "
                f"use: see the 'uvicorn.error' log), exit status {failure.code}",
            ) from None


def _require_asyncio(name: str) -> None:
    """Uvicorn has no trio support: say so, and what to use instead, at its start."""
    if backend_name() != "asyncio":
        raise ConfigError(
            name,
            f"Uvicorn runs on asyncio only, but this supervisor runs on {backend_name()}",
            "use super_visor.procs.Hypercorn(app), which serves on asyncio and trio, "
            "or run the supervisor with backend='asyncio'",
        )


def _init_server(
    server: Uvicorn | Hypercorn, app: object, host: str, port: int, name: str, grace: float
) -> None:
    """The settings both servers share; *grace* is the drain, the supervisor gets a reserve."""
    server.grace = valid(name, check_seconds("grace", grace))
    server.port = valid(name, check_port("port", port, pick=True))
    server.force_reserve = FORCE_RESERVE
    server.app = app
    server.host = host
    server.name = name


def _refuse_own_drain(name: str, config: dict[str, Any], key: str) -> None:
    """The drain is the proc's grace, so that overrides of the grace reach it; a second
    knob for the same window would make ``check`` show one value and the server use another."""
    if key in config:
        raise ConfigError(
            name,
            f"the drain is set by grace, not by {key}, got {key}={config[key]!r}",
            f"pass grace={config[key]!r} instead",
        )


def _drain(server: Uvicorn | Hypercorn, token: CancellationToken) -> float:
    """The grace in force: the supervisor's (after every override), else the server's own."""
    return server.grace if token._grace is None else token._grace


async def _drain_on_stop(token: CancellationToken, server: Any) -> None:
    await token.wait()
    server.should_exit = True
    # Stop accepting at once instead of at Uvicorn's next 0.1 s tick: the first step of the
    # drain, and what a load balancer that already took us out expects.
    for listener in getattr(server, "servers", ()):
        listener.close()


@functools.cache
def _uvicorn_server_class() -> type[Any]:
    """The `uvicorn.Server` subclass, made on first use (Uvicorn is imported only then)."""
    import contextlib

    import uvicorn

    class _EmbeddedServer(uvicorn.Server):
        def __init__(self, config: uvicorn.Config, token: CancellationToken) -> None:
            super().__init__(config)
            self._token = token

        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield  # the root supervisor owns the signals

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                self._token.ready(self.servers[0].sockets[0].getsockname()[1])

        async def close_listeners(self) -> None:
            self.force_exit = True
            for listener in getattr(self, "servers", ()):
                listener.close()

    return _EmbeddedServer


@final
class Hypercorn:
    """Serve the ASGI *app* with Hypercorn on *host*:*port*, inside this process.

    Works on asyncio and on trio (Hypercorn's own entry point for each). Ready once the
    lifespan start-up completed and the server listens; the ready value is the bound port
    (``port=0``, the default, lets the OS pick). On stop, ``shutdown_trigger`` fires:
    Hypercorn stops accepting, gives requests in flight the proc's grace in force (*grace*
    unless overridden, as for `Uvicorn`) as its ``graceful_timeout``, then cancels them and
    runs the lifespan shutdown. The supervisor waits one second more (``force_reserve``).

    ``**config`` sets attributes of `hypercorn.config.Config` (e.g. ``keep_alive_timeout=5``).
    ``errorlog`` and ``accesslog`` default to the ``hypercorn.error`` and ``hypercorn.access``
    loggers, so Hypercorn adds no handler of its own and its lines (one per request, too)
    reach the app's logging set-up, or ``run()``'s stderr handler in its format. Without
    Hypercorn installed, constructing this raises `MissingExtraError` naming
    ``pip install 'super_visor[hypercorn]'``.

    .. versionadded:: 0.1
    """

    wait_ready = True
    app: object
    host: str
    port: int
    name: str
    grace: float
    force_reserve: float

    def __init__(
        self,
        app: object,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "hypercorn",
        grace: float = 5.0,
        **config: Any,
    ) -> None:
        require("super_visor.procs.Hypercorn", "hypercorn", "hypercorn")
        _init_server(self, app, host, port, name, grace)
        _refuse_own_drain(name, config, "graceful_timeout")
        self.config = config

    def __repr__(self) -> str:
        return f"Hypercorn({self.name!r}, {self.host}:{self.port})"

    async def run_proc(self, token: CancellationToken, /) -> None:
        from hypercorn.config import Config
        from hypercorn.logging import Logger

        config = Config()
        config.bind = [f"{self.host}:{self.port}"]
        config.graceful_timeout = _drain(self, token)
        config.errorlog = logging.getLogger("hypercorn.error")
        config.accesslog = logging.getLogger("hypercorn.access")
        for key, value in self.config.items():
            setattr(config, key, value)

        class _ReadyLogger(Logger):
            async def info(self, message: str, *args: Any, **kwargs: Any) -> None:
                await super().info(message, *args, **kwargs)
                if (found := _HYPERCORN_RUNNING.match(message)) is not None:
                    token.ready(int(found[1]))

        config.logger_class = _ReadyLogger
        if backend_name() == "trio":
            from hypercorn.trio import serve
        else:
            from hypercorn.asyncio import serve  # type: ignore[assignment]
        await serve(self.app, config, shutdown_trigger=token.wait)  # type: ignore[arg-type]
