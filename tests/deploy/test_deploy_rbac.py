"""The RBAC rules in deploy/ equal the Kubernetes API calls the code makes.

The required permissions are derived from the code by
:mod:`tests.deploy.kube_calls` (the pod's entry packages and everything they
import, scanned for kubernetes client calls), never listed by hand, so a
new call without its rule, or a rule nothing calls any more, fails here.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import kube_calls, support

COMPONENTS = ("carbongate-webhook", "carbongate-deferral", "carbongate-governance")


def granted(resources: list[dict[str, Any]], *, namespace: str, account: str) -> set[kube_calls.Permission]:
    """Every (group, resource, verb) the bindings give this ServiceAccount."""
    permissions: set[kube_calls.Permission] = set()
    for binding in _bindings(resources, namespace=namespace, account=account):
        role = support.one(resources, binding["roleRef"]["kind"], binding["roleRef"]["name"])
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{role['metadata']['name']}: wildcard in {field}"
            permissions |= {kube_calls.Permission(g, r, v) for g in rule["apiGroups"]
                            for r in rule["resources"] for v in rule["verbs"]}
    return permissions


def _bindings(resources: list[dict[str, Any]], *, namespace: str, account: str) -> Iterator[dict[str, Any]]:
    for binding in resources:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if any(s["kind"] == "ServiceAccount" and s["name"] == account
               and s.get("namespace") == namespace for s in binding["subjects"]):
            yield binding


@pytest.mark.parametrize("component", COMPONENTS)
def test_rbac_rules_equal_the_api_calls_of_the_code(dev: list[dict[str, Any]], component: str) -> None:
    deployment = support.one(dev, "Deployment", component)
    packages = support.entry_packages(deployment)
    assert packages, f"{component}: no carbongate code found in its containers"
    needed = kube_calls.permissions(kube_calls.module_closure(support.REPO, sorted(packages)))
    account = support.pod_spec(deployment)["serviceAccountName"]
    given = granted(dev, namespace=deployment["metadata"]["namespace"], account=account)
    missing = {str(p): [f"{r.file.relative_to(support.REPO)}:{r.line}" for r in refs]
               for p, refs in needed.items() if p not in given}
    assert not missing, f"{component} calls without a rule: {missing}"
    unused = given - set(needed)
    assert not unused, f"{component} has rules nothing calls: {sorted(unused)}"


def test_entry_packages_come_from_the_container_commands(dev: list[dict[str, Any]]) -> None:
    assert support.entry_packages(support.one(dev, "Deployment", "carbongate-webhook")) == {
        "webhook", "carbon_feed"}
    assert support.entry_packages(support.one(dev, "Deployment", "carbongate-deferral")) == {
        "deferral", "carbon_feed"}
    assert support.entry_packages(support.one(dev, "Deployment", "carbongate-governance")) == {
        "governance", "carbon_feed"}


def test_governance_may_hold_a_lease_and_publish_a_config_map_and_nothing_more_in_its_namespace(
    dev: list[dict[str, Any]],
) -> None:
    """The derivation sees the election (carbongate.leases) and the ConfigMap writer's calls,
    and none of the controller's pod and Job writes that module no longer drags in."""
    deployment = support.one(dev, "Deployment", "carbongate-governance")
    closure = kube_calls.module_closure(support.REPO, sorted(support.entry_packages(deployment)))
    needed = {f"{p.group or 'core'}/{p.resource}:{p.verb}" for p in kube_calls.permissions(closure)}
    assert {"coordination.k8s.io/leases:create", "coordination.k8s.io/leases:get",
            "coordination.k8s.io/leases:update", "core/configmaps:create", "core/configmaps:get",
            "core/configmaps:update"} <= needed
    assert not {p for p in needed if p.endswith(":patch") or p.startswith("core/events")}
    assert not [f for f in closure if f.parent.name == "deferral" and f.name not in (
        "__init__.py", "clock.py")]


@pytest.mark.parametrize(("role_name", "resource", "own"), [
    ("carbongate-deferral-leader", "leases", "carbongate-deferral"),
    ("carbongate-governance-leader", "leases", "carbongate-governance"),
    ("carbongate-governance-budgets", "configmaps", "carbongate-budgets-published"),
    ("carbongate-feed-leader", "leases", "carbongate-feed"),
    ("carbongate-feed-readings", "configmaps", "carbongate-grid-readings"),
])
def test_writes_are_granted_only_in_carbongate_namespace_and_only_on_its_own_object(
    dev: list[dict[str, Any]], role_name: str, resource: str, own: str,
) -> None:
    for role in support.of_kind(dev, "ClusterRole"):
        assert all(resource not in rule["resources"] for rule in role["rules"])
    role = support.one(dev, "Role", role_name)
    assert role["metadata"]["namespace"] == "carbongate"
    named = [rule for rule in role["rules"] if rule.get("resourceNames")]
    unnamed = [rule for rule in role["rules"] if not rule.get("resourceNames")]
    assert {v for rule in named for v in rule["verbs"]} == {"get", "update"}
    assert {n for rule in named for n in rule["resourceNames"]} == {own}
    # create cannot name the object it creates: the only verb allowed without a name.
    assert {v for rule in unnamed for v in rule["verbs"]} == {"create"}
    assert {r for rule in role["rules"] for r in rule["resources"]} == {resource}


def test_every_pod_runs_under_its_own_service_account(dev: list[dict[str, Any]]) -> None:
    accounts = [support.pod_spec(support.one(dev, "Deployment", c))["serviceAccountName"]
                for c in COMPONENTS]
    assert len(set(accounts)) == len(accounts)
    for account in accounts:
        support.one(dev, "ServiceAccount", account)


# --- the scanner itself -------------------------------------------------------------------


def _scan(tmp_path: Path, source: str) -> set[str]:
    package = tmp_path / "component"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "kube.py").write_text(textwrap.dedent(source))
    needed = kube_calls.permissions(kube_calls.module_closure(tmp_path, ["component"]))
    return {f"{p.group or 'core'}/{p.resource}:{p.verb}" for p in needed}


def test_scanner_reads_verbs_from_calls_references_and_watch_streams(tmp_path: Path) -> None:
    found = _scan(tmp_path, """\
        import kubernetes
        from kubernetes import watch

        def run(api_client):
            core = kubernetes.client.CoreV1Api(api_client)
            batch = kubernetes.client.BatchV1Api(api_client)
            core.patch_namespaced_pod_status("p", "ns", {})
            call = batch.list_job_for_all_namespaces
            call()
            for event in watch.Watch().stream(core.list_namespaced_pod, "ns"):
                pass

        def follow(api):
            return api.list_node(watch=True)
    """)
    assert found == {"core/pods/status:patch", "batch/jobs:list", "core/pods:watch",
                     "core/nodes:watch"}


def test_scanner_resolves_a_method_name_by_the_api_classes_named(tmp_path: Path) -> None:
    assert _scan(tmp_path, """\
        from kubernetes import client
        api = client.EventsV1Api()
        api.create_namespaced_event("ns", {})
    """) == {"events.k8s.io/events:create"}


def test_scanner_follows_first_party_imports_only(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "__init__.py").write_text("")
    (other / "calls.py").write_text("from kubernetes import client\nclient.CoreV1Api().read_node('n')\n")
    (other / "unused.py").write_text("from kubernetes import client\nclient.CoreV1Api().delete_node('n')\n")
    assert _scan(tmp_path, "from elsewhere import calls\n") == {"core/nodes:get"}
