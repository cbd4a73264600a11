"""Readiness probes for `Command`: when is the child ready, and what is its ready value.

A probe answers one question, "is it ready yet?", and knows nothing about processes; the
command runs it against the child's exit and the probe's own ``timeout`` (see
``Command._wait_ready``), so a child that dies while starting fails start-up at once instead
of after the timeout.

Why polling: a port, a URL or a file belongs to another process, and there is no portable
event for "someone started listening" (Kubernetes probes poll for the same reason). The log
line probe needs no polling: it watches the output as the command reads it. Each attempt of
a polling probe is bounded by ``attempt_timeout`` (as Kubernetes' ``timeoutSeconds``), so a
server that accepts a connection and never answers costs one attempt, not the whole window.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, final
from urllib.parse import SplitResult, urlsplit, urlunsplit

import anyio

from .._errors import ConfigError
from .._validate import check_port, check_seconds, valid

if TYPE_CHECKING:
    from ._output import OutputRing

__all__ = ("FileProbe", "HttpProbe", "LogLineProbe", "Probe", "TcpProbe")

_DEFAULT_TIMEOUT = 10.0
_DEFAULT_INTERVAL = 0.05
#: Kubernetes' default ``timeoutSeconds`` for one probe attempt.
_DEFAULT_ATTEMPT_TIMEOUT = 1.0


class Probe:
    """Base class of the readiness probes; pass one as ``Command(..., ready=probe)``.

    ``timeout`` bounds the wait: past it, start-up fails with a `~super_visor.StartupError`
    naming the command and the probe, quoting the child's last output lines.

    .. versionadded:: 0.1
    """

    timeout: float

    def __init__(self, timeout: float) -> None:
        valid(type(self).__name__, check_seconds("timeout", timeout, positive=True))
        self.timeout = timeout

    async def wait_ready(self, output: OutputRing) -> object:
        """Return the ready value once the child is ready (may wait forever)."""
        raise NotImplementedError


class _PollingProbe(Probe):
    def __init__(self, timeout: float, interval: float, attempt_timeout: float) -> None:
        super().__init__(timeout)
        kind = type(self).__name__
        valid(kind, check_seconds("interval", interval, positive=True))
        valid(kind, check_seconds("attempt_timeout", attempt_timeout, positive=True))
        self.interval = interval
        self.attempt_timeout = attempt_timeout

    async def wait_ready(self, output: OutputRing) -> object:
        while True:
            found = None
            with anyio.move_on_after(self.attempt_timeout):
                found = await self.check()
            if found is not None:
                return found
            await anyio.sleep(self.interval)

    async def check(self) -> object | None:
        """One attempt: the ready value, or None to try again after ``interval``."""
        raise NotImplementedError


@final
class TcpProbe(_PollingProbe):
    """Ready once *host*:*port* accepts a TCP connection; the ready value is the port.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = _DEFAULT_TIMEOUT,
        interval: float = _DEFAULT_INTERVAL,
        attempt_timeout: float = _DEFAULT_ATTEMPT_TIMEOUT,
    ) -> None:
        super().__init__(timeout, interval, attempt_timeout)
        self.host = host
        self.port = valid("TcpProbe", check_port("port", port, pick=False))

    def __repr__(self) -> str:
        return f"TcpProbe({self.host}:{self.port})"

    async def check(self) -> object | None:
        try:
            stream = await anyio.connect_tcp(self.host, self.port)
        except OSError:
            return None
        await stream.aclose()
        return self.port


