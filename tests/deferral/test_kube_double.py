"""The Kubernetes API double answers the real client as the API server would.

These tests pin the double's behaviour (paths, watch protocol, Status errors,
optimistic concurrency, KEP-3838 validation) so that the controller tests built
on it rest on the published API, not on the double's accidents.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import kubernetes.client
import kubernetes.watch
import pytest
from kubernetes.client.rest import ApiException

from tests.support import kube_api

GATE = "carbongate.io/clean-window"


def _pod(name: str, *, gates: tuple[str, ...] = (GATE,), labels: dict[str, str] | None = None,
         namespace: str = "ml-team") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}],
                     "schedulingGates": [{"name": g} for g in gates]}}


@pytest.fixture
def running() -> Iterator[kube_api.RunningKubeApi]:
    with kube_api.serve() as served:
        yield served


@pytest.fixture
def core(running: kube_api.RunningKubeApi) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(running.api_client())


def test_created_pod_is_listed_across_and_within_namespaces(core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_pod("ml-team", _pod("a", labels={"carbongate.io/tier": "3"}))
    core.create_namespaced_pod("web", _pod("b", namespace="web"))
    everywhere = core.list_pod_for_all_namespaces()
    assert sorted(p.metadata.name for p in everywhere.items) == ["a", "b"]
    assert int(everywhere.metadata.resource_version) >= 1001
    assert [p.metadata.name for p in core.list_namespaced_pod("web").items] == ["b"]
    tiered = core.list_pod_for_all_namespaces(label_selector="carbongate.io/tier in (2,3)")
    assert [p.metadata.name for p in tiered.items] == ["a"]
    named = core.list_pod_for_all_namespaces(field_selector="metadata.name!=a")
    assert [p.metadata.name for p in named.items] == ["b"]


def test_missing_pod_is_a_not_found_status(core: kubernetes.client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod("nope", "ml-team")
    assert raised.value.status == 404
    assert '"reason": "NotFound"' in raised.value.body


def test_watch_streams_changes_after_a_resource_version(
        running: kube_api.RunningKubeApi, core: kubernetes.client.CoreV1Api) -> None:
    listed = core.list_pod_for_all_namespaces()
    core.create_namespaced_pod("ml-team", _pod("a"))
    running.api.mutate("Pod", "ml-team", "a", lambda o: o["metadata"].setdefault(
        "annotations", {}).update(x="1"))
    core.delete_namespaced_pod("a", "ml-team")
    events = list(kubernetes.watch.Watch().stream(
        core.list_pod_for_all_namespaces, resource_version=listed.metadata.resource_version,
        timeout_seconds=1))
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [int(e["object"].metadata.resource_version) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_watch_from_a_compacted_version_is_gone(
        running: kube_api.RunningKubeApi, core: kubernetes.client.CoreV1Api) -> None:
    old = core.list_pod_for_all_namespaces().metadata.resource_version
    core.create_namespaced_pod("ml-team", _pod("a"))
    running.api.compact()
    with pytest.raises(ApiException) as raised:
        list(kubernetes.watch.Watch().stream(
            core.list_pod_for_all_namespaces, resource_version=old, timeout_seconds=1))
    assert raised.value.status == 410


def test_watch_is_dropped_after_the_configured_number_of_events(
        running: kube_api.RunningKubeApi, core: kubernetes.client.CoreV1Api) -> None:
    start = core.list_pod_for_all_namespaces().metadata.resource_version
    for name in ("a", "b", "c"):
        core.create_namespaced_pod("ml-team", _pod(name))
    running.api.drop_watches_after = 2
    events = list(kubernetes.watch.Watch().stream(
        core.list_pod_for_all_namespaces, resource_version=start, timeout_seconds=5))
    assert [e["object"].metadata.name for e in events] == ["a", "b"]


def test_json_patch_with_a_failing_test_op_is_refused_unchanged(
        core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_pod("ml-team", _pod("a", gates=("other.io/gate", GATE)))
    patch = [{"op": "test", "path": "/spec/schedulingGates",
              "value": [{"name": GATE}]},
             {"op": "remove", "path": "/spec/schedulingGates/0"}]
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_pod("a", "ml-team", patch)
    assert raised.value.status == 422
    assert '"kind": "Status"' in raised.value.body
    still = core.read_namespaced_pod("a", "ml-team")
    assert [g.name for g in still.spec.scheduling_gates] == ["other.io/gate", GATE]


def test_gates_can_be_removed_but_not_added(core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_pod("ml-team", _pod("a"))
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_pod("a", "ml-team", [
            {"op": "add", "path": "/spec/schedulingGates/-", "value": {"name": "x.io/g"}}])
    assert raised.value.status == 422
    core.patch_namespaced_pod("a", "ml-team", [
        {"op": "test", "path": "/spec/schedulingGates", "value": [{"name": GATE}]},
        {"op": "remove", "path": "/spec/schedulingGates/0"}])
    assert not core.read_namespaced_pod("a", "ml-team").spec.scheduling_gates


def test_gated_pod_affinity_may_be_narrowed_not_widened(core: kubernetes.client.CoreV1Api) -> None:
    pod = _pod("a")
    term = {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In",
                                  "values": ["amd64"]}]}
    pod["spec"]["affinity"] = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    core.create_namespaced_pod("ml-team", pod)
    required = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"
    narrowing = {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["eu"]}
    core.patch_namespaced_pod("a", "ml-team", [
        {"op": "add", "path": f"{required}/nodeSelectorTerms/0/matchExpressions/-",
         "value": narrowing}])
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_pod("a", "ml-team", [
            {"op": "remove", "path": f"{required}/nodeSelectorTerms/0/matchExpressions/0"}])
    assert raised.value.status == 422


def test_ungated_pod_spec_is_immutable(core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_pod("ml-team", _pod("a", gates=()))
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_pod("a", "ml-team", {"spec": {"nodeSelector": {"a": "b"}}})
    assert raised.value.status == 422


def test_job_unsuspends_with_a_merge_patch_and_bumps_generation(
        running: kube_api.RunningKubeApi) -> None:
    batch = kubernetes.client.BatchV1Api(running.api_client())
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "etl", "namespace": "ml-team"},
           "spec": {"suspend": True, "template": {"spec": {
               "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}
    batch.create_namespaced_job("ml-team", job)
    patched = batch.patch_namespaced_job("etl", "ml-team", {"spec": {"suspend": False}})
    assert patched.spec.suspend is False
    assert patched.metadata.generation == 2


def test_lease_update_with_a_stale_version_conflicts(running: kube_api.RunningKubeApi) -> None:
    leases = kubernetes.client.CoordinationV1Api(running.api_client())
    body = kubernetes.client.V1Lease(
        metadata=kubernetes.client.V1ObjectMeta(name="l", namespace="carbongate"),
        spec=kubernetes.client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15))
    created = leases.create_namespaced_lease("carbongate", body)
    created.spec.holder_identity = "b"
    leases.replace_namespaced_lease("l", "carbongate", created)
    created.spec.holder_identity = "c"
    with pytest.raises(ApiException) as raised:
        leases.replace_namespaced_lease("l", "carbongate", created)
    assert raised.value.status == 409
    assert '"reason": "Conflict"' in raised.value.body
    assert leases.read_namespaced_lease("l", "carbongate").spec.holder_identity == "b"


def test_events_are_created_in_both_groups(running: kube_api.RunningKubeApi) -> None:
    client = running.api_client()
    core = kubernetes.client.CoreV1Api(client)
    core.create_namespaced_event("ml-team", kubernetes.client.CoreV1Event(
        metadata=kubernetes.client.V1ObjectMeta(generate_name="a."),
        involved_object=kubernetes.client.V1ObjectReference(kind="Pod", name="a"),
        reason="Deferred", message="m", type="Normal"))
    events = kubernetes.client.EventsV1Api(client)
    events.create_namespaced_event("ml-team", kubernetes.client.EventsV1Event(
        metadata=kubernetes.client.V1ObjectMeta(generate_name="a."),
        event_time=datetime(2026, 11, 21, 12, tzinfo=UTC),
        reason="Released", note="n", type="Normal", action="Release",
        reporting_controller="carbongate.io/deferral", reporting_instance="x"))
    assert [e.reason for e in core.list_namespaced_event("ml-team").items] == ["Deferred"]
    assert len(running.api.objects("events.events.k8s.io")) == 1


def test_injected_failures_answer_500_then_recover(
        running: kube_api.RunningKubeApi, core: kubernetes.client.CoreV1Api) -> None:
    running.api.fail_next(2)
    for _ in range(2):
        with pytest.raises(ApiException) as raised:
            core.list_pod_for_all_namespaces()
        assert raised.value.status == 500
    assert core.list_pod_for_all_namespaces().items == []
