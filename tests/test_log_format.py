"""``run()``'s log output on stderr: JSON or plain, journald, once per event, wrapped servers.

Every test but the formatter's own runs a real child process (``run()`` decides the
process's logging), reads its stderr and parses it: no logging is mocked. The servers are
real Uvicorn and Hypercorn instances on 127.0.0.1 answering a real HTTP request.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import IO

import pytest

from super_visor._logformat import JsonFormatter, formatter_for

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0
BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])

#: A tree that runs briefly and ends on its own: a nested supervisor and a proc that ends.
APP = textwrap.dedent(
    """
    import os, sys, anyio, super_visor
    from super_visor import SupervisorBuilder

    async def idle(token):
        await token.wait()

    async def brief(token):
        await anyio.sleep(0.05)

    pipeline = SupervisorBuilder("pipeline").add_proc(idle, name="consumer")
    sup = SupervisorBuilder("app").add_proc(idle, name="db").add_proc(pipeline).add_proc(brief)
    kwargs = {} if len(sys.argv) < 3 else {"log_format": sys.argv[2]}
    super_visor.run(sup, backend=sys.argv[1], console=False, **kwargs)
    """
)


def run_child(
    code: str,
    *args: str,
    env: dict[str, str] | None = None,
    stderr: int | IO[str] = subprocess.PIPE,
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SUPER_VISOR_")}
    environ.pop("JOURNAL_STREAM", None)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def json_lines(stderr: str) -> list[dict[str, object]]:
    """The JSON objects at the start of *stderr*; the report (plain text) follows them."""
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("{"):
            break
        entries.append(json.loads(line))
    return entries


# ----------------------------------------------------------------- the formatter itself


def test_the_json_formatter_writes_one_object_with_the_sv_fields_and_the_traceback() -> None:
    try:
        msg = "broken"
        raise ValueError(msg)
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "super_visor.app.web", logging.ERROR, __file__, 1, "%s: %s", ("app/web", "failed"), exc_info
    )
    record.__dict__.update(sv_path="app/web", sv_event="failed", sv_restarts=2, sv_status="failed")
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "super_visor.app.web"
    assert entry["message"] == "app/web: failed"
    assert (entry["sv_path"], entry["sv_event"], entry["sv_restarts"], entry["sv_status"]) == (
        "app/web",
        "failed",
        2,
        "failed",
    )
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert entry["exc"].endswith("ValueError: broken")
    assert str(entry["ts"]).endswith("Z")


def test_a_value_json_cannot_hold_is_written_as_its_text() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    record.__dict__["sv_path"] = Path("app/web")
    assert json.loads(JsonFormatter().format(record))["sv_path"] == "app/web"


def test_the_plain_format_drops_the_time_only_when_stderr_is_the_journal(tmp_path: Path) -> None:
    record = logging.LogRecord("super_visor.app", logging.WARNING, __file__, 1, "hello", (), None)
    with (tmp_path / "journal").open("w") as stream:
        stat = os.fstat(stream.fileno())
        mine = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        assert (
            formatter_for("plain", stream, mine).format(record)
            == "<4>WARNING super_visor.app: hello"
        )
        other = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino + 1}"}  # inherited, not ours
        assert (
            formatter_for("plain", stream, other)
            .format(record)
            .endswith(" WARNING super_visor.app: hello")
        )
        assert formatter_for("plain", stream, {"JOURNAL_STREAM": "junk"}).format(record) != (
            "<4>WARNING super_visor.app: hello"
        )


# ----------------------------------------------------------------- run() in a real process


@BACKENDS
@pytest.mark.parametrize("how", ["argument", "environment"])
def test_run_writes_json_lines_with_the_sv_fields(backend: str, how: str) -> None:
    if how == "argument":
        done = run_child(APP, backend, "json")
    else:
        done = run_child(APP, backend, env={"SUPER_VISOR_LOG_FORMAT": "json"})
    assert done.returncode == 0, done.stderr
    entries = json_lines(done.stderr)
    assert entries, done.stderr
    for entry in entries:
        assert {"ts", "level", "logger", "message", "sv_path", "sv_event"} <= entry.keys()
    seen = {(e["sv_path"], e["sv_event"]) for e in entries}
    assert ("app/pipeline/consumer", "ready") in seen
    assert ("app", "shutdown_finished") in seen
    # The report stays plain text, after the JSON lines.
    assert done.stderr.splitlines()[len(entries)].startswith("app: stopped")


@BACKENDS
def test_each_event_appears_once_even_when_something_configures_the_root_logger(
    backend: str,
) -> None:
    """``logging.warning()`` in any library calls ``basicConfig()`` when the root has no
    handler: run()'s handler must not print every record a second time then."""
    code = APP.replace(
        "async def brief(token):\n",
        "async def brief(token):\n    import logging; logging.warning('a library speaks')\n",
    )
    done = run_child(code, backend)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert sum("a library speaks" in line for line in lines) == 1
    for event in ("app/db: ready", "app/brief: completed", "app: shutdown finished"):
        assert sum(event in line for line in lines) == 1, done.stderr


