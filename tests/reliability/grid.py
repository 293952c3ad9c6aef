"""Grid snapshots for the reliability tests, cut from the bundled real traces.

The webhook only reads the feed's snapshot file (the contract in
docs/architecture.md), so tests that are not about the feed write that file
themselves: 48 hours of the 2023 Electricity Maps traces in ``examples/grid``
taken at the same time of year as ``now`` and moved onto ``now``'s year, with
best windows computed by the planner as the feed does. That keeps the fuzz,
load and server-fault tests independent of the feed process while deciding
on real, varied intensities.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from carbongate import timefmt
from planner import series as series_mod
from planner import snapshot, windows

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "examples" / "grid"
LCA_COLUMN = "Carbon Intensity gCO₂eq/kWh (LCA)"
TRACE_YEAR = 2023
REGIONS = ("GB", "DE", "NO")
WINDOW_MINUTES = (30, 60, 120, 240, 480)


@functools.cache
def _trace(region: str) -> tuple[float, ...]:
    """A region's hourly intensities for the whole trace year, hour 0 = 1 January 00:00 UTC."""
    with (TRACES / f"{region}_{TRACE_YEAR}_hourly.csv").open(encoding="utf-8") as handle:
        return tuple(float(row[LCA_COLUMN]) for row in csv.DictReader(handle))


def region_doc(region: str, now: datetime, *, hours: int = 48, stale: bool = False,
               source: str = "trace") -> dict[str, Any]:
    """One region of a snapshot: the trace from the hour of ``now`` for ``hours`` hours."""
    start = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    year_start = start.replace(month=1, day=1, hour=0)
    offset = int((start - year_start).total_seconds() // 3600)
    values = _trace(region)
    points = [(start + timedelta(hours=i), values[(offset + i) % len(values)]) for i in range(hours)]
    forecast = series_mod.from_pairs(points, step_s=3600)
    best: dict[str, Any] = {}
    for minutes in WINDOW_MINUTES:
        found = windows.best_window(forecast, minutes * 60, earliest=start,
                                    latest_start=start + timedelta(hours=hours))
        if found is not None:
            best[str(minutes)] = {"start": timefmt.format_time(found.start),
                                  "end": timefmt.format_time(found.end),
                                  "mean_g_per_kwh": round(found.mean_g_per_kwh, 2)}
    observed = timefmt.format_time(start)
    return {
        "region": region, "g_per_kwh": points[0][1], "signal": "average",
        "emission_factor": "lifecycle", "source": source, "fallback_used": False,
        "observed_at": observed, "fetched_at": observed, "stale": stale, "forecast_step_s": 3600,
        "forecast": [{"start": timefmt.format_time(at), "g_per_kwh": value} for at, value in points],
        "best_windows": best,
    }


def build(now: datetime, *, regions: tuple[str, ...] = REGIONS, stale: bool = False) -> dict[str, Any]:
    """A whole snapshot document (checked against the contract before it is returned)."""
    document = {
        "schema": snapshot.SCHEMA_VERSION,
        "generated_at": timefmt.format_time(now),
        "regions": {region: region_doc(region, now, stale=stale) for region in regions},
    }
    return dict(snapshot.check_snapshot(document))


def write(path: Path, document: dict[str, Any]) -> Path:
    """Write a snapshot atomically (temp file + rename), as the feed's contract requires."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document), encoding="utf-8")
    os.replace(temporary, path)
    return path


def dirty_hour_in(region: str, *, after: datetime, within_days: int = 30) -> datetime:
    """The first hour after ``after`` when ``region`` is dirty and much cleaner soon after.

    "Much cleaner": some two-hour window starting within the next ten hours
    averages under half of the current intensity. Fuzzed tier-3 workloads
    are then decided at an hour when deferring clearly pays, so the policy
    defers and the patch path is exercised.
    """
    values = _trace(region)
    start = after.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    year_start = start.replace(month=1, day=1, hour=0)
    base = int((start - year_start).total_seconds() // 3600)

    def at(hour: int) -> float:
        return values[(base + hour) % len(values)]

    for hour in range(within_days * 24):
        soon = [(at(hour + i) + at(hour + i + 1)) / 2 for i in range(1, 10)]
        if at(hour) > 250 and min(soon) < 0.5 * at(hour):
            return start + timedelta(hours=hour)
    raise LookupError(f"no dirty hour in {region} within {within_days} days of {after}")
