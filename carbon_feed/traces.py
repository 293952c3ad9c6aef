"""Recorded grid traces replayed as a provider, and the trace snapshot for offline use.

Two CSV layouts are read (rows by :mod:`planner.tracefile`, as everywhere):

* the Electricity Maps data-portal export (``Datetime (UTC)``, ``Zone Id``,
  ``Carbon Intensity gCO₂eq/kWh (LCA)`` and ``(direct)``, ...), the layout of
  ``examples/grid/*.csv``; the life-cycle column by default;
* a plain ``time,region,g_per_kwh``.

A trace is replayed against a clock. With ``wall`` the current instant is
mapped onto the same time of year in the trace (the bundled traces are all
of 2023), so the demo's "now" has the daily and weekly rhythm of the real
grid; with an RFC 3339 instant the replay starts there and advances with the
clock. The "forecast" is the trace itself over the horizon: a perfect
forecast, which is what a replay of recorded data can honestly offer.
Published times are real times (the trace shifted), so the snapshot looks
exactly like one from a live provider.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from carbon_feed import config, document, errors, model
from planner import series, tracefile
from planner import snapshot as contract

log = logging.getLogger(__name__)

SOURCE: Final = "trace"
Column = tracefile.Column
DEFAULT_STEP_S: Final = 3600


class TraceError(errors.ConfigError, ValueError):
    """A trace file that cannot be replayed; the message names the file and line."""


@dataclass(frozen=True)
class Trace:
    """One region's recorded series from one file."""

    region: str
    series: series.Series
    emission_factor: model.EmissionFactor | None
    path: Path


# --- reading files ---------------------------------------------------------------------------


def load(path: Path, *, column: Column = "lca") -> tuple[Trace, ...]:
    """Every region in a trace file (cached while the file is unchanged)."""
    try:
        stat = path.stat()
    except OSError as error:
        raise TraceError(f"cannot read trace {path}: {error.strerror}") from error
    return _load_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, column)


@functools.lru_cache(maxsize=32)
def _load_cached(path: str, _mtime_ns: int, _size: int, column: Column) -> tuple[Trace, ...]:
    file = Path(path)
    try:
        table = tracefile.read(file)
        rows = tracefile.zone_rows(table, column)
    except tracefile.TraceFileError as error:
        raise TraceError(str(error)) from error
    skipped = len(table.rows) - sum(len(points) for points in rows.values())
    if skipped:
        log.info("%s: skipped %d rows without a value", file, skipped)
    if not rows:
        raise TraceError(f"{file}: no readings")
    factor: model.EmissionFactor | None = None
    if tracefile.is_portal(table):
        factor = "lifecycle" if column == "lca" else "direct"
    return tuple(
        Trace(region=region, series=_series(file, region, points), emission_factor=factor, path=file)
        for region, points in rows.items()
    )


def _series(file: Path, region: str, rows: list[tuple[datetime, float]]) -> series.Series:
    by_time = dict(sorted(rows))  # a repeated time keeps its last value
    if len(by_time) < len(rows):
        log.warning("%s: %s has %d repeated times; kept the last of each", file, region,
                    len(rows) - len(by_time))
    starts = list(by_time)
    step = series.step_of(starts, default_s=DEFAULT_STEP_S)
    return series.Series(points=tuple(series.Point(t, v) for t, v in by_time.items()), step_s=step)


def load_any(path: Path) -> tuple[Trace, ...]:
    """Every layout ``simulate --grid`` reads: the feed's own (:func:`load`) and wide files.

    For ``grid show``, ``grid plot`` and ``review --grid`` (planner.tracefile
    knows the layouts; a wide file's regions carry no emission factor).
    """
    try:
        table = tracefile.read(path)
        if tracefile.has_zone_rows(table):
            return load(path)
        found = []
        for region, (time, column) in tracefile.wide_columns(table).items():
            rows = tracefile.column_rows(table, time, column)
            if len({when for when, _ in rows}) < 2:
                raise TraceError(f"{path}: region {region} has fewer than two readings")
            found.append(Trace(region=region, series=_series(path, region, rows), emission_factor=None, path=path))
        return tuple(found)
    except tracefile.TraceFileError as error:
        raise TraceError(str(error)) from error


