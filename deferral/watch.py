"""List, then watch from the list's resourceVersion; relist on 410 Gone; back off on errors.

This is the informer pattern of client-go, reduced to what the controller
needs. A ``sync`` hands over the whole listed state (objects that vanished
while the watch was down disappear with it); each watch event hands over one
object. A stream that ends (server timeout, dropped connection) is resumed
from the last resourceVersion seen, a BOOKMARK advances it without an object,
an ``ERROR`` event with code 410 (the version was compacted away) forces a
relist, and any other failure waits with exponential back-off (capped, with
jitter) before relisting. A full relist also happens every ``resync_s``, so
an event lost for any reason is repaired.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from carbongate import clock
from carbongate import kube as k8s
from deferral import kube, workloads
from deferral import metrics as metrics_mod

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]

# Failures after which the watcher backs off and relists (ValueError: a line that is not JSON).
_RETRIED: tuple[type[BaseException], ...] = (*kube.API_ERRORS, ValueError)


class Sink(Protocol):
    """Where the watcher delivers what it learns (thread-safe on the receiving side)."""

    def sync(self, kind: workloads.Kind, items: list[dict[str, Any]]) -> None:
        ...

    def event(self, kind: workloads.Kind, type_: EventType, obj: dict[str, Any]) -> None:
        ...


@dataclass(frozen=True)
class WatchConfig:
    timeout_s: int = 300
    resync_s: float = 600.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


class Gone(Exception):
    """The watch's resourceVersion is too old (410): only a relist can continue."""


class Watcher:
    """One resource kind, listed and watched in its own thread."""

    def __init__(self, *, kind: workloads.Kind, gateway: kube.Gateway, sink: Sink,
                 config: WatchConfig, metrics: metrics_mod.Metrics) -> None:
        self.kind = kind
        self._gateway = gateway
        self._sink = sink
        self._config = config
        self._metrics = metrics
        self._stop = threading.Event()
        self._response: kube.Response | None = None
        self._thread: threading.Thread | None = None
        # For the probes (deferral.health): listed at least once, and the
        # monotonic second of the last sign of life (a list, a stream opened
        # or ended, an event, a retry).
        self.synced = False
        self.last_progress: float = clock.monotonic()

    def alive(self) -> bool:
        """The watch thread runs (it only ends when stopped)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"watch-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the loop and break an open stream at once."""
        self._stop.set()
        response = self._response
        if response is not None:
            _shutdown(response)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def run(self) -> None:
        delay = self._config.backoff_initial_s
        while not self._stop.is_set():
            try:
                self._list_and_watch()
                delay = self._config.backoff_initial_s
            except Gone:
                self._metrics.watch_restarts.labels(kind=self.kind, cause="gone").inc()
                log.info("%s watch expired (410): relisting", self.kind)
            except _RETRIED as error:
                if self._stop.is_set():
                    return  # the stream was broken on purpose
                self.last_progress = clock.monotonic()
                self._metrics.watch_restarts.labels(kind=self.kind, cause="error").inc()
                self._metrics.api_errors.labels(operation=f"watch-{self.kind}").inc()
                log.warning("%s watch failed (%s): retrying in %.1fs", self.kind, error, delay)
                self._stop.wait(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self._config.backoff_max_s)

    def _list_and_watch(self) -> None:
        listing = self._gateway.list(self.kind)
        self._sink.sync(self.kind, listing.items)
        self.synced = True
        self.last_progress = clock.monotonic()
        version = listing.resource_version
        listed_at = clock.monotonic()
        while not self._stop.is_set():
            if clock.monotonic() - listed_at >= self._config.resync_s:
                self._metrics.watch_restarts.labels(kind=self.kind, cause="resync").inc()
                return
            remaining = self._config.resync_s - (clock.monotonic() - listed_at)
            version = self._stream(version, timeout=max(1, int(min(self._config.timeout_s,
                                                                    remaining + 1))))

    def _stream(self, version: str, *, timeout: int) -> str:
        """Deliver one stream's events; returns the last resourceVersion seen."""
        response = self._gateway.watch(self.kind, resource_version=version, timeout_s=timeout)
        self._response = response
        self.last_progress = clock.monotonic()
        try:
            lines: Any = k8s.iter_resp_lines  # untyped in the client
            for line in lines(response):
                if self._stop.is_set():
                    break
                if line:
                    version = self._handle(json.loads(line), version)
        finally:
            self._response = None
            self.last_progress = clock.monotonic()
            response.close()
            response.release_conn()
        return version

    def _handle(self, event: dict[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message", "gone"))
            raise k8s.ApiException(status=obj.get("code", 500),
                                                 reason=str(obj.get("message")))
        new_version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._sink.event(self.kind, kind, obj)
        return new_version


def _shutdown(response: kube.Response) -> None:
    """Break a blocked read from another thread, as the client's ``Watch.stop`` does.

    The socket is the connection's while it is kept alive; when the server
    said ``Connection: close`` the connection lets go of it and only the
    response's file object still holds it.
    """
    import socket

    connection: Any = getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        raw = getattr(getattr(getattr(response, "_fp", None), "fp", None), "raw", None)
        sock = getattr(raw, "_sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
