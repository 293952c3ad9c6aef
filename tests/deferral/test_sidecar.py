"""The controller's HTTP endpoint exports the policy engine's metrics beside its own.

The release policy is evaluated in the controller's process, so the policy
engine's series (which count into the process's default registry) must be
scraped from the controller's ``/metrics`` (deferral/health.py over
carbongate/sidecar.py), as ``python -m deferral`` serves it.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import prometheus_client

from deferral import health
from policy_engine import engine as engine_mod
from tests.deferral.conftest import Cluster, Replica


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def _scrape(replica: Replica, **registries: prometheus_client.CollectorRegistry) -> tuple[int, str]:
    server = health.Server(
        bind="127.0.0.1:0", registry=replica.metrics.registry,
        probes=health.Probes(reconciler=replica.running.controller, watchers=replica.running.watchers,
                             limits=health.Limits(loop_s=60, watch_s=60)), **registries)
    server.start()
    try:
        return _get(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.stop()


def test_metrics_export_the_controllers_and_the_policy_engines_series(
        cluster: Cluster, release_engine: engine_mod.PolicyEngine) -> None:
    replica = cluster.start(engine=release_engine)
    release_engine.evaluate(engine_mod.RELEASE_DECISION, {})
    status, text = _scrape(replica, engine_registry=prometheus_client.REGISTRY)
    assert status == 200
    assert "carbongate_deferral_deadline_misses_total" in text  # the controller's registry
    assert 'carbongate_policy_eval_seconds_count{engine="embedded"}' in text  # the engine's


def test_without_the_engine_registry_only_the_controllers_series_are_served(cluster: Cluster) -> None:
    status, text = _scrape(cluster.start(engine=None))
    assert status == 200
    assert "carbongate_deferral_deadline_misses_total" in text
    assert "carbongate_policy_eval_seconds" not in text
