"""Electricity Maps v3 through a real local HTTP server replaying recorded responses.

The failure cases both API versions share are in ``test_feed_electricitymaps_failures.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from carbon_feed import config, electricitymaps, errors
from tests.carbon_feed.helpers import at, recorded

LATEST_DE = "v3_carbon-intensity_latest_DE__green-elephpant.json"
HISTORY_DE = "v3_carbon-intensity_history_DE__aioelectricitymaps.json"
FORECAST_DE = "v3_carbon-intensity_forecast_DE_2023-05-02__green-elephpant.json"
TOKEN = {"auth-token": "em-t0ken"}


def source(
    httpserver: HTTPServer, context: config.BuildContext, **options: Any
) -> electricitymaps.ElectricityMapsSource:
    settings = {"url": httpserver.url_for(""), "token": {"env": "EM_TOKEN"}, **options}
    return electricitymaps.build("electricitymaps", settings, {"DE": "DE", "MISO": "US-MIDW-MISO"}, context)


def serve(httpserver: HTTPServer, kind: str, body: Any, *, status: int = 200, zone: str = "DE",
          factor: str = "lifecycle") -> None:
    httpserver.expect_request(f"/v3/carbon-intensity/{kind}", headers=TOKEN,
                              query_string={"zone": zone, "emissionFactorType": factor},
                              ).respond_with_json(body, status=status)


def test_latest_and_history_make_a_lifecycle_average_series(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    """The newest history entry is a /latest body (same shape), so the two agree in time."""
    history = recorded(HISTORY_DE)
    serve(httpserver, "latest", history["history"][-1])
    serve(httpserver, "history", history)
    serve(httpserver, "forecast", {"zone": "DE", "forecast": []})

    reading = source(httpserver, context).fetch("DE", now=at("2024-03-06T19:20:00Z"))

    assert (reading.signal, reading.emission_factor, reading.source) == ("average", "lifecycle", "electricitymaps")
    assert reading.g_per_kwh == 689
    assert reading.observed_at == at("2024-03-06T19:00:00Z")
    assert len(reading.forecast) == 24
    assert reading.forecast[0].start == at("2024-03-05T20:00:00Z")
    assert reading.forecast[0].g_per_kwh == 599
    assert reading.forecast_step_s == 3600


def test_the_forecast_follows_the_latest_value(httpserver: HTTPServer, context: config.BuildContext) -> None:
    """A /latest for the hour before the recorded forecast (derived: time moved, value kept)."""
    latest = recorded(LATEST_DE) | {"datetime": "2023-05-02T19:00:00.000Z"}
    serve(httpserver, "latest", latest)
    serve(httpserver, "history", {"error": "not in your plan"}, status=401)
    serve(httpserver, "forecast", recorded(FORECAST_DE))

    reading = source(httpserver, context).fetch("DE", now=at("2023-05-02T19:52:09Z"))

    assert reading.g_per_kwh == 428
    assert [p.g_per_kwh for p in reading.forecast[:3]] == [428, 557, 552]
    assert len(reading.forecast) == 49  # the latest hour and all 48 forecast hours
    assert reading.series().end == at("2023-05-04T20:00:00Z")








def test_unknown_options_and_factors_fail_at_start_up(context: config.BuildContext) -> None:
    with pytest.raises(errors.ConfigError, match="unknown option"):
        electricitymaps.build("electricitymaps", {"token": {"env": "EM_TOKEN"}, "emision_factor": "direct"},
                              {"DE": "DE"}, context)
    with pytest.raises(errors.ConfigError, match="'lifecycle' or 'direct'"):
        electricitymaps.build("electricitymaps", {"token": {"env": "EM_TOKEN"}, "emission_factor": "lca"},
                              {"DE": "DE"}, context)
