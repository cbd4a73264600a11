"""``super-visor ctl SOCK COMMAND``: talk to a running tree through its control socket.

A plain blocking client (the standard library's ``socket``): the CLI does one request and
exits, so it needs no event loop. It sends one JSON line, reads one JSON line back, prints it
for a person (or as it came with ``--json``) and exits 0 when the request was carried out, 1
when it was refused or the socket cannot be reached (the reason on stderr).
"""

from __future__ import annotations

import json
import socket
import sys
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import argparse

__all__ = ("CTL_COMMANDS", "add_ctl_parser", "ctl_command", "format_status", "request")

#: The commands, and whether each takes a proc path.
CTL_COMMANDS: Final = {
    "status": False,
    "stop": True,
    "start": True,
    "restart": True,
    "abort": True,
    "shutdown": False,
}

#: Seconds to wait for a reply by default: stop and restart wait for the proc's grace.
DEFAULT_TIMEOUT: Final = 60.0

EXIT_REFUSED: Final = 1


class CtlError(Exception):
    """The control socket could not be reached, or did not answer properly."""


def add_ctl_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "talk to a running tree through its control socket (run --control SOCK)"
    ctl = commands.add_parser(
        "ctl",
        help=text,
        description=text,
        epilog="Exit codes: 0 done; 1 refused (unknown path, another user, ...) or the "
        "socket cannot be reached.",
    )
    ctl.add_argument("socket", metavar="SOCK", help="the control socket's path")
    ctl.add_argument(
        "action",
        choices=tuple(CTL_COMMANDS),
        metavar="COMMAND",
        help="one of: " + ", ".join(CTL_COMMANDS),
    )
    ctl.add_argument("path", nargs="?", help="the proc's path (stop, start, restart, abort)")
    ctl.add_argument("--json", action="store_true", help="print the raw JSON reply")
    ctl.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the reply (default {DEFAULT_TIMEOUT:g})",
    )


def ctl_command(args: argparse.Namespace) -> int:
    """Carry out ``super-visor ctl``; return the exit code."""
    message: dict[str, object] = {"cmd": args.action}
    needs_path = CTL_COMMANDS[args.action]
    if needs_path != (args.path is not None):
        usage = f"{args.action} PATH" if needs_path else args.action
        _fail(f"usage: super-visor ctl SOCK {usage}")
        return EXIT_REFUSED
    if args.path is not None:
        message["path"] = args.path
    try:
        reply = request(args.socket, message, timeout=args.timeout)
    except CtlError as exc:
        _fail(str(exc))
        return EXIT_REFUSED
    ok = reply.get("ok") is True
    if args.json:
        print(json.dumps(reply))  # noqa: T201 (the CLI's answer goes to stdout)
    elif ok:
        print(_describe(reply))  # noqa: T201
    if not ok:
        _fail(str(reply.get("error", "refused")))
    return 0 if ok else EXIT_REFUSED


def _fail(message: str) -> None:
    print(f"super-visor ctl: {message}", file=sys.stderr)  # noqa: T201


def request(path: str, message: dict[str, object], *, timeout: float) -> dict[str, object]:
    """Send *message* to the control socket at *path*; its reply.

    Raises:
        CtlError: nothing listens there, it is not ours, or no proper reply came in time.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        _connect(sock, path)
        try:
            sock.sendall(json.dumps(message).encode() + b"\n")
            line = _read_line(sock)
        except TimeoutError:
            msg = f"no reply from {path} within {timeout:g} s"
            raise CtlError(msg) from None
        except OSError as exc:
            msg = f"{path}: the connection failed: {exc}"
            raise CtlError(msg) from None
    try:
        reply = json.loads(line)
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        msg = f"{path} answered something that is not a JSON object: {line[:200]!r}"
        raise CtlError(msg)
    return reply


def _connect(sock: socket.socket, path: str) -> None:
    try:
        sock.connect(path)
    except FileNotFoundError:
        msg = f"no control socket at {path} (is the tree running with --control {path}?)"
        raise CtlError(msg) from None
    except ConnectionRefusedError:
        msg = f"nothing listens on {path} (the tree has stopped?)"
        raise CtlError(msg) from None
    except PermissionError:
        msg = f"permission denied on {path}: the socket belongs to another user"
        raise CtlError(msg) from None
    except OSError as exc:
        msg = f"cannot connect to {path}: {exc}"
        raise CtlError(msg) from None


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            data = b"".join(chunks)
            if data:
                return data
            msg = "the tree closed the connection without a reply"
            raise CtlError(msg)
        if b"\n" in chunk:
            head, _, _ = chunk.partition(b"\n")
            chunks.append(head)
            return b"".join(chunks)
        chunks.append(chunk)


def _describe(reply: dict[str, object]) -> str:
    cmd = reply.get("cmd")
    if cmd == "status":
        status = reply.get("status")
        return format_status(status if isinstance(status, dict) else {})
    if cmd == "shutdown":
        return f"shutdown begun: {reply.get('reason')}"
    state = reply.get("state")
    now = "gone from the tree" if state is None else f"now {state}"
    return f"{cmd} {reply.get('path')}: done, {now}"


def format_status(status: dict[str, object]) -> str:
    """The status reply as a table: one line per proc, full path, indented by depth, and
    its ``uptime_s`` (as the tree counted it: while the proc's task runs)."""
    readiness = "ready" if status.get("ready") else "not ready"
    lines = [f"{status.get('name')}: {status.get('state')}, {readiness}"]
    procs = status.get("procs")
    rows: list[tuple[str, str, str, str, str]] = []
    for proc in procs if isinstance(procs, list) else []:
        if not isinstance(proc, dict):
            continue
        depth = proc.get("depth")
        indent = "  " * (depth if isinstance(depth, int) else 0)
        rows.append(
            (
                f"{indent}{proc.get('path')}",
                str(proc.get("state")),
                "ready" if proc.get("ready") else "-",
                f"restarts={proc.get('restarts')}",
                _uptime(proc.get("uptime_s")),
            )
        )
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines)


def _uptime(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return ""
    if seconds < 60:
        return f"up {seconds:.0f}s"
    if seconds < 3600:
        return f"up {seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"up {seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
