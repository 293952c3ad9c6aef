"""WattTime API v3: marginal operating emissions (MOER), or its percentile index.

WattTime answers in lbs CO2 per MWh; carbongate speaks gCO2eq/kWh, so the
value is converted here, at the edge (x 0.453592), and marked ``marginal``.
The ``signal-index`` endpoint gives a percentile instead of a rate: that is
published as ``signal: index`` with ``index_percent`` and no g/kWh at all,
because a percentile compared with a threshold in g/kWh would be nonsense.
Any other unit is rejected, never guessed.

Authentication: HTTP Basic on ``/login`` returns a bearer token valid for
30 minutes. The token is renewed ``renew_margin_s`` before it expires (by the
feed's clock) and once more if a data call still answers 401.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from carbon_feed import config, errors, model, source
from planner import series
from planner import snapshot as contract

log = logging.getLogger(__name__)

SOURCE: Final = "watttime"
DEFAULT_URL: Final = "https://api.watttime.org"
LBS_PER_MWH_IN_G_PER_KWH: Final = 0.453592
# The only units converted: anything else is rejected with a log line.
UNITS_TO_G_PER_KWH: Final = {"lbs_co2_per_mwh": LBS_PER_MWH_IN_G_PER_KWH}
PERCENTILE_UNIT: Final = "percentile"
TOKEN_LIFETIME_S: Final = 30 * 60
SIGNAL_TYPE: Final = "co2_moer"
DEFAULT_STEP_S: Final = 300


class WattTimeSource(source.ZonedSource):
    """An :class:`carbon_feed.source.IntensitySource` over WattTime v3."""

    def __init__(
        self,
        *,
        name: str,
        client: source.JsonClient,
        username: config.Secret,
        password: config.Secret,
        zones: Mapping[str, str],
        signal: Literal["marginal", "index"] = "marginal",
        horizon_h: int = 24,
        history_h: int = 24,
        renew_margin_s: float = 300.0,
    ) -> None:
        super().__init__(name=name, zones=zones)
        self._client = client
        self._credentials = (username, password)
        self._signal = signal
        self._horizon_h = horizon_h
        self._history_h = history_h
        self._renew_margin_s = renew_margin_s
        self._token: config.Secret | None = None
        self._token_expires: datetime | None = None
        self._lock = threading.Lock()

    def fetch(self, region: str, *, now: datetime) -> model.Reading:
        zone = self._zone(region)
        if self._signal == "index":
            return self._index(region, zone, now=now)
        return self._marginal(region, zone, now=now)

    # -- signals -------------------------------------------------------------------------

    def _index(self, region: str, zone: str, *, now: datetime) -> model.Reading:
        body = self._get("/v3/signal-index", {"region": zone, "signal_type": SIGNAL_TYPE}, now=now)
        units = _meta(body).get("units")
        if units != PERCENTILE_UNIT:
            raise errors.UnitError(f"{self._name}: signal-index for {zone} came in {units!r}, "
                                   f"not {PERCENTILE_UNIT!r}; reading rejected")
        points = _points(body)
        if not points:
            raise errors.NoData(f"{self._name}: signal-index for {zone} has no data")
        observed, value = points[-1]
        return model.Reading(region=region, signal="index", source=SOURCE, observed_at=observed,
                             fetched_at=now, index_percent=value)

    def _marginal(self, region: str, zone: str, *, now: datetime) -> model.Reading:
        params = {"region": zone, "signal_type": SIGNAL_TYPE, "horizon_hours": str(self._horizon_h)}
        body = self._get("/v3/forecast", params, now=now)
        forecast, step_s = self._rates(body, zone)
        history = self._history(zone, now=now)
        current = _current(history, forecast, now=now)
        if current is None:
            raise errors.NoData(f"{self._name}: no MOER for {zone} (empty forecast and history)")
        points = model.timeline(history=history, current=current, forecast=forecast,
                                until=now + timedelta(hours=self._horizon_h))
        return model.Reading(region=region, signal="marginal", source=SOURCE,
                             observed_at=current.start, fetched_at=now, g_per_kwh=current.g_per_kwh,
                             forecast=points, forecast_step_s=step_s)

    def _history(self, zone: str, *, now: datetime) -> list[series.Point]:
        """Recent MOER; optional: a plan without historical access still has the forecast."""
        if self._history_h <= 0:
            return []
        params = {
            "region": zone, "signal_type": SIGNAL_TYPE,
            "start": contract.format_time(now - timedelta(hours=self._history_h)),
            "end": contract.format_time(now),
        }
        try:
            body = self._get("/v3/historical", params, now=now)
            return self._rates(body, zone)[0]
        except (errors.RateLimited, errors.RejectedReading):
            raise
        except errors.ProviderError as error:
            log.warning("%s: no history for %s, using the forecast alone: %s", self._name, zone, error)
            return []

    def _rates(self, body: Any, zone: str) -> tuple[list[series.Point], int]:
        meta = _meta(body)
        units = meta.get("units")
        factor = UNITS_TO_G_PER_KWH.get(str(units))
        if factor is None:
            raise errors.UnitError(
                f"{self._name}: MOER for {zone} came in {units!r}; carbongate converts only "
                f"{sorted(UNITS_TO_G_PER_KWH)}; reading rejected, not published"
            )
        step = meta.get("data_point_period_seconds", DEFAULT_STEP_S)
        step_s = int(step) if isinstance(step, int) and step > 0 else DEFAULT_STEP_S
        points = [series.Point(start=t, g_per_kwh=v * factor) for t, v in _points(body)]
        for point in points:
            model.check_g_per_kwh(point.g_per_kwh, source=self._name, region=zone)
        return points, step_s

    # -- transport -----------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, str], *, now: datetime) -> Any:
        token = self._valid_token(now)
        try:
            return self._client.get(path, params=params, headers=_bearer(token), now=now)
        except errors.AuthError:
            log.info("%s: token refused by %s, logging in again", self._name, path)
            token = self._login(now)
            return self._client.get(path, params=params, headers=_bearer(token), now=now)

    def _valid_token(self, now: datetime) -> config.Secret:
        with self._lock:
            expires = self._token_expires
            if self._token is not None and expires is not None and \
                    now < expires - timedelta(seconds=self._renew_margin_s):
                return self._token
        return self._login(now)

    def _login(self, now: datetime) -> config.Secret:
        username, password = self._credentials
        try:
            body = self._client.get("/login", auth=(username.value, password.value), now=now)
        except errors.AuthError as error:
            raise errors.AuthError(f"{self._name}: login refused; check the credentials named in "
                                   "the providers file", status=error.status) from error
        token = body.get("token") if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token:
            raise errors.MalformedResponse(f"{self._name}: /login answered without a token")
        with self._lock:
            self._token = config.Secret(token)
            self._token_expires = now + timedelta(seconds=TOKEN_LIFETIME_S)
            return self._token


def _bearer(token: config.Secret) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.value}"}


def _meta(body: Any) -> Mapping[str, Any]:
    meta = source.field(body, "meta", provider=SOURCE)
    if not isinstance(meta, Mapping):
        raise errors.MalformedResponse(f"{SOURCE}: 'meta' is not an object")
    return meta


def _points(body: Any) -> list[tuple[datetime, float]]:
    """``(point_time, value)`` pairs, from the live shape or the historical-forecast one.

    Live ``/v3/forecast`` and ``/v3/historical`` give ``data`` as a list of
    points; the historical-forecast shape nests batches ``{generated_at,
    forecast: [...]}`` of which the newest is the one that counts.
    """
    data = source.field(body, "data", provider=SOURCE)
    if not isinstance(data, list):
        raise errors.MalformedResponse(f"{SOURCE}: 'data' is not a list")
    if data and isinstance(data[0], Mapping) and "forecast" in data[0]:
        newest = max(data, key=lambda b: source.instant(source.field(b, "generated_at", provider=SOURCE),
                                                         provider=SOURCE, what="generated_at"))
        data = newest["forecast"]
        if not isinstance(data, list):
            raise errors.MalformedResponse(f"{SOURCE}: 'forecast' is not a list")
    pairs = [
        (source.instant(source.field(p, "point_time", provider=SOURCE), provider=SOURCE, what="point_time"),
         source.number(source.field(p, "value", provider=SOURCE), provider=SOURCE, what="value"))
        for p in data
    ]
    return sorted(pairs)


def _current(history: list[series.Point], forecast: list[series.Point], *, now: datetime) -> series.Point | None:
    """The newest measured point at or before now; else the forecast point holding now."""
    measured = [p for p in history if p.start <= now]
    if measured:
        return measured[-1]
    started = [p for p in forecast if p.start <= now]
    if started:
        return started[-1]
    return forecast[0] if forecast else None


def build(name: str, options: Mapping[str, Any], zones: Mapping[str, str],
          context: config.BuildContext) -> WattTimeSource:
    """Factory for the providers file (``type: watttime``)."""
    config.check_options(name, options, {"url", "username", "password", "signal", "horizon_h",
                                         "history_h"})
    signal = options.get("signal", "marginal")
    if signal not in ("marginal", "index"):
        raise errors.ConfigError(f"provider {name!r}: signal must be 'marginal' or 'index', not {signal!r}")
    client = source.JsonClient(provider=name, base_url=str(options.get("url", DEFAULT_URL)),
                               timeout_s=context.timeout_s)
    return WattTimeSource(
        name=name, client=client, zones=zones, signal=signal,
        username=context.secret(options.get("username"), where=f"provider {name!r} username"),
        password=context.secret(options.get("password"), where=f"provider {name!r} password"),
        horizon_h=config.positive_int(name, options, "horizon_h", 24),
        history_h=config.positive_int(name, options, "history_h", 24),
    )
