"""Grid snapshot files for the controller tests, made from the bundled demo traces.

The controller shares only the snapshot contract with the feed, so the tests
write that contract's JSON themselves, atomically (temp file + rename) as the
feed does, from real Electricity Maps hourly data for 2023
(``examples/grid/*_2023_hourly.csv``, life-cycle intensity): a snapshot "at"
an instant carries the reading of that hour and the following hours as the
forecast, which is what a perfect forecast would have said.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from carbongate import settings as settings_mod

LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"


@functools.cache
def trace(region: str) -> dict[datetime, float]:
    """Hourly LCA intensity of a demo region, keyed by the hour's start (UTC)."""
    path = settings_mod.DEMO_GRID_DIR / f"{region}_2023_hourly.csv"
    with path.open(encoding="utf-8") as handle:
        return {datetime.fromisoformat(row["Datetime (UTC)"]).replace(tzinfo=UTC): float(row[LCA])
                for row in csv.DictReader(handle)}


def intensity(region: str, when: datetime) -> float:
    return trace(region)[when.replace(minute=0, second=0, microsecond=0)]


def snapshot(at: datetime, *, regions: tuple[str, ...] = ("GB", "NO"), hours: int = 48,
             stale: bool = False) -> dict[str, Any]:
    """The snapshot the feed would publish at ``at`` (on the hour)."""
    hour = at.replace(minute=0, second=0, microsecond=0)
    docs = {}
    for region in regions:
        points = [{"start": _text(hour + timedelta(hours=i)),
                   "g_per_kwh": intensity(region, hour + timedelta(hours=i))}
                  for i in range(hours)]
        docs[region] = {
            "region": region, "g_per_kwh": points[0]["g_per_kwh"], "signal": "average",
            "emission_factor": "lifecycle", "source": "trace", "fallback_used": False,
            "observed_at": _text(hour), "fetched_at": _text(at), "stale": stale,
            "forecast_step_s": 3600, "forecast": points, "best_windows": {},
        }
    return {"schema": 1, "generated_at": _text(at), "regions": docs}


def publish(path: Path, document: dict[str, Any]) -> None:
    """Write atomically, as the feed does, and make the change visible to a stat."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document), encoding="utf-8")
    os.replace(temporary, path)
    stamp = path.stat().st_mtime_ns + 1_000_000  # a new version even within one mtime tick
    os.utime(path, ns=(stamp, stamp))


def _text(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
