"""Time-weighted mean intensity over a window, and the cleanest window to run in.

A job that runs for ``duration_s`` from ``start`` is charged the intensity
integrated over those seconds, so every comparison here is between
time-weighted means, never between point values. A window counts only if the
series covers it wholly: a mean over part of a window would flatter windows
that run off the end of the forecast.

``best_window`` is the Carbon Aware SDK's optimal window (rolling
time-weighted average, starts at the forecast's point boundaries, ties to the
earliest); ``candidate_windows`` gives the webhook and Rego a regular grid of
starts to choose from under a workload's own deadline. Both run on the
series' prefix sums, so each mean costs two binary searches.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from planner import series as series_mod

# Means closer than this (relative) are a tie and the earlier window wins: the
# prefix sums add rounding noise of ~1e-15 that must not reorder equal windows.
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class Window:
    """A run from ``start`` to ``end`` and its time-weighted mean intensity."""

    start: datetime
    end: datetime
    mean_g_per_kwh: float


def mean_intensity(series: series_mod.Series, start: datetime, duration_s: float) -> float | None:
    """Time-weighted mean over ``[start, start + duration_s)``; None unless wholly covered."""
    begin = start.timestamp()
    if not _fits(series, begin, duration_s):
        return None
    return _mean(series, begin, duration_s)


def best_window(
    series: series_mod.Series,
    duration_s: float,
    *,
    earliest: datetime,
    latest_start: datetime,
) -> Window | None:
    """The cleanest whole window starting in ``[earliest, latest_start]``.

    Candidates are ``earliest`` itself and every point boundary after it; the
    lowest mean wins, ties to the earliest start. None when no candidate fits.
    """
    index = series.index
    first, last = earliest.timestamp(), latest_start.timestamp()
    if not index.values or duration_s <= 0 or last < first:
        return None
    # Boundaries after ``earliest`` that start a window the series covers, all at once.
    lo = bisect.bisect_right(index.bounds, first)
    hi = min(bisect.bisect_right(index.bounds, min(last, index.bounds[-1] - duration_s)), len(index.values))
    begins = index.bounds_array[lo:hi]
    means = (series.integrals_to(begins + duration_s) - index.integral_array[lo:hi]) / duration_s
    if _fits(series, first, duration_s):
        begins = np.concatenate(([first], begins))
        means = np.concatenate(([_mean(series, first, duration_s)], means))
    if not len(means):
        return None
    lowest = float(means.min())
    # The earliest start whose mean ties the lowest (within rounding noise of the prefix sums).
    chosen = int(np.flatnonzero(means <= lowest + TIE_TOLERANCE * max(1.0, abs(lowest)))[0])
    return _window(float(begins[chosen]), duration_s, float(means[chosen]), earliest=earliest)


def candidate_windows(
    series: series_mod.Series,
    duration_s: float,
    *,
    earliest: datetime,
    latest_start: datetime,
    step_s: int,
) -> list[Window]:
    """Windows starting at ``earliest``, then every ``step_s``-aligned instant after it.

    Aligned means a whole multiple of ``step_s`` since the epoch (on the hour
    for 3600), so every request sees the same grid of starts and a deferral
    lands on a round time. Only windows the series covers wholly are returned,
    each with its mean, in start order.
    """
    begins, means = candidate_means(series, duration_s, earliest=earliest, latest_start=latest_start,
                                    step_s=step_s)
    found: list[Window] = []
    if begins and begins[0] == earliest.timestamp():
        found.append(_window(begins[0], duration_s, means[0], earliest=earliest))
        begins, means = begins[1:], means[1:]
    if not begins:
        return found
    step, length = timedelta(seconds=step_s), timedelta(seconds=duration_s)
    start = datetime.fromtimestamp(begins[0], UTC)
    for mean in means:  # the hot loop: positional arguments are measurably faster
        found.append(Window(start, start + length, mean))
        start += step
    return found


def candidate_means(
    series: series_mod.Series,
    duration_s: float,
    *,
    earliest: datetime,
    latest_start: datetime,
    step_s: int,
) -> tuple[list[float], list[float]]:
    """``candidate_windows`` as epoch seconds of the starts and their means, without Window objects.

    For callers that keep only a few of the candidates (``planner.plan``
    keeps the improving ones): building every window costs more than the means.
    """
    if step_s <= 0:
        raise ValueError(f"step_s must be positive, not {step_s}")
    index = series.index
    first, last = earliest.timestamp(), latest_start.timestamp()
    if not index.values or duration_s <= 0:
        return [], []
    stop = min(last, index.bounds[-1] - duration_s)
    begins: list[float] = []
    means: list[float] = []
    if index.bounds[0] <= first <= stop:
        begins.append(first)
        means.append(_mean(series, first, duration_s))
    aligned = (math.floor(first / step_s) + 1) * step_s
    aligned = max(aligned, math.ceil(index.bounds[0] / step_s) * step_s)
    if stop < aligned:
        return begins, means
    starts = np.arange(aligned, stop + 1e-6, step_s, dtype=np.float64)
    found = (series.integrals_to(starts + duration_s) - series.integrals_to(starts)) / duration_s
    begins.extend(starts.tolist())
    means.extend(found.tolist())
    return begins, means


def _fits(series: series_mod.Series, begin: float, duration_s: float) -> bool:
    bounds = series.index.bounds
    return bool(bounds) and duration_s > 0 and bounds[0] <= begin and begin + duration_s <= bounds[-1]


def _mean(series: series_mod.Series, begin: float, duration_s: float) -> float:
    return (series.integral_to(begin + duration_s) - series.integral_to(begin)) / duration_s


def _window(begin: float, duration_s: float, mean: float, *, earliest: datetime) -> Window:
    if begin == earliest.timestamp():
        start = earliest.astimezone(UTC)
    else:
        start = datetime.fromtimestamp(begin, UTC)
    return Window(start=start, end=start + timedelta(seconds=duration_s), mean_g_per_kwh=mean)
