"""The planner's windows against a brute-force reference, on real traces and random series.

The reference integrates by walking every point and adding value x overlap in
exact rational arithmetic, so it shares nothing with the prefix sums under
test: if the fast path and the reference agree on real grid data (hourly
Electricity Maps weeks, an ENTSO-E-derived week mixing 15- and 30-minute
steps) and on thousands of random series, the fast path is right.
"""

from __future__ import annotations

import bisect
import csv
import functools
import itertools
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import series, windows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "planner"
LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"
DURATIONS_MIN = (30, 60, 90, 120, 240, 480)


# --- the reference --------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _segments(s: series.Series) -> tuple[tuple[int, int, Fraction], ...]:
    """Each point as (start, end, value): whole epoch seconds and the exact value."""
    starts = [int(p.start.timestamp()) for p in s.points]
    ends = starts[1:] + [starts[-1] + s.step_s]
    return tuple((b, e, Fraction(p.g_per_kwh)) for b, e, p in zip(starts, ends, s.points, strict=True))


def brute_mean(s: series.Series, start: datetime, duration_s: int) -> Fraction | None:
    """Exact time-weighted mean by summing every point's overlap with the window."""
    if not s.points or duration_s <= 0:
        return None
    begin = Fraction(int(start.timestamp())) + Fraction(start.microsecond, 1_000_000)
    finish = begin + duration_s
    segments = _segments(s)
    if begin < segments[0][0] or finish > segments[-1][1]:
        return None
    total = Fraction(0)
    first = max(bisect.bisect_right(_starts(s), begin) - 1, 0)  # earlier segments add zero
    for b, e, v in segments[first:]:
        if b >= finish:
            break
        total += v * (min(Fraction(e), finish) - max(Fraction(b), begin))
    return total / duration_s


@functools.lru_cache(maxsize=8)
def _starts(s: series.Series) -> list[int]:
    return [b for b, _, _ in _segments(s)]


def brute_best(
    s: series.Series, duration_s: int, earliest: datetime, latest_start: datetime
) -> tuple[datetime, Fraction] | None:
    """Every allowed start tried in order; strictly lower wins, so ties stay with the earliest."""
    starts = [earliest] + [p.start for p in s.points if earliest < p.start <= latest_start]
    best: tuple[datetime, Fraction] | None = None
    for start in starts:
        if start > latest_start:
            continue
        mean = brute_mean(s, start, duration_s)
        if mean is not None and (best is None or mean < best[1]):
            best = (start, mean)
    return best


def assert_same_choice(
    s: series.Series, found: windows.Window | None, expected: tuple[datetime, Fraction] | None
) -> None:
    """Same start, or an earlier start whose exact mean ties within rounding noise."""
    if expected is None:
        assert found is None
        return
    assert found is not None
    assert found.mean_g_per_kwh == pytest.approx(float(expected[1]), rel=1e-9)
    if found.start != expected[0]:
        exact = brute_mean(s, found.start, int((found.end - found.start).total_seconds()))
        assert exact is not None and found.start < expected[0]
        assert float(exact) == pytest.approx(float(expected[1]), rel=1e-9)


# --- the real traces ------------------------------------------------------------------------


def electricitymaps_week(name: str) -> series.Series:
    with (FIXTURES / name).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return series.from_pairs(
        ((datetime.fromisoformat(r["Datetime (UTC)"]), float(r[LCA])) for r in rows), step_s=3600
    )


def entsoe_week() -> series.Series:
    """Let's Wait Awhile's GB week: 30-minute steps, then 15-minute ones (irregular)."""
    with (FIXTURES / "gb_ci_2020-10-28_week.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return series.from_pairs(
        ((datetime.fromisoformat(r["Time"]), float(r["Carbon Intensity"])) for r in rows), step_s=900
    )


REAL_TRACES = {
    "GB 2022 hourly": lambda: electricitymaps_week("GB_2022-06-06_week_hourly.csv"),
    "AU-NSW 2023 hourly": lambda: electricitymaps_week("AU-NSW_2023-01-02_week_hourly.csv"),
    "GB 2020 15/30 min": entsoe_week,
}


@pytest.fixture(params=sorted(REAL_TRACES), scope="module")
def trace(request: pytest.FixtureRequest) -> series.Series:
    return REAL_TRACES[request.param]()


def test_real_traces_are_the_shapes_the_tests_claim(trace: series.Series) -> None:
    steps = {
        int((b.start - a.start).total_seconds()) for a, b in itertools.pairwise(trace.points)
    }
    assert len(trace.points) > 160
    assert steps <= {900, 1800, 3600}


# --- mean_intensity -------------------------------------------------------------------------


