"""Prometheus metrics of the feed: how old each region's data is and why.

One :class:`FeedMetrics` per feed, on its own registry, so that a test or a
process running two feeds never collides with another; the sidecar serves
that registry on ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class FeedMetrics:
    """The feed's counters and gauges."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.fetches = Counter("carbongate_feed_fetches_total",
                               "Provider fetches by provider and outcome (ok, error)",
                               ["provider", "outcome"], registry=r)
        self.errors = Counter("carbongate_feed_fetch_errors_total",
                              "Failed provider fetches by provider and kind (timeout, http_401, "
                              "rate_limited, http_5xx, malformed, no_data, unit, clock_skew ...)",
                              ["provider", "kind"], registry=r)
        self.unit_rejections = Counter("carbongate_feed_unit_rejections_total",
                                       "Readings rejected for an unknown or implausible unit",
                                       ["provider"], registry=r)
        self.fallbacks = Counter("carbongate_feed_fallbacks_total",
                                 "Refreshes where a region was served by a fallback or last-known-good",
                                 ["region", "source"], registry=r)
        self.missing = Counter("carbongate_feed_region_missing_total",
                               "Refreshes where a region had no data at all (left out of the snapshot)",
                               ["region"], registry=r)
        self.age = Gauge("carbongate_feed_data_age_seconds",
                         "Age of the published reading per region (now - observed_at)",
                         ["region"], registry=r)
        self.intensity = Gauge("carbongate_grid_intensity_g_per_kwh",
                               "Published carbon intensity per region and signal (average, marginal)",
                               ["region", "signal"], registry=r)
        self.stale = Gauge("carbongate_feed_stale", "1 when the region's published data is stale",
                           ["region"], registry=r)
        self.publishes = Counter("carbongate_feed_publishes_total",
                                 "Snapshot publications by target (file, opa, embedded) and outcome",
                                 ["target", "outcome"], registry=r)
        self.last_refresh = Gauge("carbongate_feed_last_refresh_timestamp_seconds",
                                  "When the feed last completed a refresh (feed clock)", registry=r)
