"""Electricity Maps API v4 through a real local HTTP server on 127.0.0.1.

No recorded v4 answers exist in the shared data set, so the answers served
here are written to the published v4 API reference (``/v4/carbon-intensity/
latest``, ``/forecast`` with ``horizonHours``, ``/past-range`` with ``start``
and ``end`` answering under ``data``; every answer carries
``temporalGranularity``; a cloud region is asked for with
``dataCenterProvider`` and ``dataCenterRegion`` and answered with the zone it
resolved to). Their values are the recorded v3 bodies of
``tests/fixtures/carbon_feed`` reshaped to v4 by the helpers below, so the
numbers are real grid data. The failure cases both versions share are in
``test_feed_electricitymaps_failures.py``.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from carbon_feed import config, electricitymaps, errors, service
from carbongate import clock
from carbongate import settings as settings_mod
from tests.carbon_feed.helpers import at, recorded

LATEST_DE = "v3_carbon-intensity_latest_DE__green-elephpant.json"
HISTORY_DE = "v3_carbon-intensity_history_DE__aioelectricitymaps.json"
FORECAST_DE = "v3_carbon-intensity_forecast_DE_2023-05-02__green-elephpant.json"
MISO_DIRECT = "v3_carbon-intensity_latest_US-MIDW-MISO_direct__zeus.json"
MISO_LIFECYCLE = "v3_carbon-intensity_latest_US-MIDW-MISO_lifecycle__zeus.json"
TOKEN = {"auth-token": "em-t0ken"}


def v4(body: dict[str, Any], granularity: str = "hourly") -> dict[str, Any]:
    """A v3 answer as v4 gives it: the same fields plus ``temporalGranularity``."""
    return body | {"temporalGranularity": granularity}


def v4_past_range(history: dict[str, Any], granularity: str = "hourly") -> dict[str, Any]:
    """v3 ``/history`` reshaped as v4 ``/past-range``: the entries under ``data``."""
    return {"zone": history["zone"], "data": history["history"], "temporalGranularity": granularity}


def quarter_hours(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hourly entries as 15-minute ones (each hour's value held for its four quarters)."""
    out = []
    for entry in entries:
        start = at(entry["datetime"])
        for quarter in range(4):
            when = start + timedelta(minutes=15 * quarter)
            out.append(entry | {"datetime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z")})
    return out


def source(httpserver: HTTPServer, context: config.BuildContext,
           zones: dict[str, str] | None = None, **options: Any) -> electricitymaps.ElectricityMapsSource:
    settings = {"url": httpserver.url_for(""), "token": {"env": "EM_TOKEN"}, "api": "v4", **options}
    return electricitymaps.build("electricitymaps", settings, zones or {"DE": "DE", "MISO": "US-MIDW-MISO"},
                                 context)


def serve(httpserver: HTTPServer, kind: str, body: Any, *, status: int = 200, zone: str = "DE",
          factor: str = "lifecycle", granularity: str = "hourly", **query: str) -> None:
    place = {"zone": zone} if "dataCenterProvider" not in query else {}
    httpserver.expect_request(
        f"/v4/carbon-intensity/{kind}", headers=TOKEN,
        query_string={**place, "emissionFactorType": factor, "temporalGranularity": granularity, **query},
    ).respond_with_json(body, status=status)


def serve_de_day(httpserver: HTTPServer, *, latest: int, **lookup: str) -> dict[str, Any]:
    """DE's recorded day as v4 answers for a feed at 2024-03-06T19:20Z: an entry of it as
    ``latest``, the day as ``past-range``, an empty forecast. Returns the recorded history."""
    history: dict[str, Any] = recorded(HISTORY_DE)
    serve(httpserver, "latest", v4(history["history"][latest]), **lookup)
    serve(httpserver, "past-range", v4_past_range(history), start="2024-03-05T19:20:00Z",
          end="2024-03-06T19:20:00Z", **lookup)
    serve(httpserver, "forecast", v4({"zone": "DE", "forecast": []}), horizonHours="48", **lookup)
    return history


