"""WattTime v3 through a real local HTTP server replaying WattTime's documented responses."""

from __future__ import annotations

import base64
import itertools
import json
import logging
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from carbon_feed import config, errors, watttime
from tests.carbon_feed.helpers import at, recorded

FORECAST = "v3_forecasted_emissions_response__aiowatttime.json"
HISTORICAL = "v3_historical_emissions_response__aiowatttime.json"
INDEX = "v3_realtime_emissions_response__aiowatttime.json"
BASIC = "Basic " + base64.b64encode(b"carbon:s3cret-pw").decode()


def source(httpserver: HTTPServer, context: config.BuildContext, **options: Any) -> watttime.WattTimeSource:
    settings = {"url": httpserver.url_for(""), "username": {"env": "WT_USER"},
                "password": {"env": "WT_PASSWORD"}, **options}
    return watttime.build("watttime", settings, {"CAISO": "CAISO_NORTH", "PSCO": "PSCO"}, context)


def tokens(httpserver: HTTPServer) -> list[str]:
    """Serve /login (only with the right basic auth); each login gets a new token."""
    issued: list[str] = []
    counter = itertools.count(1)

    def login(request: Request) -> Response:
        if request.headers.get("Authorization") != BASIC:
            return Response(json.dumps({"error": "bad credentials"}), status=401)
        issued.append(f"token-{next(counter)}")
        return Response(json.dumps({"token": issued[-1]}), content_type="application/json")

    httpserver.expect_request("/login").respond_with_handler(login)
    return issued


