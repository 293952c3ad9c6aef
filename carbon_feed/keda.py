"""KEDA's External Scaler gRPC service, served by the feed from the snapshot it publishes.

KEDA has no carbon trigger; it calls external scalers over gRPC
(``externalscaler.ExternalScaler``, the proto beside this module, verbatim
from KEDA). :class:`ScalerState` is one more publisher sink: every snapshot
the feed hands the webhook's file and OPA is handed here too, so KEDA is
answered from the same document admission decides on. The answers
themselves are :mod:`carbon_feed.scaler`'s.

``StreamIsActive`` (KEDA's ``external-push`` trigger) sends the current
state at once, then a new message the moment a published snapshot, or the
passing of time (data going stale, the forecast window moving), changes it.

Bad trigger metadata is an ``INVALID_ARGUMENT`` error naming the key: KEDA
shows it on the ScaledObject. A location the feed does not serve is one too,
so a typo is not silently treated as "no data".
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc

from carbon_feed import scaler
from carbongate import clock as clock_mod
from carbongate import settings as settings_mod
from planner import snapshot as contract

log = logging.getLogger(__name__)

PROTO = "carbon_feed/externalscaler.proto"
pb2, pb2_grpc = grpc.protos_and_services(PROTO)  # compiled from the proto at import (grpcio-tools)
SERVICE = "externalscaler.ExternalScaler"


class ScalerState:
    """The latest published snapshot (a publisher sink) and a way to wait for the next one."""

    target = "keda"

    def __init__(self, *, regions: frozenset[str], clock: clock_mod.Clock, grace_s: int,
                 when_stale: scaler.StaleRule) -> None:
        self.regions = regions
        self.clock = clock
        self.grace_s = grace_s
        self.when_stale = when_stale
        self._changed = threading.Condition()
        self._grid: contract.GridSnapshot | None = None
        self.version = 0
        self.closed = False

    def put(self, document: contract.GridSnapshot) -> None:
        with self._changed:
            self._grid = document
            self.version += 1
            self._changed.notify_all()

    def close(self) -> None:
        """Wake every stream so it can end."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait(self, seen: int, timeout_s: float) -> int:
        """Block until a snapshot newer than ``seen`` (or the timeout); the version now."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != seen or self.closed, timeout=timeout_s)
            return self.version

    def verdict(self, trigger: scaler.Trigger) -> scaler.Verdict:
        with self._changed:
            grid = self._grid
        return scaler.evaluate(grid, trigger, now=self.clock.now(), grace_s=self.grace_s,
                               when_stale=self.when_stale)


class ExternalScaler(pb2_grpc.ExternalScalerServicer):  # type: ignore[misc,name-defined]
    """The four calls KEDA makes, each answered from :class:`ScalerState`."""

    def __init__(self, state: ScalerState, *, recheck_s: float) -> None:
        self._state = state
        self._recheck_s = recheck_s

    def IsActive(self, request: Any, context: grpc.ServicerContext) -> Any:
        verdict = self._state.verdict(self._trigger(request, context))
        return pb2.IsActiveResponse(result=verdict.active)

    def StreamIsActive(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        trigger = self._trigger(request, context)
        seen = self._state.version
        last: bool | None = None
        while context.is_active() and not self._state.closed:
            verdict = self._state.verdict(trigger)
            if verdict.active != last:
                log.info("keda %s/%s: %s", request.namespace, request.name, scaler.verdict_text(verdict))
                last = verdict.active
                yield pb2.IsActiveResponse(result=verdict.active)
            seen = self._state.wait(seen, self._recheck_s)

    def GetMetricSpec(self, request: Any, context: grpc.ServicerContext) -> Any:
        trigger = self._trigger(request, context)
        spec = pb2.MetricSpec(metricName=trigger.metric_name, targetSize=1, targetSizeFloat=1.0)
        return pb2.GetMetricSpecResponse(metricSpecs=[spec])

    def GetMetrics(self, request: Any, context: grpc.ServicerContext) -> Any:
        trigger = self._trigger(request.scaledObjectRef, context)
        verdict = self._state.verdict(trigger)
        value = pb2.MetricValue(metricName=request.metricName or trigger.metric_name,
                                metricValue=math.ceil(verdict.metric_value),
                                metricValueFloat=verdict.metric_value)
        return pb2.GetMetricsResponse(metricValues=[value])

    def _trigger(self, ref: Any, context: grpc.ServicerContext) -> scaler.Trigger:
        try:
            trigger = scaler.parse_trigger(dict(ref.scalerMetadata))
        except scaler.TriggerError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{ref.namespace}/{ref.name}: {error}")
        if trigger.location not in self._state.regions:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"{ref.namespace}/{ref.name}: location {trigger.location!r} is not served by this "
                          f"feed; it serves {', '.join(sorted(self._state.regions))}")
        return trigger


class ScalerServer:
    """The gRPC server on ``feed.keda_bind``; :meth:`stop` ends open streams first."""

    def __init__(self, state: ScalerState, *, bind: str, recheck_s: float, max_streams: int) -> None:
        self.state = state
        # One thread per open stream, plus a few for the unary calls.
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_streams + 4,
                                                             thread_name_prefix="keda"))
        pb2_grpc.add_ExternalScalerServicer_to_server(ExternalScaler(state, recheck_s=recheck_s), self.server)
        self.port = self.server.add_insecure_port(bind)
        if self.port == 0:
            raise OSError(f"cannot listen for KEDA on {bind}")

    def start(self) -> None:
        self.server.start()

    def stop(self, grace_s: float = 2.0) -> None:
        self.state.close()
        self.server.stop(grace_s).wait(grace_s + 1)


def attach(feed: Any, settings: settings_mod.Settings) -> ScalerServer | None:
    """The scaler for a running feed (``feed.keda_bind`` set), fed by its publisher; None when off."""
    feed_settings = settings.feed
    if not feed_settings.keda_bind:
        return None
    state = ScalerState(regions=frozenset(c.region for c in feed.chains), clock=feed.clock,
                        grace_s=settings.grid.stale_grace_s, when_stale=feed_settings.keda_when_stale)
    if feed.snapshot is not None:
        state.put(feed.snapshot)
    feed.publisher.add(state)
    server = ScalerServer(state, bind=feed_settings.keda_bind, recheck_s=feed_settings.tick_s,
                          max_streams=feed_settings.keda_max_streams)
    log.info("KEDA external scaler (%s) listening on %s", SERVICE, feed_settings.keda_bind)
    return server
