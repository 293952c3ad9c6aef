"""What goes wrong with Electricity Maps, once for both API versions (v3 and v4).

A real local HTTP server on 127.0.0.1 answers with recorded v3 bodies; for
v4 they are reshaped as the published v4 reference has them (the same fields
plus ``temporalGranularity``; history at ``/past-range`` with ``start`` and
``end``, the forecast with ``horizonHours``), as in
``test_feed_electricitymaps_v4.py``. Each case runs on both versions, so a
failure handled in one reader and not the other shows as one failing case.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from carbon_feed import config, electricitymaps, errors
from tests.carbon_feed.helpers import at, recorded

LATEST_DE = "v3_carbon-intensity_latest_DE__green-elephpant.json"
MISO_DIRECT = "v3_carbon-intensity_latest_US-MIDW-MISO_direct__zeus.json"
MISO_LIFECYCLE = "v3_carbon-intensity_latest_US-MIDW-MISO_lifecycle__zeus.json"
NO_RECENT_DATA = "v3_carbon-intensity_latest_error_no-recent-data__zeus.json"
TOKEN = {"auth-token": "em-t0ken"}
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class EmApi:
    """One API version: where each kind of answer is asked for, and how its bodies look."""

    version: str
    history_h: int = 1

    def source(self, httpserver: HTTPServer, context: config.BuildContext,
               **options: Any) -> electricitymaps.ElectricityMapsSource:
        settings = {"url": httpserver.url_for(""), "token": {"env": "EM_TOKEN"}, "api": self.version, **options}
        if self.version == "v4":  # v3's history is a fixed 24 hours
            settings["history_h"] = self.history_h
        return electricitymaps.build("electricitymaps", settings, {"DE": "DE", "MISO": "US-MIDW-MISO"}, context)

    def body(self, body: dict[str, Any]) -> dict[str, Any]:
        """A successful answer as this version gives it (errors look alike in both)."""
        return body | {"temporalGranularity": "hourly"} if self.version == "v4" else body

    def serve(self, httpserver: HTTPServer, kind: str, body: Any, *, status: int = 200, zone: str = "DE",
              factor: str = "lifecycle", **query: str) -> None:
        query_string = {"zone": zone, "emissionFactorType": factor, **query}
        if self.version == "v4":
            query_string["temporalGranularity"] = "hourly"
        httpserver.expect_request(f"/{self.version}/carbon-intensity/{kind}", headers=TOKEN,
                                  query_string=query_string).respond_with_json(body, status=status)

    def serve_latest(self, httpserver: HTTPServer, body: dict[str, Any], *, status: int = 200,
                     **where: str) -> None:
        self.serve(httpserver, "latest", self.body(body) if status == 200 else body, status=status, **where)

    def serve_history(self, httpserver: HTTPServer, body: Any, *, now: datetime, status: int = 200) -> None:
        if self.version == "v3":
            self.serve(httpserver, "history", body, status=status)
            return
        start = now - timedelta(hours=self.history_h)
        self.serve(httpserver, "past-range", body, status=status,
                   start=start.strftime(RFC3339), end=now.strftime(RFC3339))

    def serve_forecast(self, httpserver: HTTPServer, body: Any, *, status: int = 200) -> None:
        extra = {"horizonHours": "48"} if self.version == "v4" else {}
        self.serve(httpserver, "forecast", body, status=status, **extra)

    @property
    def history_name(self) -> str:
        return "past-range" if self.version == "v4" else "history"


@pytest.fixture(params=["v3", "v4"])
def api(request: pytest.FixtureRequest) -> EmApi:
    return EmApi(request.param)


def test_the_configured_emission_factor_is_asked_for_and_enforced(
    api: EmApi, httpserver: HTTPServer, context: config.BuildContext
) -> None:
    api.serve_latest(httpserver, recorded(MISO_DIRECT), zone="US-MIDW-MISO", factor="direct")

    reading = api.source(httpserver, context, emission_factor="direct", forecast=False, history=False).fetch(
        "MISO", now=at("2024-09-27T00:30:00Z"))

    assert (reading.g_per_kwh, reading.emission_factor) == (506, "direct")


def test_a_direct_value_where_lifecycle_is_configured_is_rejected(
    api: EmApi, httpserver: HTTPServer, context: config.BuildContext
) -> None:
    api.serve_latest(httpserver, recorded(MISO_DIRECT), zone="US-MIDW-MISO")

    with pytest.raises(errors.UnitError, match="'direct' where 'lifecycle' is configured"):
        api.source(httpserver, context, forecast=False, history=False).fetch(
            "MISO", now=at("2024-09-27T00:30:00Z"))


def test_no_recent_data_is_a_provider_error_with_the_providers_words(
    api: EmApi, httpserver: HTTPServer, context: config.BuildContext
) -> None:
    api.serve_latest(httpserver, recorded(NO_RECENT_DATA), status=404, zone="US-MIDW-MISO")

    with pytest.raises(errors.HttpError, match='No recent data for zone "US-MIDW-MISO"') as raised:
        api.source(httpserver, context).fetch("MISO", now=at("2024-09-27T00:30:00Z"))
    assert raised.value.kind == "http_404"


def test_a_missing_forecast_and_history_still_publish_the_latest_value(
    api: EmApi, httpserver: HTTPServer, context: config.BuildContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    now = at("2024-03-01T23:10:00Z")
    api.serve_latest(httpserver, recorded(LATEST_DE))
    api.serve_history(httpserver, {"error": "not in your plan"}, now=now, status=401)
    api.serve_forecast(httpserver, {"error": "upstream"}, status=502)

    reading = api.source(httpserver, context).fetch("DE", now=now)

    assert [p.g_per_kwh for p in reading.forecast] == [428]
    assert "no forecast for DE" in caplog.text
    assert f"no {api.history_name} for DE" in caplog.text


def test_an_implausible_value_is_rejected_as_a_unit_problem(
    api: EmApi, httpserver: HTTPServer, context: config.BuildContext
) -> None:
    api.serve_latest(httpserver, recorded(LATEST_DE) | {"carbonIntensity": 94_400})

    with pytest.raises(errors.UnitError, match="not a plausible gCO2eq/kWh"):
        api.source(httpserver, context).fetch("DE", now=at("2024-03-01T23:10:00Z"))


def test_an_answer_for_another_zone_is_malformed(
    api: EmApi, httpserver: HTTPServer, context: config.BuildContext
) -> None:
    api.serve_latest(httpserver, recorded(MISO_LIFECYCLE))

    with pytest.raises(errors.MalformedResponse, match="asked for DE, got US-MIDW-MISO"):
        api.source(httpserver, context).fetch("DE", now=at("2024-09-24T03:10:00Z"))


def test_a_rate_limit_is_not_hidden_as_a_missing_forecast(
    api: EmApi, httpserver: HTTPServer, context: config.BuildContext
) -> None:
    api.serve_latest(httpserver, recorded(LATEST_DE))
    httpserver.expect_request(f"/{api.version}/carbon-intensity/forecast").respond_with_json(
        {"message": "slow down"}, status=429, headers={"Retry-After": "120"})

    with pytest.raises(errors.RateLimited) as raised:
        api.source(httpserver, context, history=False).fetch("DE", now=at("2024-03-01T23:10:00Z"))
    assert raised.value.retry_after_s == 120
