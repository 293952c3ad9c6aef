"""The MutatingWebhookConfiguration keeps the promises carbongate makes to a cluster.

carbongate must never block a cluster, never touch the control plane or
itself, and only decide when and where a workload starts: these tests hold
those properties for every overlay.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from tests.deploy import support
from tests.deploy.test_deploy_policies import materialize

EXCLUDED_NAMESPACES = {"kube-system", "carbongate"}


@pytest.fixture(params=["dev", "prod"])
def webhooks(request: pytest.FixtureRequest,
             rendered: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    configuration = support.one(rendered[request.param], "MutatingWebhookConfiguration", "carbongate")
    hooks: list[dict[str, Any]] = configuration["webhooks"]
    assert hooks
    return hooks


def test_a_failing_webhook_admits_instead_of_blocking(webhooks: list[dict[str, Any]]) -> None:
    assert {w["failurePolicy"] for w in webhooks} == {"Ignore"}


def test_the_api_server_waits_at_most_three_seconds(webhooks: list[dict[str, Any]]) -> None:
    assert all(1 <= w["timeoutSeconds"] <= 3 for w in webhooks)


def test_only_pod_and_job_creation_is_sent(webhooks: list[dict[str, Any]]) -> None:
    for webhook in webhooks:
        rules = webhook["rules"]
        assert {op for rule in rules for op in rule["operations"]} == {"CREATE"}
        targets = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
        assert targets == {("", "pods"), ("batch", "jobs")}


def test_no_side_effects_and_admission_review_v1_only(webhooks: list[dict[str, Any]]) -> None:
    for webhook in webhooks:
        assert webhook["sideEffects"] == "None"
        assert webhook["admissionReviewVersions"] == ["v1"]


def test_namespace_selector_excludes_control_plane_itself_and_switched_off(
    webhooks: list[dict[str, Any]],
) -> None:
    for webhook in webhooks:
        expressions = webhook["namespaceSelector"]["matchExpressions"]
        by_key = {e["key"]: e for e in expressions}
        names = by_key["kubernetes.io/metadata.name"]
        assert names["operator"] == "NotIn" and EXCLUDED_NAMESPACES <= set(names["values"])
        switch = by_key["carbongate.io/enforcement"]
        assert switch["operator"] == "NotIn" and switch["values"] == ["off"]


def test_match_conditions_exclude_the_same_namespaces_in_cel(webhooks: list[dict[str, Any]]) -> None:
    for webhook in webhooks:
        conditions = " && ".join(c["expression"] for c in webhook["matchConditions"])
        for namespace in EXCLUDED_NAMESPACES:
            assert f"'{namespace}'" in conditions


def test_reinvocation_is_a_deliberate_choice(webhooks: list[dict[str, Any]]) -> None:
    assert {w["reinvocationPolicy"] for w in webhooks} <= {"IfNeeded", "Never"}


def test_carbongate_own_namespace_carries_the_off_label_too(dev: list[dict[str, Any]]) -> None:
    namespace = support.one(dev, "Namespace", "carbongate")
    assert namespace["metadata"]["labels"]["carbongate.io/enforcement"] == "off"


def test_the_webhook_is_called_through_its_service_on_mutate(dev: list[dict[str, Any]]) -> None:
    (webhook,) = support.one(dev, "MutatingWebhookConfiguration", "carbongate")["webhooks"]
    service_ref = webhook["clientConfig"]["service"]
    service = support.one(dev, "Service", service_ref["name"])
    assert service["metadata"]["namespace"] == service_ref["namespace"]
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == service_ref["port"]]
    deployment = support.one(dev, "Deployment", "carbongate-webhook")
    named = {p["name"]: p["containerPort"] for p in support.container(deployment, "webhook")["ports"]}
    assert named[port["targetPort"]] == 8443
    assert service_ref["path"] == "/mutate"


def test_dev_secret_never_carries_the_ca_key(dev: list[dict[str, Any]]) -> None:
    secret = support.one(dev, "Secret", "carbongate-webhook-tls")
    assert set(secret["data"]) == {"ca.crt", "tls.crt", "tls.key"}


def test_prod_has_cert_manager_inject_the_ca_of_the_serving_certificate(
    prod: list[dict[str, Any]],
) -> None:
    configuration = support.one(prod, "MutatingWebhookConfiguration", "carbongate")
    namespace, _, name = configuration["metadata"]["annotations"][
        "cert-manager.io/inject-ca-from"].partition("/")
    certificate = support.one(prod, "Certificate", name)
    assert certificate["metadata"]["namespace"] == namespace
    assert certificate["spec"]["secretName"] == "carbongate-webhook-tls"
    assert "caBundle" not in configuration["webhooks"][0]["clientConfig"]


def test_prod_certificate_names_the_service_as_the_api_server_dials_it(
    prod: list[dict[str, Any]],
) -> None:
    certificate = support.one(prod, "Certificate", "carbongate-webhook-tls")
    assert "carbongate-webhook.carbongate.svc" in certificate["spec"]["dnsNames"]
    assert "server auth" in certificate["spec"]["usages"]


# --- reinvocationPolicy: IfNeeded is safe only if a second call changes nothing -------------

DIRTY_EVENING = "2023-11-17T17:00:00Z"  # GB at 366 gCO2/kWh, a clean night ahead


def _decide(obj: dict[str, Any], kind: str, policies: Path, scratch: Path) -> dict[str, Any]:
    group, resource = ("batch", "jobs") if kind == "Job" else ("", "pods")
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "7d1f0c2a-1111-4a2b-9c3d-4e5f60718293",
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "name": obj["metadata"]["name"], "namespace": "ml", "operation": "CREATE",
        "userInfo": {"username": "kubernetes-admin"}, "object": obj, "dryRun": False}}
    path = scratch / f"review-{kind}.json"
    path.write_text(json.dumps(review), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "carbongate.cli", "review", str(path), "--json", "--now", DIRTY_EVENING,
         "--policy-dir", str(policies), "--namespace-label", "carbongate.io/tier=3"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    outcome: dict[str, Any] = json.loads(done.stdout)
    return outcome


POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "batch-1", "namespace": "ml",
                    "annotations": {"carbongate.io/max-delay": "12h",
                                    "carbongate.io/expected-duration": "1h"}},
       "spec": {"schedulingGates": [{"name": "kueue.x-k8s.io/admission"}],
                "containers": [{"name": "c", "image": "busybox:1.36"}]}}
JOB = {"apiVersion": "batch/v1", "kind": "Job",
       "metadata": {"name": "nightly", "namespace": "ml",
                    "annotations": {"carbongate.io/max-delay": "12h",
                                    "carbongate.io/expected-duration": "2h"}},
       "spec": {"template": {"spec": {"restartPolicy": "Never",
                                      "containers": [{"name": "c", "image": "busybox:1.36"}]}}}}


@pytest.mark.parametrize(("kind", "obj"), [("Pod", POD), ("Job", JOB)])
def test_reinvoking_the_webhook_on_its_own_result_changes_nothing(
    dev: list[dict[str, Any]], tmp_path: Path, kind: str, obj: dict[str, Any],
) -> None:
    """What the API server does under IfNeeded when a later webhook touched the object."""
    policies = materialize(dev, "carbongate-webhook", tmp_path / "policies")
    first = _decide(obj, kind, policies, tmp_path)
    assert first["decision"]["action"] == "defer" and first["patch"]
    mutated = jsonpatch.apply_patch(obj, first["patch"])
    second = _decide(mutated, kind, policies, tmp_path)
    assert second["patch"] == []
    if kind == "Pod":
        gates = [g["name"] for g in mutated["spec"]["schedulingGates"]]
        assert gates.count("carbongate.io/clean-window") == 1 and "kueue.x-k8s.io/admission" in gates
