"""The report's charts, drawn with matplotlib as inline SVG (text kept as text).

Two charts a manager reads without help:

* per team, *use against the budget*: cumulative emissions through the
  period as a filled step line, the limit as a red line and the warning
  level as an amber one, the latest figure written at the end of the line;
* *carbon saved per week*: bars per team and week, against the counterfactual
  of running every changed job when it was admitted.

Only matplotlib's object API is used (no pyplot, no global backend), so
drawing a chart changes nothing for the rest of the process.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import matplotlib
import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from governance import periods, report

INK = "#1f2933"
MUTED = "#616e7c"
USE = "#2f6fba"
LIMIT = "#c62828"
WARN = "#e08a00"
TEAM_COLOURS = ("#2f6fba", "#2e8b57", "#8e44ad", "#d35400", "#16a085", "#7f8c8d")
Unit = Literal["g", "kg"]
UNITS: Final[dict[str, float]] = {"g": 1.0, "kg": 1000.0}
_RC: dict[Any, Any] = {"svg.fonttype": "none", "svg.hashsalt": "carbongate", "font.family": "DejaVu Sans",
       "font.size": 12, "axes.edgecolor": "#9aa5b1", "axes.labelcolor": INK,
       "xtick.color": MUTED, "ytick.color": MUTED}


def report_unit(grams: Iterable[float]) -> Unit:
    """One unit for a whole report: kg throughout, or g when every figure is under 1 kg.

    Mixing units (``652 kg`` beside ``1.2 t`` beside ``340 g``) makes a
    column hard to compare at a glance; one unit per report does not.
    """
    return "kg" if max((abs(g) for g in grams), default=0.0) >= 1000 else "g"


def format_mass(grams: float, unit: Unit = "kg") -> str:
    """``652 kg``, ``12.4 kg``, ``0.340 kg`` or ``340 g``: in ``unit``, three significant figures or more."""
    value = grams / UNITS[unit]
    if value == 0:
        return f"0 {unit}"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2 if abs(value) >= 1 else 3
    if unit == "g":
        digits = min(digits, 1)
    return f"{value:,.{digits}f} {unit}"


def use_against_limit(team: report.TeamReport, period: periods.Period, now: datetime,
                      *, warn_percent: float, unit: Unit = "kg") -> str:
    """SVG: the team's cumulative use through the period, its limit, warning level and pace."""
    top = max([team.limit_g or 0.0, team.totals.used_g, 1.0])
    divisor = UNITS[unit]
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(6.4, 3.6), layout="constrained")
        axes = figure.add_subplot()
        times = [_num(period.start)] + [_num(t) for t, _ in team.cumulative]
        values = [0.0] + [v / divisor for _, v in team.cumulative]
        axes.step(times, values, where="post", color=USE, linewidth=2.2, label="used so far")
        axes.fill_between(times, values, step="post", color=USE, alpha=0.15)
        if team.limit_g is not None:
            _limit_lines(axes, team.limit_g / divisor, warn_percent, unit)
        _pace(axes, team.totals.used_g, period, now, unit)
        _latest(axes, team, now, unit, period.end)
        axes.set_xlim(_num(period.start), _num(period.end))
        axes.set_ylim(0, top / divisor * 1.25)
        axes.set_ylabel(f"{unit} CO\u2082e")
        axes.set_title(_use_title(team), loc="left", color=INK, fontweight="bold")
        _date_axis(axes)
        axes.legend(loc="upper left", frameon=False, fontsize=11)
        axes.grid(axis="y", color="#e4e7eb")
        return _svg(figure)


def _pace(axes: Axes, used_g: float, period: periods.Period, now: datetime,
          unit: Unit) -> None:
    """A dashed line from today to the period's end at the pace so far (if mid-period)."""
    if not period.start < now < period.end or used_g <= 0:
        return
    projected = used_g * (period.end - period.start) / (now - period.start)
    divisor = UNITS[unit]
    axes.plot([_num(now), _num(period.end)], [used_g / divisor, projected / divisor],
              color=MUTED, linestyle=":", linewidth=1.6,
              label=f"at this pace: {format_mass(projected, unit)} by {period_last_day(period)}")
    axes.axvline(_num(now), color="#9aa5b1", linewidth=0.8)
    axes.annotate("today", (_num(now), 0), xytext=(3, 3), textcoords="offset points",
                  color=MUTED, fontsize=11)