def test_latest_and_past_range_make_a_lifecycle_average_series(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    serve_de_day(httpserver, latest=-1)

    reading = source(httpserver, context).fetch("DE", now=at("2024-03-06T19:20:00Z"))

    assert (reading.signal, reading.emission_factor, reading.source) == ("average", "lifecycle", "electricitymaps")
    assert reading.g_per_kwh == 689
    assert reading.observed_at == at("2024-03-06T19:00:00Z")
    assert len(reading.forecast) == 24
    assert (reading.forecast[0].start, reading.forecast[0].g_per_kwh) == (at("2024-03-05T20:00:00Z"), 599)
    assert reading.forecast_step_s == 3600


def test_the_forecast_follows_the_latest_value(httpserver: HTTPServer, context: config.BuildContext) -> None:
    latest = recorded(LATEST_DE) | {"datetime": "2023-05-02T19:00:00.000Z"}
    serve(httpserver, "latest", v4(latest))
    serve(httpserver, "forecast", v4(recorded(FORECAST_DE)), horizonHours="48")

    reading = source(httpserver, context, history=False).fetch("DE", now=at("2023-05-02T19:52:09Z"))

    assert [p.g_per_kwh for p in reading.forecast[:3]] == [428, 557, 552]
    assert len(reading.forecast) == 49
    assert reading.series().end == at("2023-05-04T20:00:00Z")


def test_fifteen_minute_data_gives_a_fifteen_minute_series(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    """``granularity: 15_minutes`` is asked for, and the answer's granularity sets the step."""
    forecast = recorded(FORECAST_DE)
    quarters = quarter_hours(forecast["forecast"][:6])
    latest = recorded(LATEST_DE) | {"datetime": "2023-05-02T19:45:00.000Z"}
    serve(httpserver, "latest", v4(latest, "15_minutes"), granularity="15_minutes")
    serve(httpserver, "forecast", v4({"zone": "DE", "forecast": quarters}, "15_minutes"),
          granularity="15_minutes", horizonHours="6")

    reading = source(httpserver, context, history=False, granularity="15_minutes", horizon_h=6).fetch(
        "DE", now=at("2023-05-02T19:52:00Z"))

    assert reading.forecast_step_s == 900
    assert [p.start for p in reading.forecast[:3]] == [
        at("2023-05-02T19:45:00Z"), at("2023-05-02T20:00:00Z"), at("2023-05-02T20:15:00Z")]
    assert reading.series().value_at(at("2023-05-02T21:20:00Z")) == 552


def test_a_cloud_region_is_looked_up_and_answered_by_its_zone(
    httpserver: HTTPServer, context: config.BuildContext
) -> None:
    """``cloud_region: gcp/us-central1`` asks by data centre; the answers are about the zone it resolved to."""
    lookup = {"dataCenterProvider": "gcp", "dataCenterRegion": "us-central1"}
    serve(httpserver, "latest", v4(recorded(MISO_LIFECYCLE)), **lookup)
    parsed = config.parse({"providers": {"electricitymaps": {}},
                           "regions": {"us-central1": [{"provider": "electricitymaps",
                                                        "cloud_region": "gcp/us-central1"}]}},
                          base_dir=Path("."))
    zones = {region: entries[0].zone for region, entries in parsed.regions.items()}

    reading = source(httpserver, context, zones, forecast=False, history=False).fetch(
        "us-central1", now=at("2024-09-24T03:10:00Z"))

    assert (reading.region, reading.g_per_kwh) == ("us-central1", 466)


def test_a_cloud_region_forecast_for_another_zone_is_not_used(
    httpserver: HTTPServer, context: config.BuildContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    lookup = {"dataCenterProvider": "gcp", "dataCenterRegion": "us-central1"}
    serve(httpserver, "latest", v4(recorded(MISO_LIFECYCLE)), **lookup)
    serve(httpserver, "forecast", v4(recorded(FORECAST_DE)), horizonHours="48", **lookup)

    reading = source(httpserver, context, {"c": "cloud:gcp/us-central1"}, history=False).fetch(
        "c", now=at("2024-09-24T03:10:00Z"))

    assert [p.g_per_kwh for p in reading.forecast] == [466]
    assert "asked for US-MIDW-MISO, got DE" in caplog.text




def test_estimations_can_be_refused(httpserver: HTTPServer, context: config.BuildContext) -> None:
    serve(httpserver, "latest", v4(recorded(MISO_LIFECYCLE) | {"isEstimated": False, "estimationMethod": None}),
          zone="US-MIDW-MISO", disableEstimations="true")

    reading = source(httpserver, context, forecast=False, history=False, disable_estimations=True).fetch(
        "MISO", now=at("2024-09-24T03:10:00Z"))

    assert reading.g_per_kwh == 466







def test_bad_options_fail_at_start_up(context: config.BuildContext) -> None:
    token = {"token": {"env": "EM_TOKEN"}}
    with pytest.raises(errors.ConfigError, match="api must be 'v3' or 'v4'"):
        electricitymaps.build("em", token | {"api": "v5"}, {"DE": "DE"}, context)
    with pytest.raises(errors.ConfigError, match="granularity must be one of"):
        electricitymaps.build("em", token | {"api": "v4", "granularity": "daily"}, {"DE": "DE"}, context)
    with pytest.raises(errors.ConfigError, match="history_h is at most 240"):
        electricitymaps.build("em", token | {"api": "v4", "history_h": 500}, {"DE": "DE"}, context)
    with pytest.raises(errors.ConfigError, match="unknown option"):
        electricitymaps.build("em", token | {"granularity": "hourly"}, {"DE": "DE"}, context)


def test_cloud_regions_are_checked_when_the_file_is_read() -> None:
    def parse(entry: dict[str, Any], providers: dict[str, Any] | None = None) -> None:
        config.parse({"providers": providers or {"electricitymaps": {}, "watttime": {}},
                      "regions": {"r": [entry]}}, base_dir=Path("."))

    with pytest.raises(errors.ConfigError, match="lower case, like gcp/europe-west1"):
        parse({"provider": "electricitymaps", "cloud_region": "GCP europe-west1"})
    with pytest.raises(errors.ConfigError, match="a zone or a cloud_region, not both"):
        parse({"provider": "electricitymaps", "cloud_region": "gcp/europe-west1", "zone": "BE"})
    with pytest.raises(errors.ConfigError, match="only electricitymaps can"):
        parse({"provider": "watttime", "cloud_region": "gcp/europe-west1"})
    parse({"provider": "em4", "cloud_region": "aws/eu-west-3"}, {"em4": {"type": "electricitymaps"}})


def test_the_feed_runs_on_v4_and_publishes_the_snapshot(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The whole feed (providers file, chain, snapshot file) on v4, a cloud region among its regions."""
    now = at("2024-03-06T19:20:00Z")
    history = serve_de_day(httpserver, latest=-1)
    serve_de_day(httpserver, latest=-2, dataCenterProvider="gcp", dataCenterRegion="europe-west3")
    providers = tmp_path / "providers.yaml"
    providers.write_text(json.dumps({
        "providers": {"electricitymaps": {"api": "v4", "url": httpserver.url_for(""),
                                          "token": {"env": "EM_TOKEN"}}},
        "regions": {"DE": [{"provider": "electricitymaps", "zone": "DE"}],
                    "europe-west3": [{"provider": "electricitymaps", "cloud_region": "gcp/europe-west3"}]},
    }), encoding="utf-8")
    settings = settings_mod.load(overrides={
        "feed": {"providers_file": providers, "state_dir": tmp_path / "state"},
        "grid": {"snapshot_path": tmp_path / "grid.json"},
    }, environ={})

    feed = service.build_feed(settings, clock=clock.ManualClock(now), environ={"EM_TOKEN": "em-t0ken"})
    feed.refresh()

    published = json.loads((tmp_path / "grid.json").read_text(encoding="utf-8"))
    assert published["regions"]["DE"]["g_per_kwh"] == 689
    assert published["regions"]["europe-west3"]["g_per_kwh"] == history["history"][-2]["carbonIntensity"]
    assert published["regions"]["DE"]["source"] == "electricitymaps"
    assert published["regions"]["DE"]["forecast_step_s"] == 3600
