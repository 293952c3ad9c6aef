"""The feed as a running thing: refresh loop, health and metrics, background mode.

:class:`Feed` does one refresh: resolve every region through its chain,
compute best windows for readings it has not seen before, mark staleness
against the clock, and publish when the document changed (or a TTL has
passed, so an OPA server that restarted empty is refilled).

Two ways to run it:

* ``python -m carbon_feed`` / ``carbongate feed``: :func:`serve`, the sidecar,
  with ``/healthz`` and ``/metrics`` on ``feed.bind``;
* :func:`start_in_background`: a thread in the caller's process (the
  webhook's gunicorn master under ``make run``), which refreshes once before
  returning so the snapshot file exists before any worker looks for it.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from carbon_feed import (
    cache,
    chain,
    config,
    document,
    electricitymaps,
    errors,
    keda,
    metrics,
    model,
    publisher,
    traces,
    ukci,
    watttime,
)
from carbon_feed import cluster as cluster_mod
from carbongate import clock as clock_mod
from carbongate import settings as settings_mod
from planner import snapshot as contract

log = logging.getLogger(__name__)

FACTORIES: Mapping[str, config.Factory] = {
    "watttime": watttime.build,
    "electricitymaps": electricitymaps.build,
    "ukci": ukci.build,
    "trace": traces.build,
}


class Feed:
    """Refreshes every region and publishes the grid snapshot."""

    def __init__(
        self,
        *,
        chains: Sequence[chain.RegionChain],
        publisher: publisher.Publisher,
        clock: clock_mod.Clock,
        grid: settings_mod.GridSettings,
        ttl_s: float,
        feed_metrics: metrics.FeedMetrics,
        cluster: cluster_mod.ClusterFetch | None = None,
    ) -> None:
        self.chains = tuple(chains)
        # With a Lease: only the leader polls, followers read its readings (carbon_feed/cluster.py).
        self.cluster = cluster
        self.publisher = publisher
        self.clock = clock
        self.metrics = feed_metrics
        self._grid = grid
        self._ttl_s = ttl_s
        self._windows: dict[str, tuple[model.Reading, dict[str, contract.WindowDoc]]] = {}
        self._published: tuple[Any, datetime] | None = None
        self.snapshot: contract.GridSnapshot | None = None
        self.refreshed_at: float | None = None  # time.monotonic() of the last refresh

    def refresh(self) -> contract.GridSnapshot:
        """One pass over every region; returns the document (published if it changed)."""
        now = self.clock.now()
        regions: dict[str, contract.RegionDoc] = {}
        for region, resolved in self._resolve(now).items():
            if resolved is None:
                self._missing(region)
                continue
            regions[region] = self._region(resolved, now=now)
        snapshot = document.snapshot(regions, now=now)
        self._publish(snapshot, now=now)
        self.snapshot = snapshot
        self.refreshed_at = time.monotonic()
        self.metrics.last_refresh.set(now.timestamp())
        return snapshot

    def _resolve(self, now: datetime) -> dict[str, chain.Resolved | None]:
        """Each region's reading: through its chain, or by this feed's role in the cluster."""
        if self.cluster is not None:
            return self.cluster.resolve(self.chains, now=now)
        return {c.region: c.resolve(now=now) for c in self.chains}

    def _region(self, resolved: chain.Resolved, *, now: datetime) -> contract.RegionDoc:
        reading = resolved.reading
        region_doc = document.region_document(
            reading, now=now, grace_s=self._grid.stale_grace_s, best=self._best(reading, now=now),
            source_label=resolved.source_label, fallback_used=resolved.fallback_used,
        )
        self.metrics.age.labels(reading.region).set(document.age_s(reading, now))
        self.metrics.stale.labels(reading.region).set(1 if region_doc["stale"] else 0)
        if region_doc["g_per_kwh"] is not None:
            self.metrics.intensity.labels(reading.region, region_doc["signal"]).set(region_doc["g_per_kwh"])
        return region_doc

    def _best(self, reading: model.Reading, *, now: datetime) -> dict[str, contract.WindowDoc]:
        """Best windows once per data update: recomputed only when the reading changes."""
        known = self._windows.get(reading.region)
        if known is not None and known[0] == reading:
            return known[1]
        best = document.best_windows(reading, self._grid.window_durations_min, earliest=now)
        self._windows[reading.region] = (reading, best)
        return best

    def _missing(self, region: str) -> None:
        self.metrics.missing.labels(region).inc()
        self.metrics.stale.labels(region).set(1)
        log.error("no data at all for region %s (every provider failed and nothing is cached); "
                  "left out of the snapshot, so the policy admits unchanged there", region)

    def _publish(self, snapshot: contract.GridSnapshot, *, now: datetime) -> None:
        comparable = {k: v for k, v in snapshot.items() if k != "generated_at"}
        if self._published is not None:
            previous, at = self._published
            if previous == comparable and (now - at).total_seconds() < self._ttl_s:
                return
        if self.publisher.publish(snapshot):
            self._published = (comparable, now)


def build_feed(
    settings: settings_mod.Settings,
    *,
    clock: clock_mod.Clock | None = None,
    engines: Iterable[publisher.DataEngine] = (),
    environ: Mapping[str, str] | None = None,
    factories: Mapping[str, config.Factory] = FACTORIES,
    rng: random.Random | None = None,
) -> Feed:
    """A feed from settings: the providers file, or the demo traces when there is none."""
    clock = clock or clock_mod.SystemClock()
    feed_settings = settings.feed
    feed_metrics = metrics.FeedMetrics()
    parts = chain.ChainParts(
        readings=cache.TtlCache(ttl_s=feed_settings.ttl_s),
        gate=cache.PollGate(ttl_s=feed_settings.ttl_s, backoff_max_s=feed_settings.backoff_max_s, rng=rng),
        last_known_good=cache.LastKnownGood(state_dir=feed_settings.state_dir),
        metrics=feed_metrics,
        max_clock_skew_s=feed_settings.max_clock_skew_s,
    )
    chains = _chains(settings, parts=parts, clock=clock, environ=environ, factories=factories)
    cluster = cluster_mod.build(settings, last_known_good=parts.last_known_good,
                                feed_metrics=feed_metrics)
    return Feed(chains=chains, publisher=publisher.Publisher(_sinks(settings, engines, environ),
                                                            feed_metrics=feed_metrics),
                clock=clock, grid=settings.grid, ttl_s=feed_settings.ttl_s, feed_metrics=feed_metrics,
                cluster=cluster)


def _chains(settings: settings_mod.Settings, *, parts: chain.ChainParts, clock: clock_mod.Clock,
            environ: Mapping[str, str] | None,
            factories: Mapping[str, config.Factory]) -> list[chain.RegionChain]:
    feed_settings = settings.feed
    if feed_settings.providers_file is None:
        files = feed_settings.trace_files or traces.demo_files(settings_mod.DEMO_GRID_DIR)
        replay = traces.from_files(files, anchor=clock.now(), clock=feed_settings.trace_clock,
                                   horizon_h=settings.grid.forecast_horizon_h)
        log.info("no providers file: replaying %s", ", ".join(str(f) for f in files))
        return [chain.RegionChain(region=r, sources=[replay], parts=parts) for r in replay.ordered_regions()]
    providers = config.load(feed_settings.providers_file)
    context = config.BuildContext(timeout_s=feed_settings.request_timeout_s, base_dir=providers.base_dir,
                                  clock=clock, environ=environ, trace_clock=feed_settings.trace_clock,
                                  horizon_h=settings.grid.forecast_horizon_h)
    sources = config.build_sources(providers, factories=factories, context=context)
    return [chain.RegionChain(region=region, sources=[sources[e.provider] for e in entries], parts=parts)
            for region, entries in providers.regions.items()]


def _sinks(settings: settings_mod.Settings, engines: Iterable[publisher.DataEngine],
           environ: Mapping[str, str] | None) -> list[publisher.Sink]:
    sinks: list[publisher.Sink] = [publisher.SnapshotFile(settings.grid.snapshot_path)]
    sinks.extend(publisher.EngineSink(engine) for engine in engines)
    if settings.feed.publish_to == "opa":
        token = settings_mod.environment_value(settings.engine.opa_token_env, environ=environ)
        sinks.append(publisher.OpaServer(url=settings.engine.opa_url, token=token,
                                         timeout_s=max(settings.engine.opa_timeout_s, 2.0)))
    return sinks


# --- running ---------------------------------------------------------------------------------


class FeedLoop:
    """Calls :meth:`Feed.refresh` every ``tick_s`` on a thread until stopped; never dies of an error."""

    def __init__(self, feed: Feed, *, tick_s: float) -> None:
        self.feed = feed
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="carbon-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.feed.cluster is not None:
            self.feed.cluster.stop(timeout_s)  # gives the Lease up: a follower leads at once

    def healthy(self) -> bool:
        """The loop refreshed recently (providers may still be failing: that is in the body)."""
        at = self.feed.refreshed_at
        return at is not None and time.monotonic() - at < 3 * self.tick_s + 30

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            safe_refresh(self.feed)


def safe_refresh(feed: Feed) -> contract.GridSnapshot | None:
    """A refresh whose unexpected failure is logged, not raised: the loop must go on."""
    try:
        return feed.refresh()
    except Exception:
        log.exception("grid refresh failed; keeping the last published snapshot")
        return None


def join_cluster(feed: Feed) -> None:
    """Start the feed's election (if it has one) before its first refresh."""
    if feed.cluster is not None:
        feed.cluster.start(feed.clock.now())


