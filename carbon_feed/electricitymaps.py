"""Electricity Maps API v3 and v4: average carbon intensity, life-cycle or direct, as configured.

``carbon-intensity/latest`` gives the value now; ``/forecast`` and
``/history`` (optional: not every plan has them) fill the series around it.
Electricity Maps reports gCO2eq/kWh already, so nothing is converted; what
is checked is the emission factor: a provider answering ``direct`` when the
platform asked for ``lifecycle`` would silently change every threshold, so
such a reading is rejected rather than published.

API v4 (``api: v4``) asks the same questions under ``/v4``, with a chosen
temporal granularity and ``past-range`` for history; either version can name
a cloud region instead of a zone (``dataCenterProvider``/``dataCenterRegion``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final, Literal

from carbon_feed import config, errors, model, source
from carbongate import timefmt
from planner import series

log = logging.getLogger(__name__)

SOURCE: Final = "electricitymaps"
DEFAULT_URL: Final = "https://api.electricitymap.org"
DEFAULT_STEP_S: Final = 3600
GRANULARITY_S: Final = {"5_minutes": 300, "15_minutes": 900, "hourly": 3600, "daily": 86400}
# What a v4 feed may ask for; coarser granularities are no use for deciding the next hours.
V4_GRANULARITIES: Final = ("5_minutes", "15_minutes", "hourly")
# One past-range request covers at most 10 days at hourly granularity.
MAX_PAST_RANGE_H: Final = 240


class ElectricityMapsSource(source.ZonedSource):
    """An :class:`carbon_feed.source.IntensitySource` over Electricity Maps v3."""

    API_VERSION: ClassVar[str] = "v3"

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
        latest = self._get("latest", zone, now=now)
        answered = self._answered_zone(latest, zone)
        current = self._point(latest, answered)
        history = self._history_points(zone, answered, now=now) if self._history else []
        forecast = (self._optional("forecast", "forecast", zone, answered, now=now, extra=self._forecast_params())
                    if self._forecast else [])
        starts = [p.start for p in (forecast or history)]
        points = model.timeline(history=history, current=current, forecast=forecast,
                                until=now + timedelta(hours=self._horizon_h))
        return model.Reading(
            region=region, signal="average", source=SOURCE, observed_at=current.start,
            fetched_at=now, g_per_kwh=current.g_per_kwh, emission_factor=self._emission_factor,
            forecast=points, forecast_step_s=self._step(latest, starts),
        )

    def _get(self, kind: str, zone: str, *, now: datetime, extra: Mapping[str, str] | None = None) -> Any:
        params = {**lookup(zone), "emissionFactorType": self._emission_factor, **self._common_params(),
                  **(extra or {})}
        return self._client.get(f"/{self.API_VERSION}/carbon-intensity/{kind}", params=params,
                                headers={"auth-token": self._token.value}, now=now)

    def _answered_zone(self, latest: Any, zone: str) -> str:
        """The zone the answers must be about: the one asked for, or the one a cloud region resolved to."""
        if not zone.startswith(config.CLOUD_ZONE_PREFIX):
            return zone
        answered = source.field(latest, "zone", provider=self._name)
        if not isinstance(answered, str) or not answered:
            raise errors.MalformedResponse(f"{self._name}: {zone} resolved to no zone ({answered!r})")
        return answered

    def _common_params(self) -> dict[str, str]:
        """Parameters every request of this API version carries besides the place and the factor."""
        return {}

    def _forecast_params(self) -> dict[str, str]:
        return {}

    def _history_points(self, zone: str, answered: str, *, now: datetime) -> list[series.Point]:
        return self._optional("history", "history", zone, answered, now=now)

    def _optional(self, kind: str, key: str, zone: str, answered: str, *, now: datetime,
                  extra: Mapping[str, str] | None = None) -> list[series.Point]:
        """History or forecast; without them the latest value is still worth publishing."""
        try:
            body = self._get(kind, zone, now=now, extra=extra)
            entries = source.field(body, key, provider=self._name)
            if body.get("zone", answered) != answered:
                raise errors.MalformedResponse(f"{self._name}: asked for {answered}, got {body['zone']}")
            if not isinstance(entries, list):
                raise errors.MalformedResponse(f"{self._name}: {key!r} is not a list")
            return sorted((self._point(e, answered) for e in entries), key=lambda p: p.start)
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
        return series.step_of(starts, default_s=DEFAULT_STEP_S)


class ElectricityMapsV4Source(ElectricityMapsSource):
    """Electricity Maps API v4, chosen with ``api: v4``: the same readings, asked the v4 way.

    Written to the published v4 reference: ``/v4/carbon-intensity/latest``,
    ``/forecast`` (``horizonHours``) and ``/past-range`` (``start``, ``end``,
    answering under ``data``) in place of v3's fixed 24-hour ``/history``;
    every request names the ``temporalGranularity`` wanted (``5_minutes``,
    ``15_minutes`` or ``hourly``) and the answer's own ``temporalGranularity``
    sets the series step, so a plan that only has hourly data is read as
    hourly. Units, signal and the emission-factor check are v3's.
    """

    API_VERSION: ClassVar[str] = "v4"

    def __init__(self, *, granularity: str = "hourly", history_h: int = 24,
                 disable_estimations: bool = False, **common: Any) -> None:
        super().__init__(**common)
        self._granularity = granularity
        self._history_h = history_h
        self._disable_estimations = disable_estimations

    def _common_params(self) -> dict[str, str]:
        params = {"temporalGranularity": self._granularity}
        if self._disable_estimations:
            params["disableEstimations"] = "true"
        return params

    def _forecast_params(self) -> dict[str, str]:
        return {"horizonHours": str(self._horizon_h)}

    def _history_points(self, zone: str, answered: str, *, now: datetime) -> list[series.Point]:
        """``past-range`` over the last ``history_h`` hours (v4 has no fixed-length history)."""
        if self._history_h == 0:
            return []
        extra = {"start": timefmt.format_time(now - timedelta(hours=self._history_h)),
                 "end": timefmt.format_time(now)}
        return self._optional("past-range", "data", zone, answered, now=now, extra=extra)

    def _step(self, latest: Any, starts: list[datetime]) -> int:
        answered = latest.get("temporalGranularity") if isinstance(latest, Mapping) else None
        if isinstance(answered, str) and answered != self._granularity:
            log.warning("%s: asked for %s data, answered %s (the plan's finest?); using %s",
                        self._name, self._granularity, answered, answered)
        return super()._step(latest, starts)


def lookup(zone: str) -> dict[str, str]:
    """Query parameters naming the place: ``zone``, or a cloud region (``dataCenterProvider``/``Region``).

    A chain entry with ``cloud_region: gcp/europe-west1`` arrives here as the
    zone ``cloud:gcp/europe-west1`` (see :mod:`carbon_feed.config`); the API
    resolves it to the zone that powers that data centre and answers for it.
    """
    if not zone.startswith(config.CLOUD_ZONE_PREFIX):
        return {"zone": zone}
    provider, _, region = zone.removeprefix(config.CLOUD_ZONE_PREFIX).partition("/")
    return {"dataCenterProvider": provider, "dataCenterRegion": region}


def build(name: str, options: Mapping[str, Any], zones: Mapping[str, str],
          context: config.BuildContext) -> ElectricityMapsSource:
    """Factory for the providers file (``type: electricitymaps``; ``api: v3`` default, or ``v4``)."""
    api = options.get("api", "v3")
    v4_only = {"granularity", "history_h", "disable_estimations"}
    config.check_options(name, options, {"url", "token", "emission_factor", "forecast", "history",
                                         "horizon_h", "api"} | (v4_only if api == "v4" else set()))
    if api not in ("v3", "v4"):
        raise errors.ConfigError(f"provider {name!r}: api must be 'v3' or 'v4', not {api!r}")
    factor = options.get("emission_factor", "lifecycle")
    if factor not in ("lifecycle", "direct"):
        raise errors.ConfigError(f"provider {name!r}: emission_factor must be 'lifecycle' or "
                                 f"'direct', not {factor!r}")
    client = source.JsonClient(provider=name, base_url=str(options.get("url", DEFAULT_URL)),
                               timeout_s=context.timeout_s)
    common: dict[str, Any] = dict(
        name=name, client=client, zones=zones, emission_factor=factor,
        token=context.secret(options.get("token"), where=f"provider {name!r} token"),
        forecast=bool(options.get("forecast", True)), history=bool(options.get("history", True)),
        horizon_h=config.positive_int(name, options, "horizon_h", context.horizon_h),
    )
    if api == "v3":
        return ElectricityMapsSource(**common)
    granularity = options.get("granularity", "hourly")
    if granularity not in V4_GRANULARITIES:
        raise errors.ConfigError(f"provider {name!r}: granularity must be one of "
                                 f"{', '.join(V4_GRANULARITIES)}, not {granularity!r}")
    history_h = config.positive_int(name, options, "history_h", 24)
    if history_h > MAX_PAST_RANGE_H:
        raise errors.ConfigError(f"provider {name!r}: history_h is at most {MAX_PAST_RANGE_H} "
                                 "(the past-range limit of one request)")
    return ElectricityMapsV4Source(granularity=granularity, history_h=history_h,
                                   disable_estimations=bool(options.get("disable_estimations", False)),
                                   **common)
