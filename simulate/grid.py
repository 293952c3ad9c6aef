"""The grid a replay runs on: one true intensity series per region, read from trace files.

The truth is what jobs are charged with, whatever forecast a policy saw. It
comes from the trace files given with ``--grid``; region names are the zone
ids inside them (``GB``, ``DE``, ``US-CAL-CISO``), or for files that carry no
zone id, the name of their value column or of the file.

Formats read (every file under ``shared/data/grid`` of the project's data):

- what the feed's trace provider reads (``carbon_feed.traces``): the
  Electricity Maps data portal (``Zone Id`` and the life-cycle column
  ``Carbon Intensity gCO₂eq/kWh (LCA)``), the bundled demo traces among
  them, and ``time,region,g_per_kwh``; read by that module, so the replay
  and the demo feed see the same numbers;
- a time column and one value column per region (``time,Caiso_North`` of
  WattTime's vessim export, ``Time,Carbon Intensity`` of "Let's wait awhile",
  the 123-zone wide file, EIA-930 ``timestamp,...,avg_CI``), read here.

Rows without a value are skipped: the series holds the previous value over
the gap, as the snapshot contract says. A file that yields no usable series
is refused with its name and the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from carbon_feed import traces as feed_traces
from planner import series as series_mod
from planner import tracefile


class GridError(ValueError):
    """A trace file that cannot be replayed; the message names it."""


class Trace:
    """One region's true intensity, and the file it came from.

    A wide file holds many regions (123 in one of ours) while a replay uses
    a few, so a region's column is parsed on first use, not when the file is read.
    """

    def __init__(self, *, region: str, path: Path,
                 read: Callable[[], series_mod.Series]) -> None:
        self.region = region
        self.path = path
        self._read = read

    @functools.cached_property
    def series(self) -> series_mod.Series:
        """The whole trace as a planner series (the last point holds for the usual step)."""
        return self._read()

    @property
    def start_s(self) -> float:
        return self.series.index.bounds[0]

    @property
    def end_s(self) -> float:
        return self.series.index.bounds[-1]


def load(paths: Sequence[Path]) -> dict[str, Trace]:
    """Every region of every file, in the order given; a region twice is an error."""
    if not paths:
        raise GridError("no grid trace given (--grid FILE...)")
    traces: dict[str, Trace] = {}
    for path in paths:
        for trace in read_file(path):
            if trace.region in traces:
                raise GridError(f"region {trace.region} is in both {traces[trace.region].path} and {path}")
            traces[trace.region] = trace
    return traces


def read_file(path: Path) -> list[Trace]:
    """The regions of one trace file (rows by planner.tracefile, like the feed's and governance's)."""
    try:
        table = tracefile.read(path)
    except tracefile.TraceFileError as error:
        raise GridError(f"cannot read grid trace: {error}") from error
    if tracefile.has_zone_rows(table):
        return _feed_traces(path)
    if len(table.rows) < 2:
        raise GridError(f"{path}: fewer than two rows of readings")
    columns = _wide_columns(table)
    return [Trace(region=region, path=path,
                  read=functools.partial(_column_series, table, time, column, region))
            for region, (time, column) in columns.items()]


def _feed_traces(path: Path) -> list[Trace]:
    try:
        loaded = feed_traces.load(path)
    except feed_traces.TraceError as error:
        raise GridError(str(error)) from error
    return [Trace(region=t.region, path=path, read=functools.partial(_given, t.series)) for t in loaded]


def _given(value: series_mod.Series) -> series_mod.Series:
    return value


def _wide_columns(table: tracefile.Table) -> dict[str, tuple[int, int]]:
    try:
        return tracefile.wide_columns(table)
    except tracefile.TraceFileError as error:
        raise GridError(str(error)) from error


def _column_series(table: tracefile.Table, time: int, column: int, region: str) -> series_mod.Series:
    """One column as a series, skipping rows without a value."""
    try:
        pairs = tracefile.column_rows(table, time, column)
    except tracefile.TraceFileError as error:
        raise GridError(str(error)) from error
    return _series(table.path, region, pairs)


def _series(path: Path, region: str, pairs: list[tuple[datetime, float]]) -> series_mod.Series:
    pairs.sort(key=lambda p: p[0])
    unique = [p for i, p in enumerate(pairs) if i == 0 or p[0] != pairs[i - 1][0]]
    if len(unique) < 2:
        raise GridError(f"{path}: region {region} has fewer than two readings")
    step_s = series_mod.step_of([t for t, _ in unique])
    points = tuple(series_mod.Point(start=t, g_per_kwh=v) for t, v in unique)
    return series_mod.Series(points=points, step_s=step_s)
