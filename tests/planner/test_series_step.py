"""The one rule for a series' spacing (``planner.series.step_of``), used by every reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from planner import series

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def starts(*offsets_min: int) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in offsets_min]


def test_missing_hours_keep_the_hourly_step() -> None:
    assert series.step_of(starts(0, 60, 120, 300, 360, 420, 600)) == 3600


def test_a_row_repeated_at_the_same_instant_does_not_make_the_step_zero() -> None:
    assert series.step_of(starts(0, 0, 60, 120, 120, 180)) == 3600


def test_a_short_finer_stretch_does_not_set_the_step() -> None:
    """The smallest gap would say 15 minutes for a mostly hourly trace."""
    assert series.step_of(starts(0, 15, 60, 120, 180, 240)) == 3600


def test_a_tie_goes_to_the_finer_step_and_nothing_gives_the_default() -> None:
    assert series.step_of(starts(0, 30, 90)) == 1800
    assert series.step_of(starts(0), default_s=900) == 900
    assert series.step_of([], default_s=900) == 900


@given(step_min=st.sampled_from([5, 15, 30, 60]), count=st.integers(min_value=2, max_value=200))
def test_a_regular_series_has_its_own_step(step_min: int, count: int) -> None:
    assert series.step_of(starts(*range(0, step_min * count, step_min))) == step_min * 60