def hours(*values: float, start: datetime = datetime(2026, 11, 21, tzinfo=UTC)) -> series.Series:
    return series.from_pairs(
        ((start + timedelta(hours=i), v) for i, v in enumerate(values)), step_s=3600
    )


def test_mean_intensity_weights_each_value_by_the_time_it_holds() -> None:
    s = hours(100, 300, 500)
    start = s.points[0].start + timedelta(minutes=30)
    assert windows.mean_intensity(s, start, 5400) == pytest.approx((0.5 * 100 + 1 * 300) / 1.5)


def test_mean_intensity_is_none_unless_the_window_is_wholly_covered() -> None:
    s = hours(100, 300)
    first = s.points[0].start
    assert windows.mean_intensity(s, first - timedelta(seconds=1), 600) is None
    assert windows.mean_intensity(s, first + timedelta(hours=1, minutes=1), 3600) is None
    assert windows.mean_intensity(s, first, 0) is None
    assert windows.mean_intensity(s, first, 7200) == pytest.approx(200)


def test_mean_intensity_of_an_empty_series_is_none() -> None:
    assert windows.mean_intensity(series.Series(points=(), step_s=3600),
                                  datetime(2026, 1, 1, tzinfo=UTC), 60) is None


def test_mean_intensity_matches_the_reference_on_real_traces(trace: series.Series) -> None:
    first = trace.points[0].start
    for offset_min in range(0, 6 * 24 * 60, 97):  # 97 minutes: lands off every boundary
        start = first + timedelta(minutes=offset_min)
        for duration_min in DURATIONS_MIN:
            expected = brute_mean(trace, start, duration_min * 60)
            found = windows.mean_intensity(trace, start, duration_min * 60)
            if expected is None:
                assert found is None
            else:
                assert found == pytest.approx(float(expected), rel=1e-9)


# --- the series itself ----------------------------------------------------------------------


def test_a_point_holds_until_the_next_and_the_last_for_step_s() -> None:
    s = hours(100, 300)
    first = s.points[0].start
    assert s.value_at(first) == 100
    assert s.value_at(first + timedelta(minutes=59)) == 100
    assert s.value_at(first + timedelta(hours=1)) == 300
    assert s.value_at(first + timedelta(hours=1, minutes=59)) == 300
    assert s.value_at(first + timedelta(hours=2)) is None
    assert s.value_at(first - timedelta(seconds=1)) is None
    assert s.end == first + timedelta(hours=2)


def test_from_pairs_sorts_and_reads_naive_times_as_utc() -> None:
    s = series.from_pairs([(datetime(2026, 1, 1, 1), 2.0), (datetime(2026, 1, 1, 0), 1.0)],
                          step_s=3600)
    assert [p.g_per_kwh for p in s.points] == [1.0, 2.0]
    assert s.start == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("points", "step_s", "message"),
    [
        ((series.Point(datetime(2026, 1, 1, 1, tzinfo=UTC), 1.0),
          series.Point(datetime(2026, 1, 1, 0, tzinfo=UTC), 1.0)), 3600, "out of order"),
        ((series.Point(datetime(2026, 1, 1), 1.0),), 3600, "no time zone"),
        ((series.Point(datetime(2026, 1, 1, tzinfo=UTC), float("nan")),), 3600, "value nan"),
        ((), 0, "step_s must be positive"),
    ],
)
def test_series_refuses_points_it_cannot_integrate(
    points: tuple[series.Point, ...], step_s: int, message: str
) -> None:
    with pytest.raises(series.SeriesError, match=message):
        series.Series(points=points, step_s=step_s)


def test_clip_keeps_the_point_holding_at_the_start() -> None:
    s = hours(1, 2, 3, 4)
    first = s.points[0].start
    clipped = s.clip(first + timedelta(minutes=90), first + timedelta(hours=3))
    assert [p.g_per_kwh for p in clipped.points] == [2, 3]


# --- best_window ----------------------------------------------------------------------------


def test_best_window_matches_the_reference_on_real_traces(trace: series.Series) -> None:
    first = trace.points[0].start
    for offset_min in (0, 7, 60, 181, 24 * 60 + 45):
        earliest = first + timedelta(minutes=offset_min)
        latest = earliest + timedelta(hours=48)
        for duration_min in DURATIONS_MIN:
            found = windows.best_window(trace, duration_min * 60, earliest=earliest,
                                        latest_start=latest)
            assert_same_choice(trace, found, brute_best(trace, duration_min * 60, earliest, latest))