def _latest(axes: Axes, team: report.TeamReport, now: datetime, unit: Unit, period_end: datetime) -> None:
    """The figure so far, written at the end of the line."""
    if not team.cumulative:
        return
    last_time, last_value = team.cumulative[-1]
    percent = f" ({team.percent:.0f} %)" if team.percent is not None else ""
    # At "now" mid-period, at the last run once the period is over (never off the axis).
    where = _num(min(max(last_time, now), period_end))
    axes.annotate(format_mass(last_value, unit) + percent, (where, last_value / UNITS[unit]),
                  xytext=(4, 5), textcoords="offset points", color=USE, fontweight="bold",
                  ha="right")


def period_last_day(period: periods.Period) -> str:
    """``30 Nov``: the last day a period covers."""
    return (period.end - timedelta(seconds=1)).strftime("%-d %b")


def _limit_lines(axes: Axes, limit: float, warn_percent: float, unit: Unit) -> None:
    axes.axhline(limit, color=LIMIT, linewidth=1.8, label=f"budget {format_mass(limit * UNITS[unit], unit)}")
    axes.axhline(limit * warn_percent / 100.0, color=WARN, linewidth=1.2, linestyle="--",
                 label=f"warning at {warn_percent:.0f} %")


def _use_title(team: report.TeamReport) -> str:
    if team.limit_g is None:
        return f"{team.totals.name}: emissions this period (no budget set)"
    return f"{team.totals.name}: emissions against the budget"


def savings_per_week(teams: Sequence[report.TeamReport], period: periods.Period, *,
                     unit: Unit = "kg") -> str:
    """SVG: grams saved per week, one bar per team that saved, against the counterfactual."""
    savers = [t for t in teams if any(v for _, v in t.weekly_saved)]
    weeks = periods.weeks(period)
    largest = max([abs(v) for t in savers for _, v in t.weekly_saved] + [1.0])
    divisor = UNITS[unit]
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(11.0, 3.8), layout="constrained")
        axes = figure.add_subplot()
        width = 0.8 / max(len(savers), 1)
        for i, team in enumerate(savers):
            xs = [w + (i - (len(savers) - 1) / 2) * width for w in range(len(weeks))]
            heights = [v / divisor for _, v in team.weekly_saved]
            bars = axes.bar(xs, heights, width=width * 0.92, label=team.totals.name,
                            color=TEAM_COLOURS[i % len(TEAM_COLOURS)])
            axes.bar_label(bars, labels=[_bar_label(v, unit, largest) for _, v in team.weekly_saved],
                           fontsize=11, color=MUTED, padding=2)
        axes.axhline(0, color="#9aa5b1", linewidth=0.8)
        axes.set_xticks(range(len(weeks)), [_week_label(s, e) for s, e in weeks])
        axes.set_ylabel(f"{unit} CO\u2082e saved")
        lowest = min([0.0] + [v / divisor for t in savers for _, v in t.weekly_saved])
        axes.set_ylim(lowest * 1.25, largest / divisor * 1.25)
        axes.set_title("Carbon saved per week by deferring and shifting", loc="left",
                       color=INK, fontweight="bold")
        if savers:
            axes.legend(loc="upper right", frameon=False, fontsize=12, ncols=min(len(savers), 6))
        else:
            axes.text(0.5, 0.5, "nothing deferred or shifted this period", ha="center",
                      va="center", transform=axes.transAxes, color=MUTED)
        axes.grid(axis="y", color="#e4e7eb")
        return _svg(figure)


def _bar_label(grams: float, unit: Unit, largest_g: float) -> str:
    """A bar's figure; none on bars too short to see, whose labels would only pile up at zero."""
    return format_mass(grams, unit) if abs(grams) >= 0.03 * largest_g else ""


def _week_label(start: datetime, end: datetime) -> str:
    """``2–8 Nov`` (or ``30 Nov`` for a one-day week)."""
    last = end - timedelta(seconds=1)
    if last.date() == start.date():
        return start.strftime("%-d %b")
    return f"{start:%-d}–{last:%-d %b}"


def _date_axis(axes: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=8)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%-d %b"))  # type: ignore[no-untyped-call]


def _num(when: datetime) -> float:
    """Matplotlib's date number for an instant (its date axes count days)."""
    return float(mdates.date2num(when))  # type: ignore[no-untyped-call]


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue and doctype for inlining
