"""Where a finished run's grid intensity comes from: the feed's archive, or trace files.

A run is charged the intensity of the hours it actually ran, time-weighted
(``planner.windows.mean_intensity``), in the region it ran in. Two sources:

* :class:`ArchiveHistory`, the feed's published snapshots as governance
  archived them in the ledger (``grid_points``): the same numbers the webhook
  decided on, kept after the feed's forecast has moved on;
* :class:`TraceHistory`, Electricity Maps data-portal CSV files (the demo
  traces in ``examples/grid/``). A trace covers one past year; a run outside
  it is priced at the same time of year in the trace, which is how the feed
  replays the traces (``feed.trace_clock = "wall"``).

:class:`ChainHistory` asks them in turn. Every answer states its signal
(``average`` or ``marginal``) so a report never mixes the two unnoticed.
"""

from __future__ import annotations

import calendar
import itertools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from governance import ledger as ledger_mod
from governance import runs
from planner import series as series_mod
from planner import tracefile, windows

log = logging.getLogger(__name__)

EmissionFactor = Literal["lifecycle", "direct"]
_TRACE_COLUMNS: Mapping[str, tracefile.Column] = {"lifecycle": "lca", "direct": "direct"}


class HistoryError(ValueError):
    """A trace file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Reading:
    """The time-weighted mean intensity over (the covered part of) a run."""

    mean_g_per_kwh: float
    signal: str
    source: str
    covered_s: float


class IntensityHistory(Protocol):
    """Past intensity of a region, as a time-weighted mean over a window."""

    def mean(self, region: str, start: datetime, end: datetime) -> Reading | None:
        """The mean over ``[start, end)``, over the part covered if not all; None if none."""
        ...


def mean_over(series: series_mod.Series, start: datetime, end: datetime) -> tuple[float, float] | None:
    """(mean, seconds covered) over the part of ``[start, end)`` the series covers.

    A run that outlasts the data is still priced on what is known rather than
    not at all; a zero-length run takes the value at its instant.
    """
    if series.start is None or series.end is None:
        return None
    if end <= start:
        value = series.value_at(start)
        return None if value is None else (value, 0.0)
    begin, finish = max(start, series.start), min(end, series.end)
    if finish <= begin:
        return None
    duration_s = (finish - begin).total_seconds()
    value = windows.mean_intensity(series, begin, duration_s)
    return None if value is None else (value, duration_s)


# --- trace files ------------------------------------------------------------------------

@dataclass(frozen=True)
class TraceHistory:
    """Electricity Maps hourly CSV traces, one series per zone, replayed by time of year."""

    series: Mapping[str, series_mod.Series]
    emission_factor: EmissionFactor = "lifecycle"

    def mean(self, region: str, start: datetime, end: datetime) -> Reading | None:
        found = self.series.get(region)
        if found is None or found.start is None:
            return None
        priced = _by_time_of_year(found, start, end)
        if priced is None:
            return None
        return Reading(mean_g_per_kwh=priced[0], signal="average",
                       source=f"trace:{self.emission_factor}", covered_s=priced[1])


def load_traces(paths: Iterable[Path], *, emission_factor: EmissionFactor = "lifecycle"
                ) -> TraceHistory:
    """Read data-portal CSV files (``Datetime (UTC)``, ``Zone Id``, intensity columns)."""
    pairs: dict[str, list[tuple[datetime, float]]] = {}
    for path in paths:
        for zone, when, value in _trace_rows(path, _TRACE_COLUMNS[emission_factor]):
            pairs.setdefault(zone, []).append((when, value))
    try:
        series = {zone: _dedupe(points) for zone, points in pairs.items()}
    except series_mod.SeriesError as error:
        raise HistoryError(f"trace files do not form a series: {error}") from error
    return TraceHistory(series=series, emission_factor=emission_factor)


def _trace_rows(path: Path, column: tracefile.Column) -> Iterable[tuple[str, datetime, float]]:
    """A data-portal file's rows (planner.tracefile); blank hours are left out."""
    try:
        table = tracefile.read(path)
        wanted = (tracefile.PORTAL_TIME, tracefile.PORTAL_ZONE, tracefile.PORTAL_COLUMNS[column])
        missing = [name for name in wanted if name not in table.names]
        if missing:
            raise HistoryError(f"{path}: missing column(s) {missing} of the data-portal layout")
        rows = tracefile.zone_rows(table, column)
    except tracefile.TraceFileError as error:
        raise HistoryError(str(error)) from error
    for zone, points in rows.items():
        for when, value in points:
            yield zone, when, value


def _dedupe(points: list[tuple[datetime, float]]) -> series_mod.Series:
    by_start = dict(sorted(points))
    starts = sorted(by_start)
    step_s = series_mod.step_of(starts)
    return series_mod.from_pairs(((s, by_start[s]) for s in starts), step_s=step_s)


