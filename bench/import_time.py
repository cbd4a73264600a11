"""What ``import super_visor`` costs, next to ``import anyio``, measured with ``-X importtime``.

Targets: ``import super_visor`` costs at most 1.3x ``import anyio`` (issue 14), after the
1.5x first asked for (issue 11); the ratio is printed against both. Both are timed in
this one run, in fresh interpreters, alternating so that machine noise hits both alike; the
median of the cumulative time of the top-level module is reported. ``super_visor``'s figure
includes anyio (it imports it), so the ratio is "all of super_visor" over "anyio alone".

It also checks that rich, python-dotenv, the metrics clients (prometheus_client,
opentelemetry) and the stdlib's logging and json are *not* imported: they are loaded only when
the live console is shown, a ``.env`` file is read, a metrics callback is made or ``run()``
sets up logging. Nor are our own run-time modules (the engine, events, outcomes, `Backoff`,
the proc specs and the validation rules): building and running a tree loads them.

    python bench/import_time.py            # 15 runs of each
    python bench/import_time.py --runs 40
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
from pathlib import Path

#: The targets of the ratio, by issue.
TARGETS = {"#14": 1.3, "#11": 1.5}
#: Top-level modules ``import super_visor`` must not load (see the module docstring).
_LAZY = frozenset({"rich", "dotenv", "prometheus_client", "opentelemetry", "logging", "json"})
#: Our modules it must not load either: what only a build or a run needs.
_RUNTIME = frozenset(
    f"super_visor.{name}"
    for name in ("_engine", "_events", "_outcome", "_backoff", "_spec", "_validate", "_slot")
)

# Both packages are timed from bytecode, as after a normal install: pip compiles anyio's
# .pyc files, an editable install of ours would not, and some shells set
# PYTHONDONTWRITEBYTECODE (then every import re-compiles our sources, tripling the figure).
_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def cumulative_us(module: str) -> tuple[int, str]:
    """The cumulative import time of *module* in microseconds, and the raw importtime log."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=_ENV,
    )
    for line in reversed(done.stderr.splitlines()):
        fields = [field.strip() for field in line.removeprefix("import time:").split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1]), done.stderr
    msg = f"no importtime line for {module!r}"
    raise RuntimeError(msg)


def imported(log: str) -> set[str]:
    """Every module named in an importtime log."""
    return {line.rsplit("|", 1)[-1].strip() for line in log.splitlines() if "|" in line}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "super_visor", quiet=1)
    anyio_us: list[int] = []
    ours_us: list[int] = []
    log = ""
    for _ in range(args.runs):
        anyio_us.append(cumulative_us("anyio")[0])
        took, log = cumulative_us("super_visor")
        ours_us.append(took)
    heavy = sorted(name for name in imported(log) if name.split(".")[0] in _LAZY)
    runtime = sorted(imported(log) & _RUNTIME)
    anyio_ms = statistics.median(anyio_us) / 1000
    ours_ms = statistics.median(ours_us) / 1000
    ratio = ours_ms / anyio_ms
    print(f"import anyio        {anyio_ms:7.1f} ms (median of {args.runs})")
    print(f"import super_visor  {ours_ms:7.1f} ms (median of {args.runs}, anyio included)")
    verdicts = ", ".join(
        f"{'within' if ratio <= target else 'ABOVE'} {issue}'s {target}x"
        for issue, target in TARGETS.items()
    )
    print(f"ratio               {ratio:7.2f}x ({verdicts})")
    print(f"lazy modules imported: {', '.join(heavy) or 'none'} (of {', '.join(sorted(_LAZY))})")
    print(f"run-time modules imported: {', '.join(runtime) or 'none'} (of {len(_RUNTIME)})")


if __name__ == "__main__":
    main()
