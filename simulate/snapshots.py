"""The grid snapshot the simulated feed publishes at each forecast issue.

The admission path and the release path read the grid through exactly the
contract they read in production (``planner.snapshot.GridSnapshot``), so the
simulator writes that document from its forecasts: the reading holding at
the issue instant, the forecast points, ``stale: false`` and a ``fresh_until``
at the forecast's end (the simulated feed is never late: what it issued holds
until it issues again). The parsed series go along (``Knowledge.grid_series``) so the
planner does not parse back what was just formatted.

``best_windows`` are what the feed precomputes for policies that read
``data.carbongate.grid``; they are computed only when the replay publishes
the snapshot to the engine (see :mod:`simulate.replay`), since the decision
itself reads the per-workload plan.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from carbongate import timefmt
from planner import series as series_mod
from planner import snapshot, windows
from simulate import forecasts as forecasts_mod

SOURCE = "trace"
CACHE_SIZE: Final = 1024


@dataclass(frozen=True)
class Published:
    """One snapshot and its regions' forecasts as series (None for a region with no data)."""

    document: snapshot.GridSnapshot
    series: dict[str, series_mod.Series | None]


class Publisher:
    """Snapshots of one replay's forecasts, kept while jobs still ask for them.

    Jobs overlap in time and share regions, so the same issue is asked for
    by every job submitted or waiting in that hour: each is built once.
    """

    def __init__(self, forecasts: forecasts_mod.Forecasts, *, window_durations_min: Sequence[int]) -> None:
        self.forecasts = forecasts
        self._durations = tuple(window_durations_min)
        self._cache: collections.OrderedDict[tuple[tuple[str, ...], int], Published] = collections.OrderedDict()

    def at(self, regions: Sequence[str], at_s: int) -> Published:
        """The snapshot of ``regions`` issued at ``at_s`` (without best windows)."""
        key = (tuple(regions), at_s)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = publish(self.forecasts, regions, at_s=at_s)
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return found

    def everything(self, at_s: int) -> Published:
        """The full snapshot of every region, best windows included, as the feed publishes it."""
        return publish(self.forecasts, self.forecasts.regions, at_s=at_s,
                       window_durations_min=self._durations)


def publish(
    forecasts: forecasts_mod.Forecasts,
    regions: Sequence[str],
    *,
    at_s: int,
    window_durations_min: Sequence[int] = (),
) -> Published:
    """The snapshot issued at ``at_s`` for ``regions`` (regions without data are left out)."""
    at = datetime.fromtimestamp(at_s, UTC)
    documents: dict[str, snapshot.RegionDoc] = {}
    parsed: dict[str, series_mod.Series | None] = {}
    for region in regions:
        forecast = forecasts.issue(region, at_s)
        if forecast is None:
            continue
        documents[region] = region_doc(region, forecast, at=at, window_durations_min=window_durations_min)
        parsed[region] = forecast
    document: snapshot.GridSnapshot = {"schema": snapshot.SCHEMA_VERSION,
                                       "generated_at": timefmt.format_time(at), "regions": documents}
    return Published(document=document, series=parsed)


def region_doc(region: str, forecast: series_mod.Series, *, at: datetime,
               window_durations_min: Sequence[int] = ()) -> snapshot.RegionDoc:
    """One region of the snapshot: the reading at ``at`` and the forecast from its point on."""
    now_point = forecast.points[0]
    return {
        "region": region,
        "g_per_kwh": round(now_point.g_per_kwh, 3),
        "signal": "average",
        "source": SOURCE,
        "fallback_used": False,
        "observed_at": timefmt.format_time(now_point.start),
        "fetched_at": timefmt.format_time(at),
        "stale": False,
        "fresh_until": timefmt.format_time(forecast.end or at),
        "forecast_step_s": forecast.step_s,
        "forecast": [{"start": _text(p.start), "g_per_kwh": round(p.g_per_kwh, 3)} for p in forecast.points],
        "best_windows": _best_windows(forecast, at, window_durations_min),
    }


@functools.lru_cache(maxsize=65536)
def _text(instant: datetime) -> str:
    """RFC 3339 text of a forecast point's start: the same instants recur in every issue of a day."""
    return timefmt.format_time(instant)


def _best_windows(forecast: series_mod.Series, at: datetime,
                  durations_min: Sequence[int]) -> dict[str, snapshot.WindowDoc]:
    found: dict[str, snapshot.WindowDoc] = {}
    end = forecast.end
    for minutes in durations_min:
        if end is None:
            break
        best = windows.best_window(forecast, minutes * 60, earliest=at, latest_start=end - timedelta(minutes=minutes))
        if best is not None:
            found[str(minutes)] = {"start": timefmt.format_time(best.start), "end": timefmt.format_time(best.end),
                                   "mean_g_per_kwh": round(best.mean_g_per_kwh, 3)}
    return found
