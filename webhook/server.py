"""gunicorn, configured for an admission webhook.

Why these choices:
- The ``asgi`` worker (``webhook.worker_class``, webhook/worker.py) runs the
  TLS handshake and reads each request, headers and body, in an event loop,
  with handshake, header and body timeouts; only a whole request reaches one
  of ``webhook.threads`` decision threads (webhook/bridge.py). With
  ``gthread`` the pool threads that decide also handshake and read, so a few
  dozen clients that stop halfway leave no thread for the API server
  (measured: docs/performance.md, "Slow clients"). gthread stays selectable
  to compare against.
- Keep-alive: the API server reuses its connections, and a TLS handshake per
  request cut a no-op Flask webhook from 4.7k to 0.4k requests/s on this
  hardware. ``keepalive`` is longer than the API server's idle timeout
  (90 s), so the server, not us, decides when an idle connection goes.
- TLS 1.2 or newer, forward-secret AEAD ciphers only; the API server's client
  certificate is verified when a CA bundle is configured (mTLS).
- The app (and so the embedded OPA engine) is created in each worker after
  the fork (no ``preload_app``): the Go runtime does not survive a fork.
- With ``dev``, the master runs the carbon feed over the bundled demo traces
  and writes the snapshot file every worker reads.
"""

from __future__ import annotations

import logging
import shutil
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from carbongate import settings as settings_mod

log = logging.getLogger(__name__)

MODERN_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


# How long a worker may finish its requests after SIGTERM; the deployment's
# preStop pause plus this must fit terminationGracePeriodSeconds.
GRACEFUL_TIMEOUT_S = 20
# Longer than the API server's 90 s idle timeout: it closes idle connections, not us.
KEEPALIVE_S = 120


def tls_context(settings: settings_mod.WebhookSettings) -> Any:
    """The ``ssl_context`` hook: TLS 1.2+, modern ciphers, optional client certificates."""

    def build(_: Any, default_factory: Any) -> ssl.SSLContext:
        context: ssl.SSLContext = default_factory()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(MODERN_CIPHERS)
        context.options |= ssl.OP_NO_COMPRESSION
        if settings.client_ca_file:
            context.load_verify_locations(cafile=str(settings.client_ca_file))
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    return build


def options(settings: settings_mod.Settings, *, dev: bool) -> dict[str, Any]:
    """gunicorn settings from carbongate settings."""
    web = settings.webhook
    feed_handle: dict[str, Any] = {}

    def on_starting(_: Any) -> None:
        _reset_metrics_dir(web.metrics_dir)
        if dev:
            from carbon_feed import service as feed_service

            feed_handle["feed"] = feed_service.start_in_background(settings)

    def on_exit(_: Any) -> None:
        feed = feed_handle.get("feed")
        if feed is not None:
            feed.stop()

    def child_exit(_: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    return {
        "bind": web.bind,
        "workers": web.workers,
        **_worker_options(web),
        "keepalive": KEEPALIVE_S,
        "timeout": 30,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "certfile": str(web.certfile),
        "keyfile": str(web.keyfile),
        "ssl_context": tls_context(web),
        "limit_request_line": 8190,
        "accesslog": None,
        "errorlog": "-",
        # No runtime-management socket: one more way in, a file in $HOME that a
        # read-only root filesystem refuses, and a path two servers would share.
        "control_socket_disable": True,
        "on_starting": on_starting,
        "on_exit": on_exit,
        "child_exit": child_exit,
    }


def _worker_options(web: settings_mod.WebhookSettings) -> dict[str, Any]:
    if web.worker_class == "gthread":
        return {"worker_class": "gthread", "threads": web.threads}
    from webhook import worker

    # The decision threads are the bridge's (``serving_app``); no ASGI lifespan to run.
    return {"worker_class": worker.worker_class(web), "asgi_lifespan": "off"}


def serving_app(app: Any, web: settings_mod.WebhookSettings) -> Any:
    """What the worker serves: the WSGI app itself (gthread) or behind the bridge (asgi)."""
    if web.worker_class == "gthread":
        return app
    from webhook import bridge

    return bridge.WsgiBridge(app, threads=web.threads, max_body_bytes=web.max_body_bytes,
                             body_timeout_s=web.body_timeout_s)


def _reset_metrics_dir(directory: Path) -> None:
    """Worker files from an earlier run would be summed into this one's counters."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


class WebhookServer(BaseApplication):  # type: ignore[misc]
    """gunicorn's programmatic entry point, with our options and app factory.

    ``app_factory`` (the benchmark's no-op floor) replaces carbongate's app; it
    is called in each worker, after the fork, as carbongate's is.
    """

    def __init__(self, settings: settings_mod.Settings, *, dev: bool,
                 app_factory: Callable[[], Any] | None = None) -> None:
        self._settings = settings
        self._options = options(settings, dev=dev)
        self._app_factory = app_factory
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        if self._app_factory is not None:
            return serving_app(self._app_factory(), self._settings.webhook)
        from webhook import app

        flask_app = app.create_app(self._settings, multiprocess_dir=self._settings.webhook.metrics_dir)
        return serving_app(flask_app, self._settings.webhook)
