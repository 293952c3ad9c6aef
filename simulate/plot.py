"""``--plot out.png``: what the replay found, and where on the grid each policy put its jobs.

The figure's title is the result (carbongate's savings against run-now and
its share of the oracle's), so the picture reads on its own in a slide or a
ticket. Four panels:

* the true intensity of every region over one stretch of the replay (by
  default the week in which most jobs were submitted), its dates in the
  panel's title;
* under it, one lane per policy with a tick at each job start in that
  stretch (where deferral moved work to is visible at a glance);
* over the whole replay, the share of job starts by hour of day for each
  policy against the mean intensity by hour on a second axis;
* the emissions of each policy as bars, savings written on them.

Every line has its own colour, line style and marker (hollow, of different
sizes), so a policy whose line lies on another's still shows. matplotlib with
the Agg backend (no display), chosen by the figure object itself rather than
by ``matplotlib.use`` so nothing global is changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from simulate import run

COLOURS: Final = {"run_now": "#7f7f7f", "threshold_30min": "#ff7f0e", "sdk_window": "#1f77b4",
                  "carbongate": "#2ca02c", "oracle": "#9467bd"}
# (line style, marker, marker size): drawn in this order, largest markers first, so none hides another.
STYLES: Final = {"run_now": ("-", "o", 9), "threshold_30min": ("--", "s", 7.5), "sdk_window": ("-.", "D", 6),
                 "carbongate": ("-", "^", 5), "oracle": (":", "v", 4)}
REGION_STYLES: Final = ("-", "--", "-.", ":")
REGION_COLOURS: Final = ("#1b4f72", "#b03a2e", "#117a65", "#7d3c98", "#b9770e", "#566573")
DEFAULT_DAYS: Final = 7.0


def write(result: run.Result, path: Path, *, days: float = DEFAULT_DAYS, title: str | None = None) -> None:
    """Draw the replay into a PNG at ``path``."""
    drawn = figure(result, days=days, title=title)
    try:
        drawn.savefig(path, dpi=110)
    except OSError as error:
        raise run.SimulationError(f"cannot write the plot {path}: {error}") from error


def figure(result: run.Result, *, days: float = DEFAULT_DAYS, title: str | None = None) -> Figure:
    """The replay as a matplotlib figure (``write`` saves it; tests read it)."""
    drawn = Figure(figsize=(13, 11.5), layout="constrained")
    FigureCanvasAgg(drawn)
    grid = drawn.add_gridspec(3, 3, height_ratios=(3, 1.7, 2.8))
    top = drawn.add_subplot(grid[0, :])
    lanes = drawn.add_subplot(grid[1, :], sharex=top)
    hours = drawn.add_subplot(grid[2, :2])
    bars = drawn.add_subplot(grid[2, 2])
    first, last = busiest(result.table.submit_s, days=days)
    _intensity(top, result, first, last)
    _starts(lanes, result, first, last)
    _hours(hours, result)
    _emissions(bars, result)
    drawn.suptitle(headline(result) + "\n" + (title or _context(result)), fontsize=13)
    return drawn


def headline(result: run.Result) -> str:
    """The result in one line: carbongate's savings against run-now and its share of the oracle's."""
    mine, best = result.summaries["carbongate"], result.summaries["oracle"]
    share = ("the oracle saves nothing" if mine.oracle_share is None
             else f"{100 * mine.oracle_share:.0f} % of the oracle's {best.savings_pct:.1f} %")
    misses = "no deadline missed" if mine.deadline_misses == 0 else f"{mine.deadline_misses} deadlines missed"
    return f"carbongate saves {mine.savings_pct:.1f} % against running at once: {share}; {misses}"


def _context(result: run.Result) -> str:
    options = result.options
    added = f"; regions added for the replay: {', '.join(result.added_regions)}" if result.added_regions else ""
    return (f"{len(result.table)} jobs in {', '.join(result.truths)}, forecast {options.forecast}, "
            f"horizon {options.horizon_h} h{added}")


def busiest(submit_s: np.ndarray, *, days: float) -> tuple[float, float]:
    """The stretch of ``days`` (starting at midnight UTC) in which most jobs were submitted."""
    midnights = np.unique(np.floor(submit_s / 86400) * 86400)
    ordered = np.sort(submit_s)
    counts = np.searchsorted(ordered, midnights + days * 86400) - np.searchsorted(ordered, midnights)
    first = float(midnights[int(np.argmax(counts))])
    return first, first + days * 86400


def stretch_label(first: float, last: float) -> str:
    """``6–12 Mar 2023`` (the last day shown is the one before ``last``, a midnight)."""
    start = datetime.fromtimestamp(first, UTC)
    end = datetime.fromtimestamp(last - 1, UTC)
    if (start.year, start.month) == (end.year, end.month):
        return f"{start:%-d}–{end:%-d %b %Y}"
    if start.year == end.year:
        return f"{start:%-d %b}–{end:%-d %b %Y}"
    return f"{start:%-d %b %Y}–{end:%-d %b %Y}"


def _intensity(axes: Axes, result: run.Result, first: float, last: float) -> None:
    for i, (region, truth) in enumerate(result.truths.items()):
        index = truth.index
        keep = (index.bounds_array[:-1] >= first - 3600) & (index.bounds_array[:-1] <= last)
        axes.step(_dates(index.bounds_array[:-1][keep]), index.values_array[keep], where="post",
                  label=region, linewidth=1.4, linestyle=REGION_STYLES[i % len(REGION_STYLES)],
                  color=REGION_COLOURS[i % len(REGION_COLOURS)])
    axes.set_xlim(_limits(first, last))
    axes.set_ylabel("gCO₂eq/kWh (true)")
    axes.set_title(f"{stretch_label(first, last)}: the week with the most submissions, true grid intensity",
                   loc="left", fontsize=11)
    axes.legend(loc="upper right", fontsize=9, ncols=min(len(result.truths), 6))
    axes.grid(alpha=0.3)


def _starts(axes: Axes, result: run.Result, first: float, last: float) -> None:
    names = list(run.POLICIES)
    for lane, name in enumerate(names):
        starts = result.placements[name].start_s
        shown = starts[(starts >= first) & (starts <= last)]
        axes.eventplot([_dates(shown)], lineoffsets=lane, linelengths=0.8, colors=COLOURS[name], linewidths=0.8)
    axes.set_yticks(range(len(names)), names, fontsize=9)
    axes.set_ylim(-0.6, len(names) - 0.4)
    axes.set_xlim(_limits(first, last))
    axes.set_title(f"job starts per policy, {stretch_label(first, last)} (UTC)", loc="left", fontsize=11)


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
        style, marker, size = STYLES[name]
        axes.plot(range(24), share, linestyle=style, marker=marker, markersize=size, markerfacecolor="none",
                  markeredgewidth=1.3, linewidth=1.5, color=COLOURS[name], label=name)
    axes.set_xlabel("hour of day (UTC), whole replay")
    axes.set_ylabel("% of job starts")
    axes.set_xticks(range(0, 24, 2))
    axes.set_xlim(-0.5, 23.5)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.set_title("when each policy starts its jobs, against the mean intensity by hour", loc="left",
                   fontsize=11)
    twin = axes.twinx()
    first, last = float(result.table.submit_s.min()), float(result.table.deadline_s.max())
    for i, (region, truth) in enumerate(result.truths.items()):
        index = truth.index
        keep = (index.bounds_array[:-1] >= first) & (index.bounds_array[:-1] < last)
        hours = ((index.bounds_array[:-1][keep] // 3600) % 24).astype(int)
        means = np.bincount(hours, weights=index.values_array[keep], minlength=24) / np.maximum(
            np.bincount(hours, minlength=24), 1)
        twin.plot(range(24), means, linestyle=REGION_STYLES[i % len(REGION_STYLES)], linewidth=2.2, alpha=0.35,
                  color=REGION_COLOURS[i % len(REGION_COLOURS)], label=f"{region} intensity")
    twin.set_ylim(bottom=0)
    twin.set_ylabel("mean gCO₂eq/kWh by hour (wide, pale)")
    lines, labels = axes.get_legend_handles_labels()
    twin_lines, twin_labels = twin.get_legend_handles_labels()
    axes.legend(lines + twin_lines, labels + twin_labels, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                fontsize=9, ncols=4, frameon=False)
    twin.set_zorder(axes.get_zorder() - 1)  # the policies' lines on top of the pale intensity
    axes.patch.set_visible(False)


def _emissions(axes: Axes, result: run.Result) -> None:
    names = list(run.POLICIES)
    kg = [result.summaries[n].emissions_g / 1000 for n in names]
    bars = axes.barh(range(len(names)), kg, color=[COLOURS[n] for n in names])
    labels = [f"{value:,.2f} kg" + ("" if n == "run_now" else f" (−{result.summaries[n].savings_pct:.1f} %)")
              for n, value in zip(names, kg, strict=True)]
    axes.bar_label(bars, labels=labels, padding=3, fontsize=9)
    axes.set_yticks(range(len(names)), names, fontsize=9)
    axes.invert_yaxis()
    axes.set_xlim(0, max(kg + [1e-9]) * 1.6)
    axes.set_xlabel("kg CO₂eq on the true grid")
    axes.set_title("emissions per policy", loc="left", fontsize=11)
    axes.grid(axis="x", alpha=0.3)
