"""Trace replay: both CSV layouts, the replay clocks, wrapping at the year's end, the offline snapshot."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbon_feed import errors, traces
from planner import series
from planner import snapshot as contract
from tests.carbon_feed.helpers import EXAMPLES, at

GB = EXAMPLES / "GB_2023_hourly.csv"
LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"
DIRECT = "Carbon Intensity gCO₂eq/kWh (direct)"


def rows_of(path: Path) -> dict[datetime, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {datetime.fromisoformat(r["Datetime (UTC)"]).replace(tzinfo=UTC): r for r in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def gb_rows() -> dict[datetime, dict[str, str]]:
    return rows_of(GB)


def test_the_data_portal_layout_gives_one_hourly_series_per_zone() -> None:
    (trace,) = traces.load(GB)

    assert trace.region == "GB"
    assert trace.series.step_s == 3600
    assert len(trace.series.points) == 8760
    assert trace.emission_factor == "lifecycle"


def test_the_direct_column_can_be_chosen(gb_rows: dict[datetime, dict[str, str]]) -> None:
    (trace,) = traces.load(GB, column="direct")

    first = trace.series.points[0]
    assert first.g_per_kwh == float(gb_rows[first.start][DIRECT])
    assert trace.emission_factor == "direct"


def test_the_plain_layout_may_hold_several_regions(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("time,region,g_per_kwh\n"
                    "2026-01-01T00:00:00Z,A,100\n2026-01-01T00:30:00Z,A,200\n"
                    "2026-01-01 00:00:00,B,50\n2026-01-01 00:30:00,B,\n2026-01-01 01:00:00,B,70\n",
                    encoding="utf-8")

    loaded = {t.region: t for t in traces.load(path)}

    assert [p.g_per_kwh for p in loaded["A"].series.points] == [100, 200]
    assert loaded["A"].series.step_s == 1800
    assert [p.g_per_kwh for p in loaded["B"].series.points] == [50, 70]  # the empty row is skipped
    assert loaded["B"].emission_factor is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,where,what\n1,2,3\n", "neither the Electricity Maps"),
        ("time,region,g_per_kwh\n2026-01-01T00:00:00Z,A,lots\n", r"plain.csv:2: could not convert"),
        ("time,region,g_per_kwh\nyesterday,A,100\n", r"plain.csv:2: Invalid isoformat"),
        ("time,region,g_per_kwh\n2026-01-01T00:00:00Z,A,90000\n", "not a plausible"),
        ("time,region,g_per_kwh\n", "no readings"),
        ("", "empty file"),
    ],
    ids=["header", "value", "time", "unit", "no-rows", "empty"],
)
def test_a_trace_that_cannot_be_replayed_is_refused_with_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "plain.csv"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(traces.TraceError, match=message):
        traces.load(path)


def test_a_missing_trace_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(traces.TraceError, match="cannot read trace"):
        traces.load(tmp_path / "absent.csv")


def test_the_wall_clock_replays_the_same_time_of_year(gb_rows: dict[datetime, dict[str, str]]) -> None:
    now = at("2026-11-22T12:07:00Z")
    replay = traces.from_files([GB], anchor=now)

    reading = replay.fetch("GB", now=now)

    assert reading.observed_at == at("2026-11-22T12:00:00Z")
    assert reading.g_per_kwh == float(gb_rows[at("2023-11-22T12:00:00Z")][LCA])
    assert reading.forecast[0].start == at("2026-11-21T12:00:00Z")  # 24 h of history
    assert reading.series().end == at("2026-11-24T13:00:00Z")       # 48 h ahead, whole hours
    assert (reading.signal, reading.source, reading.emission_factor) == ("average", "trace", "lifecycle")


def test_inside_the_trace_the_wall_clock_is_the_trace_time(gb_rows: dict[datetime, dict[str, str]]) -> None:
    now = at("2023-03-01T05:30:00Z")

    reading = traces.from_files([GB], anchor=now).fetch("GB", now=now)

    assert reading.observed_at == at("2023-03-01T05:00:00Z")
    assert reading.g_per_kwh == float(gb_rows[at("2023-03-01T05:00:00Z")][LCA])


def test_a_start_instant_replays_from_there_as_the_clock_advances(gb_rows: dict[datetime, dict[str, str]]) -> None:
    anchor = at("2026-01-01T10:00:00Z")
    replay = traces.from_files([GB], anchor=anchor, clock="2023-06-01T00:00:00Z")

    reading = replay.fetch("GB", now=anchor + timedelta(hours=2, minutes=10))

    assert reading.g_per_kwh == float(gb_rows[at("2023-06-01T02:00:00Z")][LCA])
    assert reading.observed_at == at("2026-01-01T12:00:00Z")


def test_a_replay_clock_that_is_not_a_time_is_refused() -> None:
    with pytest.raises(traces.TraceError, match="neither 'wall' nor an RFC 3339"):
        traces.from_files([GB], anchor=at("2026-01-01T00:00:00Z"), clock="tomorrow")


def test_the_forecast_wraps_from_the_end_of_the_trace_to_its_start(
    gb_rows: dict[datetime, dict[str, str]]
) -> None:
    now = at("2026-12-31T20:00:00Z")

    reading = traces.from_files([GB], anchor=now, history_h=0).fetch("GB", now=now)

    starts = [p.start for p in reading.forecast]
    assert starts == [now + timedelta(hours=h) for h in range(48)]
    after_new_year = reading.forecast[4]
    assert after_new_year.start == at("2027-01-01T00:00:00Z")
    assert after_new_year.g_per_kwh == float(gb_rows[at("2023-01-01T00:00:00Z")][LCA])


def test_29_february_replays_as_28_february(gb_rows: dict[datetime, dict[str, str]]) -> None:
    now = at("2028-02-29T12:00:00Z")

    reading = traces.from_files([GB], anchor=now).fetch("GB", now=now)

    assert reading.g_per_kwh == float(gb_rows[at("2023-02-28T12:00:00Z")][LCA])


def test_window_points_cover_the_span_exactly_once() -> None:
    hourly = series.from_pairs(((at("2026-01-01T00:00:00Z") + timedelta(hours=h), h) for h in range(4)),
                               step_s=3600)

    points = traces.window_points(hourly, at("2026-01-01T02:30:00Z"), at("2026-01-01T06:30:00Z"))

    assert [(p.start.hour, p.g_per_kwh) for p in points] == [(2, 2), (3, 3), (4, 0), (5, 1), (6, 2)]


def test_a_region_in_two_files_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "again.csv"
    copy.write_bytes(GB.read_bytes())

    with pytest.raises(traces.TraceError, match="region GB is in both"):
        traces.from_files([GB, copy], anchor=at("2026-01-01T00:00:00Z"))


def test_an_unknown_zone_is_refused_at_start_up() -> None:
    with pytest.raises(errors.ConfigError, match="wants zone 'FR'"):
        traces.from_files([GB], anchor=at("2026-01-01T00:00:00Z"), zones={"FR": "FR"})


# --- the offline snapshot ---------------------------------------------------------------------


def brute_best(rows: dict[datetime, dict[str, str]], *, now: datetime, hours: int,
               trace_now: datetime, horizon_h: int) -> tuple[datetime, float]:
    """Best whole-hour-aligned (or now-started) window by direct averaging of the CSV rows."""
    offset = now - trace_now
    end = trace_now.replace(minute=0) + timedelta(hours=horizon_h + 1)

    def mean(start: datetime) -> float | None:
        if start + timedelta(hours=hours) > end:
            return None
        total, t = 0.0, start
        finish = start + timedelta(hours=hours)
        while t < finish:
            hour = t.replace(minute=0, second=0)
            step_end = min(hour + timedelta(hours=1), finish)
            total += float(rows[hour][LCA]) * (step_end - t).total_seconds()
            t = step_end
        return total / (hours * 3600)

    candidates = [trace_now] + [trace_now.replace(minute=0) + timedelta(hours=h) for h in range(1, horizon_h + 1)]
    scored = [(m, c) for c in candidates if (m := mean(c)) is not None]
    best = min(scored, key=lambda item: (item[0], item[1]))
    return best[1] + offset, best[0]


@pytest.mark.parametrize("minutes", [60, 120, 240, 480])
def test_snapshot_best_windows_match_a_brute_force_over_the_trace(
    gb_rows: dict[datetime, dict[str, str]], minutes: int
) -> None:
    now = at("2026-11-22T12:07:00Z")
    document = traces.snapshot_from_traces([GB], now=now, horizon_h=48, durations_min=[minutes], grace_s=900)

    window = document["regions"]["GB"]["best_windows"][str(minutes)]
    start, mean = brute_best(gb_rows, now=now, hours=minutes // 60, trace_now=at("2023-11-22T12:07:00Z"),
                             horizon_h=48)

    assert contract.parse_time(window["start"]) == start
    assert window["mean_g_per_kwh"] == pytest.approx(mean, abs=1e-3)


def test_the_trace_snapshot_fits_the_contract_and_keeps_the_file_order() -> None:
    now = at("2026-11-22T12:07:00Z")
    files = traces.demo_files(EXAMPLES)

    document = traces.snapshot_from_traces(files, now=now, horizon_h=48, durations_min=(30, 60), grace_s=900)

    checked = contract.check_snapshot(document)
    assert list(checked["regions"]) == ["GB", "DE", "NO"]
    gb = checked["regions"]["GB"]
    assert (gb["source"], gb["signal"], gb["stale"], gb["fallback_used"]) == ("trace", "average", False, False)
    assert gb["forecast"][0]["start"] == gb["observed_at"] == "2026-11-22T12:00:00Z"
    assert checked["generated_at"] == "2026-11-22T12:07:00Z"
    assert set(gb["best_windows"]) == {"30", "60"}
