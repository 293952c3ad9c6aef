"""Admission to release: what the webhook defers, the controller lets go on time.

The admission side is the webhook's own offline path (``carbongate review``:
the production ``admission.review`` with the shipped policies on the demo
traces) applied to AdmissionReviews captured from a v1.28 API server; its
patch is applied to the captured object, which is then stored in the API
double, where the controller takes over. Admission is at 2023-11-22 18:00 UTC
on the demo traces (GB 209 gCO2/kWh, cleanest hours after midnight), so a
tier-3 workload's latest start (12 h of delay) is 06:00 the next morning.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from carbongate import settings as settings_mod
from deferral import workloads
from policy_engine import embedded, opa_server
from tests.deferral import grid_files
from tests.deferral.conftest import START, Cluster
from tests.support.waiting import eventually
from webhook import offline

ADMITTED_AT = START + timedelta(hours=6)

CAPTURED = Path(__file__).resolve().parent.parent / "fixtures" / "admission" / "k8s-v1.28-loopback"
NAMESPACE_LABELS = {"carbongate.io/tier": "3", "carbongate.io/team": "ml"}


def _admitted(name: str) -> dict[str, Any]:
    """The captured object after the webhook's patch, as the API server would store it."""
    outcome = offline.review_file(CAPTURED / name, settings=settings_mod.load(environ={}),
                                  now=ADMITTED_AT, traces=(), namespace_labels=NAMESPACE_LABELS,
                                  budgets_file=None)
    decision = outcome.result.decision or {}
    assert decision.get("action") == "defer", outcome.as_text()
    stored: dict[str, Any] = jsonpatch.apply_patch(outcome.request.object, outcome.result.patch)
    for server_set in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
        stored["metadata"].pop(server_set, None)
    stored.pop("status", None)
    return stored


@pytest.fixture(scope="module")
def admitted() -> tuple[dict[str, Any], dict[str, Any]]:
    return _admitted("01_create-job_nightly-train.json"), _admitted("15_create-pod_gated-batch.json")


@pytest.fixture
def shipped_engine():
    built = embedded.EmbeddedEngine(policy_dir=settings_mod.DEFAULT_POLICY_DIR, pool_size=1)
    yield built
    built.close()


@pytest.fixture
def stopped_opa(release_policy_dir: Path) -> opa_server.OpaServerEngine:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return opa_server.OpaServerEngine(url=f"http://127.0.0.1:{port}",
                                      policy_dir=release_policy_dir, timeout_s=0.2)


def _start(cluster: Cluster, admitted, engine) -> Any:
    job, pod = admitted
    cluster.kube.api.seed(job)
    cluster.kube.api.seed(pod)
    cluster.clock.set(ADMITTED_AT)
    grid_files.publish(cluster.snapshot_path, grid_files.snapshot(ADMITTED_AT))
    return cluster.start(engine=engine)


def test_a_deferred_job_is_unsuspended_at_its_planned_window(cluster, admitted,
                                                              shipped_engine) -> None:
    job, _ = admitted
    assert job["spec"]["suspend"] is True
    window = workloads.parse_time(job["metadata"]["annotations"][workloads.NOT_BEFORE])
    replica = _start(cluster, admitted, shipped_engine)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Job") == 1)
    cluster.clock.set(window - timedelta(minutes=5))
    cluster.clock.advance(0)
    assert cluster.kube.api.get("Job", "ml-team", "nightly-train")["spec"]["suspend"] is True
    cluster.clock.set(window)
    eventually(lambda: cluster.kube.api.get("Job", "ml-team", "nightly-train")["spec"]["suspend"]
               is False)
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Job",
                                     reason="window-open") == 1)
    eventually(lambda: sorted(e["reason"] for e in cluster.kube.api.objects("Event")
                              if e["involvedObject"]["name"] == "nightly-train")
               == ["Deferred", "Released"])


def test_a_gated_pod_is_released_before_its_deadline_with_opa_stopped(cluster, admitted,
                                                                        stopped_opa) -> None:
    _, pod = admitted
    deadline = workloads.parse_time(pod["metadata"]["annotations"][workloads.DEADLINE])
    replica = _start(cluster, admitted, stopped_opa)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Pod") == 1)
    cluster.clock.set(deadline - timedelta(hours=3))
    cluster.clock.advance(0)
    assert workloads.gates(cluster.kube.api.get("Pod", "ml-team", "gated-batch"))
    # The deadline timer fires deadline_lead_s (30 s) before release_by = deadline - 1h
    # (the pod names no expected duration: the platform default applies).
    cluster.clock.set(deadline - timedelta(hours=1, seconds=30))
    eventually(lambda: not workloads.gates(cluster.kube.api.get("Pod", "ml-team", "gated-batch")))
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Pod",
                                     reason="deadline") == 1)
    text = replica.metrics.text()
    assert "carbongate_deferral_deadline_misses_total 0.0" in text
    assert 'carbongate_deferral_policy_failures_total{kind="error"}' in text
    released = eventually(lambda: [e for e in cluster.kube.api.objects("Event")
                                   if e["involvedObject"]["name"] == "gated-batch"
                                   and e["reason"] == "Released"])
    assert "released (deadline)" in released[0]["message"]