def _by_time_of_year(trace: series_mod.Series, start: datetime, end: datetime) -> tuple[float, float] | None:
    """(mean, seconds covered) of ``[start, end)`` priced on the trace at the same time of year.

    The run is cut where the calendar would tear it: at each new year and
    around 29 February. Each piece is priced where it falls in the trace (its
    own year if the trace has it, else the trace's year), 29 February on the
    trace's 28th when the trace year has none, and the pieces are weighted by
    the time each covered. A run from 31 December 22:00 to 1 January 02:00
    is priced on all four hours, not only those before midnight.
    """
    if end <= start:
        moved = _onto_trace(trace, start, start)
        value = None if moved is None else trace.value_at(moved)
        return None if value is None else (value, 0.0)
    weighted, covered = 0.0, 0.0
    for begin, finish in _calendar_pieces(start, end):
        moved = _onto_trace(trace, begin, finish)
        if moved is None:
            continue
        found = mean_over(trace, moved, moved + (finish - begin))
        if found is not None:
            weighted += found[0] * found[1]
            covered += found[1]
    if covered <= 0:
        return None
    return weighted / covered, covered


def _calendar_pieces(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at every 1 January and at the start and end of every 29 February."""
    cuts = set()
    for year in range(start.year, end.year + 2):
        cuts.add(datetime(year, 1, 1, tzinfo=UTC))
        if calendar.isleap(year):
            cuts.update({datetime(year, 2, 29, tzinfo=UTC), datetime(year, 3, 1, tzinfo=UTC)})
    bounds = [start, *sorted(c for c in cuts if start < c < end), end]
    return list(itertools.pairwise(bounds))


def _onto_trace(trace: series_mod.Series, begin: datetime, finish: datetime) -> datetime | None:
    """Where a piece that neither crosses a new year nor 29 February's edges starts in the trace."""
    assert trace.start is not None and trace.end is not None
    years = [begin.year, *range(trace.start.year, trace.end.year + 1)]
    for year in years:
        moved = tracefile.same_time_in(begin, year)
        if trace.start < moved + (finish - begin) and moved < trace.end:
            return moved
    return None


# --- the archive of published snapshots -------------------------------------------------

@dataclass(frozen=True)
class ArchiveHistory:
    """Intensity the feed published, as archived in the ledger's ``grid_points``."""

    ledger: ledger_mod.Ledger

    def mean(self, region: str, start: datetime, end: datetime) -> Reading | None:
        points = self.ledger.points(region, since=start, until=max(end, start + _INSTANT))
        if not points:
            return None
        series = series_mod.Series(
            points=tuple(series_mod.Point(start=p.start, g_per_kwh=p.g_per_kwh) for p in points),
            step_s=points[-1].step_s)
        found = mean_over(series, start, end)
        if found is None:
            return None
        signals = {p.signal for p in points}
        return Reading(mean_g_per_kwh=found[0], signal="/".join(sorted(signals)),
                       source="archive:" + "/".join(sorted({p.source for p in points})),
                       covered_s=found[1])


_INSTANT = timedelta(seconds=1)


def archive_snapshot(ledger: ledger_mod.Ledger, snapshot: Mapping[str, Any]) -> int:
    """Store a grid snapshot's forecast points (g/kWh signals only) in the ledger.

    Index-only signals (WattTime's percent) carry no g/kWh and cannot price a
    run, so they are skipped. Later snapshots overwrite earlier values for the
    same hour: they know better (an observation replaces a forecast).
    """
    points: list[ledger_mod.GridPoint] = []
    for region, doc in (snapshot.get("regions") or {}).items():
        if not isinstance(doc, Mapping) or doc.get("signal") not in ("average", "marginal"):
            continue
        step_s = int(doc.get("forecast_step_s") or 3600)
        for point in doc.get("forecast") or []:
            try:
                points.append(ledger_mod.GridPoint(
                    region=str(region), start=runs.parse_time(str(point["start"])),
                    g_per_kwh=float(point["g_per_kwh"]), signal=str(doc["signal"]),
                    source=str(doc.get("source") or "feed"), step_s=step_s))
            except (KeyError, TypeError, ValueError) as error:
                log.warning("skipping a malformed forecast point of %s: %s", region, error)
    return ledger.store_points(points)


# --- in turn ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainHistory:
    """Ask each history in turn; the first that covers more of the run wins."""

    histories: tuple[IntensityHistory, ...]

    def mean(self, region: str, start: datetime, end: datetime) -> Reading | None:
        best: Reading | None = None
        wanted = max(0.0, (end - start).total_seconds())
        for history in self.histories:
            reading = history.mean(region, start, end)
            if reading is not None and (best is None or reading.covered_s > best.covered_s):
                best = reading
            if best is not None and best.covered_s >= wanted:
                break
        return best