class FeedHandle:
    """What :func:`start_in_background` returns: the feed and a way to stop it."""

    def __init__(self, feed: Feed, loop: FeedLoop) -> None:
        self.feed = feed
        self._loop = loop

    def stop(self) -> None:
        self._loop.stop()


def start_in_background(
    settings: settings_mod.Settings,
    *,
    clock: clock_mod.Clock | None = None,
    engines: Iterable[publisher.DataEngine] = (),
) -> FeedHandle:
    """Run the feed on a daemon thread; the first snapshot is written before this returns."""
    feed = build_feed(settings, clock=clock, engines=engines)
    join_cluster(feed)
    safe_refresh(feed)
    loop = FeedLoop(feed, tick_s=settings.feed.tick_s)
    loop.start()
    return FeedHandle(feed, loop)


def health(loop: FeedLoop) -> tuple[int, dict[str, Any]]:
    """``/healthz``: 200 while the loop runs; the body says how good the data is."""
    now = loop.feed.clock.now()
    snapshot = loop.feed.snapshot or document.snapshot({}, now=now)
    regions = {
        name: {"source": region["source"], "stale": region["stale"],
               "age_s": round((now - contract.parse_time(region["observed_at"])).total_seconds())}
        for name, region in snapshot["regions"].items()
    }
    missing = [c.region for c in loop.feed.chains if c.region not in regions]
    ok = loop.healthy()
    body = {"status": "ok" if ok else "stalled", "regions": regions, "missing": missing}
    return (200 if ok else 503), body


