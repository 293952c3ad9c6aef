"""The fallback chain against real HTTP failures: every failure falls back, is counted, and waits.

The primary is Electricity Maps on a local server that misbehaves in each
test; the fallback is the recorded DE trace; the last resort is the
last-known-good reading on disk.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from carbon_feed import chain, config, electricitymaps, errors, metrics, model, traces, watttime
from carbongate import clock
from tests.carbon_feed.helpers import EXAMPLES, at, make_parts, recorded, sample

NOW = at("2024-03-01T23:10:00Z")
LATEST_DE = "v3_carbon-intensity_latest_DE__green-elephpant.json"
LATEST = "/v3/carbon-intensity/latest"
# Generous, so that a busy machine never turns an answer into a timeout; the timeout
# test builds its own primary with a short one.
TIMEOUT_S = 5.0
SHORT_TIMEOUT_S = 0.3


@pytest.fixture
def primary(httpserver: HTTPServer, context: config.BuildContext) -> electricitymaps.ElectricityMapsSource:
    return em_source(httpserver, context, timeout_s=TIMEOUT_S)


def em_source(httpserver: HTTPServer, context: config.BuildContext,
              *, timeout_s: float) -> electricitymaps.ElectricityMapsSource:
    options = {"url": httpserver.url_for(""), "token": {"env": "EM_TOKEN"}, "forecast": False, "history": False}
    return electricitymaps.build("electricitymaps", options, {"DE": "DE"},
                                 dataclasses.replace(context, timeout_s=timeout_s))


@pytest.fixture
def fallback() -> traces.TraceSource:
    return traces.from_files([EXAMPLES / "DE_2023_hourly.csv"], anchor=NOW, history_h=0)


@pytest.fixture
def de_chain(primary: electricitymaps.ElectricityMapsSource, fallback: traces.TraceSource,
             parts: chain.ChainParts) -> chain.RegionChain:
    return chain.RegionChain(region="DE", sources=[primary, fallback], parts=parts)


def requests_to(httpserver: HTTPServer, path: str) -> int:
    return sum(1 for request, _ in httpserver.log if request.path == path)


def test_a_healthy_primary_serves_and_is_not_a_fallback(httpserver: HTTPServer, de_chain: chain.RegionChain) -> None:
    httpserver.expect_request(LATEST).respond_with_json(recorded(LATEST_DE))

    resolved = de_chain.resolve(now=NOW)

    assert resolved is not None
    assert (resolved.source_label, resolved.fallback_used, resolved.reading.g_per_kwh) == (
        "electricitymaps", False, 428)


def test_the_provider_is_not_polled_again_within_the_ttl(httpserver: HTTPServer, de_chain: chain.RegionChain) -> None:
    httpserver.expect_request(LATEST).respond_with_json(recorded(LATEST_DE))

    for seconds in (0, 60, 299):
        de_chain.resolve(now=NOW + timedelta(seconds=seconds))
    assert requests_to(httpserver, LATEST) == 1
    de_chain.resolve(now=NOW + timedelta(seconds=300))
    assert requests_to(httpserver, LATEST) == 2


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, {"error": "invalid auth-token"}, "http_401"),
        (500, {"error": "internal"}, "http_5xx"),
        (503, "upstream unavailable", "http_5xx"),
        (200, "<html>maintenance</html>", "malformed"),
        (200, {"zone": "DE"}, "malformed"),
    ],
    ids=["401", "500", "503", "not-json", "no-value"],
)
def test_every_failure_falls_back_to_the_next_provider_and_is_counted(
    httpserver: HTTPServer, de_chain: chain.RegionChain, feed_metrics: metrics.FeedMetrics,
    status: int, body: object, kind: str,
) -> None:
    if isinstance(body, str):
        httpserver.expect_request(LATEST).respond_with_data(body, status=status)
    else:
        httpserver.expect_request(LATEST).respond_with_json(body, status=status)

    resolved = de_chain.resolve(now=NOW)

    assert resolved is not None
    assert (resolved.source_label, resolved.fallback_used) == ("trace", True)
    assert sample(feed_metrics, "carbongate_feed_fetch_errors_total", provider="electricitymaps", kind=kind) == 1
    assert sample(feed_metrics, "carbongate_feed_fallbacks_total", region="DE", source="trace") == 1


def test_a_timeout_falls_back_without_waiting_for_the_provider(
    httpserver: HTTPServer, context: config.BuildContext, fallback: traces.TraceSource,
    parts: chain.ChainParts, feed_metrics: metrics.FeedMetrics
) -> None:
    de_chain = chain.RegionChain(region="DE", parts=parts, sources=[
        em_source(httpserver, context, timeout_s=SHORT_TIMEOUT_S), fallback])
    release, answered = threading.Event(), threading.Event()

    def slow(_: Request) -> Response:
        release.wait(5)
        answered.set()
        return Response(json.dumps(recorded(LATEST_DE)), content_type="application/json")

    httpserver.expect_request(LATEST).respond_with_handler(slow)
    began = time.monotonic()
    try:
        resolved = de_chain.resolve(now=NOW)
        waited = time.monotonic() - began
    finally:
        release.set()  # let the (single-threaded) server finish before the next test
        answered.wait(5)

    assert waited < 1.0
    assert resolved is not None and resolved.source_label == "trace"
    assert sample(feed_metrics, "carbongate_feed_fetch_errors_total", provider="electricitymaps",
                  kind="timeout") == 1


@pytest.mark.parametrize("retry_after", ["7200", "Sat, 02 Mar 2024 01:10:00 GMT"], ids=["seconds", "http-date"])
def test_429_waits_as_long_as_retry_after_says(
    httpserver: HTTPServer, de_chain: chain.RegionChain, feed_metrics: metrics.FeedMetrics, retry_after: str
) -> None:
    httpserver.expect_request(LATEST).respond_with_json({"error": "slow down"}, status=429,
                                                        headers={"Retry-After": retry_after})

    de_chain.resolve(now=NOW)
    for minutes in (6, 30, 90, 119):  # past the TTL and its backoff, but before Retry-After
        resolved = de_chain.resolve(now=NOW + timedelta(minutes=minutes))
        assert resolved is not None and resolved.source_label == "trace"
    assert requests_to(httpserver, LATEST) == 1
    de_chain.resolve(now=NOW + timedelta(minutes=121))
    assert requests_to(httpserver, LATEST) == 2
    assert sample(feed_metrics, "carbongate_feed_fetch_errors_total", provider="electricitymaps",
                  kind="rate_limited") == 2


def test_errors_back_off_exponentially_with_jitter_never_faster_than_the_ttl(parts: chain.ChainParts) -> None:
    gate = parts.gate
    delays = [gate.failed(("p", "R"), errors.HttpError("boom", status=500), now=NOW) for _ in range(5)]

    for failures, delay in enumerate(delays, start=1):
        base = min(300 * 2 ** (failures - 1), 3600)
        assert base <= delay <= base * 1.5
    assert len(set(delays)) == 5  # jittered, not in lockstep
    gate.succeeded(("p", "R"), now=NOW)
    assert gate.failed(("p", "R"), errors.HttpError("boom", status=500), now=NOW) < 450


def test_the_primary_is_preferred_again_once_it_recovers(
    httpserver: HTTPServer, de_chain: chain.RegionChain
) -> None:
    httpserver.expect_oneshot_request(LATEST).respond_with_json({"error": "internal"}, status=500)
    httpserver.expect_request(LATEST).respond_with_json(recorded(LATEST_DE))

    first = de_chain.resolve(now=NOW)
    later = de_chain.resolve(now=NOW + timedelta(minutes=8))  # after TTL x 1..1.5 of backoff

    assert first is not None and first.source_label == "trace"
    assert later is not None and (later.source_label, later.fallback_used) == ("electricitymaps", False)


def test_when_everything_fails_the_last_known_good_reading_is_served_and_named(
    httpserver: HTTPServer, de_chain: chain.RegionChain, primary: electricitymaps.ElectricityMapsSource,
    parts: chain.ChainParts,
) -> None:
    httpserver.expect_oneshot_request(LATEST).respond_with_json(recorded(LATEST_DE))
    httpserver.expect_request(LATEST).respond_with_json({"error": "internal"}, status=500)
    only_primary = chain.RegionChain(region="DE", sources=[primary], parts=parts)
    assert only_primary.resolve(now=NOW) is not None

    resolved = only_primary.resolve(now=NOW + timedelta(minutes=10))

    assert resolved is not None
    assert (resolved.source_label, resolved.fallback_used) == ("last-known-good:electricitymaps", True)
    assert resolved.reading.g_per_kwh == 428


def test_a_restart_resumes_from_the_last_known_good_reading_on_disk(
    httpserver: HTTPServer, primary: electricitymaps.ElectricityMapsSource, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    httpserver.expect_oneshot_request(LATEST).respond_with_json(recorded(LATEST_DE))
    before = make_parts(tmp_path / "state", metrics.FeedMetrics())
    assert chain.RegionChain(region="DE", sources=[primary], parts=before).resolve(now=NOW) is not None
    httpserver.clear()
    httpserver.expect_request(LATEST).respond_with_data("", status=503)
    caplog.set_level(logging.INFO)

    after = make_parts(tmp_path / "state", metrics.FeedMetrics())  # a new process: nothing in memory
    resolved = chain.RegionChain(region="DE", sources=[primary], parts=after).resolve(now=NOW + timedelta(minutes=1))

    assert resolved is not None
    assert resolved.source_label == "last-known-good:electricitymaps"
    assert resolved.reading.observed_at == at("2024-03-01T23:00:00Z")
    assert "resuming from last-known-good readings for DE" in caplog.text


def test_a_damaged_last_known_good_file_is_ignored_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "last-known-good.json").write_text("{not json", encoding="utf-8")

    parts = make_parts(tmp_path / "state", metrics.FeedMetrics())

    assert parts.last_known_good.get("DE") is None
    assert "ignoring unreadable last-known-good cache" in caplog.text


def test_no_provider_and_no_cache_means_no_data(httpserver: HTTPServer, primary: electricitymaps.ElectricityMapsSource,
                                               parts: chain.ChainParts) -> None:
    httpserver.expect_request(LATEST).respond_with_data("", status=500)

    assert chain.RegionChain(region="DE", sources=[primary], parts=parts).resolve(now=NOW) is None


def test_a_reading_from_the_future_is_rejected_as_clock_skew(
    httpserver: HTTPServer, de_chain: chain.RegionChain, feed_metrics: metrics.FeedMetrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    httpserver.expect_request(LATEST).respond_with_json(recorded(LATEST_DE))
    behind = NOW - timedelta(hours=2)  # our clock two hours behind the provider's

    resolved = de_chain.resolve(now=behind)

    assert resolved is not None and resolved.source_label == "trace"
    assert sample(feed_metrics, "carbongate_feed_fetch_errors_total", provider="electricitymaps",
                  kind="clock_skew") == 1
    assert "ahead of now" in caplog.text


def test_a_few_minutes_of_skew_are_tolerated(httpserver: HTTPServer, de_chain: chain.RegionChain) -> None:
    httpserver.expect_request(LATEST).respond_with_json(recorded(LATEST_DE))

    resolved = de_chain.resolve(now=at("2024-03-01T22:57:00Z"))  # 3 minutes before the reading's hour

    assert resolved is not None and resolved.source_label == "electricitymaps"


def test_a_reading_in_an_unknown_unit_is_rejected_logged_and_never_kept(
    httpserver: HTTPServer, context: config.BuildContext, parts: chain.ChainParts,
    feed_metrics: metrics.FeedMetrics, caplog: pytest.LogCaptureFixture,
) -> None:
    body = recorded("v3_forecasted_emissions_response__aiowatttime.json")
    body["meta"]["units"] = "kg_co2_per_mwh"
    httpserver.expect_request("/login").respond_with_json({"token": "t"})
    httpserver.expect_request("/v3/forecast").respond_with_json(body)
    provider = watttime.build("watttime", {"url": httpserver.url_for(""), "username": {"env": "WT_USER"},
                                           "password": {"env": "WT_PASSWORD"}, "history_h": 0},
                              {"CAISO": "CAISO_NORTH"}, context)

    resolved = chain.RegionChain(region="CAISO", sources=[provider], parts=parts).resolve(
        now=at("2022-07-15T00:07:00Z"))

    assert resolved is None
    assert parts.last_known_good.get("CAISO") is None
    assert sample(feed_metrics, "carbongate_feed_unit_rejections_total", provider="watttime") == 1
    assert "rejected reading for CAISO from watttime (unit)" in caplog.text
    assert "kg_co2_per_mwh" in caplog.text


def test_a_chain_needs_at_least_one_provider(parts: chain.ChainParts) -> None:
    with pytest.raises(errors.ConfigError, match="no providers"):
        chain.RegionChain(region="DE", sources=[], parts=parts)


def test_the_manual_clock_moves_only_when_told(manual_clock: clock.ManualClock) -> None:
    before = manual_clock.now()
    assert manual_clock.advance(90) - before == timedelta(seconds=90)
    manual_clock.set(before)
    assert manual_clock.now() == before


def test_a_provider_nobody_answers_for_falls_back_as_unreachable(
    context: config.BuildContext, fallback: traces.TraceSource, parts: chain.ChainParts,
    feed_metrics: metrics.FeedMetrics,
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {"url": f"http://127.0.0.1:{port}", "token": {"env": "EM_TOKEN"}}
    unreachable = electricitymaps.build("electricitymaps", options, {"DE": "DE"}, context)

    resolved = chain.RegionChain(region="DE", sources=[unreachable, fallback], parts=parts).resolve(now=NOW)

    assert resolved is not None and resolved.source_label == "trace"
    assert sample(feed_metrics, "carbongate_feed_fetch_errors_total", provider="electricitymaps",
                  kind="unreachable") == 1


class BrokenProvider:
    """A provider whose parser trips over an answer it did not foresee (a plugin bug)."""

    name = "broken"

    def regions(self) -> frozenset[str]:
        return frozenset({"DE"})

    def fetch(self, region: str, *, now: datetime) -> model.Reading:
        return {"carbonIntensity": 1}["datetime"]  # type: ignore[return-value]


def test_a_provider_bug_is_a_malformed_answer_not_a_dead_feed(
    fallback: traces.TraceSource, parts: chain.ChainParts, feed_metrics: metrics.FeedMetrics
) -> None:
    resolved = chain.RegionChain(region="DE", sources=[BrokenProvider(), fallback], parts=parts).resolve(now=NOW)

    assert resolved is not None and resolved.source_label == "trace"
    assert sample(feed_metrics, "carbongate_feed_fetch_errors_total", provider="broken", kind="malformed") == 1
