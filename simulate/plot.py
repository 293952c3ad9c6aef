"""``--plot out.png``: the grid's intensity over time and when each policy started its jobs.

Three panels: the true intensity of every region over a stretch of the
replay (by default the week in which most jobs were submitted); under it, one lane per
policy with a tick at each job start in that stretch (where deferral moved
work to is visible at a glance); and over the whole replay, the share of job
starts by hour of day for each policy against the mean intensity by hour,
which is where a year of decisions shows its pattern.

matplotlib with the Agg backend (no display), chosen by the figure object
itself rather than by ``matplotlib.use`` so nothing global is changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from simulate import run

COLOURS: Final = {"run_now": "#7f7f7f", "threshold_30min": "#ff7f0e", "sdk_window": "#1f77b4",
                  "carbongate": "#2ca02c", "oracle": "#9467bd"}
DEFAULT_DAYS: Final = 7.0


def write(result: run.Result, path: Path, *, days: float = DEFAULT_DAYS, title: str | None = None) -> None:
    """Draw the replay into a PNG at ``path``."""
    figure = Figure(figsize=(12, 9), layout="constrained")
    FigureCanvasAgg(figure)
    top, lanes, hours = figure.subplots(3, 1, height_ratios=(3, 1.6, 2.4))
    first, last = busiest(result.table.submit_s, days=days)
    _intensity(top, result, first, last)
    _starts(lanes, result, first, last)
    _hours(hours, result)
    top.set_title(title or f"{len(result.table)} jobs, forecast {result.options.forecast}, "
                           f"horizon {result.options.horizon_h} h")
    try:
        figure.savefig(path, dpi=110)
    except OSError as error:
        raise run.SimulationError(f"cannot write the plot {path}: {error}") from error


def busiest(submit_s: np.ndarray, *, days: float) -> tuple[float, float]:
    """The stretch of ``days`` (starting at midnight UTC) in which most jobs were submitted."""
    midnights = np.unique(np.floor(submit_s / 86400) * 86400)
    ordered = np.sort(submit_s)
    counts = np.searchsorted(ordered, midnights + days * 86400) - np.searchsorted(ordered, midnights)
    first = float(midnights[int(np.argmax(counts))])
    return first, first + days * 86400


def _intensity(axes: Axes, result: run.Result, first: float, last: float) -> None:
    for region, truth in result.truths.items():
        index = truth.index
        keep = (index.bounds_array[:-1] >= first - 3600) & (index.bounds_array[:-1] <= last)
        axes.step(_dates(index.bounds_array[:-1][keep]), index.values_array[keep], where="post",
                  label=region, linewidth=1.1)
    axes.set_xlim(_limits(first, last))
    axes.set_ylabel("gCO2eq/kWh (true)")
    axes.legend(loc="upper right", fontsize=8)
    axes.grid(alpha=0.3)


def _starts(axes: Axes, result: run.Result, first: float, last: float) -> None:
    names = list(run.POLICIES)
    for lane, name in enumerate(names):
        starts = result.placements[name].start_s
        shown = starts[(starts >= first) & (starts <= last)]
        axes.eventplot([_dates(shown)], lineoffsets=lane, linelengths=0.8, colors=COLOURS[name], linewidths=0.8)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_ylim(-0.6, len(names) - 0.4)
    axes.set_xlim(_limits(first, last))
    axes.set_ylabel("job starts")


def _dates(epoch_s: np.ndarray) -> np.ndarray:
    """Epoch seconds as numpy datetimes, which matplotlib draws as dates."""
    return np.asarray(epoch_s, dtype=np.float64).astype(np.int64).astype("datetime64[s]")


def _limits(first: float, last: float) -> tuple[float, float]:
    """x limits in matplotlib's date numbers: days since its default epoch, 1970-01-01 UTC."""
    return first / 86400.0, last / 86400.0


def _hours(axes: Axes, result: run.Result) -> None:
    for name in run.POLICIES:
        hour = ((result.placements[name].start_s // 3600) % 24).astype(int)
        share = np.bincount(hour, minlength=24) / max(len(hour), 1) * 100
        axes.plot(range(24), share, marker="o", markersize=3, color=COLOURS[name], label=name)
    axes.set_xlabel("hour of day (UTC), whole replay")
    axes.set_ylabel("% of job starts")
    axes.set_xticks(range(0, 24, 2))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncols=5, frameon=False)
    twin = axes.twinx()
    first, last = float(result.table.submit_s.min()), float(result.table.deadline_s.max())
    for region, truth in result.truths.items():
        index = truth.index
        keep = (index.bounds_array[:-1] >= first) & (index.bounds_array[:-1] < last)
        hours = ((index.bounds_array[:-1][keep] // 3600) % 24).astype(int)
        means = np.bincount(hours, weights=index.values_array[keep], minlength=24) / np.maximum(
            np.bincount(hours, minlength=24), 1)
        twin.plot(range(24), means, linestyle="--", linewidth=1, color="black", alpha=0.5)
        twin.annotate(region, (23, means[23]), fontsize=7, alpha=0.6)
    twin.set_ylabel("mean gCO2eq/kWh by hour (dashed)")
