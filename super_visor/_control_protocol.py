"""The control socket's protocol: one JSON request line in, one JSON reply out.

``{"cmd": "status"}``, ``{"cmd": "stop", "path": "pipeline/consumer"}``, ``start``,
``restart``, ``abort`` (with ``path``) and ``shutdown`` (with an optional ``reason``) are
answered by ``{"ok": true, "cmd": ..., ...}`` or ``{"ok": false, "error": "..."}``; an ``id``
in a request is echoed in its reply. `answer` never raises an `Exception`: whatever a request
provokes (malformed JSON, an unknown command or path, a failed action) is its error reply, so
a client cannot disturb the tree through it. The actions are the `RunHandle`'s, asked for by
``"socket"`` (each is an event and a log line naming it). The transport is ``_control``'s.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._handle import RunHandle
    from ._status import TreeStatus

__all__ = ("REQUESTER", "answer", "error_reply", "status_reply")

#: The name operator actions carry in events and logs when they came through the socket.
REQUESTER: Final = "socket"


async def answer(handle: RunHandle, line: bytes) -> dict[str, object] | None:
    """The reply to one request line; None for a blank line (ignored, no reply).

    Never raises an `Exception`: whatever a request provokes is the error of its reply.
    """
    if not line.strip():
        return None
    try:
        request = json.loads(line)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return error_reply(f"malformed request: not one JSON object per line ({exc})")
    if not isinstance(request, dict):
        return error_reply('malformed request: expected a JSON object such as {"cmd": "status"}')
    reply = await _carry_out(handle, request)
    if "id" in request:
        reply["id"] = request["id"]
    return reply


async def _carry_out(handle: RunHandle, request: dict[str, object]) -> dict[str, object]:
    cmd = request.get("cmd")
    command = _COMMANDS.get(cmd) if isinstance(cmd, str) else None
    if command is None:
        known = ", ".join(_COMMANDS)
        return error_reply(f"unknown command {cmd!r}; the commands are: {known}")
    try:
        fields = await command(handle, request)
    except (KeyError, _BadRequest) as exc:  # e.g. an unknown path: the message lists the procs
        return error_reply(str(exc.args[0]) if exc.args else repr(exc))
    except Exception as exc:  # noqa: BLE001 (every failure of a request is its reply)
        return error_reply(_failure(cmd, request.get("path"), exc))
    return {"ok": True, "cmd": cmd, **fields}


def _failure(cmd: object, path: object, exc: Exception) -> str:
    """Why an action failed, and what to do: its error names the state that refused it."""
    target = f"{cmd} {path}" if isinstance(path, str) else cmd
    return (
        f"{target} failed: {type(exc).__name__}: {exc}; the tree's log has the details; "
        "check the proc's state with `super-visor ctl SOCK status` before trying again"
    )


class _BadRequest(Exception):
    """A request that cannot be carried out as sent (its message is the reply's error)."""


def error_reply(message: str) -> dict[str, object]:
    return {"ok": False, "error": message}


def _path_of(handle: RunHandle, request: dict[str, object]) -> str:
    """The request's proc path, checked: `KeyError` (naming the fix) when no proc has it."""
    path = request.get("path")
    if not isinstance(path, str) or not path:
        msg = f'{request.get("cmd")} needs "path": the proc\'s path, e.g. "pipeline/consumer"'
        raise _BadRequest(msg)
    handle._slot_at(path)  # the lookup the actions make: its KeyError is the reply
    return path


def status_reply(status: TreeStatus) -> dict[str, object]:
    """A `TreeStatus` as JSON (`TreeStatus.as_dict`): every proc in one flat list, depth
    first, with its depth."""
    return status.as_dict()


def _state_after(handle: RunHandle, path: str) -> dict[str, object]:
    """The proc's path and state once an action is done (a stopped dynamic child is gone)."""
    try:
        proc = handle.status()[path]
    except KeyError:
        return {"path": path, "state": None}
    return {"path": proc.path, "state": str(proc.state)}


async def _status(handle: RunHandle, request: dict[str, object]) -> dict[str, object]:
    return {"status": status_reply(handle.status())}


async def _stop(handle: RunHandle, request: dict[str, object]) -> dict[str, object]:
    path = _path_of(handle, request)
    outcome = await handle.stop(path, _by=REQUESTER)
    return {**_state_after(handle, path), "outcome": outcome.status.value}


async def _start(handle: RunHandle, request: dict[str, object]) -> dict[str, object]:
    path = _path_of(handle, request)
    await handle.start(path, _by=REQUESTER)
    return _state_after(handle, path)


async def _restart(handle: RunHandle, request: dict[str, object]) -> dict[str, object]:
    path = _path_of(handle, request)
    await handle.restart(path, _by=REQUESTER)
    return _state_after(handle, path)


async def _abort(handle: RunHandle, request: dict[str, object]) -> dict[str, object]:
    path = _path_of(handle, request)
    handle.abort(path, _by=REQUESTER)
    return _state_after(handle, path)


async def _shutdown(handle: RunHandle, request: dict[str, object]) -> dict[str, object]:
    reason = request.get("reason")
    if not isinstance(reason, str) or not reason:
        reason = "shutdown requested through the control socket"
    handle.shutdown(reason)
    return {"reason": reason}


#: Each command's implementation: (handle, request) -> the reply's fields beyond "ok".
_COMMANDS: dict[str, Callable[[RunHandle, dict[str, object]], Awaitable[dict[str, object]]]] = {
    "status": _status,
    "stop": _stop,
    "start": _start,
    "restart": _restart,
    "abort": _abort,
    "shutdown": _shutdown,
}
