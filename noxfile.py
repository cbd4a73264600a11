"""Nox sessions: each one runs the command a person would type by hand.

nox -s tests   pytest on both anyio backends (the same command as README.md)
nox -s lint    ruff check + ruff format --check
nox -s types   mypy --strict
nox -s docs    Sphinx, warnings as errors
nox -s bench   the start/stop benchmark (prints figures; asserts nothing)
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "types"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def types(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy")
    session.run("mypy", "--strict")


@nox.session
def docs(session: nox.Session) -> None:
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("python", "bench/startstop.py", *session.posargs)
    session.run("python", "bench/restart.py")
    session.run("python", "bench/import_time.py")
