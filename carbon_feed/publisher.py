"""Hand the grid snapshot to whoever decides: a file, an embedded engine, an OPA server.

Each target is a :class:`Sink`. The publisher gives every sink the same
document and isolates their failures: an OPA server that is down must not
stop the snapshot file from being written, and neither may stop the feed.
Failures are logged and counted (``carbongate_feed_publishes_total``); the
webhook meanwhile keeps answering from the data it has, marked stale when it
ages past its provider's cadence plus ``grid.stale_grace_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import requests

from carbon_feed import metrics
from carbongate import files, opa_data
from planner import snapshot as contract

log = logging.getLogger(__name__)

DATA_ROOT = "grid"
PATH = "carbongate/" + DATA_ROOT


class PublishError(Exception):
    """A sink could not take the document; the message says which and why."""


class Sink(Protocol):
    """Somewhere a snapshot goes."""

    @property
    def target(self) -> str:
        """Label for logs and metrics: ``file``, ``opa`` or ``embedded``."""
        ...

    def put(self, document: contract.GridSnapshot) -> None:
        """Store the document; raise :class:`PublishError` when that fails."""
        ...


class DataEngine(Protocol):
    """The part of :class:`policy_engine.engine.PolicyEngine` the feed uses."""

    def put_data(self, root: str, value: Mapping[str, Any]) -> None: ...


class SnapshotFile:
    """The atomic JSON file the webhook workers, the controller and ``grid show`` read."""

    target = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def put(self, document: contract.GridSnapshot) -> None:
        try:
            files.write_json(self.path, document)
        except (OSError, ValueError) as error:
            raise PublishError(f"cannot write snapshot {self.path}: {error}") from error


class EngineSink:
    """An in-process policy engine: ``put_data("grid", document)`` replaces ``data.carbongate.grid``."""

    target = "embedded"

    def __init__(self, engine: DataEngine) -> None:
        self.engine = engine

    def put(self, document: contract.GridSnapshot) -> None:
        try:
            self.engine.put_data(DATA_ROOT, document)
        except Exception as error:  # any engine failure: the feed must outlive its consumers
            raise PublishError(f"embedded engine refused the grid: {error}") from error


class OpaServer:
    """An OPA server (sidecar): ``PUT /v1/data/carbongate/grid``, a root of its own."""

    target = "opa"

    def __init__(self, *, url: str, token: str | None = None, timeout_s: float = 5.0,
                 session: requests.Session | None = None) -> None:
        self._client = opa_data.OpaDataClient(url=url, token=token, timeout_s=timeout_s, session=session)
        self.url = self._client.address(PATH)

    def put(self, document: contract.GridSnapshot) -> None:
        try:
            self._client.put(PATH, document)
        except opa_data.OpaDataError as error:
            raise PublishError(str(error)) from error


class Publisher:
    """Puts every snapshot into every sink, each failure on its own."""

    def __init__(self, sinks: Sequence[Sink], *, feed_metrics: metrics.FeedMetrics) -> None:
        self.sinks = tuple(sinks)
        self._metrics = feed_metrics

    def add(self, sink: Sink) -> None:
        """One more sink (the KEDA scaler joins a running feed's publisher)."""
        self.sinks = (*self.sinks, sink)

    def publish(self, document: contract.GridSnapshot) -> bool:
        """True when every sink took the document."""
        ok = True
        for sink in self.sinks:
            try:
                sink.put(document)
            except PublishError as error:
                ok = False
                self._metrics.publishes.labels(sink.target, "error").inc()
                log.error("publishing the grid to %s failed: %s", sink.target, error)
            else:
                self._metrics.publishes.labels(sink.target, "ok").inc()
        return ok