def test_best_window_over_the_whole_trace_matches_the_reference(trace: series.Series) -> None:
    assert trace.start is not None and trace.end is not None
    found = windows.best_window(trace, 4 * 3600, earliest=trace.start, latest_start=trace.end)
    assert_same_choice(trace, found, brute_best(trace, 4 * 3600, trace.start, trace.end))
    assert found is not None and found.end <= trace.end


def test_best_window_ties_go_to_the_earliest_start() -> None:
    s = hours(200, 100, 100, 100, 100, 200)
    found = windows.best_window(s, 7200, earliest=s.points[0].start,
                                latest_start=s.points[-1].start)
    assert found is not None
    assert found.start == s.points[1].start
    assert found.mean_g_per_kwh == 100


def test_best_window_considers_earliest_itself_between_boundaries() -> None:
    s = hours(500, 50, 50, 500)
    earliest = s.points[1].start + timedelta(minutes=20)
    found = windows.best_window(s, 3600, earliest=earliest, latest_start=s.points[3].start)
    assert found is not None
    assert found.start == earliest
    assert found.end == earliest + timedelta(hours=1)


def test_best_window_never_picks_a_window_that_runs_off_the_forecast() -> None:
    s = hours(300, 300, 300, 10)  # the clean last hour cannot hold a 2 h job
    found = windows.best_window(s, 7200, earliest=s.points[0].start,
                                latest_start=s.points[-1].start)
    assert found is not None
    assert found.end <= s.points[-1].start + timedelta(hours=1)
    assert found.mean_g_per_kwh == pytest.approx(155)


def test_best_window_respects_latest_start() -> None:
    s = hours(300, 300, 300, 10, 10)
    found = windows.best_window(s, 3600, earliest=s.points[0].start,
                                latest_start=s.points[2].start)
    assert found is not None and found.mean_g_per_kwh == 300


def test_best_window_is_none_when_nothing_fits() -> None:
    s = hours(100, 100)
    first = s.points[0].start
    assert windows.best_window(s, 3 * 3600, earliest=first, latest_start=first) is None
    assert windows.best_window(s, 600, earliest=first, latest_start=first - timedelta(1)) is None
    assert windows.best_window(series.Series(points=(), step_s=60), 60, earliest=first,
                               latest_start=first) is None


# --- candidate_windows ----------------------------------------------------------------------


def test_candidate_windows_start_at_earliest_then_on_the_step_grid() -> None:
    s = hours(*range(100, 148))
    earliest = s.points[0].start + timedelta(minutes=7)
    found = windows.candidate_windows(s, 3600, earliest=earliest,
                                      latest_start=earliest + timedelta(hours=2), step_s=900)
    assert [w.start for w in found] == [earliest] + [
        s.points[0].start + timedelta(minutes=m) for m in (15, 30, 45, 60, 75, 90, 105, 120)
    ]
    assert all(w.end - w.start == timedelta(hours=1) for w in found)


def test_candidate_windows_match_the_reference_on_real_traces(trace: series.Series) -> None:
    earliest = trace.points[0].start + timedelta(hours=30, minutes=11)
    latest = earliest + timedelta(hours=48)
    for duration_min in DURATIONS_MIN:
        found = windows.candidate_windows(trace, duration_min * 60, earliest=earliest,
                                          latest_start=latest, step_s=900)
        assert found[0].start == earliest
        assert all(earliest <= w.start <= latest for w in found)
        for window in found:
            expected = brute_mean(trace, window.start, duration_min * 60)
            assert expected is not None
            assert window.mean_g_per_kwh == pytest.approx(float(expected), rel=1e-9)


def test_candidate_windows_stop_where_the_forecast_ends() -> None:
    s = hours(100, 200, 300)
    found = windows.candidate_windows(s, 3600, earliest=s.points[0].start,
                                      latest_start=s.points[0].start + timedelta(days=1),
                                      step_s=1800)
    assert [w.mean_g_per_kwh for w in found] == pytest.approx([100, 150, 200, 250, 300])
    assert found[-1].end == s.end


def test_candidate_windows_skip_earliest_when_it_precedes_the_forecast() -> None:
    s = hours(100, 200)
    earliest = s.points[0].start - timedelta(minutes=50)
    found = windows.candidate_windows(s, 3600, earliest=earliest,
                                      latest_start=s.points[1].start, step_s=3600)
    assert [w.start for w in found] == [s.points[0].start, s.points[1].start]


def test_candidate_windows_refuse_a_step_that_is_not_positive() -> None:
    s = hours(100)
    with pytest.raises(ValueError, match="step_s"):
        windows.candidate_windows(s, 60, earliest=s.points[0].start,
                                  latest_start=s.points[0].start, step_s=0)


