"""The UK Carbon Intensity API (NESO): national or regional, half-hourly, no key.

``/intensity/{from}/fw48h`` gives 96 half-hour windows from now, each with a
forecast (and, for the national series, an ``actual`` once measured);
``/intensity/{from}/pt24h`` gives the day behind. Regional series (a DNO
region id, 1-17) come from ``/regional/intensity/{from}/fw48h/regionid/{id}``
and have forecasts only. Values are gCO2/kWh already: nothing is converted.
A region is configured by its zone: ``national`` or a region id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from carbon_feed import config, errors, model, source
from planner import series

log = logging.getLogger(__name__)

SOURCE: Final = "ukci"
DEFAULT_URL: Final = "https://api.carbonintensity.org.uk"
STEP_S: Final = 1800
NATIONAL: Final = "national"


class UkCarbonIntensitySource(source.ZonedSource):
    """An :class:`carbon_feed.source.IntensitySource` over api.carbonintensity.org.uk."""

    def __init__(self, *, name: str, client: source.JsonClient, zones: Mapping[str, str],
                 history: bool = True) -> None:
        for region, zone in zones.items():
            if zone != NATIONAL and not zone.isdigit():
                raise errors.ConfigError(f"provider {name!r}: region {region!r} zone must be "
                                         f"'national' or a region id (1-17), not {zone!r}")
        super().__init__(name=name, zones=zones)
        self._client = client
        self._history = history

    def fetch(self, region: str, *, now: datetime) -> model.Reading:
        zone = self._zone(region)
        forecast = self._windows(self._path(zone, "fw48h", now), zone, now=now)
        history = self._past(zone, now=now) if self._history else []
        current = _holding(history, now) or _holding(forecast, now)
        if current is None:
            raise errors.NoData(f"{self._name}: no half-hour window for {zone} holds {now:%Y-%m-%dT%H:%MZ}")
        points = model.timeline(history=history, current=current, forecast=forecast)
        return model.Reading(region=region, signal="average", source=SOURCE, observed_at=current.start,
                             fetched_at=now, g_per_kwh=current.g_per_kwh, forecast=points,
                             forecast_step_s=STEP_S)

    def _path(self, zone: str, span: str, now: datetime) -> str:
        at = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
        if zone == NATIONAL:
            return f"/intensity/{at}/{span}"
        return f"/regional/intensity/{at}/{span}/regionid/{zone}"

    def _past(self, zone: str, *, now: datetime) -> list[series.Point]:
        try:
            return self._windows(self._path(zone, "pt24h", now), zone, now=now)
        except (errors.RateLimited, errors.RejectedReading):
            raise
        except errors.ProviderError as error:
            log.warning("%s: no history for %s, publishing the forecast alone: %s", self._name, zone, error)
            return []

    def _windows(self, path: str, zone: str, *, now: datetime) -> list[series.Point]:
        body = self._client.get(path, now=now)
        data = source.field(body, "data", provider=self._name)
        if zone != NATIONAL:
            data = _regional_windows(data, provider=self._name)
        if not isinstance(data, list):
            raise errors.MalformedResponse(f"{self._name}: 'data' is not a list of windows")
        points = {p.start: p for p in (self._point(w, zone) for w in data) if p is not None}
        return sorted(points.values(), key=lambda p: p.start)

    def _point(self, window: Any, zone: str) -> series.Point | None:
        intensity = source.field(window, "intensity", provider=self._name)
        if not isinstance(intensity, Mapping):
            raise errors.MalformedResponse(f"{self._name}: 'intensity' is not an object")
        value = intensity.get("actual")
        if value is None:
            value = intensity.get("forecast")
        if value is None:
            return None  # a window the API has no number for yet
        start = source.instant(source.field(window, "from", provider=self._name),
                               provider=self._name, what="from")
        number = source.number(value, provider=self._name, what="intensity")
        return series.Point(start=start, g_per_kwh=model.check_g_per_kwh(number, source=self._name,
                                                                         region=zone))


def _regional_windows(data: Any, *, provider: str) -> Any:
    """Regional answers nest the windows one level down, in an object or a one-item list."""
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if isinstance(data, Mapping) and isinstance(data.get("data"), list):
        return data["data"]
    raise errors.MalformedResponse(f"{provider}: regional answer has no 'data' list of windows")


def _holding(points: list[series.Point], now: datetime) -> series.Point | None:
    """The half-hour window that contains ``now``."""
    for point in reversed(points):
        if point.start <= now < point.start + timedelta(seconds=STEP_S):
            return point
    return None


def build(name: str, options: Mapping[str, Any], zones: Mapping[str, str],
          context: config.BuildContext) -> UkCarbonIntensitySource:
    """Factory for the providers file (``type: ukci``); a region without a zone is national."""
    config.check_options(name, options, {"url", "history"})
    national = {region: (NATIONAL if zone == region else zone) for region, zone in zones.items()}
    client = source.JsonClient(provider=name, base_url=str(options.get("url", DEFAULT_URL)),
                               timeout_s=context.timeout_s)
    return UkCarbonIntensitySource(name=name, client=client, zones=national,
                                   history=bool(options.get("history", True)))
