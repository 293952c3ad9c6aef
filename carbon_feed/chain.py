"""The fallback chain of one region: primary, fallbacks, then last-known-good.

Every refresh walks the chain in order and takes the first provider that
has a usable reading: a fresh cached one (polled less than a TTL ago), or a
new one if the provider may be polled now. A provider that fails is backed
off (see :class:`carbon_feed.cache.PollGate`) and the walk moves on; only
when every provider fails is the on-disk last-known-good reading served,
under the source ``last-known-good:<provider>``. Whatever is returned
names where it came from and whether it was a fallback.

Readings are checked here before they count as good: the right region, a
forecast that forms a series, and an ``observed_at`` not further in the
future than the allowed clock skew. A rejected reading is logged with the
reason and counted; it never reaches the cache, the disk or the snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from carbon_feed import cache, document, errors, metrics, model, source
from planner import series

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolved:
    """What a region publishes this refresh, and where it came from."""

    reading: model.Reading
    source_label: str
    fallback_used: bool


@dataclass(frozen=True)
class ChainParts:
    """The shared state every region's chain uses (one of each per feed)."""

    readings: cache.TtlCache
    gate: cache.PollGate
    last_known_good: cache.LastKnownGood
    metrics: metrics.FeedMetrics
    max_clock_skew_s: float = 300.0


class RegionChain:
    """Resolves one region through its providers, in order."""

    def __init__(self, *, region: str, sources: Sequence[source.IntensitySource], parts: ChainParts) -> None:
        if not sources:
            raise errors.ConfigError(f"region {region!r} has no providers")
        self.region = region
        self.sources = tuple(sources)
        self._parts = parts

    def resolve(self, *, now: datetime) -> Resolved | None:
        """The best reading available now; None when no provider and no cache has one."""
        for position, provider in enumerate(self.sources):
            reading = self._from(provider, now=now)
            if reading is not None:
                return self._served(reading, reading.source, fallback=position > 0)
        kept = self._parts.last_known_good.get(self.region)
        if kept is None:
            return None
        return self._served(kept, document.LAST_KNOWN_GOOD + kept.source, fallback=True)

    def _served(self, reading: model.Reading, label: str, *, fallback: bool) -> Resolved:
        if fallback:
            self._parts.metrics.fallbacks.labels(self.region, label).inc()
        return Resolved(reading=reading, source_label=label, fallback_used=fallback)

    def _from(self, provider: source.IntensitySource, *, now: datetime) -> model.Reading | None:
        key = (provider.name, self.region)
        cached = self._parts.readings.fresh(key, now=now)
        if cached is not None:
            return cached
        if not self._parts.gate.may_poll(key, now=now):
            return None
        try:
            reading = self._checked(provider.fetch(self.region, now=now), now=now)
        except errors.ProviderError as error:
            self._failed(provider.name, key, error, now=now)
            return None
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            # A shape the provider's parser did not foresee: its answer, not the feed, is broken.
            unforeseen = errors.MalformedResponse(f"{provider.name}: unexpected answer ({error!r})")
            self._failed(provider.name, key, unforeseen, now=now)
            return None
        self._parts.metrics.fetches.labels(provider.name, "ok").inc()
        self._parts.gate.succeeded(key, now=now)
        self._parts.readings.put(key, reading, now=now)
        self._parts.last_known_good.put(reading)
        return reading

    def _checked(self, reading: model.Reading, *, now: datetime) -> model.Reading:
        if reading.region != self.region:
            raise errors.MalformedResponse(f"{reading.source}: answered for {reading.region!r}, "
                                           f"not {self.region!r}")
        skew = (reading.observed_at - now).total_seconds()
        if skew > self._parts.max_clock_skew_s:
            raise errors.ClockSkewError(
                f"{reading.source}: {self.region} observed_at {reading.observed_at:%Y-%m-%dT%H:%M:%SZ} "
                f"is {skew:.0f} s ahead of now (allowed {self._parts.max_clock_skew_s:.0f} s); "
                "check the clocks; reading rejected"
            )
        try:
            reading.series()
        except series.SeriesError as error:
            raise errors.MalformedResponse(f"{reading.source}: forecast for {self.region}: {error}") from error
        return reading

    def _failed(self, name: str, key: cache.Key, error: errors.ProviderError, *, now: datetime) -> None:
        m = self._parts.metrics
        m.fetches.labels(name, "error").inc()
        m.errors.labels(name, error.kind).inc()
        delay = self._parts.gate.failed(key, error, now=now)
        retry_at = (now + timedelta(seconds=delay)).strftime("%H:%M:%SZ")
        if isinstance(error, errors.UnitError):
            m.unit_rejections.labels(name).inc()
            log.error("rejected reading for %s from %s (unit): %s", self.region, name, error)
        elif isinstance(error, errors.RejectedReading):
            log.error("rejected reading for %s from %s: %s", self.region, name, error)
        else:
            log.warning("%s failed for %s (%s): %s; next try at %s", name, self.region, error.kind,
                        error, retry_at)