def _handler(loop: FeedLoop) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                status, body = health(loop)
                self._send(status, json.dumps(body).encode(), "application/json")
            elif self.path == "/metrics":
                self._send(200, generate_latest(loop.feed.metrics.registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

    return Handler


class Sidecar:
    """The feed loop plus its HTTP server (``/healthz``, ``/metrics``)."""

    def __init__(self, feed: Feed, *, bind: str, tick_s: float) -> None:
        host, _, port = bind.rpartition(":")
        self.loop = FeedLoop(feed, tick_s=tick_s)
        self.server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), _handler(self.loop))
        self.server.daemon_threads = True
        self._http: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        join_cluster(self.loop.feed)
        safe_refresh(self.loop.feed)
        self.loop.start()
        self._http = threading.Thread(target=self.server.serve_forever, name="feed-http", daemon=True)
        self._http.start()

    def stop(self) -> None:
        self.loop.stop()
        self.server.shutdown()
        self.server.server_close()


def serve(settings: settings_mod.Settings, *, once: bool = False) -> int:
    """``carbongate feed``: run until SIGTERM/SIGINT (or one refresh with ``once``)."""
    try:
        feed = build_feed(settings)
    except (errors.ConfigError, settings_mod.SettingsError) as error:
        log.error("%s", error)
        return 2
    if once:
        return 0 if safe_refresh(feed) is not None else 1
    sidecar = Sidecar(feed, bind=settings.feed.bind, tick_s=settings.feed.tick_s)
    scaler = keda.attach(feed, settings)
    stopped = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping the feed", signum)
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sidecar.start()
    if scaler is not None:
        scaler.start()
    log.info("carbon feed serving /healthz and /metrics on %s", settings.feed.bind)
    stopped.wait()
    if scaler is not None:
        scaler.stop()
    sidecar.stop()
    return 0

