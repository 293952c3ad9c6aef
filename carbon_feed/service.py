"""The feed assembled from the settings and run: sidecar process or background thread.

The work itself (one refresh, the loop) is :mod:`carbon_feed.feed`; here it
is built from one ``Settings`` object (providers or demo traces, cache,
sinks, the cluster's Lease) and run one of two ways:

* ``python -m carbon_feed`` / ``carbongate feed``: :func:`serve`, the sidecar,
  with ``/healthz`` and ``/metrics`` on ``feed.bind``;
* :func:`start_in_background`: a thread in the caller's process (the
  webhook's gunicorn master under ``make run``), which refreshes once before
  returning so the snapshot file exists before any worker looks for it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping

from carbon_feed import (
    cache,
    chain,
    config,
    electricitymaps,
    errors,
    keda,
    metrics,
    publisher,
    traces,
    ukci,
    watttime,
)
from carbon_feed import cluster as cluster_mod
from carbon_feed import feed as feed_mod
from carbongate import clock as clock_mod
from carbongate import process, sidecar
from carbongate import settings as settings_mod

log = logging.getLogger(__name__)

FACTORIES: Mapping[str, config.Factory] = {
    "watttime": watttime.build,
    "electricitymaps": electricitymaps.build,
    "ukci": ukci.build,
    "trace": traces.build,
}


def build_feed(
    settings: settings_mod.Settings,
    *,
    clock: clock_mod.Clock | None = None,
    engines: Iterable[publisher.DataEngine] = (),
    environ: Mapping[str, str] | None = None,
    factories: Mapping[str, config.Factory] = FACTORIES,
    rng: random.Random | None = None,
) -> feed_mod.Feed:
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
    return feed_mod.Feed(chains=chains, publisher=publisher.Publisher(_sinks(settings, engines, environ),
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


class FeedHandle:
    """What :func:`start_in_background` returns: the feed and a way to stop it."""

    def __init__(self, feed: feed_mod.Feed, loop: feed_mod.FeedLoop) -> None:
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
    feed_mod.join_cluster(feed)
    feed_mod.safe_refresh(feed)
    loop = feed_mod.FeedLoop(feed, tick_s=settings.feed.tick_s)
    loop.start()
    return FeedHandle(feed, loop)


class Sidecar:
    """The feed loop plus its HTTP server (``/healthz``, ``/metrics``: :mod:`carbongate.sidecar`)."""

    def __init__(self, feed: feed_mod.Feed, *, bind: str, tick_s: float) -> None:
        self.loop = feed_mod.FeedLoop(feed, tick_s=tick_s)
        self.server = sidecar.Sidecar(bind=bind, name="feed", health=lambda: feed_mod.health(self.loop),
                                      registries=[feed.metrics.registry])

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        feed_mod.join_cluster(self.loop.feed)
        feed_mod.safe_refresh(self.loop.feed)
        self.loop.start()
        self.server.start()

    def stop(self) -> None:
        self.loop.stop()
        self.server.stop()


def serve(settings: settings_mod.Settings, *, once: bool = False) -> int:
    """``carbongate feed``: run until SIGTERM/SIGINT (or one refresh with ``once``)."""
    try:
        feed = build_feed(settings)
    except (errors.ConfigError, settings_mod.SettingsError) as error:
        log.error("%s", error)
        return 2
    if once:
        return 0 if feed_mod.safe_refresh(feed) is not None else 1
    sidecar = Sidecar(feed, bind=settings.feed.bind, tick_s=settings.feed.tick_s)
    scaler = keda.attach(feed, settings)
    stopped = process.stop_on_signals("carbon feed")
    sidecar.start()
    if scaler is not None:
        scaler.start()
    log.info("carbon feed serving /healthz and /metrics on %s", settings.feed.bind)
    stopped.wait()
    if scaler is not None:
        scaler.stop()
    sidecar.stop()
    return 0

