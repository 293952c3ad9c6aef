"""The grid snapshot contract: the JSON the feed writes and everyone else reads.

The same document is ``data.carbongate.grid`` in OPA. It is the only thing the
feed shares with the webhook, the controller and the simulator, so its shape
lives here as ``TypedDict`` s, with a reader that refuses what does not fit
rather than letting a half-read file reach a decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

# Re-exported: readers of the snapshot format and parse its times through here.
from carbongate.timefmt import format_time as format_time
from carbongate.timefmt import parse_time as parse_time
from planner import series

SCHEMA_VERSION = 1
Signal = Literal["average", "marginal", "index"]


class ForecastPoint(TypedDict):
    start: str
    g_per_kwh: float


class WindowDoc(TypedDict):
    start: str
    end: str
    mean_g_per_kwh: float


class RegionDoc(TypedDict):
    region: str
    g_per_kwh: float | None
    signal: Signal
    source: str
    observed_at: str
    stale: bool
    forecast_step_s: int
    forecast: list[ForecastPoint]
    best_windows: dict[str, WindowDoc]
    # When the data stops being fresh: its provider's next observation was due
    # (observed_at + cadence) plus the grace the settings allow (grid.stale_grace_s).
    fresh_until: NotRequired[str]
    emission_factor: NotRequired[str | None]
    fallback_used: NotRequired[bool]
    fetched_at: NotRequired[str]
    index_percent: NotRequired[float | None]


class GridSnapshot(TypedDict):
    schema: int
    generated_at: str
    regions: dict[str, RegionDoc]


class SnapshotError(ValueError):
    """A snapshot file or document that does not fit the contract."""


def load_snapshot(path: Path) -> GridSnapshot:
    """Read and check a snapshot file written by the feed."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise SnapshotError(f"cannot read grid snapshot {path}: {error}") from error
    return check_snapshot(document)


def check_snapshot(document: Any) -> GridSnapshot:
    """Validate the parts of a snapshot that decisions depend on."""
    if not isinstance(document, Mapping):
        raise SnapshotError("grid snapshot must be a JSON object")
    if document.get("schema") != SCHEMA_VERSION:
        raise SnapshotError(f"grid snapshot schema {document.get('schema')!r} is not {SCHEMA_VERSION}")
    regions = document.get("regions")
    if not isinstance(regions, Mapping):
        raise SnapshotError("grid snapshot has no 'regions' object")
    for name, region in regions.items():
        _check_region(name, region)
    return document  # type: ignore[return-value]


def _check_region(name: str, region: Any) -> None:
    if not isinstance(region, Mapping):
        raise SnapshotError(f"region {name!r} must be an object")
    for key in ("signal", "source", "observed_at", "stale", "forecast", "forecast_step_s"):
        if key not in region:
            raise SnapshotError(f"region {name!r} lacks {key!r}")
    if not isinstance(region["forecast"], list):
        raise SnapshotError(f"region {name!r}: forecast must be a list")
    try:
        parse_time(region["observed_at"])
    except (TypeError, ValueError) as error:
        raise SnapshotError(f"region {name!r}: observed_at: {error}") from error


def fresh_until(observed_at: datetime, cadence_s: int, grace_s: int) -> datetime:
    """The instant data observed at ``observed_at`` turns stale.

    Data is as fresh as its provider can make it until the next observation
    is due (an hourly series observed at 11:00 is current until 12:00), and
    the feed needs a moment to fetch that one: ``grace_s``. The feed stamps
    this on every region it publishes, the planner hands it to the policies as
    ``fresh_until_ns``, and both use this one rule.
    """
    return observed_at + timedelta(seconds=cadence_s + grace_s)


def region_fresh_until(region: RegionDoc, grace_s: int) -> datetime:
    """A region's ``fresh_until`` as published, else by the rule from its observation and step."""
    published = region.get("fresh_until")
    if isinstance(published, str):
        return parse_time(published)
    return fresh_until(parse_time(region["observed_at"]), int(region["forecast_step_s"]), grace_s)


def region_series(region: RegionDoc) -> series.Series | None:
    """The region's forecast as a planner series; None for index-only or empty data."""
    if region.get("signal") == "index" or not region["forecast"]:
        return None
    points = tuple(
        series.Point(start=parse_time(p["start"]), g_per_kwh=float(p["g_per_kwh"]))
        for p in region["forecast"]
    )
    return series.Series(points=points, step_s=int(region["forecast_step_s"]))
