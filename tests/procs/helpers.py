"""Helpers for the adapter tests: real child programs and checks that nothing outlived them."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

__all__ = ("alive", "python", "read_pids")


def python(code: str) -> list[str]:
    """argv running *code* (dedented) with this interpreter, unbuffered."""
    return [sys.executable, "-u", "-c", textwrap.dedent(code)]


def alive(pid: int) -> bool:
    """Whether *pid* is a live process (a zombie counts as dead: it runs no code)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def read_pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]
