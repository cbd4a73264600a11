"""A first end-to-end check; the detailed behaviour lives in the per-module test files."""

from __future__ import annotations

from super_visor import CancellationToken, ProcStatus, SupervisorBuilder


async def test_procs_start_in_order_and_stop_in_reverse() -> None:
    log: list[str] = []

    def make(name: str):  # type: ignore[no-untyped-def]
        async def proc(token: CancellationToken) -> None:
            log.append(f"start {name}")
            await token.wait()
            log.append(f"stop {name}")

        return proc

    sup = SupervisorBuilder("app").add_proc(make("a"), name="a").add_proc(make("b"), name="b")
    async with sup.build().running() as handle:
        assert log == ["start a", "start b"]
    assert log == ["start a", "start b", "stop b", "stop a"]
    assert handle.report["a"].status is ProcStatus.STOPPED
