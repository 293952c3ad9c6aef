"""Electricity Maps API v3: average carbon intensity, life-cycle or direct, as configured.

``carbon-intensity/latest`` gives the value now; ``/forecast`` and
``/history`` (optional: not every plan has them) fill the series around it.
Electricity Maps reports gCO2eq/kWh already, so nothing is converted; what
is checked is the emission factor: a provider answering ``direct`` when the
platform asked for ``lifecycle`` would silently change every threshold, so
such a reading is rejected rather than published.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from carbon_feed import config, errors, model, source
from planner import series

log = logging.getLogger(__name__)

SOURCE: Final = "electricitymaps"
DEFAULT_URL: Final = "https://api.electricitymap.org"
DEFAULT_STEP_S: Final = 3600
GRANULARITY_S: Final = {"5_minutes": 300, "15_minutes": 900, "hourly": 3600, "daily": 86400}


class ElectricityMapsSource(source.ZonedSource):
    """An :class:`carbon_feed.source.IntensitySource` over Electricity Maps v3."""

    def __init__(
        self,
        *,
        name: str,
        client: source.JsonClient,
        token: config.Secret,
        zones: Mapping[str, str],
        emission_factor: Literal["lifecycle", "direct"] = "lifecycle",
        forecast: bool = True,
        history: bool = True,
        horizon_h: int = 48,
    ) -> None:
        super().__init__(name=name, zones=zones)
        self._client = client
        self._token = token
        self._emission_factor: Literal["lifecycle", "direct"] = emission_factor
        self._forecast = forecast
        self._history = history
        self._horizon_h = horizon_h

    def fetch(self, region: str, *, now: datetime) -> model.Reading:
        zone = self._zone(region)
        latest = self._get("/v3/carbon-intensity/latest", zone, now=now)
        current = self._point(latest, zone)
        history = self._optional("history", zone, now=now) if self._history else []
        forecast = self._optional("forecast", zone, now=now) if self._forecast else []
        starts = [p.start for p in (forecast or history)]
        points = model.timeline(history=history, current=current, forecast=forecast,
                                until=now + timedelta(hours=self._horizon_h))
        return model.Reading(
            region=region, signal="average", source=SOURCE, observed_at=current.start,
            fetched_at=now, g_per_kwh=current.g_per_kwh, emission_factor=self._emission_factor,
            forecast=points, forecast_step_s=self._step(latest, starts),
        )

    def _get(self, path: str, zone: str, *, now: datetime) -> Any:
        params = {"zone": zone, "emissionFactorType": self._emission_factor}
        return self._client.get(path, params=params, headers={"auth-token": self._token.value}, now=now)

    def _optional(self, kind: Literal["history", "forecast"], zone: str, *, now: datetime) -> list[series.Point]:
        """History or forecast; without them the latest value is still worth publishing."""
        try:
            body = self._get(f"/v3/carbon-intensity/{kind}", zone, now=now)
            entries = source.field(body, kind, provider=self._name)
            if not isinstance(entries, list):
                raise errors.MalformedResponse(f"{self._name}: {kind!r} is not a list")
            return sorted((self._point(e, zone) for e in entries), key=lambda p: p.start)
        except (errors.RateLimited, errors.RejectedReading):
            raise
        except errors.ProviderError as error:
            log.warning("%s: no %s for %s, publishing without it: %s", self._name, kind, zone, error)
            return []

    def _point(self, entry: Any, zone: str) -> series.Point:
        if not isinstance(entry, Mapping):
            raise errors.MalformedResponse(f"{self._name}: expected an object, got {entry!r:.80}")
        answered_zone = entry.get("zone", zone)
        if answered_zone != zone:
            raise errors.MalformedResponse(f"{self._name}: asked for {zone}, got {answered_zone}")
        factor = entry.get("emissionFactorType")
        if factor is not None and factor != self._emission_factor:
            raise errors.UnitError(
                f"{self._name}: {zone} answered emissionFactorType {factor!r} where "
                f"{self._emission_factor!r} is configured; reading rejected, not published"
            )
        value = source.number(source.field(entry, "carbonIntensity", provider=self._name),
                              provider=self._name, what="carbonIntensity")
        start = source.instant(source.field(entry, "datetime", provider=self._name),
                               provider=self._name, what="datetime")
        return series.Point(start=start, g_per_kwh=model.check_g_per_kwh(value, source=self._name,
                                                                         region=zone))

    def _step(self, latest: Any, starts: list[datetime]) -> int:
        granularity = latest.get("temporalGranularity") if isinstance(latest, Mapping) else None
        if isinstance(granularity, str) and granularity in GRANULARITY_S:
            return GRANULARITY_S[granularity]
        return source.step_of(starts, default_s=DEFAULT_STEP_S)


def build(name: str, options: Mapping[str, Any], zones: Mapping[str, str],
          context: config.BuildContext) -> ElectricityMapsSource:
    """Factory for the providers file (``type: electricitymaps``)."""
    config.check_options(name, options, {"url", "token", "emission_factor", "forecast", "history",
                                         "horizon_h"})
    factor = options.get("emission_factor", "lifecycle")
    if factor not in ("lifecycle", "direct"):
        raise errors.ConfigError(f"provider {name!r}: emission_factor must be 'lifecycle' or "
                                 f"'direct', not {factor!r}")
    client = source.JsonClient(provider=name, base_url=str(options.get("url", DEFAULT_URL)),
                               timeout_s=context.timeout_s)
    return ElectricityMapsSource(
        name=name, client=client, zones=zones, emission_factor=factor,
        token=context.secret(options.get("token"), where=f"provider {name!r} token"),
        forecast=bool(options.get("forecast", True)), history=bool(options.get("history", True)),
        horizon_h=config.positive_int(name, options, "horizon_h", context.horizon_h),
    )
