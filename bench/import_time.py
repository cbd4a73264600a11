"""What ``import super_visor`` costs, next to ``import anyio``, measured with ``-X importtime``.

Issue 5's target: ``import super_visor`` costs at most 1.5x ``import anyio``. Both are timed in
this one run, in fresh interpreters, alternating so that machine noise hits both alike; the
median of the cumulative time of the top-level module is reported. ``super_visor``'s figure
includes anyio (it imports it), so the ratio is "all of super_visor" over "anyio alone".

It also checks that rich, python-dotenv, the metrics clients (prometheus_client,
opentelemetry) and the stdlib's logging and json are *not* imported: they are loaded only when
the live console is shown, a ``.env`` file is read, a metrics callback is made or ``run()``
sets up logging.

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

TARGET_RATIO = 1.5
#: Top-level modules ``import super_visor`` must not load (see the module docstring).
_LAZY = frozenset({"rich", "dotenv", "prometheus_client", "opentelemetry", "logging", "json"})

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
    anyio_ms = statistics.median(anyio_us) / 1000
    ours_ms = statistics.median(ours_us) / 1000
    ratio = ours_ms / anyio_ms
    print(f"import anyio        {anyio_ms:7.1f} ms (median of {args.runs})")
    print(f"import super_visor  {ours_ms:7.1f} ms (median of {args.runs}, anyio included)")
    verdict = "within" if ratio <= TARGET_RATIO else "ABOVE"
    print(f"ratio               {ratio:7.2f}x ({verdict} the {TARGET_RATIO}x target)")
    print(f"lazy modules imported: {', '.join(heavy) or 'none'} (of {', '.join(sorted(_LAZY))})")


if __name__ == "__main__":
    main()