@final
class HttpProbe(_PollingProbe):
    """Ready once a GET of *url* answers with a status from 200 to 399, as Kubernetes'
    ``httpGet`` probe counts success; the ready value is the URL (without credentials).

    Speaks plain HTTP/1.1 over anyio sockets (``https`` through anyio's TLS), so it adds no
    dependency. A redirect counts as ready and is not followed. Credentials in the URL
    (``http://user:secret@host/``) are never sent: not in ``Host:``, and not as a Basic
    ``Authorization`` header either, so point the probe at a health URL that needs none.
    Each attempt gets *attempt_timeout* seconds (Kubernetes' ``timeoutSeconds``, 1 s).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = _DEFAULT_TIMEOUT,
        interval: float = _DEFAULT_INTERVAL,
        attempt_timeout: float = _DEFAULT_ATTEMPT_TIMEOUT,
    ) -> None:
        super().__init__(timeout, interval, attempt_timeout)
        parts = _split_url(url)
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        authority = host if parts.port is None else f"{host}:{parts.port}"
        #: The URL as given minus any credentials: safe in logs, errors and the ready value.
        self.url = urlunsplit(parts._replace(netloc=authority))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._request = (
            f"GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n"
            "User-Agent: super_visor-probe\r\n\r\n"
        ).encode("ascii")
        #: The status of the last answer (None: no answer yet), quoted when the probe times out.
        self.last_status: int | None = None

    def __repr__(self) -> str:
        status = "" if self.last_status is None else f", last status {self.last_status}"
        return f"HttpProbe({self.url}{status})"

    async def check(self) -> object | None:
        try:
            stream = await self._connect()
        except OSError:
            return None
        async with stream:
            try:
                await stream.send(self._request)
                status = await _read_status(stream)
            except (OSError, anyio.EndOfStream, anyio.BrokenResourceError, ValueError):
                return None
        self.last_status = status
        return self.url if 200 <= status < 400 else None

    async def _connect(self) -> anyio.abc.ByteStream:
        if self._tls:
            return await anyio.connect_tcp(self._host, self._port, tls=True)
        return await anyio.connect_tcp(self._host, self._port)


def _split_url(url: str) -> SplitResult:
    """*url* split, if it is an http(s) URL with a host and a valid port."""
    problem = None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port that is not a number or out of range
        problem = str(exc)
    else:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problem = "the URL must be http:// or https:// with a host"
        elif port == 0:
            problem = "port 0 cannot be probed"
    if problem is None:
        return parts
    raise ConfigError(
        "HttpProbe",
        f"{problem}, got {url!r}",
        "pass e.g. HttpProbe('http://127.0.0.1:8000/health')",
    )


async def _read_status(stream: anyio.abc.ByteReceiveStream) -> int:
    """The status code from the first line of an HTTP response."""
    head = b""
    while b"\r\n" not in head:
        head += await stream.receive()
        if len(head) > 8192:
            msg = "no status line in the first 8 KiB"
            raise ValueError(msg)
    version, _, rest = head.partition(b" ")
    if not version.startswith(b"HTTP/"):
        msg = f"not an HTTP response: {head[:40]!r}"
        raise ValueError(msg)
    return int(rest[:3])


@final
class LogLineProbe(Probe):
    """Ready once a line of the child's stdout or stderr matches *pattern* (``re.search``).

    The ready value comes from the match: the text of the only group when the pattern has
    one (``r"listening on port (\\d+)"`` gives ``"8080"``), a tuple of all groups when it has
    several, and the whole line when it has none.

    .. versionadded:: 0.1
    """

    def __init__(
        self, pattern: str | re.Pattern[str], *, timeout: float = _DEFAULT_TIMEOUT
    ) -> None:
        super().__init__(timeout)
        self.pattern = _compile(pattern)

    def __repr__(self) -> str:
        return f"LogLineProbe({self.pattern.pattern!r})"

    async def wait_ready(self, output: OutputRing) -> object:
        for line in output.lines:  # printed before the probe began watching
            if (match := self.pattern.search(line)) is not None:
                return self._value(match, line)
        found: list[object] = []
        matched = anyio.Event()

        def watch(line: str) -> None:
            if not found and (match := self.pattern.search(line)) is not None:
                found.append(self._value(match, line))
                matched.set()

        with output.watch(watch):
            await matched.wait()
        return found[0]

    @staticmethod
    def _value(match: re.Match[str], line: str) -> object:
        groups = match.groups()
        if not groups:
            return line
        return groups[0] if len(groups) == 1 else groups


def _compile(pattern: object) -> re.Pattern[str]:
    """*pattern* compiled; a bad regular expression is refused now, not at start-up."""
    if isinstance(pattern, re.Pattern):
        return pattern
    try:
        if isinstance(pattern, str):
            return re.compile(pattern)
        problem = f"pattern must be a str or a compiled re.Pattern, got {pattern!r}"
    except re.error as exc:
        problem = f"pattern is not a valid regular expression ({exc}), got {pattern!r}"
    raise ConfigError(
        "LogLineProbe", problem, r"pass e.g. LogLineProbe(r'listening on port (\d+)')"
    )


@final
class FileProbe(_PollingProbe):
    """Ready once *path* exists (a pid file, a socket, a "ready" marker); the ready value is
    the path as a `pathlib.Path`.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        path: str | Path,
        *,
        timeout: float = _DEFAULT_TIMEOUT,
        interval: float = _DEFAULT_INTERVAL,
        attempt_timeout: float = _DEFAULT_ATTEMPT_TIMEOUT,
    ) -> None:
        super().__init__(timeout, interval, attempt_timeout)
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FileProbe({str(self.path)!r})"

    async def check(self) -> object | None:
        # A plain stat, not anyio.Path: one stat does not block the loop for long, and a
        # worker thread per probe would outlive the probe (anyio keeps idle ones for 10 s).
        return self.path if self.path.exists() else None
