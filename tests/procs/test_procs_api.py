"""The public surface of super_visor.procs: a sorted __all__ and the public __module__."""

from __future__ import annotations

import inspect

import pytest

import super_visor.procs


def test_all_is_a_sorted_tuple_of_the_public_names() -> None:
    names = super_visor.procs.__all__
    assert isinstance(names, tuple)
    assert list(names) == sorted(names)
    public = {
        name
        for name, value in vars(super_visor.procs).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert set(names) == public


@pytest.mark.parametrize("name", super_visor.procs.__all__)
def test_names_claim_the_public_module(name: str) -> None:
    assert getattr(super_visor.procs, name).__module__ == "super_visor.procs"


def test_adapters_are_procs_the_builder_accepts() -> None:
    from super_visor import SupervisorBuilder
    from super_visor.procs import Command, Periodic, TcpServer, Thread

    async def job() -> None:
        pass  # pragma: no cover (never run)

    async def handler(_stream: object) -> None:
        pass  # pragma: no cover (never run)

    sup = (
        SupervisorBuilder("app")
        .add_proc(Command(["true"], name="cmd", grace=2))
        .add_proc(Periodic(job, every=1))
        .add_proc(Thread(lambda stop: None, name="thread", grace=1))
        .add_proc(TcpServer(handler, name="tcp"))
        .build()
    )
    graces = {spec.name: spec.grace for spec in sup.specs}
    assert graces == {"cmd": 2.0, "job": 5.0, "thread": 1.0, "tcp": 5.0}  # their own windows
    reserves = {spec.name: spec.force_reserve for spec in sup.specs}
    assert reserves == {"cmd": 1.0, "job": 0.0, "thread": 1.0, "tcp": 0.0}
    assert [spec.wait_ready for spec in sup.specs] == [False, False, False, True]
