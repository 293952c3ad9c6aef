"""One reader of grid trace files for the feed, the simulator and governance (planner/tracefile.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from planner import tracefile

PORTAL = ("Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
          "Carbon Intensity gCO₂eq/kWh (LCA)\n"
          "2023-01-01 00:00:00,United Kingdom,Great Britain,GB,150,180\n"
          "2023-01-01 01:00:00,United Kingdom,Great Britain,GB,,\n"
          "2023-01-01 02:00:00,United Kingdom,Great Britain,GB,140,170\n")


def _write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_portal_layout_reads_either_column_skips_blank_hours_and_takes_bare_times_as_utc(
        tmp_path: Path) -> None:
    table = tracefile.read(_write(tmp_path, "\ufeff" + PORTAL))
    assert tracefile.is_portal(table) and tracefile.has_zone_rows(table)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    assert tracefile.zone_rows(table) == {"GB": [(start, 180.0), (start.replace(hour=2), 170.0)]}
    assert tracefile.zone_rows(table, "direct")["GB"][0] == (start, 150.0)


def test_the_plain_and_the_wide_layouts(tmp_path: Path) -> None:
    plain = tracefile.read(_write(tmp_path, "time,region,g_per_kwh\n2023-01-01T00:00:00Z,DE,300\n", "p.csv"))
    assert tracefile.zone_rows(plain) == {"DE": [(datetime(2023, 1, 1, tzinfo=UTC), 300.0)]}
    wide = tracefile.read(_write(tmp_path, "timestamp,A,B\n2023-01-01T01:00:00+01:00,1,\n", "w.csv"))
    time = tracefile.time_column(wide)
    assert tracefile.column_rows(wide, time, 1) == [(datetime(2023, 1, 1, tzinfo=UTC), 1.0)]
    assert tracefile.column_rows(wide, time, 2) == []


def test_recorded_forecasts_by_region(tmp_path: Path) -> None:
    table = tracefile.read(_write(tmp_path, "request_time,forecast_time,caiso_north\n"
                                            "2023-01-01 00:00,2023-01-01 00:05,200\n"))
    at = datetime(2023, 1, 1, tzinfo=UTC)
    assert tracefile.recorded_rows(table) == {"CAISO_NORTH": [(at, at.replace(minute=5), 200.0)]}


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty file"),
    ("when,where,what\n1,2,3\n", "neither the Electricity Maps"),
    ("time,region,g_per_kwh\nnoon,A,1\n", r"trace.csv:2: .*'noon' is not a time"),
    ("time,region,g_per_kwh\n2023-01-01T00:00:00Z,A,lots\n", r"trace.csv:2: could not convert"),
    ("time,region,g_per_kwh\n2023-01-01T00:00:00Z,A,-1\n", "not a finite number >= 0"),
    ("time,region,g_per_kwh\n2023-01-01T00:00:00Z,A,nan\n", "not a finite number >= 0"),
    ("time,region,g_per_kwh\n2023-01-01T00:00:00Z,A,90000\n", "not a plausible gCO2eq/kWh"),
])
def test_bad_files_name_the_file_line_and_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(tracefile.TraceFileError, match=message):
        tracefile.zone_rows(tracefile.read(_write(tmp_path, text)))


def test_a_missing_file_and_a_file_without_a_time_column(tmp_path: Path) -> None:
    with pytest.raises(tracefile.TraceFileError, match="cannot read trace"):
        tracefile.read(tmp_path / "missing.csv")
    with pytest.raises(tracefile.TraceFileError, match="no time column"):
        tracefile.time_column(tracefile.read(_write(tmp_path, "a,b\n1,2\n")))
