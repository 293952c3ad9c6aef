"""The release patches have the shape a real API server accepted, and never clobber."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import kubernetes.client
import pytest

from deferral import kube, patches, workloads
from tests.deferral import builders
from tests.support import kube_api

REGION = patches.requirement("topology.kubernetes.io/region", ["norwayeast"])
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


def _spec_without_empty_gates(spec: dict[str, Any]) -> dict[str, Any]:
    """The API server omits an empty gate list (omitempty) when it stores the object."""
    return {k: v for k, v in spec.items() if not (k == "schedulingGates" and not v)}


def test_gate_removal_is_the_test_and_remove_the_real_api_server_received() -> None:
    before, after = builders.captured_gate_removal()
    operations = patches.gate_removal(before)
    assert operations == [
        {"op": "test", "path": "/spec/schedulingGates",
         "value": [{"name": "carbongate.io/clean-window"}]},
        {"op": "remove", "path": "/spec/schedulingGates/0"},
    ]
    patched = jsonpatch.apply_patch(before, operations)
    assert _spec_without_empty_gates(patched["spec"]) == after["spec"]
    assert patched["metadata"]["labels"] == after["metadata"]["labels"]


def test_gate_removal_sent_through_the_client_stores_the_captured_result() -> None:
    before, after = builders.captured_gate_removal()
    with kube_api.serve() as served:
        seeded = served.api.seed(builders.gated_pod("gated-batch", not_before=None, deadline=None))
        served.api.mutate("Pod", "ml-team", "gated-batch",
                          lambda o: o.update(spec=copy.deepcopy(before["spec"])))
        gateway = kube.Gateway(api_client=served.api_client())
        current = gateway.read(workloads.key_of("Pod", seeded))
        stored = gateway.json_patch(workloads.key_of("Pod", seeded),
                                    patches.gate_removal(current) or [])
        request = served.api.requests[-1]
    assert request.content_type == "application/json-patch+json"
    assert _spec_without_empty_gates(stored["spec"]) == after["spec"]


def test_only_our_gate_is_removed_by_its_index() -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=None,
                             gates=("kueue.x-k8s.io/admission", builders.GATE, "x.io/other"))
    operations = patches.gate_removal(pod)
    assert operations is not None
    assert operations[1] == {"op": "remove", "path": "/spec/schedulingGates/1"}
    result = jsonpatch.apply_patch(pod, operations)
    assert workloads.gates(result) == ["kueue.x-k8s.io/admission", "x.io/other"]


def test_a_pod_without_our_gate_gets_no_patch() -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=None, gates=("x.io/other",))
    assert patches.gate_removal(pod) is None


def test_a_changed_gate_list_fails_the_test_op() -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=None, gates=("a.io/x", builders.GATE))
    operations = patches.gate_removal(pod)
    assert operations is not None
    changed = copy.deepcopy(pod)
    changed["spec"]["schedulingGates"].pop(0)
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(changed, operations)


def test_unsuspend_turns_the_captured_suspended_job_into_the_running_one() -> None:
    job = builders.captured_suspended_job()
    operations = patches.unsuspend(job)
    assert operations == [{"op": "test", "path": "/spec/suspend", "value": True},
                          {"op": "replace", "path": "/spec/suspend", "value": False}]
    assert jsonpatch.apply_patch(job, operations)["spec"]["suspend"] is False
    assert patches.unsuspend(jsonpatch.apply_patch(job, operations)) is None


def test_narrowing_adds_a_first_required_term_when_there_is_none() -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=None)
    pod["metadata"]["resourceVersion"] = "7"
    result = jsonpatch.apply_patch(pod, patches.narrowing(pod, "/spec", REGION))
    terms = result["spec"]["affinity"]["nodeAffinity"][REQUIRED]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [REGION]}]


def test_narrowing_adds_the_requirement_to_every_existing_term() -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=None)
    pod["metadata"]["resourceVersion"] = "7"
    arch = {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
    pod["spec"]["affinity"] = {"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": [
        {"matchExpressions": [arch]}, {"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}
    result = jsonpatch.apply_patch(pod, patches.narrowing(pod, "/spec", REGION))
    terms = result["spec"]["affinity"]["nodeAffinity"][REQUIRED]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"] == [arch, REGION]
    assert terms[1]["matchExpressions"] == [REGION]
    assert terms[1]["matchFields"] == pod["spec"]["affinity"]["nodeAffinity"][REQUIRED][
        "nodeSelectorTerms"][1]["matchFields"]


def test_narrowing_leaves_a_workload_already_constrained_on_the_key_alone() -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=None)
    existing = patches.requirement("topology.kubernetes.io/region", ["europe-west2"])
    pod["spec"]["affinity"] = {"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": [
        {"matchExpressions": [dict(existing)]}]}}}
    assert patches.narrowing(pod, "/spec", REGION) == []


@pytest.mark.parametrize("affinity", [
    None,
    {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
    {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [
            {"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}},
    {"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
])
def test_narrowing_and_gate_removal_pass_the_api_servers_gated_pod_rules(affinity) -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=None)
    if affinity is not None:
        pod["spec"]["affinity"] = affinity
    with kube_api.serve() as served:
        served.api.seed(pod)
        gateway = kube.Gateway(api_client=served.api_client())
        key = workloads.Key("Pod", "ml-team", "p")
        current = gateway.read(key)
        operations = patches.narrowing(current, "/spec", REGION) + (
            patches.gate_removal(current) or [])
        stored = gateway.json_patch(key, operations)
    terms = stored["spec"]["affinity"]["nodeAffinity"][REQUIRED]["nodeSelectorTerms"]
    assert all(REGION in term["matchExpressions"] for term in terms)
    assert not stored["spec"].get("schedulingGates")


def test_narrowing_is_refused_once_the_gate_is_gone() -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=None, gates=())
    with kube_api.serve() as served:
        served.api.seed(pod)
        gateway = kube.Gateway(api_client=served.api_client())
        key = workloads.Key("Pod", "ml-team", "p")
        current = gateway.read(key)
        with pytest.raises(kubernetes.client.ApiException) as raised:
            gateway.json_patch(key, patches.narrowing(current, "/spec", REGION))
    assert raised.value.status == 422


def test_annotation_update_escapes_the_slash_in_the_key() -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=None)
    pod["metadata"]["resourceVersion"] = "9"
    operations = patches.annotation_update(pod, {workloads.NOT_BEFORE: "2023-11-23T02:00:00Z"})
    assert operations[1]["path"] == "/metadata/annotations/carbongate.io~1not-before"
    result = jsonpatch.apply_patch(pod, operations)
    assert result["metadata"]["annotations"][workloads.NOT_BEFORE] == "2023-11-23T02:00:00Z"
