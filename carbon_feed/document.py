"""Readings into the grid snapshot contract (``docs/architecture.md``, "Grid snapshot").

This is the only place that knows the published shape, so the feed, the
trace snapshot used by ``carbongate review --grid`` and ``make run``, and the
``grid show`` table all agree. Best windows are computed here with
:func:`planner.windows.best_window` over the whole forecast, from the moment
of the data update on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from carbon_feed import model
from planner import snapshot as contract
from planner import windows

LAST_KNOWN_GOOD = "last-known-good:"


def best_windows(reading: model.Reading, durations_min: Iterable[int], *,
                 earliest: datetime) -> dict[str, contract.WindowDoc]:
    """Per duration (minutes, as a string key) the cleanest whole window from ``earliest`` on."""
    if reading.signal == "index" or not reading.forecast:
        return {}
    forecast = reading.series()
    end = forecast.end
    if end is None:
        return {}
    found: dict[str, contract.WindowDoc] = {}
    for minutes in durations_min:
        window = windows.best_window(forecast, minutes * 60, earliest=earliest, latest_start=end)
        if window is not None:
            found[str(minutes)] = {
                "start": contract.format_time(window.start),
                "end": contract.format_time(window.end),
                "mean_g_per_kwh": round(window.mean_g_per_kwh, 3),
            }
    return found


def age_s(reading: model.Reading, now: datetime) -> float:
    """Seconds since the reading's interval began (never negative: skew is not freshness)."""
    return max(0.0, (now - reading.observed_at).total_seconds())


def fresh_until(reading: model.Reading, grace_s: int) -> datetime:
    """When the reading turns stale: its provider's next observation due, plus the grace."""
    return contract.fresh_until(reading.observed_at, reading.every_s, grace_s)


def is_stale(reading: model.Reading, now: datetime, grace_s: int) -> bool:
    """Past its provider's cadence and the grace: the policy must not act on it."""
    return now >= fresh_until(reading, grace_s)


def region_document(
    reading: model.Reading,
    *,
    now: datetime,
    grace_s: int,
    best: Mapping[str, contract.WindowDoc],
    source_label: str | None = None,
    fallback_used: bool = False,
) -> contract.RegionDoc:
    """One region of the snapshot; ``source_label`` overrides the source (last-known-good)."""
    document: contract.RegionDoc = {
        "region": reading.region,
        "g_per_kwh": None if reading.g_per_kwh is None else round(reading.g_per_kwh, 3),
        "signal": reading.signal,
        "emission_factor": reading.emission_factor,
        "source": source_label or reading.source,
        "fallback_used": fallback_used,
        "observed_at": contract.format_time(reading.observed_at),
        "fetched_at": contract.format_time(reading.fetched_at),
        "stale": is_stale(reading, now, grace_s),
        "fresh_until": contract.format_time(fresh_until(reading, grace_s)),
        "forecast_step_s": reading.forecast_step_s,
        "forecast": [
            {"start": contract.format_time(p.start), "g_per_kwh": round(p.g_per_kwh, 3)}
            for p in reading.forecast
        ],
        "best_windows": dict(best),
    }
    if reading.signal == "index":
        document["index_percent"] = reading.index_percent
    return document


def snapshot(regions: Mapping[str, contract.RegionDoc], *, now: datetime) -> contract.GridSnapshot:
    """The whole document, ``data.carbongate.grid``."""
    return {"schema": contract.SCHEMA_VERSION, "generated_at": contract.format_time(now),
            "regions": dict(regions)}


def next_window(document: contract.RegionDoc, *, now: datetime, minutes: int) -> contract.WindowDoc | None:
    """The published best window for ``minutes`` if it has not already ended."""
    window = document.get("best_windows", {}).get(str(minutes))
    if window is None or contract.parse_time(window["end"]) <= now:
        return None
    return window
