"""Grid traces: every layout of the project's data reads into regions named as the data names them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulate import grid
from tests.simulate.conftest import CAISO, DEMO, WATTTIME_ACTUAL, write_trace


def test_electricity_maps_exports_are_named_by_their_zone_id() -> None:
    traces = grid.load(sorted(DEMO.glob("*.csv")))
    assert set(traces) == {"DE", "GB", "NO"}  # DE from a file the upstream named DE-LU
    gb = traces["GB"].series
    assert len(gb.points) == 8760 and gb.step_s == 3600
    assert gb.points[0].g_per_kwh == 91.44  # the life-cycle column


def test_a_time_and_value_column_file_is_named_by_its_column() -> None:
    (trace,) = grid.read_file(WATTTIME_ACTUAL)
    assert trace.region == "CAISO_NORTH"
    assert trace.series.step_s == 300
    assert trace.series.points[0].start == datetime(2023, 6, 8, tzinfo=UTC)


def test_generic_value_columns_take_the_files_name(tmp_path: Path) -> None:
    path = tmp_path / "fr_ci.csv"
    path.write_text("Time,Carbon Intensity\n2020-01-01 00:00:00,50\n2020-01-01 00:30:00,55\n2020-01-01 01:00:00,60\n")
    (trace,) = grid.read_file(path)
    assert trace.region == "FR"
    assert [p.g_per_kwh for p in trace.series.points] == [50, 55, 60]


def test_a_wide_file_gives_every_column_a_region_and_skips_the_mix(tmp_path: Path) -> None:
    wide = tmp_path / "zones.csv"
    wide.write_text("hour_index,datetime_utc_assumed,FR,PL\n0,2022-01-01 00:00:00,90,800\n1,2022-01-01 01:00:00,95,\n"
                    "2,2022-01-01 02:00:00,99,820\n")
    traces = grid.load([wide])
    assert set(traces) == {"FR", "PL"}
    assert [p.g_per_kwh for p in traces["PL"].series.points] == [800, 820]  # the empty cell holds the last value
    mix = tmp_path / "CISO_NG_avgCI_2022.csv"
    mix.write_text("timestamp,WND,SUN,NG,avg_CI\n2022-01-01 00:00:00+00:00,1,2,3,250.5\n"
                   "2022-01-01 01:00:00+00:00,1,2,3,260\n")
    assert [t.region for t in grid.read_file(mix)] == ["CISO"]


def test_the_plain_layout_is_read_like_the_feed_reads_it(tmp_path: Path) -> None:
    path = write_trace(tmp_path / "t.csv", "XX", datetime(2023, 1, 1, tzinfo=UTC), [1.0, 2.0, 3.0])
    assert grid.load([path])["XX"].end_s == datetime(2023, 1, 1, 3, tzinfo=UTC).timestamp()


def test_a_region_in_two_files_is_refused() -> None:
    with pytest.raises(grid.GridError, match="US-CAL-CISO is in both"):
        grid.load([CAISO, CAISO])


@pytest.mark.parametrize(("content", "message"), [
    ("a,b\n1,2\n3,4\n", "no time column"),
    ("time\n2023-01-01 00:00:00\n2023-01-01 01:00:00\n", "no intensity column"),
    ("time,X\nnoon,1\n2023-01-01 01:00:00,2\n", "'noon' is not a time"),
    ("time,X\n2023-01-01 00:00:00,-5\n2023-01-01 01:00:00,2\n", "not a finite number >= 0"),
    ("time,X\n2023-01-01 00:00:00,1\n", "fewer than two rows"),
])
def test_a_bad_trace_is_refused_with_its_name(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(grid.GridError, match=message):
        _ = [t.series for t in grid.read_file(path)]


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(grid.GridError, match="cannot read grid trace"):
        grid.load([tmp_path / "nowhere.csv"])
