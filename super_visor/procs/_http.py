"""A minimal HTTP/1.1 responder: one GET or HEAD per connection, then ``Connection: close``.

Enough for health probes and nothing more, so no dependency (h11 would parse more than we
answer). What a client can send is bounded, because a probe port is reachable by anything
on the network it binds: the request head must arrive within *read_timeout* seconds (a
slowloris client gets 408 and is closed) and fit in `MAX_HEAD` bytes (431 otherwise); a
malformed request line or header gets 400, another method 405, another HTTP version 505.
Bodies are never read. The reply, too, must be taken within *read_timeout* seconds: a
client that sends a request and never reads is dropped, so it cannot hold its connection
(and the server's slot) for ever. A client that goes away is simply forgotten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

from .._transport import LineProblem, receive_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import ByteStream

__all__ = ("MAX_HEAD", "Reply", "serve_one")

#: The largest request head (request line and headers) read, in bytes.
MAX_HEAD: Final = 8192

_REQUEST_LINE = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (/[^ \x00-\x1f\x7f]*) HTTP/(\d\.\d)")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\x00-\x08\x0a-\x1f\x7f]*")
_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


@final
@dataclass(frozen=True, slots=True)
class Reply:
    """What to answer: a status, a body and its content type."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


class _Refused(Exception):
    """The request cannot be answered by the application: reply with *reply* and close."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply


async def serve_one(
    stream: ByteStream, answer: Callable[[str], Reply | None], read_timeout: float
) -> bool:
    """Read one request from *stream* and reply; *answer(path)* is None for an unknown path.

    Every wait is bounded by *read_timeout*: reading the head, and sending the reply.
    Returns False when the client did not take the reply in time (it is to be dropped)."""
    head_only = False
    try:
        method, path = await _read_head(stream, read_timeout)
        head_only = method == "HEAD"
        reply = answer(path) or Reply(404, f"no such path: {path}\n")
    except _Refused as refused:
        reply = refused.reply
    with anyio.move_on_after(read_timeout) as scope:
        await stream.send(_encode(reply, head_only=head_only))
    return not scope.cancelled_caught


async def _read_head(stream: ByteStream, read_timeout: float) -> tuple[str, str]:
    """The method and path (query left out) of a valid GET or HEAD request."""
    head = await receive_line(
        BufferedByteReceiveStream(stream), b"\r\n\r\n", MAX_HEAD, read_timeout
    )
    if head is LineProblem.TIMEOUT:
        raise _Refused(Reply(408, f"no complete request within {read_timeout:g}s\n"))
    if head is LineProblem.CLOSED:
        raise anyio.EndOfStream
    if head is LineProblem.TOO_LONG:
        raise _Refused(Reply(431, f"request head larger than {MAX_HEAD} bytes\n"))
    request_line, *headers = head.decode("latin-1").split("\r\n")
    match = _REQUEST_LINE.fullmatch(request_line)
    if match is None or not all(_HEADER.fullmatch(line) for line in headers):
        raise _Refused(Reply(400, "malformed request\n"))
    method, target, version = match.groups()
    if version not in ("1.0", "1.1"):
        raise _Refused(Reply(505, "HTTP/1.0 and HTTP/1.1 only\n"))
    if method not in ("GET", "HEAD"):
        raise _Refused(Reply(405, "GET or HEAD only\n"))
    return method, target.partition("?")[0]


def _encode(reply: Reply, *, head_only: bool) -> bytes:
    body = reply.body.encode()
    lines = [
        f"HTTP/1.1 {reply.status} {_REASONS[reply.status]}",
        f"Content-Type: {reply.content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if reply.status == 405:
        lines.append("Allow: GET, HEAD")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head if head_only else head + body
