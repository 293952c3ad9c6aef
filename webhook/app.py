"""The Flask app: HTTP in, HTTP out, and nothing else.

``create_app`` builds everything (the flask tutorial's pattern); the routes
only read the body, call the service and serialise. This is the one place
where errors become status codes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from carbongate import clock as clock_mod
from carbongate import settings as settings_mod
from webhook import admission, bodies, metrics, service, state

log = logging.getLogger(__name__)

JSON = "application/json"


def create_app(
    settings: settings_mod.Settings | None = None,
    *,
    engine: Any | None = None,
    namespace_reader: state.NamespaceReader | None = None,
    energy_kwh: admission.EnergyEstimate | None = None,
    clock: clock_mod.Now = clock_mod.utc_now,
    multiprocess_dir: Path | None = None,
    start_background: bool = True,
) -> Flask:
    """Build the webhook app; dependencies may be injected (tests, the CLI)."""
    settings = settings or settings_mod.load()
    admission_service = service.AdmissionService(
        settings=settings,
        engine=engine if engine is not None else _build_engine(settings, start_background),
        namespace_labels=state.NamespaceLabels(
            reader=namespace_reader or _namespace_reader(settings),
            ttl_s=settings.webhook.namespace_cache_ttl_s,
        ),
        energy_kwh=energy_kwh or _energy_model(settings),
        clock=clock,
    )
    if start_background:
        admission_service.start_sync()
    else:
        admission_service.sync_data()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.webhook.max_body_bytes
    app.extensions["carbongate"] = admission_service
    _routes(app, admission_service, multiprocess_dir)
    return app


def _routes(app: Flask, admission_service: service.AdmissionService, multiprocess_dir: Path | None) -> None:
    limit = admission_service.settings.webhook.max_body_bytes
    body_timeout_s = admission_service.settings.webhook.body_timeout_s

    @app.post("/mutate")
    def mutate() -> Response:
        if request.content_length is not None and request.content_length > limit:
            return _refuse(413, f"body over {limit} bytes")
        try:
            body = bodies.read(request.environ, limit=limit, timeout_s=body_timeout_s)
        except bodies.TooLarge:
            return _refuse(413, f"body over {limit} bytes")
        except bodies.Unreadable as error:
            return _refuse(400, str(error))
        status, document = admission_service.handle(body)
        return _json(status, document)

    @app.get("/healthz")
    def healthz() -> Response:
        return _json(200, {"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        ready = admission_service.ready
        return _json(200 if ready else 503, {
            "ready": ready,
            "policies": admission_service.engine.version if admission_service.engine.ready else None,
            "grid": admission_service.grid.value is not None,
        })

    @app.get("/metrics")
    def metrics_page() -> Response:
        payload, content_type = metrics.exposition(multiprocess_dir)
        return Response(payload, status=200, content_type=content_type)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        """Werkzeug's own refusals (413, a client gone mid-body, 404, 405) as JSON too."""
        status = error.code or 400
        if status == 413:
            return _refuse(413, f"body over {limit} bytes")
        if status == 400:
            return _refuse(400, str(error.description or error))
        return _json(status, {"error": str(error.description or error.name)})


def _refuse(status: int, message: str) -> Response:
    """A 400 or 413 with a JSON body, counted in ``carbongate_bad_requests_total``.

    A body left half read is gunicorn's to deal with: it closes a connection
    whose body read raised, and drains (bounded) or closes one left unread.
    """
    metrics.BAD_REQUESTS.inc()
    return _json(status, {"error": message})


def _json(status: int, document: Any) -> Response:
    return Response(json.dumps(document, separators=(",", ":")), status=status, content_type=JSON)


def _build_engine(settings: settings_mod.Settings, watch: bool) -> Any:
    """The engine, watched for both kinds: an OPA sidecar that restarted has forgotten our
    policies, and only the watcher pushes them again (else every review fails open)."""
    import policy_engine

    engine = policy_engine.build(settings.engine)
    if watch:
        engine.start_watching(settings.engine.reload_interval_s)
    return engine


def _namespace_reader(settings: settings_mod.Settings) -> state.NamespaceReader:
    if settings.webhook.namespace_labels_source == "api":
        from carbongate import kube

        return state.kubernetes_namespace_reader(
            api_client=kube.api_client(settings.kube),
            timeout_s=settings.webhook.decision_deadline_ms / 1000)
    if settings.webhook.namespace_labels_source == "file":
        if settings.webhook.namespace_labels_file is None:
            raise settings_mod.SettingsError(
                "webhook.namespace_labels_source = 'file' needs webhook.namespace_labels_file")
        return state.file_namespace_reader(settings.webhook.namespace_labels_file)
    return state.no_namespace_labels


def _energy_model(settings: settings_mod.Settings) -> Callable[[Any, int], float]:
    from planner import energy

    model = energy.load(settings.governance.energy_model_file)
    return lambda obj, duration_s: model.energy_kwh(obj, duration_s)
