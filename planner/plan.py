"""A workload's plan: candidate start windows per region, for Rego to choose from.

The arithmetic (time-weighted means over the forecast, the network cost of
moving data) is mechanism and lives here; which region and which window to
take is policy and stays in Rego. The same function serves the webhook at
admission, the controller when it re-plans and the simulator, so a decision
replayed on a trace sees exactly what production saw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from planner import series as series_mod
from planner import snapshot, windows

NS_PER_S = 1_000_000_000


class WindowInput(TypedDict):
    """A candidate start and its mean intensity: all the policies read of a window.

    No RFC 3339 copies of the start and end: the policies format times from
    ``start_ns`` themselves, and the engine's cost grows with every JSON node
    of the input (docs/performance.md).
    """

    start_ns: int
    mean_g_per_kwh: float


class RegionPlan(TypedDict):
    now_g_per_kwh: float | None
    signal: str
    stale: bool
    source: str
    observed_at: str
    fresh_until_ns: int
    move_g: float
    windows: list[WindowInput]


class Plan(TypedDict):
    home_region: str
    duration_s: int
    regions: dict[str, RegionPlan]


@dataclass(frozen=True)
class WorkloadShape:
    """What the planner needs to know of a workload.

    ``max_start_s`` bounds how far ahead candidates go: the longest delay any
    policy could grant it (its requested max-delay, or the largest tier cap),
    so the input stays small. Rego applies the real cap.
    """

    duration_s: int
    max_start_s: int
    data_gb: float = 0.0


@dataclass(frozen=True)
class PlanningRules:
    """Knobs of the arithmetic, from settings and the platform config."""

    home_region: str
    step_s: int = 3600
    horizon_s: int = 48 * 3600
    network_kwh_per_gb: float = 0.0
    # Grace past a provider's next due observation before its data is stale (grid.stale_grace_s).
    stale_grace_s: int = 900


def plan_workload(
    grid_regions: Mapping[str, snapshot.RegionDoc],
    workload: WorkloadShape,
    *,
    now: datetime,
    rules: PlanningRules,
    parsed: Mapping[str, series_mod.Series | None] | None = None,
) -> Plan:
    """Candidate windows for every region with usable data, as ``input.plan``.

    ``parsed`` holds each region's forecast already turned into a series (see
    :func:`parse_regions`): callers that plan many workloads on one snapshot
    parse it once, not once per request.
    """
    series_by_region = parsed if parsed is not None else parse_regions(grid_regions)
    home_series = series_by_region.get(rules.home_region)
    # The means a data move is priced at; a plan moving no data (most) needs neither.
    moving = workload.data_gb > 0
    home_mean = _mean_now(home_series, now, workload.duration_s) if moving else None
    regions: dict[str, RegionPlan] = {}
    for name, region in grid_regions.items():
        region_series = series_by_region.get(name)
        candidates = _candidates(region_series, workload, now=now, rules=rules)
        region_mean = (_mean_now(region_series, now, workload.duration_s)
                       if moving and name != rules.home_region else None)
        regions[name] = {
            "now_g_per_kwh": _value_now(region, region_series, now),
            "signal": region.get("signal", "average"),
            "stale": bool(region.get("stale", True)),
            "source": str(region.get("source", "")),
            "observed_at": str(region.get("observed_at", "")),
            "fresh_until_ns": fresh_until_ns(region, rules.stale_grace_s),
            "move_g": _move_grams(name, rules, workload, home_mean, region_mean),
            "windows": candidates,
        }
    return {"home_region": rules.home_region, "duration_s": workload.duration_s, "regions": regions}


def fresh_until_ns(region: snapshot.RegionDoc, grace_s: int) -> int:
    """When the region's data turns stale, in ns; 0 (stale) when the snapshot cannot say."""
    try:
        return int(snapshot.region_fresh_until(region, grace_s).timestamp()) * NS_PER_S
    except (KeyError, TypeError, ValueError):
        return 0


def parse_regions(grid_regions: Mapping[str, snapshot.RegionDoc]) -> dict[str, series_mod.Series | None]:
    """Every region's forecast as a series (None for index-only or empty data)."""
    return {name: snapshot.region_series(region) for name, region in grid_regions.items()}


def _candidates(
    region_series: series_mod.Series | None,
    workload: WorkloadShape,
    *,
    now: datetime,
    rules: PlanningRules,
) -> list[WindowInput]:
    if region_series is None:
        return []
    latest = now + timedelta(seconds=min(workload.max_start_s, rules.horizon_s))
    step_s = max(rules.step_s, region_series.step_s)
    begins, means = windows.candidate_means(
        region_series, workload.duration_s, earliest=now, latest_start=latest, step_s=step_s
    )
    # improving() on the bare starts and means: the same windows, without building every one.
    kept: list[WindowInput] = []
    lowest = math.inf
    for begin, mean in zip(begins, means, strict=True):
        if mean < lowest:
            kept.append({"start_ns": int(begin) * NS_PER_S, "mean_g_per_kwh": round(mean, 3)})
            lowest = mean
    return kept


def improving(found: list[windows.Window]) -> list[windows.Window]:
    """The windows cleaner than every earlier one (in start order).

    A policy that takes the lowest mean among starts up to a latest start,
    ties to the earliest, always picks one of these, and so does one that
    takes the earliest start at or below a limit: nothing it could choose is
    dropped, and the input shrinks from every candidate (48 a region over a
    day, hourly) to the handful that improve — which is most of what a
    decision costs in the engine.
    """
    kept: list[windows.Window] = []
    for window in found:
        if not kept or window.mean_g_per_kwh < kept[-1].mean_g_per_kwh:
            kept.append(window)
    return kept


def _window_input(window: windows.Window) -> WindowInput:
    return {
        "start_ns": int(window.start.timestamp()) * NS_PER_S,
        "mean_g_per_kwh": round(window.mean_g_per_kwh, 3),
    }


def _mean_now(region_series: series_mod.Series | None, now: datetime, duration_s: int) -> float | None:
    if region_series is None:
        return None
    return windows.mean_intensity(region_series, now, duration_s)


def _value_now(
    region: snapshot.RegionDoc, region_series: series_mod.Series | None, now: datetime
) -> float | None:
    """Intensity at ``now``: from the forecast when it covers now, else the reading."""
    if region_series is not None:
        value = region_series.value_at(now)
        if value is not None:
            return round(value, 3)
    reading = region.get("g_per_kwh")
    return None if reading is None else float(reading)


def _move_grams(
    name: str,
    rules: PlanningRules,
    workload: WorkloadShape,
    home_mean: float | None,
    region_mean: float | None,
) -> float:
    """Network emissions of moving the workload's data from home to ``name``."""
    if name == rules.home_region or workload.data_gb <= 0:
        return 0.0
    ends = [m for m in (home_mean, region_mean) if m is not None]
    if not ends:
        return 0.0
    mean_intensity = sum(ends) / len(ends)
    return round(workload.data_gb * rules.network_kwh_per_gb * mean_intensity, 3)
