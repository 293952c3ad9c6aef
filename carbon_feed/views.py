"""The grid for people: a table (``grid show``) and a chart (``grid plot``).

Both read the published snapshot (or one built from traces), never a
provider, so what a person sees is exactly what the policy sees, including
the stale flag and the source of every value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from carbon_feed import document
from planner import series, windows
from planner import snapshot as contract

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLUMNS = ("region", "g/kWh", "signal", "source", "age", "next best window")


def table(snapshot: contract.GridSnapshot, *, now: datetime, duration_min: int) -> str:
    """A fixed-width table, one row per region."""
    rows: list[Sequence[str]] = [COLUMNS]
    for name, region in snapshot["regions"].items():
        rows.append(_row(name, region, now=now, duration_min=duration_min))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    if len(rows) == 1:
        lines.append("(no regions in the snapshot)")
    lines.append(f"windows: {duration_min} min; times UTC; generated {snapshot.get('generated_at', '?')}")
    return "\n".join(lines)


def _row(name: str, region: contract.RegionDoc, *, now: datetime, duration_min: int) -> tuple[str, ...]:
    value = region.get("g_per_kwh")
    if region["signal"] == "index":
        shown = f"{region.get('index_percent', '?')} %ile"
    else:
        shown = "-" if value is None else f"{value:.0f}"
    signal: str = region["signal"]
    if region.get("emission_factor"):
        signal += f" ({region['emission_factor']})"
    age = _age(now - contract.parse_time(region["observed_at"]))
    if region["stale"]:
        age += " STALE"
    return (name, shown, signal, str(region["source"]), age, _window_text(region, now, duration_min))


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def next_window(region: contract.RegionDoc, *, now: datetime, duration_min: int) -> windows.Window | None:
    """The published best window, or one computed from the forecast if that duration is absent."""
    published = document.next_window(region, now=now, minutes=duration_min)
    if published is not None:
        return windows.Window(start=contract.parse_time(published["start"]),
                              end=contract.parse_time(published["end"]),
                              mean_g_per_kwh=float(published["mean_g_per_kwh"]))
    forecast = contract.region_series(region)
    if forecast is None or forecast.end is None:
        return None
    return windows.best_window(forecast, duration_min * 60, earliest=now, latest_start=forecast.end)


def _window_text(region: contract.RegionDoc, now: datetime, duration_min: int) -> str:
    window = next_window(region, now=now, duration_min=duration_min)
    if window is None:
        return "-"
    return (f"{window.start:%a %d %b %H:%M}-{window.end:%H:%M}  "
            f"{window.mean_g_per_kwh:.0f} g/kWh")


def plot(region: contract.RegionDoc, *, now: datetime, duration_min: int, out: Path) -> Path:
    """A PNG of the region's intensity: history, forecast, now and the best window."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    forecast = contract.region_series(region)
    if forecast is None or forecast.end is None:
        raise ValueError(f"region {region.get('region')} has no g/kWh series to plot "
                         f"(signal {region['signal']})")
    figure = Figure(figsize=(11, 5), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    past, future = _lines(forecast, now)
    if past[0]:
        axes.step([_x(t) for t in past[0]], past[1], where="post", color="#555555", linewidth=1.6,
                  label="history")
    if future[0]:
        axes.step([_x(t) for t in future[0]], future[1], where="post", color="#1f77b4", linewidth=1.8,
                  label="forecast")
    axes.axvline(_x(now), color="#d62728", linestyle="--", linewidth=1.2,
                 label=f"now {now:%a %H:%M}Z")
    window = next_window(region, now=now, duration_min=duration_min)
    if window is not None:
        start, end = _x(window.start), _x(window.end)
        axes.axvspan(start, end, color="#2ca02c", alpha=0.25,
                     label=f"best {duration_min} min window: {window.start:%a %H:%M}Z, "
                           f"mean {window.mean_g_per_kwh:.0f} g/kWh")
        axes.hlines(window.mean_g_per_kwh, start, end, color="#2ca02c", linewidth=3)
    _decorate(figure, axes, region, now=now)
    figure.savefig(out)
    return out


def _x(moment: datetime) -> float:
    """A time as matplotlib's date number (its date converter is untyped)."""
    from matplotlib.dates import date2num

    return float(date2num(moment))  # type: ignore[no-untyped-call]


Line = tuple[list[datetime], list[float]]


def _lines(forecast: series.Series, now: datetime) -> tuple[Line, Line]:
    """Post-step lines split at ``now``: what was measured, and what is expected."""
    assert forecast.end is not None
    past = [p for p in forecast.points if p.start <= now]
    future = [p for p in forecast.points if p.start > now]
    past_line: Line = ([p.start for p in past], [p.g_per_kwh for p in past])
    future_line: Line = ([p.start for p in future], [p.g_per_kwh for p in future])
    if past and now < forecast.end:
        past_line[0].append(now)
        past_line[1].append(past[-1].g_per_kwh)
        future_line[0].insert(0, now)
        future_line[1].insert(0, past[-1].g_per_kwh)
    if future_line[0]:
        future_line[0].append(forecast.end)
        future_line[1].append(future_line[1][-1])
    return past_line, future_line


def _decorate(figure: Figure, axes: Axes, region: contract.RegionDoc, *, now: datetime) -> None:
    from matplotlib.dates import DateFormatter

    factor = f", {region['emission_factor']}" if region.get("emission_factor") else ""
    stale = "  [STALE]" if region["stale"] else ""
    value = region.get("g_per_kwh")
    current = "" if value is None else f": {value:.0f} g/kWh at {now:%H:%M}Z"
    axes.set_title(f"{region.get('region', '')} grid carbon intensity{current}  "
                   f"(signal {region['signal']}{factor}, source {region['source']}){stale}", loc="left")
    axes.set_ylabel("gCO2eq/kWh")
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.xaxis.set_major_formatter(DateFormatter("%a %d\n%H:%M"))  # type: ignore[no-untyped-call]
    figure.legend(loc="outside lower center", ncols=4, fontsize="small", frameon=False)
