"""The controller's HTTP sidecar: /healthz says whether it runs, /metrics exports the engine's figures too.

The release policy is evaluated in the controller's process, so the policy
engine's metrics (which count into the default registry) must be scraped
from the controller's /metrics, beside its own.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from deferral import metrics as metrics_mod
from deferral import service
from policy_engine import engine as engine_mod
from tests.deferral.conftest import Cluster


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_healthz_is_503_until_the_controller_runs_then_200_then_503_when_stopped(
        cluster: Cluster, release_engine: engine_mod.PolicyEngine) -> None:
    metrics = metrics_mod.Metrics()
    started: list[service.Running] = []
    server = service.http_sidecar("127.0.0.1:0", metrics=metrics,
                                  running=lambda: started[0] if started else None)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        status, body = _get(f"{base}/healthz")
        assert (status, json.loads(body)["status"]) == (503, "starting")
        replica = cluster.start(engine=release_engine)
        started.append(replica.running)
        status, body = _get(f"{base}/healthz")
        assert status == 200
        assert json.loads(body)["threads"] == {"reconciler": True, "watch-Pod": True, "watch-Job": True}
        replica.running.stop()
        assert _get(f"{base}/healthz")[0] == 503
    finally:
        server.stop()


def test_metrics_export_the_controllers_and_the_policy_engines_series(
        release_engine: engine_mod.PolicyEngine) -> None:
    metrics = metrics_mod.Metrics()
    release_engine.evaluate(engine_mod.RELEASE_DECISION, {})
    server = service.http_sidecar("127.0.0.1:0", metrics=metrics, running=lambda: None)
    server.start()
    try:
        status, text = _get(f"http://127.0.0.1:{server.port}/metrics")
        assert _get(f"http://127.0.0.1:{server.port}/nothing")[0] == 404
    finally:
        server.stop()
    assert status == 200
    assert "carbongate_deferral_deadline_misses_total" in text  # the controller's registry
    assert 'carbongate_policy_eval_seconds_count{engine="embedded"}' in text  # the engine's
