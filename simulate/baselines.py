"""The policies carbongate is measured against, on the same jobs and the same grid.

- ``threshold_30min``: the seed guides' rule. At submission, and every 30
  minutes after, look at the grid's current reading in the home region; run
  once it is at or under the tier's threshold (``RULE_THRESHOLDS``), or when
  another 30 minutes would pass the job's max delay. A tier without a
  threshold runs at once. The thresholds are the rule's own, not read from
  carbongate's platform config: a peer must not move when carbongate's
  config is edited (tier 3 ships with no threshold at all).
- ``sdk_window``: the Carbon Aware SDK, asked once at submission for the
  optimal window (``planner.windows.best_window``: rolling time-weighted
  mean, whole windows, ties to the earliest) in the job's home region, on the
  forecast issued last, within its max delay. No re-planning, no shifting
  (the SDK knows nothing of where a job's data lives).
- ``oracle``: perfect knowledge of the true trace: the start in
  ``[submit, deadline - duration]`` and the allowed region that emit least
  (moving data included). A time-weighted mean of a piecewise-constant
  series is piecewise linear in the start, with kinks only where the start
  or the end of the run crosses a point boundary, so the minimum is at one
  of those starts or at either end of the range: the oracle is exact, not
  sampled (tests check it against a brute force).

``run_now`` lives in :mod:`simulate.placements` (``run_at_submit``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np

from planner import series as series_mod
from planner import windows
from simulate import forecasts as forecasts_mod
from simulate import placements as placements_mod

CHECK_INTERVAL_S: Final = 1800
# The threshold rule's gCO2/kWh per tier: the values carbongate's own config
# first shipped with (docs/simulate.md, "Reading the results").
RULE_THRESHOLDS: Final[Mapping[str, float]] = {"2": 200.0, "3": 150.0}
# Costs closer than this (relative) are equal: the earlier start, then home, wins.
TIE_TOLERANCE: Final = 1e-9


def threshold_30min(table: placements_mod.Table, truths: Mapping[str, series_mod.Series],
                    thresholds: Mapping[str, float] = RULE_THRESHOLDS) -> placements_mod.Placements:
    """The seed guides' rule, on the reading the feed published last at each check."""
    starts = table.submit_s.copy()
    for i, job in enumerate(table.jobs):
        threshold = thresholds.get(job.tier, 0.0)
        if threshold <= 0:
            continue
        checks = table.submit_s[i] + CHECK_INTERVAL_S * np.arange(int(table.max_delay_s[i] // CHECK_INTERVAL_S) + 1)
        readings = _values_at(truths[job.home], np.floor(checks / forecasts_mod.ISSUE_INTERVAL_S)
                              * forecasts_mod.ISSUE_INTERVAL_S)
        clean = np.flatnonzero(readings <= threshold)
        starts[i] = checks[clean[0]] if len(clean) else checks[-1]
    return placements_mod.Placements(start_s=starts, region=tuple(j.home for j in table.jobs))


def sdk_window(table: placements_mod.Table, forecasts: forecasts_mod.Forecasts) -> placements_mod.Placements:
    """One optimal-window question per job at submission, for its home region; run the answer."""
    starts = table.submit_s.copy()
    for i, job in enumerate(table.jobs):
        forecast = forecasts.issue(job.home, forecasts_mod.issue_time(table.submit_s[i]))
        if forecast is None:
            continue
        submit = datetime.fromtimestamp(table.submit_s[i], UTC)
        latest = submit + timedelta(seconds=float(table.max_delay_s[i]))
        window = windows.best_window(forecast, float(table.duration_s[i]), earliest=submit, latest_start=latest)
        if window is not None:
            starts[i] = window.start.timestamp()
    return placements_mod.Placements(start_s=starts, region=tuple(j.home for j in table.jobs))


def oracle(table: placements_mod.Table, truths: Mapping[str, series_mod.Series], *,
           network_kwh_per_gb: float) -> placements_mod.Placements:
    """The least-emitting start and region of every job, knowing the true grid."""
    starts = table.submit_s.copy()
    regions = [j.home for j in table.jobs]
    for i, job in enumerate(table.jobs):
        starts[i], regions[i] = _cheapest(
            truths, job.regions, first=float(table.submit_s[i]),
            last=float(table.submit_s[i] + table.max_delay_s[i]), duration_s=float(table.duration_s[i]),
            energy_kwh=float(table.energy_kwh[i]), move_kwh=float(table.data_gb[i]) * network_kwh_per_gb)
    return placements_mod.Placements(start_s=starts, region=tuple(regions))


def _cheapest(truths: Mapping[str, series_mod.Series], allowed: tuple[str, ...], *, first: float, last: float,
              duration_s: float, energy_kwh: float, move_kwh: float) -> tuple[float, str]:
    """(start, region) of least emissions; ties to the earliest start, then the earlier region."""
    home = truths[allowed[0]]
    starts = _kinks(home, first, last, duration_s)
    home_means = _means(home, starts, duration_s)
    best: tuple[float, float, str] | None = None  # cost, start, region
    for region in allowed:
        series = truths[region]
        if region == allowed[0]:
            candidates, means, cost_home = starts, home_means, home_means
        else:
            candidates = np.union1d(starts, _kinks(series, first, last, duration_s))
            means = _means(series, candidates, duration_s)
            cost_home = _means(home, candidates, duration_s)
        cost = energy_kwh * means
        if region != allowed[0] and move_kwh > 0:
            cost = cost + move_kwh * (cost_home + means) / 2.0
        position = _first_minimum(cost)
        value, start = float(cost[position]), float(candidates[position])
        if best is None or value < best[0] - TIE_TOLERANCE * max(abs(best[0]), 1.0) or (
                math.isclose(value, best[0], rel_tol=TIE_TOLERANCE, abs_tol=TIE_TOLERANCE) and start < best[1]):
            best = (value, start, region)
    assert best is not None
    return best[1], best[2]


def _kinks(series: series_mod.Series, first: float, last: float, duration_s: float) -> np.ndarray:
    """Starts where the mean can turn: both ends of the range, boundaries, boundaries less the duration."""
    bounds = series.index.bounds_array
    crossed = [bounds[np.searchsorted(bounds, first + shift, "right"):np.searchsorted(bounds, last + shift, "left")]
               - shift for shift in (0.0, duration_s)]
    return np.unique(np.concatenate([[first, last], *crossed]))


def _means(series: series_mod.Series, starts: np.ndarray, duration_s: float) -> np.ndarray:
    return placements_mod.window_means(series, starts, np.full(len(starts), duration_s))


def _first_minimum(cost: np.ndarray) -> int:
    """The earliest index whose cost equals the minimum within the tie tolerance."""
    lowest = float(cost.min())
    return int(np.flatnonzero(cost <= lowest + TIE_TOLERANCE * max(abs(lowest), 1.0))[0])


def _values_at(series: series_mod.Series, at_s: np.ndarray) -> np.ndarray:
    index = series.index
    position = np.clip(np.searchsorted(index.bounds_array, at_s, side="right") - 1, 0, len(index.values) - 1)
    return index.values_array[position]

