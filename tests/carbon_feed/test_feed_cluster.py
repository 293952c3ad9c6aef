"""One fetcher per cluster: N feeds, one Lease, one provider poll per TTL between them.

The provider is the UK Carbon Intensity API played by pytest-httpserver on
127.0.0.1 (its published ``/intensity/{from}/fw48h`` shape, the windows
generated around the instant asked for, so any wall-clock time works), and
it counts every request. The Kubernetes API is the double of
tests/support/kube_api.py (no kube-apiserver runs here): Leases and
ConfigMaps with the API server's optimistic concurrency. The feeds reach it
through a kubeconfig file, as a laptop user would.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from carbon_feed import cluster, service
from carbon_feed import feed as feed_mod
from carbongate import clock as clock_mod
from carbongate import settings as settings_mod
from tests.support import kube_api
from tests.support.waiting import eventually

FEED_PATH = re.compile(r"^/intensity/(?P<at>[0-9T:-]+Z)/fw48h$")
LEASE, CONFIGMAP, NAMESPACE = "carbongate-feed", "carbongate-grid-readings", "carbongate"


def _windows(request: Request) -> Response:
    """Eight half-hour windows from the one holding the instant in the path."""
    found = FEED_PATH.match(request.path)
    assert found is not None
    at = datetime.strptime(found["at"], "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    start = at.replace(minute=at.minute - at.minute % 30, second=0, microsecond=0)
    data = [{"from": (start + timedelta(minutes=30 * i)).strftime("%Y-%m-%dT%H:%MZ"),
             "to": (start + timedelta(minutes=30 * (i + 1))).strftime("%Y-%m-%dT%H:%MZ"),
             "intensity": {"forecast": 200 + 10 * i, "actual": None, "index": "moderate"}}
            for i in range(8)]
    return Response(json.dumps({"data": data}), content_type="application/json")


@pytest.fixture
def provider(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request(FEED_PATH).respond_with_handler(_windows)
    return httpserver


def polls(provider: HTTPServer) -> int:
    return sum(1 for request, _ in provider.log if FEED_PATH.match(request.path))


def providers_file(directory: Path, provider: HTTPServer) -> Path:
    path = directory / "providers.yaml"
    path.write_text(f"providers:\n  ukci: {{url: '{provider.url_for('')}', history: false}}\n"
                    "regions:\n  GB: [ukci]\n", encoding="utf-8")
    return path


# --- in one process, on a hand-driven clock ------------------------------------------------


def _feed(tmp_path: Path, provider: HTTPServer, served: kube_api.RunningKubeApi, name: str,
          clock: clock_mod.ManualClock) -> feed_mod.Feed:
    settings = settings_mod.load(environ={}, overrides={
        "kube": {"api_url": served.url},
        "grid": {"snapshot_path": tmp_path / name / "grid.json"},
        "feed": {"providers_file": providers_file(tmp_path, provider), "ttl_s": 300,
                 "state_dir": tmp_path / name / "state", "lease_name": LEASE,
                 "identity": name, "lease_duration_s": 15, "lease_renew_s": 2},
    })
    return service.build_feed(settings, clock=clock)


def _two_feeds(tmp_path: Path, provider: HTTPServer, served: kube_api.RunningKubeApi,
               clock: clock_mod.ManualClock) -> tuple[cluster.ClusterFetch, feed_mod.Feed,
                                                      cluster.ClusterFetch, feed_mod.Feed]:
    """Feeds "a" and "b" with their cluster parts, "a" the first to ask for the Lease."""
    first, second = (_feed(tmp_path, provider, served, n, clock) for n in ("a", "b"))
    assert first.cluster is not None and second.cluster is not None
    return first.cluster, first, second.cluster, second


def _snapshot(tmp_path: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((tmp_path / name / "grid.json").read_text())
    return document


def test_only_the_leader_polls_and_a_follower_publishes_its_readings(
        tmp_path: Path, provider: HTTPServer) -> None:
    clock = clock_mod.ManualClock(datetime.now(UTC).replace(microsecond=0))
    with kube_api.serve() as served:
        leading, leader, following, follower = _two_feeds(tmp_path, provider, served, clock)
        assert leading.elector.tick(clock.now())
        assert not following.elector.tick(clock.now())
        leader.refresh()
        follower.refresh()
        for _ in range(30):  # a minute, within the TTL: nobody polls again
            clock.advance(2)
            assert leading.elector.tick(clock.now())
            assert not following.elector.tick(clock.now())
            leader.refresh()
            follower.refresh()
        stored = served.api.get("ConfigMap", NAMESPACE, CONFIGMAP)
    assert polls(provider) == 1
    mine, theirs = _snapshot(tmp_path, "a"), _snapshot(tmp_path, "b")
    assert theirs["regions"]["GB"]["g_per_kwh"] == mine["regions"]["GB"]["g_per_kwh"] == 200
    assert theirs["regions"]["GB"]["source"] == "ukci"
    assert theirs["regions"]["GB"]["best_windows"] == mine["regions"]["GB"]["best_windows"]
    assert stored is not None and json.loads(stored["data"]["readings.json"])["leader"] == "a"
    assert follower.metrics.registry.get_sample_value("carbongate_feed_leader") == 0
    assert leader.metrics.registry.get_sample_value("carbongate_feed_leader") == 1


def test_a_new_leader_does_not_poll_again_within_the_ttl_of_the_last_poll(
        tmp_path: Path, provider: HTTPServer) -> None:
    clock = clock_mod.ManualClock(datetime.now(UTC).replace(microsecond=0))
    with kube_api.serve() as served:
        leading, first, standby, second = _two_feeds(tmp_path, provider, served, clock)
        leading.elector.tick(clock.now())
        standby.elector.tick(clock.now())
        first.refresh()
        clock.advance(16)  # "a" died: its Lease stays unrenewed for a whole duration
        assert standby.elector.tick(clock.now())
        second.refresh()
        assert polls(provider) == 1  # the reading "a" fetched 16 s ago is still good
        clock.advance(300)
        standby.elector.tick(clock.now())
        second.refresh()
    assert polls(provider) == 2  # a TTL later the new leader polls itself
    assert _snapshot(tmp_path, "b")["regions"]["GB"]["fallback_used"] is False


def test_a_follower_that_cannot_read_the_readings_serves_its_last_known_good(
        tmp_path: Path, provider: HTTPServer) -> None:
    clock = clock_mod.ManualClock(datetime.now(UTC).replace(microsecond=0))
    with kube_api.serve() as served:
        leader = _feed(tmp_path, provider, served, "a", clock)
        assert leader.cluster is not None
        leader.cluster.elector.tick(clock.now())
        leader.refresh()
        follower = _feed(tmp_path, provider, served, "b", clock)
        assert follower.cluster is not None
        follower.refresh()  # reads the readings, keeps them on disk
        restarted = _feed(tmp_path, provider, served, "b", clock)  # same state_dir
        assert restarted.cluster is not None
        served.api.fail_matching("GET", f"/configmaps/{CONFIGMAP}", code=403)
        restarted.refresh()
    region = _snapshot(tmp_path, "b")["regions"]["GB"]
    assert region["source"] == "last-known-good:ukci" and region["fallback_used"] is True
    assert polls(provider) == 1
    assert restarted.metrics.registry.get_sample_value(
        "carbongate_feed_shared_reads_total", {"outcome": "error"}) == 1


def test_without_a_lease_name_the_feed_polls_itself_and_never_calls_the_api(
        tmp_path: Path, provider: HTTPServer) -> None:
    settings = settings_mod.load(environ={}, overrides={
        "grid": {"snapshot_path": tmp_path / "grid.json"},
        "feed": {"providers_file": providers_file(tmp_path, provider),
                 "state_dir": tmp_path / "state"}})
    feed = service.build_feed(settings, clock=clock_mod.ManualClock(datetime.now(UTC)))
    feed.refresh()
    assert feed.cluster is None
    assert polls(provider) == 1


def test_a_renew_interval_that_cannot_keep_the_lease_is_refused(tmp_path: Path) -> None:
    settings = settings_mod.load(environ={}, overrides={
        "kube": {"api_url": "http://127.0.0.1:9"},
        "feed": {"lease_name": LEASE, "lease_duration_s": 3, "lease_renew_s": 2.5}})
    with pytest.raises(settings_mod.SettingsError, match="feed.lease_renew_s"):
        cluster.build(settings, last_known_good=None, feed_metrics=None)  # type: ignore[arg-type]


# --- several feed processes -------------------------------------------------------------------


@dataclass
class FeedProcess:
    name: str
    process: subprocess.Popen[str]
    snapshot: Path

    def region(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.snapshot.read_text())["regions"].get("GB")
        except (OSError, ValueError):
            return None


TTL_S = 6


@pytest.fixture
def feeds(tmp_path: Path, provider: HTTPServer) -> Iterator[tuple[kube_api.RunningKubeApi,
                                                                 list[FeedProcess]]]:
    with kube_api.serve() as served:
        kubeconfig = served.write_kubeconfig(tmp_path / "kubeconfig", current=False)
        started: list[FeedProcess] = []
        for name in ("feed-0", "feed-1", "feed-2"):
            directory = tmp_path / name
            directory.mkdir()
            config = directory / "carbongate.toml"
            config.write_text(f"""