def test_candidate_windows_are_fast_enough_for_every_admission(trace: series.Series) -> None:
    """48 h at 15-minute steps: the webhook does this per region per request.

    The bound is loose (shared CI machines are slow) but catches any return to
    per-window scanning, which costs tens of milliseconds here.
    """
    earliest = trace.points[0].start + timedelta(hours=12, minutes=3)
    latest = earliest + timedelta(hours=48)
    timings = []
    for _ in range(30):
        began = time.perf_counter()
        windows.candidate_windows(trace, 7200, earliest=earliest, latest_start=latest, step_s=900)
        timings.append(time.perf_counter() - began)
    assert statistics.median(timings) < 0.003


# --- random series --------------------------------------------------------------------------


@st.composite
def random_series(draw: st.DrawFn) -> series.Series:
    """Irregular starts on whole minutes and whole-number values: exact in floating point."""
    gaps = draw(st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=60))
    values = draw(st.lists(st.integers(min_value=0, max_value=900), min_size=len(gaps),
                           max_size=len(gaps)))
    step_min = draw(st.integers(min_value=1, max_value=120))
    start = datetime(2026, 3, 29, tzinfo=UTC)
    points: list[series.Point] = []
    for gap, value in zip(gaps, values, strict=True):
        points.append(series.Point(start=start, g_per_kwh=float(value)))
        start += timedelta(minutes=gap)
    return series.Series(points=tuple(points), step_s=step_min * 60)


def _instant(s: series.Series, offset_s: int) -> datetime:
    assert s.start is not None
    return s.start + timedelta(seconds=offset_s)


@settings(max_examples=200, deadline=None)
@given(
    s=random_series(),
    duration_s=st.integers(min_value=60, max_value=12 * 3600),
    earliest_s=st.integers(min_value=-3600, max_value=60 * 3600),
    span_s=st.integers(min_value=0, max_value=72 * 3600),
)
def test_best_window_equals_the_reference_on_random_series(
    s: series.Series, duration_s: int, earliest_s: int, span_s: int
) -> None:
    earliest = _instant(s, earliest_s)
    latest = earliest + timedelta(seconds=span_s)
    found = windows.best_window(s, duration_s, earliest=earliest, latest_start=latest)
    expected = brute_best(s, duration_s, earliest, latest)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert (found.start, found.mean_g_per_kwh) == (expected[0], float(expected[1]))


@settings(max_examples=100, deadline=None)
@given(
    s=random_series(),
    duration_s=st.integers(min_value=60, max_value=12 * 3600),
    earliest_s=st.integers(min_value=-3600, max_value=60 * 3600),
    step_min=st.sampled_from([5, 15, 30, 60]),
)
def test_candidate_windows_equal_the_reference_on_random_series(
    s: series.Series, duration_s: int, earliest_s: int, step_min: int
) -> None:
    earliest = _instant(s, earliest_s)
    latest = earliest + timedelta(hours=48)
    found = windows.candidate_windows(s, duration_s, earliest=earliest, latest_start=latest,
                                      step_s=step_min * 60)
    expected_starts = _reference_candidate_starts(s, duration_s, earliest, latest, step_min * 60)
    assert [w.start for w in found] == expected_starts
    for window in found:
        expected = brute_mean(s, window.start, duration_s)
        assert expected is not None and window.mean_g_per_kwh == float(expected)


def _reference_candidate_starts(
    s: series.Series, duration_s: int, earliest: datetime, latest: datetime, step_s: int
) -> list[datetime]:
    starts: Sequence[datetime] = [earliest]
    at = earliest.timestamp() // step_s * step_s + step_s
    grid = []
    while at <= latest.timestamp():
        grid.append(datetime.fromtimestamp(at, UTC))
        at += step_s
    starts = [earliest, *grid]
    return [t for t in starts if brute_mean(s, t, duration_s) is not None]


@pytest.mark.parametrize("offset_min", [0, 11, 60])
def test_candidate_means_are_the_candidate_windows_without_the_objects(trace: series.Series,
                                                                       offset_min: int) -> None:
    earliest = trace.points[0].start + timedelta(hours=30, minutes=offset_min, seconds=offset_min)
    for duration_min in DURATIONS_MIN:
        for step_s in (900, 3600):
            found = windows.candidate_windows(trace, duration_min * 60, earliest=earliest,
                                              latest_start=earliest + timedelta(hours=48), step_s=step_s)
            begins, means = windows.candidate_means(trace, duration_min * 60, earliest=earliest,
                                                    latest_start=earliest + timedelta(hours=48), step_s=step_s)
            assert begins == [w.start.timestamp() for w in found]
            assert means == [w.mean_g_per_kwh for w in found]
