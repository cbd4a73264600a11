"""Process groups: signal a whole group, and wait until none of it still runs.

`Command` starts its child as the leader of a new process group (``start_new_session``) so
that a stop reaches the child's own children too (PITFALLS 13: ``kill()`` reaches only the
direct child). These helpers work on the group by its id, which is the child's pid, and know
nothing about `Command`; they are POSIX-only, like `os.killpg`.
"""

from __future__ import annotations

import contextlib
import os

import anyio

__all__ = ("group_running", "signal_group", "wait_group_gone")

#: How often, and how long, the clean-up checks that the killed group is gone.
_GONE_POLL = 0.005
_GONE_TIMEOUT = 1.0


async def wait_group_gone(pgid: int) -> None:
    """Return once no process of group *pgid* still runs (after a SIGKILL: a few ms at most).

    Polling, because there is no event for the death of a process that is not our child;
    without this wait a grandchild could still be dying when the proc has already returned.
    Bounded by `_GONE_TIMEOUT`: past it the SIGKILL is on its way and the kernel finishes.
    """
    with anyio.move_on_after(_GONE_TIMEOUT):
        while group_running(pgid):  # noqa: ASYNC110 (no event exists for it, see above)
            await anyio.sleep(_GONE_POLL)


def group_running(pgid: int) -> bool:
    """Whether a process of group *pgid* still runs code (zombies do not count).

    A killed grandchild is a zombie until init reaps it, and an init that does not reap
    (our own process as PID 1 of a container) would keep it one for good, so "the group
    exists" is not enough: on Linux, /proc tells the states apart.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no procfs: the group exists, count it as running
    for entry in entries:
        if entry.isdigit() and _proc_state_in_group(entry, pgid) not in (None, "Z", "X"):
            return True
    return False


def _proc_state_in_group(pid: str, pgid: int) -> str | None:
    """The state letter of process *pid* if it belongs to group *pgid*, else None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # gone meanwhile
    return fields[0] if int(fields[2]) == pgid else None


def signal_group(pgid: int, signum: int) -> None:
    """Send *signum* to process group *pgid*; a group that is gone already is fine."""
    # PermissionError: macOS answers so for a group left with zombies only.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