[grid]
snapshot_path = "{directory / 'grid.json'}"
[feed]
providers_file = "{providers_file(tmp_path, provider)}"
state_dir = "{directory / 'state'}"
bind = "127.0.0.1:0"
ttl_s = {TTL_S}
tick_s = 0.3
lease_name = "{LEASE}"
identity = "{name}"
lease_duration_s = 3
lease_renew_s = 0.5
""", encoding="utf-8")
            command = [sys.executable, "-m", "carbon_feed", "--config", str(config),
                       "--kubeconfig", str(kubeconfig), "--context", "double"]
            started.append(FeedProcess(name, subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
                directory / "grid.json"))
        try:
            yield served, started
        finally:
            for feed in started:
                if feed.process.poll() is None:
                    feed.process.send_signal(signal.SIGTERM)
            for feed in started:
                feed.process.communicate(timeout=30)


def _holder(served: kube_api.RunningKubeApi) -> str | None:
    lease = served.api.get("Lease", NAMESPACE, LEASE)
    return None if lease is None else lease["spec"].get("holderIdentity")


def _shared_by(served: kube_api.RunningKubeApi) -> str:
    stored = served.api.get("ConfigMap", NAMESPACE, CONFIGMAP)
    return str(json.loads(stored["data"]["readings.json"])["leader"]) if stored else ""


def test_three_feed_processes_poll_once_per_ttl_and_a_follower_takes_over(
        provider: HTTPServer, feeds: tuple[kube_api.RunningKubeApi, list[FeedProcess]]) -> None:
    """Docstring of the module; the takeover bound is lease duration + renew + tick (3.8 s)."""
    served, processes = feeds
    eventually(lambda: all(p.region() for p in processes), timeout_s=90)
    began, polled = time.monotonic(), polls(provider)
    time.sleep(2.5 * TTL_S)
    elapsed = time.monotonic() - began
    # Three feeds on their own would poll 3 x (elapsed / TTL); one leader polls once per TTL.
    assert polls(provider) - polled <= elapsed / TTL_S + 1
    assert all(p.region()["g_per_kwh"] is not None for p in processes)

    leader = next(p for p in processes if p.name == _holder(served))
    leader.process.kill()  # no clean shutdown: the Lease must expire
    leader.process.communicate(timeout=30)
    killed = time.monotonic()
    eventually(lambda: _holder(served) not in (None, leader.name), timeout_s=30)
    took_over = time.monotonic() - killed
    survivors = [p for p in processes if p is not leader]
    before = polls(provider)
    eventually(lambda: polls(provider) > before, timeout_s=4 * TTL_S)  # the new leader polls
    total = polls(provider)
    eventually(lambda: _shared_by(served) == _holder(served), timeout_s=10)
    assert took_over < 20, f"takeover took {took_over:.1f}s"
    assert total - polled <= (time.monotonic() - began) / TTL_S + 2
    # Both survivors publish the new leader's latest reading.
    eventually(lambda: len({p.region()["fetched_at"] for p in survivors}) == 1, timeout_s=10)
