"""The carbon feed as a real process, fed by real HTTP providers the test can take down.

Each provider is a pytest-httpserver on 127.0.0.1 answering Electricity Maps v3
(``/v3/carbon-intensity/latest`` and ``/forecast``) with the recorded DE body
(tests/fixtures/carbon_feed) moved to the present: values from the bundled
2023 traces at the same time of year, ``datetime`` the current instant rounded
down to ``QUANTUM_S``. Live-looking data is what lets a test watch it go stale
in seconds (the providers file states a cadence of ``QUANTUM_S`` and
``grid.stale_grace_s`` is set low) instead of an hour; the rounding
keeps the document from changing on every poll, since each new version costs
every webhook worker an engine rebuild.

The primary answers through a :class:`proxy.Proxy`, so "down" is what a dead
provider looks like from the feed: connection refused, open connections reset.
The feed is ``python -m carbon_feed`` (the sidecar), configured by a TOML file.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import yaml
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from carbongate import timefmt
from planner import snapshot as contract
from tests.reliability import grid, proxy, servers
from tests.support.webhook_server import free_port

ROOT = Path(__file__).resolve().parents[2]
RECORDED_LATEST = ROOT / "tests/fixtures/carbon_feed/v3_carbon-intensity_latest_DE__green-elephpant.json"
REGIONS = ("GB", "DE")
QUANTUM_S = 4
TOKEN_ENV = "CARBONGATE_TEST_EM_TOKEN"
Mode = Literal["ok", "error503", "hold"]


def observed_now() -> datetime:
    """The present, rounded down to ``QUANTUM_S`` seconds (what the providers report)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return now - timedelta(seconds=now.second % QUANTUM_S)


def em_time(at: datetime) -> str:
    """Electricity Maps' own time format: milliseconds and ``Z``."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def trace_value(region: str, at: datetime) -> float:
    """The bundled trace's intensity for ``region`` at the same hour of the year as ``at``."""
    return float(grid.region_doc(region, at, hours=1)["g_per_kwh"])


@dataclass
class Provider:
    """One Electricity Maps-shaped provider; ``mode`` says how it answers right now.

    ``hold`` keeps every request for ``held_zone`` open until :meth:`release`
    (the feed is then stuck in the middle of a refresh); ``held`` is set
    once such a request has arrived.
    """

    name: str
    server: HTTPServer = field(default_factory=lambda: HTTPServer(host="127.0.0.1", port=0))
    mode: Mode = "ok"
    held_zone: str = "DE"
    held: threading.Event = field(default_factory=threading.Event)
    _release: threading.Event = field(default_factory=threading.Event)
    requests: int = 0

    def start(self) -> Provider:
        self.server.expect_request("/v3/carbon-intensity/latest").respond_with_handler(self._latest)
        self.server.expect_request("/v3/carbon-intensity/forecast").respond_with_handler(self._forecast)
        self.server.start()
        return self

    def stop(self) -> None:
        self.release()
        self.server.clear()
        if self.server.is_running():
            self.server.stop()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", int(self.server.port))

    def hold(self, zone: str) -> None:
        self.held.clear()
        self._release.clear()
        self.held_zone, self.mode = zone, "hold"

    def release(self) -> None:
        self.mode = "ok"
        self._release.set()

    def _answer(self, request: Request, body: Any) -> Response:
        self.requests += 1
        if request.headers.get("auth-token") != "em-t0ken":
            return Response('{"error": "unauthorized"}', status=401, content_type="application/json")
        if self.mode == "error503":
            return Response('{"error": "service unavailable"}', status=503, content_type="application/json")
        if self.mode == "hold" and request.args.get("zone") == self.held_zone:
            self.held.set()
            self._release.wait(30)
        return Response(json.dumps(body), status=200, content_type="application/json")

    def _latest(self, request: Request) -> Response:
        zone = request.args.get("zone", "")
        at = observed_now()
        recorded = json.loads(RECORDED_LATEST.read_text(encoding="utf-8"))
        body = recorded | {"zone": zone, "carbonIntensity": trace_value(zone, at), "datetime": em_time(at),
                           "updatedAt": em_time(at), "temporalGranularity": "hourly"}
        return self._answer(request, body)

    def _forecast(self, request: Request) -> Response:
        zone = request.args.get("zone", "")
        hour = observed_now().replace(minute=0, second=0) + timedelta(hours=1)
        points = grid.region_doc(zone, hour, hours=47)["forecast"]
        body = {"zone": zone, "forecast": [{"carbonIntensity": p["g_per_kwh"],
                                            "datetime": em_time(timefmt.parse_time(p["start"]))}
                                           for p in points]}
        return self._answer(request, body)


