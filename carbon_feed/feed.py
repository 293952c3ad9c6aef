"""The feed's work: one refresh of every region, and the loop that repeats it.

:class:`Feed` does one refresh: resolve every region through its chain,
compute best windows for readings it has not seen before, mark staleness
against the clock, and publish when the document changed (or a TTL has
passed, so an OPA server that restarted empty is refilled). :class:`FeedLoop`
repeats it on a thread and says whether it is healthy. Assembling a feed from
the settings and running it as a process is :mod:`carbon_feed.service`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from carbon_feed import chain, document, metrics, model, publisher
from carbon_feed import cluster as cluster_mod
from carbongate import clock as clock_mod
from carbongate import settings as settings_mod
from planner import snapshot as contract

log = logging.getLogger(__name__)


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