# --- replay in time --------------------------------------------------------------------------


class ReplayMap:
    """Maps real instants onto a trace's own time axis, wrapping around its end."""

    def __init__(self, trace: series.Series, *, clock: str, anchor: datetime) -> None:
        if trace.start is None or trace.end is None:
            raise TraceError("an empty trace cannot be replayed")
        self.start, self.end = trace.start, trace.end
        self.span = self.end - self.start
        self._offset: timedelta | None = None
        if clock != "wall":
            try:
                begin = contract.parse_time(clock)
            except ValueError as error:
                raise TraceError(f"trace clock {clock!r} is neither 'wall' nor an RFC 3339 time") from error
            step = timedelta(seconds=trace.step_s)
            self._offset = round((anchor - begin) / step) * step  # keeps hours on hours

    def to_trace(self, now: datetime) -> datetime:
        """The trace instant replayed at real instant ``now``."""
        if self._offset is not None:
            return self._wrap(now - self._offset)
        if self.start <= now < self.end:
            return now
        for year in range(self.start.year, self.end.year + 1):
            moved = tracefile.same_time_in(now, year)
            if self.start <= moved < self.end:
                return moved
        return self._wrap(now)

    def _wrap(self, moment: datetime) -> datetime:
        return self.start + (moment - self.start) % self.span


def window_points(trace: series.Series, start: datetime, end: datetime) -> list[series.Point]:
    """Points holding at some instant of ``[start, end)``, wrapping around the trace's end."""
    if trace.start is None or trace.end is None or end <= start:
        return []
    span = trace.end - trace.start
    bounds = trace.index.bounds
    found: list[series.Point] = []
    first_cycle = math.floor((start - trace.start) / span)
    last_cycle = math.floor((end - trace.start) / span)
    for cycle in range(first_cycle, last_cycle + 1):
        shift = span * cycle
        lo = max(start - shift, trace.start).timestamp()
        hi = min(end - shift, trace.end).timestamp()
        if hi <= lo:
            continue
        i = max(bisect.bisect_right(bounds, lo) - 1, 0)
        j = bisect.bisect_left(bounds, hi)
        found.extend(series.Point(p.start + shift, p.g_per_kwh) for p in trace.points[i:j])
    return found


# --- the provider ----------------------------------------------------------------------------


class TraceSource:
    """An :class:`carbon_feed.source.IntensitySource` replaying recorded traces."""

    def __init__(
        self,
        *,
        name: str,
        traces: Sequence[Trace],
        zones: Mapping[str, str] | None = None,
        clock: str = "wall",
        anchor: datetime,
        horizon_h: int = 48,
        history_h: int = 24,
    ) -> None:
        self._name = name
        self._traces: dict[str, Trace] = {}
        for trace in traces:
            if trace.region in self._traces:
                raise TraceError(f"region {trace.region} is in both {self._traces[trace.region].path} "
                                 f"and {trace.path}")
            self._traces[trace.region] = trace
        self._zones = dict(zones) if zones is not None else {r: r for r in self._traces}
        for region, zone in self._zones.items():
            if zone not in self._traces:
                raise TraceError(f"provider {name!r}: region {region!r} wants zone {zone!r}, "
                                 f"which no trace file has (have: {', '.join(self._traces)})")
        self._maps = {zone: ReplayMap(self._traces[zone].series, clock=clock, anchor=anchor)
                      for zone in set(self._zones.values())}
        self._horizon = timedelta(hours=horizon_h)
        self._history = timedelta(hours=history_h)

    @property
    def name(self) -> str:
        return self._name

    def regions(self) -> frozenset[str]:
        return frozenset(self._zones)

    def ordered_regions(self) -> list[str]:
        """Regions in the order their files were given (the first is the demo's home)."""
        return list(self._zones)

    def fetch(self, region: str, *, now: datetime) -> model.Reading:
        zone = self._zones.get(region)
        if zone is None:
            raise errors.NoData(f"{self._name}: no trace for region {region!r}")
        trace = self._traces[zone]
        replayed = self._maps[zone].to_trace(now)
        offset = now - replayed
        points = [series.Point(p.start + offset, p.g_per_kwh)
                  for p in window_points(trace.series, replayed - self._history, replayed + self._horizon)]
        current = [p for p in points if p.start <= now]
        if not current:
            raise errors.NoData(f"{self._name}: trace for {zone} has nothing at {now}")
        return model.Reading(
            region=region, signal="average", source=SOURCE, observed_at=current[-1].start,
            fetched_at=now, g_per_kwh=current[-1].g_per_kwh, emission_factor=trace.emission_factor,
            forecast=tuple(points), forecast_step_s=trace.series.step_s,
        )


