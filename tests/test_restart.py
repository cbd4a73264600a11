"""The pure restart logic of ``_restart.py``: policies, backoff delays, the intensity window.

Nothing here runs an event loop or reads a clock: time is passed in, and the jitter draws from a
seeded `random.Random`, so every case is exact and instant.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from super_visor import Backoff, Restart, Strategy
from super_visor._restart import IntensityWindow, restart_group

# ----------------------------------------------------------------------------- policies


@pytest.mark.parametrize(
    ("policy", "failed", "expected"),
    [
        (Restart.PERMANENT, True, True),
        (Restart.PERMANENT, False, True),
        (Restart.TRANSIENT, True, True),
        (Restart.TRANSIENT, False, False),
        (Restart.TEMPORARY, True, False),
        (Restart.TEMPORARY, False, False),
    ],
)
def test_wants_restart_follows_otp(policy: Restart, *, failed: bool, expected: bool) -> None:
    """PERMANENT always, TRANSIENT only after a failure, TEMPORARY never."""
    assert policy.wants_restart(failed=failed) is expected


# ----------------------------------------------------------------------------- strategies

SLOTS = ("a", "b", "c", "d")


@pytest.mark.parametrize(
    ("strategy", "index", "expected"),
    [
        (Strategy.ONE_FOR_ONE, 0, ("a",)),
        (Strategy.ONE_FOR_ONE, 2, ("c",)),
        (Strategy.ONE_FOR_ALL, 0, SLOTS),
        (Strategy.ONE_FOR_ALL, 3, SLOTS),
        (Strategy.REST_FOR_ONE, 0, SLOTS),
        (Strategy.REST_FOR_ONE, 1, ("b", "c", "d")),
        (Strategy.REST_FOR_ONE, 3, ("d",)),
    ],
)
def test_restart_group_in_declared_order(
    strategy: Strategy, index: int, expected: tuple[str, ...]
) -> None:
    assert tuple(restart_group(strategy, SLOTS, index)) == expected


# ----------------------------------------------------------------------------- backoff


def test_backoff_without_jitter_grows_by_factor() -> None:
    backoff = Backoff(initial=0.1, maximum=100.0, factor=2.0, jitter=0.0)
    delays = [backoff.delay(n) for n in range(5)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])


def test_backoff_is_capped_at_maximum() -> None:
    backoff = Backoff(initial=1.0, maximum=5.0, factor=3.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(4)] == pytest.approx([1.0, 3.0, 5.0, 5.0])
    assert backoff.delay(200) == 5.0


def test_backoff_cap_holds_for_any_attempt() -> None:
    backoff = Backoff(initial=1.0, maximum=5.0, factor=3.0, jitter=0.0)
    assert backoff.delay(1000) == 5.0


def test_backoff_factor_one_is_a_constant_delay() -> None:
    backoff = Backoff(initial=0.5, maximum=10.0, factor=1.0, jitter=0.0)
    assert {backoff.delay(n) for n in range(10)} == {0.5}


def test_backoff_jitter_shortens_by_at_most_its_fraction() -> None:
    backoff = Backoff(initial=1.0, maximum=1.0, factor=2.0, jitter=0.25)
    rng = random.Random(1234)
    delays = [backoff.delay(0, rng) for _ in range(500)]
    assert all(0.75 <= d <= 1.0 for d in delays)
    assert len(set(delays)) > 400  # really drawn, so crashed procs do not restart in lock-step
    assert min(delays) < 0.76  # the whole range is used
    assert max(delays) > 0.99


def test_backoff_jitter_is_reproducible_with_a_seeded_rng() -> None:
    backoff = Backoff(initial=0.2, maximum=10.0, factor=2.0, jitter=0.5)
    first = [backoff.delay(n, random.Random(7)) for n in range(6)]
    again = [backoff.delay(n, random.Random(7)) for n in range(6)]
    assert first == again
    draw = random.Random(7).random()
    assert first[0] == pytest.approx(0.2 * (1 - 0.5 * draw))


def test_backoff_jitter_applies_after_the_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=2.0, factor=10.0, jitter=0.5)
    rng = random.Random(99)
    assert all(1.0 <= backoff.delay(5, rng) <= 2.0 for _ in range(100))


@given(
    initial=st.floats(0.0, 10.0),
    maximum=st.floats(0.0, 60.0),
    factor=st.floats(1.0, 10.0),
    jitter=st.floats(0.0, 1.0),
    attempt=st.integers(0, 200),
    seed=st.integers(0, 2**32),
)
def test_backoff_delay_is_within_bounds(
    initial: float, maximum: float, factor: float, jitter: float, attempt: int, seed: int
) -> None:
    backoff = Backoff(initial=initial, maximum=maximum, factor=factor, jitter=jitter)
    delay = backoff.delay(attempt, random.Random(seed))
    base = min(maximum, initial * factor**attempt)
    assert base * (1 - jitter) - 1e-9 <= delay <= base + 1e-9
    assert delay <= maximum + 1e-9


def test_backoff_defaults_are_small() -> None:
    """Limits multiply across levels (STYLE.md anti-pattern 13): the defaults stay modest."""
    backoff = Backoff()
    assert backoff.initial == 0.1
    assert backoff.maximum == 10.0
    assert backoff.factor == 2.0
    assert backoff.jitter == 0.1


# ----------------------------------------------------------------------------- intensity


def test_intensity_allows_max_restarts_then_trips() -> None:
    window = IntensityWindow(max_restarts=3, within=5.0)
    assert [window.add(t) for t in (0.0, 0.1, 0.2)] == [True, True, True]
    assert window.add(0.3) is False  # one restart more than 3 within 5 s


def test_intensity_zero_trips_on_the_first_restart() -> None:
    window = IntensityWindow(max_restarts=0, within=5.0)
    assert window.add(100.0) is False


def test_intensity_restarts_spread_over_time_never_trip() -> None:
    """One restart every 2 s with 3 allowed in 5 s: at most 3 are ever in the window."""
    window = IntensityWindow(max_restarts=3, within=5.0)
    assert all(window.add(2.0 * n) for n in range(1000))


def test_intensity_window_slides() -> None:
    window = IntensityWindow(max_restarts=2, within=10.0)
    assert window.add(0.0)
    assert window.add(9.0)
    assert not window.add(9.5)  # 0.0, 9.0, 9.5: three within 10 s
    # At 10.0 the entry at 0.0 has left (it is exactly `within` old); 9.0, 9.5, 10.0 remain.
    assert not window.add(10.0)
    assert window.add(19.6)  # 9.0 and 9.5 left; 10.0 and 19.6 remain
    assert window.add(25.0)  # 10.0 left; 19.6 and 25.0 remain


def test_intensity_entry_exactly_within_old_has_left() -> None:
    window = IntensityWindow(max_restarts=1, within=1.0)
    assert window.add(0.0)
    assert window.add(1.0)  # the restart at 0.0 is no longer "within" 1 s


def test_intensity_burst_after_a_quiet_period_is_judged_alone() -> None:
    window = IntensityWindow(max_restarts=3, within=1.0)
    assert all(window.add(t) for t in (0.0, 0.1, 0.2))
    assert all(window.add(t) for t in (50.0, 50.1, 50.2))
    assert not window.add(50.3)


@given(
    max_restarts=st.integers(0, 10),
    within=st.floats(0.01, 100.0),
    gaps=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=60),
)
def test_intensity_matches_a_naive_count(
    max_restarts: int, within: float, gaps: list[float]
) -> None:
    """The sliding window agrees with counting the restarts in (now - within, now]."""
    window = IntensityWindow(max_restarts=max_restarts, within=within)
    times: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        times.append(now)
        recent = [t for t in times if t > now - within]
        assert window.add(now) is (len(recent) <= max_restarts)
