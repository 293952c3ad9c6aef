"""What a policy knows of the future at a simulated instant: the forecast it is given.

Jobs are always charged with the true trace; the forecast is only what the
policies plan on. Four kinds, named on the command line:

- ``perfect``: the trace itself, up to the horizon. The ceiling any
  forecast-driven policy can reach.
- ``noisy:0.10``: the trace times ``1 + e`` with ``e`` drawn from a normal
  distribution of standard deviation 0.10, independently for every point of
  every issue (a forecast issued an hour later has fresh errors), never
  below zero. Seeded from ``(seed, region, issue time)``, so the same seed
  gives the same forecasts in any order and in any worker process.
- ``persistence``: tomorrow looks like today: the value at the same time of
  day one day earlier (two days earlier beyond a day ahead, and so on). The
  forecast ends where that lies before the trace begins.
- ``recorded:FILE``: forecasts as they were issued, from a file of
  ``request_time,forecast_time,<region>`` rows (WattTime's CAISO_NORTH
  forecasts in the vessim export). At each instant the latest issue is used;
  it covers what it covered (65 minutes for that file), nothing more.

In every kind the point holding at the issue instant is the reading itself:
the present is measured, only the future is forecast. A new forecast is
issued every hour on the hour (:data:`ISSUE_INTERVAL_S`), which is when the
simulated feed publishes and the simulated controller re-plans.
"""

from __future__ import annotations

import bisect
import collections
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

import numpy as np

from planner import series as series_mod
from planner import tracefile

Kind = Literal["perfect", "noisy", "persistence", "recorded"]
ISSUE_INTERVAL_S: Final = 3600
DAY_S: Final = 86400
# A recorded issue older than this is not a forecast any more: only the reading is known.
RECORDED_MAX_AGE_S: Final = 3600
CACHE_SIZE: Final = 2048


