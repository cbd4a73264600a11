"""``abandon_after``: a builder, proc and per-proc keyword resolved into each proc's spec,
settable like ``grace`` from the environment, shown by ``check`` and counted by ``plan``.

How long the engine waits is the engine's tests' business; these pin the value it is given.
"""

from __future__ import annotations

import math

import pytest

from super_visor import (
    CancellationToken,
    ConfigError,
    ManagedProc,
    Settings,
    SupervisorBuilder,
)
from super_visor._plan import format_plan, shutdown_bound


async def idle(token: CancellationToken) -> None:
    await token.wait()  # pragma: no cover (never run)


async def other(token: CancellationToken) -> None:
    await token.wait()  # pragma: no cover (never run)


class Patient(ManagedProc):
    abandon_after = 30.0

    async def run_proc(self, token: CancellationToken) -> None:
        await token.wait()  # pragma: no cover (never run)


def test_the_default_is_ten_seconds() -> None:
    sup = SupervisorBuilder("app").add_proc(idle).build()
    assert sup.specs[0].abandon_after == 10.0


def test_keyword_beats_attribute_beats_builder_default() -> None:
    sup = (
        SupervisorBuilder("app", abandon_after=2.0)
        .add_proc(idle)
        .add_proc(Patient())
        .add_proc(Patient(), name="told", abandon_after=0)
        .add_factory("made", lambda: other, abandon_after=4.0)
        .build()
    )
    assert [spec.abandon_after for spec in sup.specs] == [2.0, 30.0, 0.0, 4.0]


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, True])
def test_bad_values_are_refused_wherever_given(bad: float) -> None:
    for builder in (
        SupervisorBuilder("app", abandon_after=bad).add_proc(idle),
        SupervisorBuilder("app").add_proc(idle, abandon_after=bad),
    ):
        with pytest.raises(ConfigError, match="abandon_after must be a finite number"):
            builder.build()


def test_the_environment_sets_it_tree_wide_and_per_proc() -> None:
    inner = SupervisorBuilder("inner").add_proc(idle)
    sup = SupervisorBuilder("app").add_proc(inner).add_proc(other).build()
    environ = {"SUPER_VISOR_ABANDON_AFTER": "3", "SUPER_VISOR__OTHER__ABANDON_AFTER": "1.5"}

    settings = Settings.load(sup, env_file=None, environ=environ)
    applied = settings.apply(sup)

    found = {path: spec.abandon_after for path, spec, _ in applied.walk()}
    assert found == {"inner": 3.0, "inner/idle": 3.0, "other": 1.5}
    rendered = settings.render(sup)
    assert "other: abandon_after = 1.5  [environment]" in rendered
    assert "inner/idle: abandon_after = 3  [environment]" in rendered


def test_a_malformed_environment_value_is_refused() -> None:
    sup = SupervisorBuilder("app").add_proc(idle).build()
    with pytest.raises(ConfigError, match=r"got 'soon' \(from environment\)"):
        Settings.load(sup, env_file=None, environ={"SUPER_VISOR__IDLE__ABANDON_AFTER": "soon"})


def test_plan_counts_it_in_the_worst_case() -> None:
    sup = (
        SupervisorBuilder("app", grace=2.0)
        .add_proc(idle, abandon_after=5.0)
        .add_proc(other, grace=1.0)
        .build()
    )
    plan = format_plan(sup)

    assert shutdown_bound(sup) == 3.0
    assert shutdown_bound(sup, abandoned=True) == 3.0 + 5.0 + 10.0
    assert "app/idle   cancel its token, wait up to 2s, then force, then abandoned after 5s" in plan
    assert "every proc ends by its force-cancel: 3s" in plan
    assert "worst-case shutdown: 18s" in plan
