"""The one normalised reading every provider returns, whatever it was given.

Providers convert at the edge (WattTime's lbs/MWh, an index instead of a
rate) and hand back a :class:`Reading` whose field names carry their units.
A reading checks itself when built, so a value that could not be a carbon
intensity in gCO2eq/kWh, or an index mixed with a rate, never exists long
enough to be published.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, NotRequired, TypedDict, get_args

from carbon_feed import errors
from planner import series, tracefile
from planner import snapshot as contract

Signal = Literal["average", "marginal", "index"]
EmissionFactor = Literal["lifecycle", "direct"]

# No grid runs dirtier than lignite (~1,100 g/kWh life-cycle); a value far
# beyond that is a unit mistake (lbs/MWh or kg/MWh passed through), not news.
MAX_PLAUSIBLE_G_PER_KWH: Final = tracefile.MAX_PLAUSIBLE_G_PER_KWH  # one bound for providers and files


@dataclass(frozen=True)
class Reading:
    """A region's grid intensity now, and what the provider expects next.

    ``forecast`` is piecewise constant (see :mod:`planner.series`) with the last
    point holding ``forecast_step_s``; it may include recent history, so it can
    begin before ``observed_at``. For ``signal == "index"`` there is no rate:
    ``g_per_kwh`` is None and ``index_percent`` (0-100) says how dirty the grid
    is relative to its own recent past.
    """

    region: str
    signal: Signal
    source: str
    observed_at: datetime
    fetched_at: datetime
    g_per_kwh: float | None = None
    index_percent: float | None = None
    emission_factor: EmissionFactor | None = None
    forecast: tuple[series.Point, ...] = field(default=())
    forecast_step_s: int = 3600
    # How often the provider publishes a new current value; None: one forecast step.
    cadence_s: int | None = None

    @property
    def every_s(self) -> int:
        """The provider's cadence: when the next observation after ``observed_at`` is due."""
        return self.cadence_s if self.cadence_s is not None else self.forecast_step_s

    def __post_init__(self) -> None:
        if self.signal not in get_args(Signal):
            raise errors.UnitError(f"{self.source}: signal {self.signal!r} is not one of {get_args(Signal)}")
        if self.observed_at.tzinfo is None or self.fetched_at.tzinfo is None:
            raise errors.MalformedResponse(f"{self.source}: times must carry a time zone")
        if self.forecast_step_s <= 0:
            raise errors.MalformedResponse(f"{self.source}: forecast step {self.forecast_step_s} s")
        if self.cadence_s is not None and self.cadence_s <= 0:
            raise errors.MalformedResponse(f"{self.source}: cadence {self.cadence_s} s")
        if self.signal == "index":
            self._check_index()
        else:
            self._check_rate()

    def _check_index(self) -> None:
        if self.g_per_kwh is not None or self.forecast:
            raise errors.UnitError(f"{self.source}: an index reading cannot carry g/kWh values")
        value = self.index_percent
        if value is None or not math.isfinite(value) or not 0.0 <= value <= 100.0:
            raise errors.UnitError(f"{self.source}: index {value!r} is not a percentile in 0-100")

    def _check_rate(self) -> None:
        if self.index_percent is not None:
            raise errors.UnitError(f"{self.source}: a {self.signal} reading cannot carry an index")
        if self.g_per_kwh is None:
            raise errors.UnitError(f"{self.source}: a {self.signal} reading needs g/kWh")
        check_g_per_kwh(self.g_per_kwh, source=self.source, region=self.region)
        for point in self.forecast:
            check_g_per_kwh(point.g_per_kwh, source=self.source, region=self.region)

    def series(self) -> series.Series:
        """The forecast as a planner series (raises SeriesError if points are out of order)."""
        return series.Series(points=self.forecast, step_s=self.forecast_step_s)


def check_g_per_kwh(value: float, *, source: str, region: str) -> float:
    """A finite, non-negative, plausible g/kWh value, or :class:`errors.UnitError`."""
    if not math.isfinite(value) or value < 0 or value > MAX_PLAUSIBLE_G_PER_KWH:
        raise errors.UnitError(
            f"{source}: {value!r} for {region} is not a plausible gCO2eq/kWh value "
            f"(0-{MAX_PLAUSIBLE_G_PER_KWH:g}); is the provider sending another unit?"
        )
    return value


# --- on-disk form (the last-known-good cache) ------------------------------------------------


class PointDoc(TypedDict):
    start: str
    g_per_kwh: float


class ReadingDoc(TypedDict):
    region: str
    signal: str
    source: str
    observed_at: str
    fetched_at: str
    g_per_kwh: float | None
    index_percent: float | None
    emission_factor: str | None
    forecast: list[PointDoc]
    forecast_step_s: int
    cadence_s: NotRequired[int | None]


def to_document(reading: Reading) -> ReadingDoc:
    """JSON-ready form of a reading (times as RFC 3339 UTC)."""
    return {
        "region": reading.region,
        "signal": reading.signal,
        "source": reading.source,
        "observed_at": contract.format_time(reading.observed_at),
        "fetched_at": contract.format_time(reading.fetched_at),
        "g_per_kwh": reading.g_per_kwh,
        "index_percent": reading.index_percent,
        "emission_factor": reading.emission_factor,
        "forecast": [
            {"start": contract.format_time(p.start), "g_per_kwh": p.g_per_kwh} for p in reading.forecast
        ],
        "forecast_step_s": reading.forecast_step_s,
        "cadence_s": reading.cadence_s,
    }


def from_document(document: Mapping[str, Any]) -> Reading:
    """Inverse of :func:`to_document`; :class:`errors.MalformedResponse` if it does not fit."""
    try:
        return Reading(
            region=str(document["region"]),
            signal=document["signal"],
            source=str(document["source"]),
            observed_at=contract.parse_time(document["observed_at"]),
            fetched_at=contract.parse_time(document["fetched_at"]),
            g_per_kwh=_optional_float(document.get("g_per_kwh")),
            index_percent=_optional_float(document.get("index_percent")),
            emission_factor=document.get("emission_factor"),
            forecast=tuple(
                series.Point(start=contract.parse_time(p["start"]), g_per_kwh=float(p["g_per_kwh"]))
                for p in document.get("forecast", [])
            ),
            forecast_step_s=int(document.get("forecast_step_s", 3600)),
            cadence_s=None if document.get("cadence_s") is None else int(document["cadence_s"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise errors.MalformedResponse(f"stored reading does not fit: {error!r}") from error


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def timeline(
    *,
    history: tuple[series.Point, ...] | list[series.Point],
    current: series.Point,
    forecast: tuple[series.Point, ...] | list[series.Point],
    until: datetime | None = None,
) -> tuple[series.Point, ...]:
    """One ordered series: history before the current reading, then the forecast after it.

    Where they overlap the measured value wins: history over the forecast
    before ``current``, the current reading at its own start; after it only
    the forecast counts. Points starting at or after ``until`` (the horizon)
    are dropped.
    """
    by_start: dict[datetime, series.Point] = {p.start: p for p in forecast}
    for point in history:
        if point.start < current.start:
            by_start[point.start] = point
    by_start[current.start] = current
    ordered = sorted(by_start.values(), key=lambda p: p.start)
    if until is not None:
        ordered = [p for p in ordered if p.start < until]
    return tuple(ordered)
