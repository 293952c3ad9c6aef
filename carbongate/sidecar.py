"""The small HTTP server beside every long-running process: ``/healthz``, ``/metrics``, a few reads.

The feed, the deferral controller and governance each answer their probes and
Prometheus here (the webhook answers through gunicorn, its own server). The
registries to export are named explicitly: a process that builds metrics on
more than one registry (the controller's own and the policy engine's, which
counts into the default one) exports all of them, and a test builds a server
around a fresh registry without touching the process-wide one.

``/healthz`` answers what the process says about itself (its own function),
never merely that the server thread is up; a handful of extra read-only JSON
routes (governance's ``/budgets``) take the query string and answer
``(status, body)``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import prometheus_client

log = logging.getLogger(__name__)

Answer = tuple[int, Any]
"""An HTTP status and a JSON-serialisable body."""
Health = Callable[[], Answer]
Route = Callable[[Mapping[str, str]], Answer]


def parse_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (host optional: 127.0.0.1) -> (host, port); ValueError when the port is not one."""
    host, _, port = bind.rpartition(":")
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError(f"{bind!r}: the port must be 0..65535")
    return host.strip("[]") or "127.0.0.1", number


def metrics_text(registries: Sequence[prometheus_client.CollectorRegistry]) -> bytes:
    """The Prometheus text exposition of every registry, one after the other."""
    return b"".join(prometheus_client.generate_latest(registry) for registry in registries)


class Sidecar:
    """``/healthz``, ``/metrics`` and ``routes`` on ``bind``, served from a daemon thread."""

    def __init__(self, *, bind: str, name: str, health: Health,
                 registries: Sequence[prometheus_client.CollectorRegistry],
                 routes: Mapping[str, Route] | None = None) -> None:
        self.name = name
        self._routes: dict[str, Route] = {
            "/healthz": lambda _query: health(),
            **(routes or {}),
        }
        self._registries = tuple(registries)
        self.server = ThreadingHTTPServer(parse_bind(bind), self._handler())
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name=f"{self.name}-http",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def answer(self, target: str) -> tuple[int, bytes, str]:
        """Status, body and content type for a GET of ``target`` (path and query)."""
        parts = urlsplit(target)
        if parts.path == "/metrics":
            return 200, metrics_text(self._registries), prometheus_client.CONTENT_TYPE_LATEST
        route = self._routes.get(parts.path)
        if route is None:
            return 404, b'{"error": "not found"}\n', "application/json"
        try:
            status, body = route(dict(parse_qsl(parts.query)))
        except Exception as error:  # a broken route answers 500 and leaves the server up
            log.exception("%s: %s failed", self.name, parts.path)
            status, body = 500, {"error": f"{type(error).__name__}: {error}"}
        return status, json.dumps(body).encode("utf-8"), "application/json"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sidecar = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, content_type = sidecar.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(f"{sidecar.name} http: " + format, *args)

        return Handler
