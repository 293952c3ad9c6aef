"""The whole feed: providers file to published snapshot, staleness, restarts, sidecar endpoints."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer

from carbon_feed import document, errors, model, service
from carbon_feed import feed as feed_mod
from carbongate import clock
from carbongate import settings as settings_mod
from planner import snapshot as contract
from tests.carbon_feed.helpers import EXAMPLES, at, recorded, sample

NOW = at("2024-01-12T06:01:00Z")
FW48H = "intensity_fw48h_national_2024-01-12T0601Z_truncated8__cift.json"
ENVIRON = {"EM_TOKEN": "em-t0ken"}


def providers_file(tmp_path: Path, httpserver: HTTPServer, regions: dict[str, Any]) -> Path:
    document = {
        "providers": {
            "electricitymaps": {"url": httpserver.url_for(""), "token": {"env": "EM_TOKEN"}, "history": False},
            "ukci": {"url": httpserver.url_for(""), "history": False},
            "trace": {"files": [str(EXAMPLES / "DE_2023_hourly.csv"), str(EXAMPLES / "GB_2023_hourly.csv")],
                      "history_h": 0},
        },
        "regions": regions,
    }
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def settings_for(tmp_path: Path, providers: Path | None, **feed: Any) -> settings_mod.Settings:
    return settings_mod.load(environ={}, overrides={
        "grid": {"snapshot_path": tmp_path / "grid.json", "window_durations_min": (30, 60, 120, 240)},
        "feed": {"providers_file": providers, "state_dir": tmp_path / "state", **feed},
    })


def serve_uk(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/intensity/2024-01-12T06:01Z/fw48h").respond_with_json(recorded(FW48H))


def serve_em(httpserver: HTTPServer) -> None:
    """The recorded DE /latest, moved to the hour of the UK capture (derived: time changed, value kept)."""
    latest = recorded("v3_carbon-intensity_latest_DE__green-elephpant.json") | {"datetime": "2024-01-12T06:00:00.000Z"}
    httpserver.expect_request("/v3/carbon-intensity/latest").respond_with_json(latest)
    httpserver.expect_request("/v3/carbon-intensity/forecast").respond_with_json({"zone": "DE", "forecast": []})


@pytest.fixture
def feed_clock() -> clock.ManualClock:
    return clock.ManualClock(NOW)


def test_the_feed_publishes_every_region_naming_its_source_with_best_windows(
    httpserver: HTTPServer, tmp_path: Path, feed_clock: clock.ManualClock
) -> None:
    serve_uk(httpserver)
    serve_em(httpserver)
    path = providers_file(tmp_path, httpserver, {"GB": ["ukci", "trace"],
                                                 "DE": [{"provider": "electricitymaps", "zone": "DE"}, "trace"]})
    feed = service.build_feed(settings_for(tmp_path, path), clock=feed_clock, environ=ENVIRON)

    feed.refresh()

    published = contract.load_snapshot(tmp_path / "grid.json")
    gb, de = published["regions"]["GB"], published["regions"]["DE"]
    assert (gb["source"], gb["fallback_used"], gb["g_per_kwh"], gb["stale"]) == ("ukci", False, 293, False)
    assert gb["forecast_step_s"] == 1800 and len(gb["forecast"]) == 8
    assert set(gb["best_windows"]) == {"30", "60", "120"}  # 240 min does not fit 06:01-10:00
    assert gb["best_windows"]["30"] == {"start": "2024-01-12T06:01:00Z", "end": "2024-01-12T06:31:00Z",
                                        "mean_g_per_kwh": 293.267}  # (29 x 293 + 301) / 30
    assert (de["source"], de["emission_factor"], de["g_per_kwh"]) == ("electricitymaps", "lifecycle", 428)
    assert de["forecast"] == [{"start": "2024-01-12T06:00:00Z", "g_per_kwh": 428.0}]  # an empty forecast
    assert set(de["best_windows"]) == {"30"}
    assert published["generated_at"] == "2024-01-12T06:01:00Z"
    assert sample(feed.metrics, "carbongate_grid_intensity_g_per_kwh", region="DE", signal="average") == 428


def test_data_older_than_the_maximum_age_is_marked_stale(
    httpserver: HTTPServer, tmp_path: Path, feed_clock: clock.ManualClock
) -> None:
    serve_uk(httpserver)
    feed = service.build_feed(settings_for(tmp_path, providers_file(tmp_path, httpserver, {"GB": ["ukci"]})),
                              clock=feed_clock, environ=ENVIRON)
    assert feed.refresh()["regions"]["GB"]["stale"] is False
    httpserver.clear()
    httpserver.expect_request("/intensity/2024-01-12T07:02Z/fw48h").respond_with_data("", status=500)

    feed_clock.advance(61 * 60)
    snapshot = feed.refresh()

    gb = snapshot["regions"]["GB"]
    assert (gb["source"], gb["fallback_used"], gb["stale"]) == ("last-known-good:ukci", True, True)
    assert sample(feed.metrics, "carbongate_feed_stale", region="GB") == 1
    assert sample(feed.metrics, "carbongate_feed_data_age_seconds", region="GB") == 62 * 60
    assert contract.load_snapshot(tmp_path / "grid.json")["regions"]["GB"]["stale"] is True


def test_a_restarted_feed_publishes_last_known_good_at_once(
    httpserver: HTTPServer, tmp_path: Path, feed_clock: clock.ManualClock
) -> None:
    serve_uk(httpserver)
    path = providers_file(tmp_path, httpserver, {"GB": ["ukci"]})
    service.build_feed(settings_for(tmp_path, path), clock=feed_clock, environ=ENVIRON).refresh()
    httpserver.clear()
    httpserver.expect_request("/intensity/2024-01-12T06:03Z/fw48h").respond_with_data("", status=503)
    feed_clock.advance(120)

    restarted = service.build_feed(settings_for(tmp_path, path), clock=feed_clock, environ=ENVIRON)
    gb = restarted.refresh()["regions"]["GB"]

    assert (gb["source"], gb["stale"], gb["g_per_kwh"]) == ("last-known-good:ukci", False, 293)
    assert gb["best_windows"]  # computed for the restored reading too


def test_a_region_without_any_data_is_left_out_and_counted(
    httpserver: HTTPServer, tmp_path: Path, feed_clock: clock.ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/intensity/2024-01-12T06:01Z/fw48h").respond_with_data("", status=500)
    feed = service.build_feed(settings_for(tmp_path, providers_file(tmp_path, httpserver, {"GB": ["ukci"]})),
                              clock=feed_clock, environ=ENVIRON)

    snapshot = feed.refresh()

    assert snapshot["regions"] == {}
    assert sample(feed.metrics, "carbongate_feed_region_missing_total", region="GB") == 1
    assert "no data at all for region GB" in caplog.text


def test_an_unchanged_snapshot_is_republished_only_after_a_ttl(
    httpserver: HTTPServer, tmp_path: Path, feed_clock: clock.ManualClock
) -> None:
    serve_uk(httpserver)
    feed = service.build_feed(settings_for(tmp_path, providers_file(tmp_path, httpserver, {"GB": ["ukci"]})),
                              clock=feed_clock, environ=ENVIRON)

    for _ in range(3):
        feed.refresh()
        feed_clock.advance(30)
    assert sample(feed.metrics, "carbongate_feed_publishes_total", target="file", outcome="ok") == 1
    feed_clock.advance(300)
    httpserver.expect_request("/intensity/2024-01-12T06:07Z/fw48h").respond_with_json(recorded(FW48H))
    feed.refresh()
    assert sample(feed.metrics, "carbongate_feed_publishes_total", target="file", outcome="ok") == 2


def test_without_a_providers_file_the_demo_traces_are_replayed(tmp_path: Path) -> None:
    replay_clock = clock.ManualClock(at("2026-11-22T12:07:00Z"))

    handle = service.start_in_background(settings_for(tmp_path, None), clock=replay_clock)
    try:
        written = contract.load_snapshot(tmp_path / "grid.json")  # there before start returned
    finally:
        handle.stop()

    assert list(written["regions"]) == ["GB", "DE", "NO"]
    assert {r["source"] for r in written["regions"].values()} == {"trace"}
    assert written["generated_at"] == "2026-11-22T12:07:00Z"


def test_a_broken_providers_file_fails_at_start_up(tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text("regions:\n  GB: [nowhere]\n", encoding="utf-8")

    with pytest.raises(errors.ConfigError, match="provider 'nowhere'"):
        service.build_feed(settings_for(tmp_path, path))


def test_an_unexpected_error_in_a_refresh_is_logged_and_the_loop_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = service.build_feed(settings_for(tmp_path, None), clock=clock.ManualClock(at("2026-11-22T12:07:00Z")))

    def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(feed.chains[0], "resolve", explode)

    assert feed_mod.safe_refresh(feed) is None
    assert "grid refresh failed" in caplog.text


# --- the sidecar's HTTP endpoints ------------------------------------------------------------


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[service.Sidecar]:
    feed = service.build_feed(settings_for(tmp_path, None), clock=clock.ManualClock(at("2026-11-22T12:07:00Z")))
    running = service.Sidecar(feed, bind="127.0.0.1:0", tick_s=0.05)
    running.start()
    yield running
    running.stop()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_healthz_reports_each_regions_source_and_age(sidecar: service.Sidecar) -> None:
    status, body = get(f"http://127.0.0.1:{sidecar.port}/healthz")

    health = json.loads(body)
    assert status == 200
    assert health["status"] == "ok"
    assert health["regions"]["GB"] == {"source": "trace", "stale": False, "age_s": 420}
    assert health["missing"] == []


def test_metrics_expose_data_age_fetches_and_fallbacks(sidecar: service.Sidecar) -> None:
    status, body = get(f"http://127.0.0.1:{sidecar.port}/metrics")

    text = body.decode()
    assert status == 200
    assert 'carbongate_feed_data_age_seconds{region="GB"} 420.0' in text
    assert 'carbongate_feed_fetches_total{outcome="ok",provider="trace"}' in text
    assert "carbongate_feed_fallbacks_total" in text
    assert "carbongate_feed_unit_rejections_total" in text


def test_unknown_paths_are_404(sidecar: service.Sidecar) -> None:
    assert get(f"http://127.0.0.1:{sidecar.port}/")[0] == 404


def test_a_loop_that_stopped_refreshing_is_unhealthy(tmp_path: Path) -> None:
    feed = service.build_feed(settings_for(tmp_path, None), clock=clock.ManualClock(at("2026-11-22T12:07:00Z")))

    status, body = feed_mod.health(feed_mod.FeedLoop(feed, tick_s=30))

    assert status == 503 and body["status"] == "stalled"
    assert body["missing"] == ["GB", "DE", "NO"]


def test_best_windows_are_computed_once_per_data_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay_clock = clock.ManualClock(at("2026-11-22T12:07:00Z"))
    feed = service.build_feed(settings_for(tmp_path, None, ttl_s=300), clock=replay_clock)
    computed: list[str] = []
    real = document.best_windows

    def counting(reading: model.Reading, *args: Any, **kwargs: Any) -> Any:
        computed.append(reading.region)
        return real(reading, *args, **kwargs)

    monkeypatch.setattr(document, "best_windows", counting)
    for _ in range(4):  # within one TTL: the same readings
        feed.refresh()
        replay_clock.advance(60)
    assert sorted(computed) == ["DE", "GB", "NO"]
    replay_clock.advance(120)  # past the TTL: new readings, new windows
    feed.refresh()
    assert len(computed) == 6