def test_moer_is_converted_from_lbs_per_mwh_to_g_per_kwh_and_marked_marginal(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    tokens(httpserver)
    httpserver.expect_request("/v3/forecast", query_string={
        "region": "CAISO_NORTH", "signal_type": "co2_moer", "horizon_hours": "24"},
    ).respond_with_json(recorded(FORECAST))
    httpserver.expect_request("/v3/historical").respond_with_json(recorded(HISTORICAL))

    reading = source(httpserver, context).fetch("CAISO", now=at("2022-07-15T00:07:00Z"))

    assert reading.signal == "marginal"
    assert reading.source == "watttime"
    assert reading.observed_at == at("2022-07-15T00:05:00Z")  # the newest measured point
    assert reading.g_per_kwh == pytest.approx(860 * 0.453592)
    assert [(p.start.minute, round(p.g_per_kwh, 3)) for p in reading.forecast] == [
        (0, round(870 * 0.453592, 3)), (5, round(860 * 0.453592, 3)), (10, round(870 * 0.453592, 3))]
    assert reading.forecast_step_s == 300
    assert reading.index_percent is None


def test_the_live_flat_forecast_shape_is_read_too(httpserver: HTTPServer, context: config.BuildContext) -> None:
    """Live /v3/forecast gives ``data`` as a flat list; derived from the recorded batch."""
    body = recorded(FORECAST)
    flat = {"data": body["data"][0]["forecast"], "meta": body["meta"]}
    tokens(httpserver)
    httpserver.expect_request("/v3/forecast").respond_with_json(flat)

    reading = source(httpserver, context, history_h=0).fetch("CAISO", now=at("2022-07-15T00:07:00Z"))

    assert reading.observed_at == at("2022-07-15T00:05:00Z")
    assert reading.g_per_kwh == pytest.approx(870 * 0.453592)
    assert len(reading.forecast) == 3


def test_signal_index_is_published_as_an_index_never_as_g_per_kwh(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    tokens(httpserver)
    httpserver.expect_request("/v3/signal-index", query_string={
        "region": "PSCO", "signal_type": "co2_moer"}).respond_with_json(recorded(INDEX))

    reading = source(httpserver, context, signal="index").fetch("PSCO", now=at("2024-06-18T18:42:00Z"))

    assert reading.signal == "index"
    assert reading.index_percent == 96.0
    assert reading.g_per_kwh is None
    assert reading.forecast == ()


def test_the_token_is_reused_then_renewed_before_it_expires(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    issued = tokens(httpserver)
    used: list[str | None] = []

    def forecast(request: Request) -> Response:
        used.append(request.headers.get("Authorization"))
        return Response(json.dumps(recorded(FORECAST)), content_type="application/json")

    httpserver.expect_request("/v3/forecast").respond_with_handler(forecast)
    provider = source(httpserver, context, history_h=0)
    start = at("2022-07-15T00:02:00Z")
    for minutes in (0, 10, 24, 26):  # the token lives 30 min and is renewed 5 min early
        provider.fetch("CAISO", now=start.replace(minute=start.minute + minutes))

    assert issued == ["token-1", "token-2"]
    assert used == ["Bearer token-1", "Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_a_token_the_api_refuses_is_renewed_once_and_the_call_retried(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    issued = tokens(httpserver)

    def forecast(request: Request) -> Response:
        if request.headers.get("Authorization") == "Bearer token-1":
            return Response(json.dumps({"error": "token expired"}), status=401)
        return Response(json.dumps(recorded(FORECAST)), content_type="application/json")

    httpserver.expect_request("/v3/forecast").respond_with_handler(forecast)

    reading = source(httpserver, context, history_h=0).fetch("CAISO", now=at("2022-07-15T00:07:00Z"))

    assert issued == ["token-1", "token-2"]
    assert reading.signal == "marginal"


def test_refused_credentials_are_an_auth_error_that_never_shows_the_password(
    httpserver: HTTPServer, context: config.BuildContext, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/login").respond_with_json({"error": "invalid"}, status=401)
    provider = source(httpserver, context)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(errors.AuthError) as raised:
        provider.fetch("CAISO", now=at("2022-07-15T00:07:00Z"))

    assert raised.value.kind == "http_401"
    assert "s3cret-pw" not in str(raised.value) + caplog.text + repr(provider.__dict__)


def test_a_region_outside_the_plan_is_an_auth_error_naming_the_reason(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    tokens(httpserver)
    httpserver.expect_request("/v3/forecast").respond_with_json(
        recorded("v3_invalid_scope_response__aiowatttime.json"), status=403)

    with pytest.raises(errors.AuthError, match="Invalid scope"):
        source(httpserver, context, history_h=0).fetch("CAISO", now=at("2022-07-15T00:07:00Z"))


def test_a_moer_in_an_unknown_unit_is_rejected_not_converted(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    body = recorded(FORECAST)
    body["meta"]["units"] = "kg_co2_per_mwh"
    tokens(httpserver)
    httpserver.expect_request("/v3/forecast").respond_with_json(body)

    with pytest.raises(errors.UnitError, match="kg_co2_per_mwh"):
        source(httpserver, context, history_h=0).fetch("CAISO", now=at("2022-07-15T00:07:00Z"))


def test_an_index_in_another_unit_is_rejected(httpserver: HTTPServer, context: config.BuildContext) -> None:
    body = recorded(INDEX)
    body["meta"]["units"] = "lbs_co2_per_mwh"
    tokens(httpserver)
    httpserver.expect_request("/v3/signal-index").respond_with_json(body)

    with pytest.raises(errors.UnitError, match="percentile"):
        source(httpserver, context, signal="index").fetch("PSCO", now=at("2024-06-18T18:42:00Z"))


def test_missing_history_leaves_the_forecast_to_speak(
    httpserver: HTTPServer, context: config.BuildContext, caplog: pytest.LogCaptureFixture
) -> None:
    tokens(httpserver)
    httpserver.expect_request("/v3/forecast").respond_with_json(recorded(FORECAST))
    httpserver.expect_request("/v3/historical").respond_with_json({"error": "subscribers only"}, status=403)

    reading = source(httpserver, context).fetch("CAISO", now=at("2022-07-15T00:07:00Z"))

    assert reading.g_per_kwh == pytest.approx(870 * 0.453592)
    assert "no history for CAISO_NORTH" in caplog.text


def test_credentials_must_be_named_not_written_in_the_providers_file(context: config.BuildContext) -> None:
    with pytest.raises(errors.ConfigError, match="never as a value"):
        watttime.build("watttime", {"username": "carbon", "password": "s3cret-pw"}, {"CAISO": "CAISO_NORTH"},
                       context)
    with pytest.raises(errors.ConfigError, match="NOT_SET is not set"):
        watttime.build("watttime", {"username": {"env": "NOT_SET"}, "password": {"env": "WT_PASSWORD"}},
                       {"CAISO": "CAISO_NORTH"}, context)
