"""Kueue-managed Jobs: held by Kueue's admission gates, never by carbongate touching ``spec.suspend``.

No Kueue can run here. The API double (tests/support/kube_api.py) enforces
Kueue's validation of ``kueue.x-k8s.io/admission-gated-by`` as KEP-6915
publishes it (set only at creation; afterwards names may only be removed),
and :func:`kueue_reconciles` below is a double of Kueue's Job reconciler
written to the same KEP: a queued Job whose annotation is gone is admitted
(unsuspended); while any name remains it is not.
"""

from __future__ import annotations

from datetime import timedelta

import kubernetes.client
import pytest

from deferral import patches, workloads
from tests.deferral import builders, grid_files
from tests.deferral.conftest import START, Cluster
from tests.support import kube_api
from tests.support.waiting import eventually
from webhook import mutations

GATED_BY = workloads.KUEUE_ADMISSION_GATED_BY
OTHER = "example.com/predictor"


def kueue_reconciles(api: kube_api.FakeKubeApi, namespace: str, name: str) -> None:
    """Kueue (double, KEP-6915): admit a queued, suspended Job once no admission gate is left."""
    job = api.get("Job", namespace, name)
    assert job is not None
    if workloads.kueue_managed(job) and job["spec"].get("suspend") and not workloads.admission_gates(job):
        api.mutate("Job", namespace, name, lambda obj: obj["spec"].update(suspend=False))


def _jobs_patches(cluster: Cluster, name: str) -> list:
    return [r.body for r in cluster.kube.api.requests if r.method == "PATCH" and r.path.endswith(f"/jobs/{name}")]


def test_the_webhook_gates_a_kueue_job_and_leaves_its_suspension_to_kueue() -> None:
    job = builders.captured_suspended_job()
    job["metadata"]["labels"] = {workloads.KUEUE_QUEUE_NAME: "user-queue"}
    job["metadata"]["annotations"] = {GATED_BY: OTHER}
    job["spec"]["suspend"] = False  # whatever it is, it is Kueue's

    mutated = mutations.apply("Job", job, {"action": "defer", "annotations": {workloads.DECISION: "defer"}},
                              policy_version="test").obj

    assert mutated["metadata"]["annotations"][GATED_BY] == f"{OTHER},{workloads.GATE}"
    assert mutated["spec"]["suspend"] is False
    again = mutations.apply("Job", mutated, {"action": "defer"}, policy_version="test").obj
    assert again["metadata"]["annotations"][GATED_BY] == f"{OTHER},{workloads.GATE}"


def test_a_plain_job_is_still_suspended() -> None:
    job = builders.captured_suspended_job()
    job["spec"]["suspend"] = False
    mutated = mutations.apply("Job", job, {"action": "defer"}, policy_version="test").obj
    assert mutated["spec"]["suspend"] is True
    assert GATED_BY not in mutated["metadata"].get("annotations", {})


def test_kueues_own_suspension_is_not_a_carbongate_hold() -> None:
    job = builders.kueue_job("etl", not_before=None, deadline=START, gated_by=OTHER)
    assert workloads.is_waiting("Job", job) is False
    assert patches.release("Job", job) is None
    job["metadata"]["annotations"][GATED_BY] = f"{OTHER}, {workloads.GATE}"
    assert workloads.is_waiting("Job", job) is True


def test_a_kueue_job_is_held_by_the_annotation_and_released_by_removing_only_our_entry(
    cluster: Cluster, release_engine
) -> None:
    grid_files.publish(cluster.snapshot_path, grid_files.snapshot(START))
    window = START + timedelta(hours=12)
    cluster.kube.api.seed(builders.kueue_job("train", not_before=window, deadline=START + timedelta(hours=24),
                                             gated_by=f"{OTHER},{workloads.GATE}"))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Job") == 1)

    cluster.clock.set(window - timedelta(minutes=1))
    cluster.clock.advance(0)
    kueue_reconciles(cluster.kube.api, "ml-team", "train")
    held = cluster.kube.api.get("Job", "ml-team", "train")
    assert (held["metadata"]["annotations"][GATED_BY], held["spec"]["suspend"]) == (
        f"{OTHER},{workloads.GATE}", True)

    cluster.clock.set(window)
    eventually(lambda: cluster.kube.api.get("Job", "ml-team", "train")["metadata"]["annotations"][GATED_BY]
               == OTHER)
    path = "/metadata/annotations/kueue.x-k8s.io~1admission-gated-by"
    assert _jobs_patches(cluster, "train") == [[
        {"op": "test", "path": path, "value": f"{OTHER},{workloads.GATE}"},
        {"op": "replace", "path": path, "value": OTHER}]]
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Job", reason="window-open") == 1)

    kueue_reconciles(cluster.kube.api, "ml-team", "train")
    assert cluster.kube.api.get("Job", "ml-team", "train")["spec"]["suspend"] is True  # the other gate holds it
    cluster.kube.api.mutate("Job", "ml-team", "train",
                            lambda job: job["metadata"]["annotations"].pop(GATED_BY))
    kueue_reconciles(cluster.kube.api, "ml-team", "train")
    assert cluster.kube.api.get("Job", "ml-team", "train")["spec"]["suspend"] is False


def test_the_deadline_releases_a_kueue_job_whatever_the_grid(cluster: Cluster, release_engine) -> None:
    """No grid data at all: the Job is still released by its release_by (deadline minus duration)."""
    deadline = START + timedelta(hours=3)
    cluster.kube.api.seed(builders.kueue_job("etl", not_before=START + timedelta(hours=10), deadline=deadline,
                                             duration="2h"))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Job") == 1)

    cluster.clock.set(deadline - timedelta(hours=2))
    eventually(lambda: GATED_BY not in cluster.kube.api.get("Job", "ml-team", "etl")["metadata"]["annotations"])
    assert all(op["path"] != "/spec/suspend" for ops in _jobs_patches(cluster, "etl") for op in ops)
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Job", reason="deadline") == 1)
    assert replica.value("carbongate_deferral_deadline_misses_total") == 0
    kueue_reconciles(cluster.kube.api, "ml-team", "etl")
    assert cluster.kube.api.get("Job", "ml-team", "etl")["spec"]["suspend"] is False


def test_the_double_enforces_the_keps_validation(kube: kube_api.RunningKubeApi) -> None:
    api = kubernetes.client.BatchV1Api(kube.api_client())
    kube.api.seed(builders.kueue_job("a", not_before=None, deadline=START, gated_by=OTHER))
    plain = builders.kueue_job("b", not_before=None, deadline=START)
    del plain["metadata"]["annotations"][GATED_BY]
    kube.api.seed(plain)
    path = "/metadata/annotations/kueue.x-k8s.io~1admission-gated-by"

    with pytest.raises(kubernetes.client.ApiException) as added:
        api.patch_namespaced_job("b", "ml-team", [{"op": "add", "path": path, "value": workloads.GATE}])
    assert added.value.status == 422
    with pytest.raises(kubernetes.client.ApiException) as grown:
        api.patch_namespaced_job("a", "ml-team", [{"op": "replace", "path": path,
                                                   "value": f"{OTHER},{workloads.GATE}"}])
    assert grown.value.status == 422
    api.patch_namespaced_job("a", "ml-team", [{"op": "remove", "path": path}])
