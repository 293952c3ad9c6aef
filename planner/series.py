"""A carbon-intensity time series: piecewise constant, in gCO2eq/kWh.

Every consumer (the feed's best windows, the webhook's per-request plan, the
controller, the simulator replaying a year) integrates intensity over time, so
the series answers that question in O(log n): on first use it builds prefix
sums of value x seconds over its points and keeps them (the series is frozen,
so they can never go out of date).

A point holds from its ``start`` until the next point's start; the last point
holds for ``step_s`` seconds. There are no gaps: a missing hour in a trace is
covered by the hour before it, which is what the snapshot contract says.
"""

from __future__ import annotations

import bisect
import collections
import functools
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Point:
    """One reading: ``g_per_kwh`` from ``start`` until the next point."""

    start: datetime
    g_per_kwh: float


@dataclass(frozen=True, eq=False)
class _Index:
    """Epoch seconds of the boundaries and the running integral at each.

    ``bounds`` has one more entry than there are points (the series end);
    ``integral[i]`` is the g/kWh x seconds accumulated from the first start to
    ``bounds[i]``. Tuples serve single look-ups (``bisect`` on a tuple is far
    cheaper than on an array); the arrays serve many look-ups at once.
    """

    bounds: tuple[float, ...]
    values: tuple[float, ...]
    integral: tuple[float, ...]
    bounds_array: npt.NDArray[np.float64]
    values_array: npt.NDArray[np.float64]
    integral_array: npt.NDArray[np.float64]


class SeriesError(ValueError):
    """Points that cannot form a series (unordered, naive times, bad values)."""


@dataclass(frozen=True)
class Series:
    """Piecewise-constant intensity: ``points`` in time order, the last for ``step_s``."""

    points: tuple[Point, ...]
    step_s: int

    def __post_init__(self) -> None:
        if self.step_s <= 0:
            raise SeriesError(f"step_s must be positive, not {self.step_s}")
        previous: datetime | None = None
        for point in self.points:
            if point.start.tzinfo is None:
                raise SeriesError(f"point at {point.start} has no time zone")
            if not math.isfinite(point.g_per_kwh):
                raise SeriesError(f"point at {point.start} has value {point.g_per_kwh}")
            if previous is not None and point.start <= previous:
                raise SeriesError(f"points out of order at {point.start}")
            previous = point.start

    @property
    def start(self) -> datetime | None:
        """When the first point begins; None for an empty series."""
        return self.points[0].start if self.points else None

    @property
    def end(self) -> datetime | None:
        """When the last point stops holding; None for an empty series."""
        if not self.points:
            return None
        return self.points[-1].start + timedelta(seconds=self.step_s)

    def value_at(self, when: datetime) -> float | None:
        """The intensity holding at ``when``; None outside the series."""
        index = self.index
        at = when.timestamp()
        if not index.values or at < index.bounds[0] or at >= index.bounds[-1]:
            return None
        return index.values[bisect.bisect_right(index.bounds, at) - 1]

    def clip(self, start: datetime, end: datetime) -> Series:
        """The points holding at some instant in ``[start, end)``, unchanged.

        The first kept point may begin before ``start``: the contract says a
        forecast begins at or before the reading it goes with.
        """
        first = max(bisect.bisect_right(self.index.bounds, start.timestamp()) - 1, 0)
        last = bisect.bisect_left(self.index.bounds, end.timestamp())
        return Series(points=self.points[first:min(last, len(self.points))], step_s=self.step_s)

    @functools.cached_property
    def index(self) -> _Index:
        """Prefix sums for O(log n) integrals, built once per series."""
        bounds = [p.start.timestamp() for p in self.points]
        if bounds:
            bounds.append(bounds[-1] + self.step_s)
        values = tuple(float(p.g_per_kwh) for p in self.points)
        integral = [0.0]
        for i, value in enumerate(values):
            integral.append(integral[-1] + value * (bounds[i + 1] - bounds[i]))
        return _Index(
            bounds=tuple(bounds), values=values, integral=tuple(integral),
            bounds_array=np.array(bounds, dtype=np.float64),
            values_array=np.array(values, dtype=np.float64),
            integral_array=np.array(integral, dtype=np.float64),
        )

    def integral_to(self, at: float) -> float:
        """g/kWh x seconds from the series start to epoch second ``at`` (inside it)."""
        index = self.index
        i = bisect.bisect_right(index.bounds, at) - 1
        if i >= len(index.values):
            return index.integral[-1]
        return index.integral[i] + index.values[i] * (at - index.bounds[i])

    def integrals_to(self, at: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``integral_to`` for many instants at once (all inside the series)."""
        index = self.index
        i = np.searchsorted(index.bounds_array, at, side="right") - 1
        i = np.minimum(i, len(index.values) - 1)
        return index.integral_array[i] + index.values_array[i] * (at - index.bounds_array[i])


def step_of(starts: Sequence[datetime], *, default_s: int = 3600) -> int:
    """The spacing of a series' points: the most common gap between consecutive starts.

    The one rule for every series read from outside (provider answers, trace
    files, recorded forecasts, the history governance prices with): a trace
    with missing hours, a duplicated row or a finer stretch keeps the spacing
    most of it has, where the smallest gap or the median would not. Ties go
    to the finer spacing. ``starts`` must be sorted; with no positive gap,
    ``default_s``.
    """
    gaps = collections.Counter(int((b - a).total_seconds()) for a, b in itertools.pairwise(starts))
    positive = [(count, -gap) for gap, count in gaps.items() if gap > 0]
    return -max(positive)[1] if positive else default_s


def from_pairs(pairs: Iterable[tuple[datetime, float]], *, step_s: int) -> Series:
    """A series from ``(start, g_per_kwh)`` pairs, sorted, with naive times taken as UTC."""
    points = sorted(
        (Point(start=_utc(start), g_per_kwh=float(value)) for start, value in pairs),
        key=lambda p: p.start,
    )
    return Series(points=tuple(points), step_s=step_s)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
