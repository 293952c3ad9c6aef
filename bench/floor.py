"""The floor: a no-op admission webhook on exactly carbongate's server setup.

``python -m bench.floor --config FILE`` serves, under the same gunicorn
options as ``python -m webhook`` (the worker class of ``webhook.worker_class``,
TLS 1.2+, keep-alive, workers and threads from the settings), a Flask app that reads the review and allows it
unchanged. ``create`` is the same app for other servers (granian's
``--factory``). What carbongate costs above this is carbongate's own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flask import Flask, Response, request


def create() -> Flask:
    """A webhook that decides nothing: parse, answer allowed, serialise."""
    app = Flask(__name__)

    @app.post("/mutate")
    def mutate() -> Response:
        review = json.loads(request.get_data())
        uid = review.get("request", {}).get("uid", "")
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": uid, "allowed": True}}
        return Response(json.dumps(body, separators=(",", ":")), content_type="application/json")

    @app.get("/readyz")
    def readyz() -> Response:
        return Response('{"ready":true}', content_type="application/json")

    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args()

    from carbongate import settings as settings_mod
    from webhook import server

    settings = settings_mod.load(config_file=args.config)
    settings.webhook.metrics_dir.mkdir(parents=True, exist_ok=True)
    server.WebhookServer(settings, dev=False, app_factory=create).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
