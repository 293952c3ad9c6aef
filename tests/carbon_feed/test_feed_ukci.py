"""The UK Carbon Intensity API through a real local HTTP server replaying recorded captures."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from carbon_feed import config, errors, ukci
from tests.carbon_feed.helpers import at, recorded

FW48H = "intensity_fw48h_national_2024-01-12T0601Z_truncated8__cift.json"
PT24H = "intensity_pt24h_national_2024-01-12T0601Z_truncated8__cift.json"
REGIONAL = "regional_intensity_fw24h_postcode_KT1_2023-07-04_trimmedmix__stuartharris.json"


def source(httpserver: HTTPServer, context: config.BuildContext, zones: dict[str, str],
           **options: Any) -> ukci.UkCarbonIntensitySource:
    return ukci.build("ukci", {"url": httpserver.url_for(""), **options}, zones, context)


def test_national_forecast_is_half_hourly_from_the_window_holding_now(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    httpserver.expect_request("/intensity/2024-01-12T06:01Z/fw48h").respond_with_json(recorded(FW48H))

    reading = source(httpserver, context, {"GB": "GB"}, history=False).fetch("GB", now=at("2024-01-12T06:01:00Z"))

    assert (reading.signal, reading.source, reading.forecast_step_s) == ("average", "ukci", 1800)
    assert reading.observed_at == at("2024-01-12T06:00:00Z")
    assert reading.g_per_kwh == 293  # no actual yet: the forecast for the window
    assert [p.g_per_kwh for p in reading.forecast] == [293, 301, 304, 306, 305, 305, 308, 309]
    assert reading.series().end == at("2024-01-12T10:00:00Z")


def test_history_uses_measured_actuals_over_forecasts(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    httpserver.expect_request("/intensity/2024-01-12T06:01Z/fw48h").respond_with_json(recorded(FW48H))
    httpserver.expect_request("/intensity/2024-01-12T06:01Z/pt24h").respond_with_json(recorded(PT24H))

    reading = source(httpserver, context, {"GB": "GB"}).fetch("GB", now=at("2024-01-12T06:01:00Z"))

    first = reading.forecast[0]
    assert (first.start, first.g_per_kwh) == (at("2024-01-11T06:00:00Z"), 271)  # actual, not forecast 264
    assert len(reading.forecast) == 16


def test_the_current_value_is_the_measured_one_when_there_is_one(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    """In the full pt24h capture the 02:30 window was forecast at 70 and measured at 72."""
    full = recorded("intensity_pt24h_national_2023-03-14T0331Z_full48__cift.json")
    httpserver.expect_request("/intensity/2023-03-14T02:45Z/fw48h").respond_with_json({"data": []})
    httpserver.expect_request("/intensity/2023-03-14T02:45Z/pt24h").respond_with_json(full)

    reading = source(httpserver, context, {"GB": "GB"}).fetch("GB", now=at("2023-03-14T02:45:00Z"))

    assert reading.observed_at == at("2023-03-14T02:30:00Z")
    assert reading.g_per_kwh == 72


@pytest.mark.parametrize("wrapped", [False, True], ids=["object", "one-item list"])
def test_a_regional_series_is_read_from_its_nested_windows(
    httpserver: HTTPServer, context: config.BuildContext, wrapped: bool
) -> None:
    """The recorded regional body (region 14, South East England) in both documented nestings."""
    body = recorded(REGIONAL)
    if wrapped:
        body = {"data": [body["data"]]}
    httpserver.expect_request("/regional/intensity/2023-07-04T23:40Z/fw48h/regionid/14").respond_with_json(body)

    reading = source(httpserver, context, {"GB-SE": "14"}, history=False).fetch(
        "GB-SE", now=at("2023-07-04T23:40:00Z"))

    assert reading.g_per_kwh == 121
    assert [p.g_per_kwh for p in reading.forecast] == [121, 116]


def test_no_window_holding_now_is_no_data(httpserver: HTTPServer, context: config.BuildContext) -> None:
    httpserver.expect_request("/intensity/2024-01-13T06:01Z/fw48h").respond_with_json(recorded(FW48H))

    with pytest.raises(errors.NoData, match="no half-hour window"):
        source(httpserver, context, {"GB": "GB"}, history=False).fetch("GB", now=at("2024-01-13T06:01:00Z"))


def test_a_body_without_windows_is_malformed(httpserver: HTTPServer, context: config.BuildContext) -> None:
    httpserver.expect_request("/intensity/2024-01-12T06:01Z/fw48h").respond_with_json({"error": {
        "code": "500 Internal Server Error", "message": "string"}})

    with pytest.raises(errors.MalformedResponse, match="no 'data'"):
        source(httpserver, context, {"GB": "GB"}, history=False).fetch("GB", now=at("2024-01-12T06:01:00Z"))


def test_a_zone_that_is_neither_national_nor_a_region_id_fails_at_start_up(context: config.BuildContext) -> None:
    with pytest.raises(errors.ConfigError, match="'national' or a region id"):
        ukci.build("ukci", {}, {"GB": "nationl"}, context)