def from_files(
    paths: Iterable[Path],
    *,
    name: str = SOURCE,
    column: Column = "lca",
    clock: str = "wall",
    anchor: datetime,
    zones: Mapping[str, str] | None = None,
    horizon_h: int = 48,
    history_h: int = 24,
    read: Callable[[Path], Sequence[Trace]] | None = None,
) -> TraceSource:
    """A trace source over the regions of every file given (``read``: another file reader)."""
    traces = [trace for path in paths
              for trace in (read(Path(path)) if read is not None else load(Path(path), column=column))]
    if not traces:
        raise TraceError("no trace files given")
    return TraceSource(name=name, traces=traces, zones=zones, clock=clock, anchor=anchor,
                       horizon_h=horizon_h, history_h=history_h)


def build(name: str, options: Mapping[str, Any], zones: Mapping[str, str],
          context: config.BuildContext) -> TraceSource:
    """Factory for the providers file (``type: trace``); paths are relative to that file."""
    config.check_options(name, options, {"files", "column", "clock", "horizon_h", "history_h"})
    files = options.get("files")
    if not isinstance(files, list) or not files:
        raise errors.ConfigError(f"provider {name!r}: 'files' must list at least one CSV")
    column = options.get("column", "lca")
    if column not in tracefile.PORTAL_COLUMNS:
        raise errors.ConfigError(f"provider {name!r}: column must be 'lca' or 'direct', not {column!r}")
    paths = [p if p.is_absolute() else context.base_dir / p for p in map(Path, files)]
    return from_files(
        paths, name=name, column=column, zones=zones, anchor=context.clock.now(),
        clock=str(options.get("clock", context.trace_clock)),
        horizon_h=config.positive_int(name, options, "horizon_h", context.horizon_h),
        history_h=config.positive_int(name, options, "history_h", 24),
    )


# --- offline snapshot ------------------------------------------------------------------------


def snapshot_from_traces(
    paths: Iterable[Path],
    *,
    now: datetime,
    horizon_h: int,
    durations_min: Iterable[int],
    grace_s: int,
    history_h: int = 0,
    column: Column = "lca",
    read: Callable[[Path], Sequence[Trace]] | None = None,
) -> dict[str, Any]:
    """The grid snapshot a feed replaying these traces would publish at ``now``.

    For ``carbongate review --grid``, the simulator and tests: no cache, no
    network, a perfect forecast over ``horizon_h`` hours. Raises
    :class:`TraceError` (a ``ValueError``) for unusable files. ``read`` reads
    a file instead of :func:`load` (``grid`` and ``review`` pass the replay's
    reader, :func:`load_any`, which knows every layout ``simulate --grid`` reads).
    """
    durations = tuple(durations_min)
    replay = from_files(paths, anchor=now, horizon_h=horizon_h, history_h=history_h, column=column, read=read)
    regions: dict[str, contract.RegionDoc] = {}
    for region in replay.ordered_regions():
        reading = replay.fetch(region, now=now)
        best = document.best_windows(reading, durations, earliest=now)
        regions[region] = document.region_document(reading, now=now, grace_s=grace_s, best=best)
    return dict(document.snapshot(regions, now=now))


def demo_files(directory: Path) -> tuple[Path, ...]:
    """The bundled demo traces, GB first (the demo's home region)."""
    return tuple(sorted(directory.glob("*.csv"), key=lambda p: (not p.name.startswith("GB"), p.name)))