@dataclass
class Providers:
    """Every provider the feed knows: ``primary`` behind a proxy, ``backup`` direct."""

    primary: Provider
    backup: Provider
    gateway: proxy.Proxy

    def providers_file(self, directory: Path) -> Path:
        """The providers YAML: each region's chain is primary, then backup."""
        def provider(url: str) -> dict[str, Any]:
            return {"type": "electricitymaps", "url": url, "token": {"env": TOKEN_ENV}, "history": False,
                    "cadence_s": QUANTUM_S}

        document = {
            "providers": {"em-primary": provider(self.gateway.url),
                          "em-backup": provider(f"http://127.0.0.1:{self.backup.server.port}")},
            "regions": {region: [{"provider": "em-primary", "zone": region},
                                 {"provider": "em-backup", "zone": region}] for region in REGIONS},
        }
        path = directory / "providers.yaml"
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        return path

    def all_down(self) -> None:
        """Every provider fails at once: the primary refuses connections, the backup answers 503."""
        self.gateway.close()
        self.backup.mode = "error503"

    def all_up(self) -> None:
        self.backup.mode = "ok"
        self.gateway.open()


@contextmanager
def providers() -> Iterator[Providers]:
    with ExitStack() as stack:
        primary = Provider("em-primary").start()
        stack.callback(primary.stop)
        backup = Provider("em-backup").start()
        stack.callback(backup.stop)
        gateway = stack.enter_context(proxy.Proxy(primary.address))
        yield Providers(primary=primary, backup=backup, gateway=gateway)


@dataclass(frozen=True)
class FeedPaths:
    config: Path
    snapshot: Path
    state_dir: Path
    port: int

    @property
    def last_known_good(self) -> Path:
        return self.state_dir / "last-known-good.json"

    def health(self) -> tuple[int, Any]:
        return servers.http_json(f"http://127.0.0.1:{self.port}/healthz", timeout_s=2)


def feed_config(directory: Path, *, snapshot: Path, providers_file: Path, stale_grace_s: int = 12) -> FeedPaths:
    """Settings for a feed that polls every 2 s, retries within 2 s and calls data stale ``stale_grace_s``
    after the providers' next observation (every ``QUANTUM_S``) was due."""
    port = free_port()
    state_dir = directory / "feed-state"
    config = servers.write_toml(directory / "feed.toml", {
        "grid": {"snapshot_path": snapshot, "stale_grace_s": stale_grace_s},
        "feed": {"providers_file": providers_file, "state_dir": state_dir, "ttl_s": 2, "tick_s": 0.25,
                 "backoff_max_s": 2.0, "request_timeout_s": 1.0, "bind": f"127.0.0.1:{port}"},
    })
    return FeedPaths(config=config, snapshot=snapshot, state_dir=state_dir, port=port)


def feed_process(directory: Path, paths: FeedPaths) -> servers.Process:
    """``python -m carbon_feed`` with the test's settings and the providers' token."""
    return servers.Process("feed", [sys.executable, "-m", "carbon_feed", "--config", str(paths.config)],
                           directory=directory, env={TOKEN_ENV: "em-t0ken"})


def sources(snapshot: Path) -> dict[str, tuple[str, bool, bool]]:
    """Each region's (source, fallback_used, stale) in the published snapshot.

    ``source`` names the provider type (``electricitymaps`` for both instances);
    ``fallback_used`` tells the primary from anything else.
    """
    document = json.loads(snapshot.read_text(encoding="utf-8"))
    return {name: (region["source"], region["fallback_used"], region["stale"])
            for name, region in document["regions"].items()}


def everywhere(source: str, *, fallback: bool, stale: bool) -> dict[str, tuple[str, bool, bool]]:
    """What :func:`sources` returns when every region has the same provenance."""
    return {region: (source, fallback, stale) for region in REGIONS}


class SnapshotWatch:
    """Reads the snapshot file every 50 ms on a thread: every read must be a whole, valid document."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reads = 0
        self.problems: list[str] = []
        self.missing_regions: list[set[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="snapshot-watch")

    def __enter__(self) -> SnapshotWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                document = contract.load_snapshot(self.path)
            except (OSError, ValueError) as error:
                self.problems.append(repr(error))
                continue
            self.reads += 1
            absent = set(REGIONS) - set(document["regions"])
            if absent:
                self.missing_regions.append(absent)