# The logging set-up happens before the event loop starts, so one backend suffices here.
@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_json_under_the_apps_own_logging_says_once_that_the_app_wins(log_format: str) -> None:
    """An app that configured logging keeps its handlers and format; asking for JSON then
    does nothing, so one WARNING says so and how to get JSON, instead of silence."""
    code = APP.replace(
        "import os, sys, anyio, super_visor\n",
        "import os, sys, anyio, super_visor\n"
        "import logging; logging.basicConfig(format='APP %(levelname)s %(message)s')\n",
    )
    done = run_child(code, "asyncio", env={"SUPER_VISOR_LOG_FORMAT": log_format})
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stderr) == []  # the app's format, not ours
    warnings = [line for line in done.stderr.splitlines() if "is not applied" in line]
    if log_format == "plain":
        assert warnings == [], done.stderr
        return
    assert len(warnings) == 1, done.stderr
    (warning,) = warnings
    assert warning.startswith("APP WARNING log format 'json'"), warning  # via the app's handler
    assert "the app configured logging itself" in warning
    assert "configure no logging handler before run()" in warning


@pytest.mark.parametrize(
    ("args", "env", "where"),
    [
        (("asyncio", "xml"), {}, "run(log_format=...)"),
        (("asyncio",), {"SUPER_VISOR_LOG_FORMAT": "yaml"}, "SUPER_VISOR_LOG_FORMAT"),
    ],
)
def test_a_bad_log_format_is_a_config_error_exit_2(
    args: tuple[str, ...], env: dict[str, str], where: str
) -> None:
    done = run_child(APP, *args, env=env)
    assert done.returncode == 2, done.stderr
    assert "configuration error" in done.stderr
    assert where in done.stderr
    assert "json" in done.stderr  # names what is accepted


def test_under_journald_the_plain_lines_have_no_time(tmp_path: Path) -> None:
    """The child's stderr is a file whose device and inode are in JOURNAL_STREAM, as
    systemd sets them for a service whose stderr is the journal."""
    path = tmp_path / "journal"
    with path.open("w") as journal:
        stat = os.fstat(journal.fileno())
        env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        done = run_child(APP, "asyncio", env=env, stderr=journal)
    assert done.returncode == 0
    lines = path.read_text().splitlines()
    assert "<6>INFO super_visor.app.db: app/db: ready" in lines
    assert not any(line[:4].isdigit() for line in lines)  # no "2026-..." timestamp


# ----------------------------------------------------------------- wrapped servers

SERVER_APP = textwrap.dedent(
    """
    import sys, anyio, super_visor
    from super_visor import SupervisorBuilder
    from super_visor.procs import Hypercorn, Uvicorn

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    server = {"uvicorn": Uvicorn, "hypercorn": Hypercorn}[sys.argv[2]](app, name="web")
    ports = []

    async def client(token):
        # The root's ready values are not at hand here: the port comes from the web proc's
        # READY event, recorded by the on_event callback below.
        stream = await anyio.connect_tcp("127.0.0.1", ports[0])
        async with stream:
            request = b"GET /hello HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n"
            await stream.send(request)
            reply = b""
            try:
                while True:
                    reply += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
        print(reply.split(b"\\r\\n", 1)[0].decode(), flush=True)

    def remember_port(event):
        if event.path == "app/web" and event.kind.value == "ready":
            ports.append(int(event.detail.rsplit(" ", 1)[1]))

    sup = SupervisorBuilder("app").add_proc(server).add_proc(client).on_event(remember_port)
    super_visor.run(sup, backend=sys.argv[1], log_format="json", console=False)
    """
)


@pytest.mark.parametrize(
    ("server", "backend"),
    [("uvicorn", "asyncio"), ("hypercorn", "asyncio"), ("hypercorn", "trio")],
)
def test_the_servers_start_up_and_access_lines_reach_the_json_output(
    server: str, backend: str
) -> None:
    done = run_child(SERVER_APP, backend, server)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("HTTP/1.1 200"), done.stdout
    entries = json_lines(done.stderr)
    loggers = {str(e["logger"]) for e in entries}
    assert f"{server}.error" in loggers, done.stderr
    access = [e for e in entries if e["logger"] == f"{server}.access"]
    assert len(access) == 1, done.stderr
    assert "GET /hello" in str(access[0]["message"])
    assert " 200" in str(access[0]["message"])
    assert ("app/web", "ready") in {(e.get("sv_path"), e.get("sv_event")) for e in entries}
