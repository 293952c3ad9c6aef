"""The controller's probes and metrics: ``/healthz``, ``/readyz``, ``/metrics`` on ``deferral.bind``.

Answering HTTP proves only that a thread serves HTTP. What must keep going
is the reconciler loop (it renews the Lease and keeps every deadline) and
the two watches (they tell it what exists). So:

- ``/healthz`` (liveness) fails when the loop has not finished a step for
  ten lease durations, or a watch thread died or has shown no sign of life
  for longer than its longest quiet stream plus a full back-off. A restart
  helps then; it does not help when the API server is down, and a watch that
  keeps retrying against a dead API server is alive.
- ``/readyz`` (readiness) also needs every watch to have listed once, so a
  new pod is not counted available before it knows what it holds.

Both answer JSON saying why, and whether this replica leads.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import prometheus_client

from carbongate import settings as settings_mod
from deferral import clock, controller, watch

log = logging.getLogger(__name__)

LOOP_LEASES = 10  # lease durations without a step before the loop counts as stuck


@dataclass(frozen=True)
class Limits:
    """Seconds without progress after which the loop, or a watch, counts as stuck."""

    loop_s: float
    watch_s: float

    @classmethod
    def from_settings(cls, section: settings_mod.DeferralSettings) -> Limits:
        # A quiet cluster sends nothing for a whole stream (at most the watch
        # timeout, and a resync ends it sooner), which is then reopened,
        # perhaps after the longest back-off, each call bounded by the
        # request timeout.
        longest_stream = min(section.watch_timeout_s, section.resync_s) + 1
        return cls(loop_s=LOOP_LEASES * section.lease_duration_s,
                   watch_s=longest_stream + section.watch_backoff_max_s + 2 * section.request_timeout_s)


class Probes:
    """Liveness and readiness of one controller and its watchers."""

    def __init__(self, *, reconciler: controller.Controller, watchers: Sequence[watch.Watcher],
                 limits: Limits, now: Callable[[], float] = clock.monotonic) -> None:
        self._reconciler = reconciler
        self._watchers = tuple(watchers)
        self._limits = limits
        self._now = now

    def live(self) -> tuple[bool, dict[str, Any]]:
        now = self._now()
        loop_age = now - self._reconciler.last_step
        problems = [f"reconciler loop has not stepped for {loop_age:.0f}s"] if loop_age > self._limits.loop_s else []
        watches: dict[str, Any] = {}
        for watcher in self._watchers:
            age = now - watcher.last_progress
            watches[watcher.kind] = {"alive": watcher.alive(), "synced": watcher.synced,
                                     "progress_age_s": round(age, 1)}
            if not watcher.alive():
                problems.append(f"{watcher.kind} watch thread is not running")
            elif age > self._limits.watch_s:
                problems.append(f"{watcher.kind} watch has shown no progress for {age:.0f}s")
        body = {"status": "ok" if not problems else "stuck", "problems": problems,
                "leader": self._reconciler.leading, "loop_age_s": round(loop_age, 1), "watches": watches}
        return not problems, body

    def ready(self) -> tuple[bool, dict[str, Any]]:
        ok, body = self.live()
        unsynced = [w.kind for w in self._watchers if not w.synced]
        if unsynced:
            body["problems"].append(f"not listed yet: {', '.join(unsynced)}")
            body["status"] = "starting" if ok else body["status"]
        return ok and not unsynced, body


class Server:
    """The HTTP endpoint, on its own daemon thread."""

    def __init__(self, *, bind: str, probes: Probes, registry: prometheus_client.CollectorRegistry) -> None:
        host, _, port = bind.rpartition(":")
        checks = {"/healthz": probes.live, "/readyz": probes.ready}
        self._server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), _handler(checks, registry))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="deferral-http",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


Check = Callable[[], tuple[bool, dict[str, Any]]]


def _handler(checks: dict[str, Check],
             registry: prometheus_client.CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    """prometheus_client's own handler for /metrics; the probes answer JSON; the rest is 404."""
    metrics_handler: type[BaseHTTPRequestHandler] = prometheus_client.MetricsHandler.factory(registry)

    class Handler(metrics_handler):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                super().do_GET()
            elif path in checks:
                ok, body = checks[path]()
                self._answer(200 if ok else 503, json.dumps(body).encode())
            else:
                self.send_error(404)

        def _answer(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("deferral http: " + format, *args)

    return Handler
