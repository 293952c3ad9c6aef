"""One fetcher per cluster: the feed sidecars elect a leader, only it polls the providers.

Every carbongate pod (webhook, deferral, governance, times their replicas)
carries a feed sidecar, and each publishes into its own pod's OPA and
snapshot file. Without coordination each would poll every provider once
per TTL: seven pollers of one paid API token in the prod overlay. With
``feed.lease_name`` set, the sidecars elect the holder of that Lease
(:mod:`carbongate.leases`, the same election as the deferral controller and
governance):

* the **leader** resolves every region through its provider chain, as a
  lone feed does, and writes the resolved readings to a ConfigMap
  (``feed.readings_configmap``, key ``readings.json``);
* a **follower** never polls a provider: it reads that ConfigMap and
  publishes the readings into its own OPA and file, computing staleness and
  best windows against its own clock as the leader does. It keeps what it
  read in its last-known-good cache, so it also survives a restart while
  the API server is away;
* when the leader goes, a follower takes the Lease over at most
  ``lease_duration_s + lease_renew_s`` after the last renewal (at once when
  the leader shut down cleanly and gave the Lease up), and polls on its next
  refresh, within ``feed.tick_s``. A new leader first reads the ConfigMap
  and serves readings fetched less than ``feed.ttl_s`` ago as they are, so a
  change of leader does not poll a provider twice within a TTL.

Why a ConfigMap and not the leader's HTTP endpoint: it outlives the leader
(followers keep serving the last readings while the election moves on),
needs no pod-to-pod traffic (the NetworkPolicy admits only the API server
and Prometheus to carbongate pods) and no discovery of who leads, and RBAC
can grant exactly one named object. Its limit is 1 MiB; a reading with a 48 h
forecast at 5-minute steps is about 40 kB, so some twenty regions fit.

A follower that cannot read the ConfigMap (API server down, RBAC missing)
logs it, counts it in ``carbongate_feed_shared_reads_total{outcome="error"}``
and serves what it read last, then its last-known-good readings: stale data
marked stale, never a poll.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge

from carbon_feed import cache, chain, document, errors, metrics, model
from carbongate import configmaps, leases
from carbongate import kube as k8s
from carbongate import settings as settings_mod
from planner import snapshot as contract

log = logging.getLogger(__name__)

SCHEMA = 1
CONFIGMAP_KEY = "readings.json"
CONFIGMAP_LABELS = {"app.kubernetes.io/name": "carbongate",
                    "app.kubernetes.io/part-of": "carbongate",
                    "app.kubernetes.io/component": "carbon-feed",
                    "app.kubernetes.io/managed-by": "carbongate-feed"}
READ_ERRORS: tuple[type[BaseException], ...] = (
    k8s.ApiException, OSError, ValueError, errors.ProviderError)

Shared = dict[str, chain.Resolved]


class SharedReadings:
    """The readings document in the ConfigMap: what the leader resolved, per region."""

    def __init__(self, target: configmaps.ConfigMapKey) -> None:
        self.target = target

    def publish(self, resolved: Mapping[str, chain.Resolved], *, leader: str,
                now: datetime) -> bool:
        """Write the readings unless the stored ones are the same (and by the same leader:
        who leads shows in the ConfigMap); True when written."""
        regions = {region: {"reading": model.to_document(r.reading),
                            "source_label": r.source_label, "fallback_used": r.fallback_used}
                   for region, r in sorted(resolved.items())}
        text = json.dumps({"schema": SCHEMA, "leader": leader,
                           "written_at": contract.format_time(now), "regions": regions},
                          separators=(",", ":"))
        return self.target.write(text, same=lambda stored: _content(stored) == (leader, regions))

    def read(self) -> Shared | None:
        """The stored readings; None when nothing was published yet.

        Raises ``ValueError`` or :class:`carbon_feed.errors.ProviderError` when
        the document does not fit, and the API's errors when it cannot be read.
        """
        text = self.target.read()
        if text is None:
            return None
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("schema") != SCHEMA:
            raise ValueError(f"{self.target.name}: not a schema {SCHEMA} readings document")
        found: Shared = {}
        for region, entry in (document.get("regions") or {}).items():
            found[str(region)] = chain.Resolved(
                reading=model.from_document(entry["reading"]),
                source_label=str(entry["source_label"]),
                fallback_used=bool(entry["fallback_used"]))
        return found


def _content(text: str | None) -> Any:
    """Who wrote a stored document and its regions; None when it cannot be read."""
    try:
        document = json.loads(text or "")
        return document.get("leader"), document.get("regions")
    except (ValueError, AttributeError):
        return None


class ClusterFetch:
    """Resolves the regions as leader (providers) or follower (the ConfigMap); see the module."""

    def __init__(self, *, shared: SharedReadings, elector: leases.Elector,
                 last_known_good: cache.LastKnownGood, feed_metrics: metrics.FeedMetrics,
                 ttl_s: float) -> None:
        self.shared = shared
        self.elector = elector
        self._last_known_good = last_known_good
        self._ttl = timedelta(seconds=ttl_s)
        self._last: Shared = {}
        self._was_leading = False
        self._leadership = leases.Leadership(candidate=elector, work=_idle, name="carbon-feed")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        registry = feed_metrics.registry
        self.leader_gauge = Gauge("carbongate_feed_leader",
                                  "1 while this feed holds the Lease and polls the providers",
                                  registry=registry)
        self.shared_reads = Counter("carbongate_feed_shared_reads_total",
                                    "Reads of the leader's readings ConfigMap by outcome "
                                    "(ok, missing, error)", ["outcome"], registry=registry)
        self.shared_writes = Counter("carbongate_feed_shared_writes_total",
                                     "Writes of the readings ConfigMap by this leader by outcome "
                                     "(ok, unchanged, error)", ["outcome"], registry=registry)

    # -- lifecycle ----------------------------------------------------------------

    def start(self, now: datetime) -> None:
        """Try for the Lease once now (so the first refresh knows its role), then keep at it."""
        self.elector.tick(now)
        self._thread = threading.Thread(target=self._leadership.run, args=(self._stop,),
                                        name="carbon-feed-election", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0, *, release_lease: bool = True) -> None:
        """Stop the election; the Lease is given up (unless ``release_lease=False``: a crash)."""
        self._leadership.release_on_exit = release_lease
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # -- resolving ----------------------------------------------------------------

    def resolve(self, chains: Sequence[chain.RegionChain], *,
                now: datetime) -> dict[str, chain.Resolved | None]:
        """Every region's reading for this refresh, by this feed's role."""
        leading = self.elector.is_leader(now)
        self.leader_gauge.set(1 if leading else 0)
        if leading != self._was_leading:
            log.info("carbon feed %s: %s", self.elector.identity,
                     "leading: polling the providers" if leading
                     else "following: reading the leader's readings")
        if leading:
            if not self._was_leading:
                self._read_shared()  # what the last leader fetched: not polled again this TTL
            result = self._lead(chains, now=now)
        else:
            self._read_shared()
            result = {c.region: self._follow(c.region) for c in chains}
        self._was_leading = leading
        return result

    def _lead(self, chains: Sequence[chain.RegionChain], *,
              now: datetime) -> dict[str, chain.Resolved | None]:
        result: dict[str, chain.Resolved | None] = {}
        for region_chain in chains:
            earlier = self._last.get(region_chain.region)
            if earlier is not None and now - earlier.reading.fetched_at < self._ttl \
                    and not earlier.source_label.startswith(document.LAST_KNOWN_GOOD):
                result[region_chain.region] = earlier
            else:
                result[region_chain.region] = region_chain.resolve(now=now)
        found = {region: r for region, r in result.items() if r is not None}
        self._publish(found, now=now)
        return result

    def _publish(self, found: Shared, *, now: datetime) -> None:
        try:
            written = self.shared.publish(found, leader=self.elector.identity, now=now)
        except (k8s.ApiException, OSError, configmaps.ConfigMapConflict) as error:
            self.shared_writes.labels("error").inc()
            log.warning("cannot share the readings in ConfigMap %s: %s; the followers keep "
                        "the last ones", self.shared.target.name, error)
        else:
            self.shared_writes.labels("ok" if written else "unchanged").inc()
        self._last.update(found)

    def _read_shared(self) -> None:
        try:
            found = self.shared.read()
        except READ_ERRORS as error:
            self.shared_reads.labels("error").inc()
            log.warning("cannot read the leader's readings from ConfigMap %s: %s; serving the "
                        "last ones", self.shared.target.name, error)
            return
        if found is None:
            self.shared_reads.labels("missing").inc()
            return
        self.shared_reads.labels("ok").inc()
        self._last.update(found)
        for resolved in found.values():
            if not resolved.source_label.startswith(document.LAST_KNOWN_GOOD):
                self._last_known_good.put(resolved.reading)

    def _follow(self, region: str) -> chain.Resolved | None:
        shared = self._last.get(region)
        if shared is not None:
            return shared
        kept = self._last_known_good.get(region)
        if kept is None:
            return None
        return chain.Resolved(reading=kept, source_label=document.LAST_KNOWN_GOOD + kept.source,
                              fallback_used=True)


def _idle(stop: threading.Event) -> None:
    """A feed leader's term has no work of its own: the refresh loop asks who leads."""
    stop.wait()


def build(settings: settings_mod.Settings, *, last_known_good: cache.LastKnownGood,
          feed_metrics: metrics.FeedMetrics,
          api_client: k8s.ApiClient | None = None) -> ClusterFetch | None:
    """The cluster fetch from ``[feed]`` settings; None without ``feed.lease_name``."""
    section = settings.feed
    if not section.lease_name:
        return None
    client = api_client or k8s.api_client(settings.kube)
    config = leases.lease_config(
        section="feed", namespace=section.namespace, name=section.lease_name,
        identity=section.identity, lease_duration_s=section.lease_duration_s,
        lease_renew_s=section.lease_renew_s)
    target = configmaps.ConfigMapKey(
        api=k8s.CoreV1Api(client), namespace=section.namespace,
        name=section.readings_configmap, key=CONFIGMAP_KEY, labels=CONFIGMAP_LABELS,
        timeout_s=section.request_timeout_s)
    return ClusterFetch(shared=SharedReadings(target),
                        elector=leases.Elector(api=k8s.CoordinationV1Api(client),
                                               config=config),
                        last_known_good=last_known_good, feed_metrics=feed_metrics,
                        ttl_s=section.ttl_s)