class ForecastError(ValueError):
    """A forecast that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class Spec:
    """Which forecast, as named on the command line."""

    kind: Kind
    error: float = 0.0
    path: Path | None = None

    def __str__(self) -> str:
        if self.kind == "noisy":
            return f"noisy:{self.error:g}"
        if self.kind == "recorded":
            return f"recorded:{self.path}"
        return self.kind


def parse_spec(text: str) -> Spec:
    """``perfect``, ``noisy:0.10``, ``persistence`` or ``recorded:FILE``."""
    kind, _, argument = text.strip().partition(":")
    if kind in ("perfect", "persistence") and not argument:
        return Spec(kind=kind)  # type: ignore[arg-type]
    if kind == "noisy":
        try:
            error = float(argument)
        except ValueError as exc:
            raise ForecastError(f"noisy wants a relative error such as noisy:0.10, not {text!r}") from exc
        if not 0 <= error < 10 or not math.isfinite(error):
            raise ForecastError(f"noisy error {argument} must be between 0 and 10")
        return Spec(kind="noisy", error=error)
    if kind == "recorded" and argument:
        return Spec(kind="recorded", path=Path(argument))
    raise ForecastError(f"forecast {text!r}: use perfect, noisy:0.10, persistence or recorded:FILE")


def issue_time(at_s: float) -> int:
    """The last forecast issue at or before ``at_s`` (on the hour)."""
    return int(at_s // ISSUE_INTERVAL_S) * ISSUE_INTERVAL_S


class Forecasts:
    """Forecasts of every region, issued on the hour, each covering ``horizon_s``."""

    def __init__(self, spec: Spec, *, truths: Mapping[str, series_mod.Series], horizon_s: int,
                 seed: int) -> None:
        if horizon_s <= 0:
            raise ForecastError(f"horizon must be positive, not {horizon_s} s")
        self.spec = spec
        self.horizon_s = horizon_s
        self._truths = dict(truths)
        self._seed = seed
        self._cache: collections.OrderedDict[tuple[str, int], series_mod.Series | None] = collections.OrderedDict()
        self._recorded = _read_recorded(spec.path) if spec.path is not None else None
        if self._recorded is not None:
            missing = sorted(set(self._truths) - set(self._recorded))
            if missing:
                raise ForecastError(
                    f"{spec.path} holds forecasts for {', '.join(sorted(self._recorded))} only, "
                    f"not for {', '.join(missing)}")

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self._truths)

    def issue(self, region: str, at_s: int) -> series_mod.Series | None:
        """The forecast for ``region`` issued at ``at_s``; None when nothing is known.

        Jobs overlap in time, so the same issue is asked for again and again:
        the most recent :data:`CACHE_SIZE` issues are kept.
        """
        key = (region, at_s)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        made = self._make(region, at_s)
        self._cache[key] = made
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return made

    def _make(self, region: str, at_s: int) -> series_mod.Series | None:
        truth = self._truths[region]
        now = datetime.fromtimestamp(at_s, UTC)
        known = truth.clip(now, now + timedelta(seconds=self.horizon_s))
        if not known.points or truth.value_at(now) is None:
            return None
        if self.spec.kind == "perfect":
            return known
        if self.spec.kind == "noisy":
            return self._noisy(known, region, at_s)
        if self.spec.kind == "persistence":
            return _persistence(truth, known, at_s)
        return self._recorded_issue(region, known, at_s)

    def _noisy(self, known: series_mod.Series, region: str, at_s: int) -> series_mod.Series:
        rng = np.random.default_rng([self._seed, zlib.crc32(region.encode()), at_s])
        factors = np.maximum(1.0 + rng.normal(0.0, self.spec.error, len(known.points)), 0.0)
        factors[0] = 1.0  # the point holding now is the reading
        points = tuple(series_mod.Point(p.start, p.g_per_kwh * f)
                       for p, f in zip(known.points, factors.tolist(), strict=True))
        return series_mod.Series(points=points, step_s=known.step_s)

    def _recorded_issue(self, region: str, known: series_mod.Series, at_s: int) -> series_mod.Series:
        assert self._recorded is not None
        issues = self._recorded[region]
        position = bisect.bisect_right(issues.times, at_s) - 1
        now_point = known.points[0]
        if position < 0 or at_s - issues.times[position] > RECORDED_MAX_AGE_S:
            return series_mod.Series(points=(now_point,), step_s=known.step_s)
        end = at_s + self.horizon_s
        later = tuple(p for p in issues.points[position] if now_point.start < p.start and p.start.timestamp() < end)
        return series_mod.Series(points=(now_point, *later), step_s=issues.step_s)


def _persistence(truth: series_mod.Series, known: series_mod.Series, at_s: int) -> series_mod.Series:
    """Each future point takes the value the trace had whole days earlier, at or before now."""
    points = [known.points[0]]
    for point in known.points[1:]:
        ahead = point.start.timestamp() - at_s
        days = max(math.ceil(ahead / DAY_S), 1)
        value = truth.value_at(point.start - timedelta(days=days))
        if value is None:
            break
        points.append(series_mod.Point(point.start, value))
    return series_mod.Series(points=tuple(points), step_s=known.step_s)


@dataclass(frozen=True)
class _Issues:
    """One region's recorded forecasts: issue instants (sorted) and each issue's points."""

    times: list[float]
    points: list[tuple[series_mod.Point, ...]]
    step_s: int


def _read_recorded(path: Path) -> dict[str, _Issues]:
    """``request_time,forecast_time,<region>...`` rows (planner.tracefile), times in UTC (naive taken as UTC)."""
    try:
        recorded = tracefile.recorded_rows(tracefile.read(path))
    except tracefile.TraceFileError as error:
        raise ForecastError(f"recorded forecasts: {error}") from error
    grouped: dict[str, dict[float, list[series_mod.Point]]] = {region: {} for region in recorded}
    for region, rows in recorded.items():
        for issued, target, value in rows:
            grouped[region].setdefault(issued.timestamp(), []).append(series_mod.Point(target, value))
    return {region: _issues(by_issue, path) for region, by_issue in grouped.items() if by_issue}


def _issues(by_issue: dict[float, list[series_mod.Point]], path: Path) -> _Issues:
    times = sorted(by_issue)
    points = [tuple(sorted(by_issue[t], key=lambda p: p.start)) for t in times]
    if all(len(issue) < 2 for issue in points):
        raise ForecastError(f"{path}: every issue has a single point; no step can be told")
    longest = max(points, key=len)
    return _Issues(times=times, points=points, step_s=series_mod.step_of([p.start for p in longest]))
