"""Counting workloads the webhook never saw, against the Kubernetes API double.

``tests/support/kube_api.py`` serves the published Namespace, Pod and Job API
on 127.0.0.1 (no kube-apiserver runs here); the counter lists namespaces with
the real ``kubernetes`` client, as in a cluster. Times come from the test's
clock, shared by the double (creationTimestamp) and the counter.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import prometheus_client
import pytest

from carbongate import unreviewed
from tests.support import kube_api

SCOPE = unreviewed.Scope(own_namespace="carbongate",
                         exempt=frozenset({"kube-system", "kube-public", "kube-node-lease"}))


class Clock:
    """The instant both the double (creationTimestamp) and the counter read; tests move it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=3))


@pytest.fixture
def kube(clock: Clock) -> Iterator[kube_api.RunningKubeApi]:
    with kube_api.serve(kube_api.FakeKubeApi(clock=clock)) as running:
        yield running


@pytest.fixture
def counter(kube: kube_api.RunningKubeApi, clock: Clock) -> unreviewed.Unreviewed:
    return unreviewed.Unreviewed(api_client=kube.api_client(), scope=SCOPE,
                                 registry=prometheus_client.CollectorRegistry(), clock=clock)


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {f"carbongate.io/{k}": v for k, v in labels.items()}}}


def pod(name: str, ns: str, *, annotations: dict[str, str] | None = None,
        owner: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": ns, "annotations": annotations or {}}
    if owner:
        metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner, "name": "o",
                                        "uid": "owner-uid", "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def job(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox"}]}}}}


def counted(found: unreviewed.Unreviewed, ns: str, kind: str = "Pod") -> float:
    return sample(found, "carbongate_unreviewed_workloads_total", namespace=ns, kind=kind)


def sample(found: unreviewed.Unreviewed, name: str, **labels: str) -> float:
    return found.registry.get_sample_value(name, labels) or 0.0


def test_an_unannotated_pod_and_job_in_an_enforced_namespace_are_counted_once_each(
        kube: kube_api.RunningKubeApi, counter: unreviewed.Unreviewed) -> None:
    kube.api.seed(namespace("ml", tier="3", enforcement="enforce"))
    missed = kube.api.seed(pod("missed", "ml"))
    batch = kube.api.seed(job("batch", "ml"))
    assert counter.refresh()
    for _ in range(3):  # a relist, a MODIFIED event, another relist: still one workload
        counter.observe("Pod", missed)
        counter.observe("Job", batch)
    assert counted(counter, "ml") == 1
    assert counted(counter, "ml", "Job") == 1


def test_a_tier_label_without_an_enforcement_label_means_enforce(
        kube: kube_api.RunningKubeApi, counter: unreviewed.Unreviewed) -> None:
    kube.api.seed(namespace("ci", tier="2"))
    counter.refresh()
    counter.observe("Pod", kube.api.seed(pod("missed", "ci")))
    assert counted(counter, "ci") == 1


@pytest.mark.parametrize(("name", "labels"), [
    ("ml-warn", {"tier": "3", "enforcement": "warn"}),
    ("ml-dryrun", {"tier": "3", "enforcement": "dryrun"}),
    ("ml-off", {"tier": "3", "enforcement": "off"}),
    ("unlabelled", {}),
    ("kube-system", {"tier": "3", "enforcement": "enforce"}),
    ("carbongate", {"tier": "3", "enforcement": "enforce"}),
])
def test_namespaces_the_webhook_does_not_patch_count_nothing(
        kube: kube_api.RunningKubeApi, counter: unreviewed.Unreviewed, name: str,
        labels: dict[str, str]) -> None:
    kube.api.seed(namespace(name, **labels))
    counter.refresh()
    counter.observe("Pod", kube.api.seed(pod("p", name)))
    assert counted(counter, name) == 0


def test_decided_workloads_and_daemonset_pods_are_not_counted(
        kube: kube_api.RunningKubeApi, counter: unreviewed.Unreviewed) -> None:
    kube.api.seed(namespace("ml", tier="3", enforcement="enforce"))
    counter.refresh()
    counter.observe("Pod", kube.api.seed(pod("decided", "ml",
                                             annotations={"carbongate.io/decision": "admit"})))
    counter.observe("Pod", kube.api.seed(pod("node-agent", "ml", owner="DaemonSet")))
    counter.observe("Pod", kube.api.seed(pod("service", "ml", owner="ReplicaSet")))
    assert counted(counter, "ml") == 1  # only the ReplicaSet's pod, which the webhook decides


def test_a_workload_seen_before_its_namespace_waits_for_the_next_list(
        kube: kube_api.RunningKubeApi, counter: unreviewed.Unreviewed) -> None:
    kube.api.seed(namespace("old", tier="3"))
    counter.refresh()
    kube.api.seed(namespace("new-team", tier="3"))
    counter.observe("Pod", kube.api.seed(pod("early", "new-team")))
    assert counted(counter, "new-team") == 0
    counter.refresh()
    assert counted(counter, "new-team") == 1


def test_switching_a_namespace_to_enforce_does_not_count_what_already_ran_there(
        kube: kube_api.RunningKubeApi, counter: unreviewed.Unreviewed, clock: Clock) -> None:
    kube.api.seed(namespace("etl", tier="3", enforcement="warn"))
    counter.refresh()
    before = kube.api.seed(pod("before", "etl"))
    counter.observe("Pod", before)
    clock.now += timedelta(minutes=5)
    kube.api.mutate("Namespace", "", "etl",
                    lambda ns: ns["metadata"]["labels"].update({"carbongate.io/enforcement": "enforce"}))
    counter.refresh()
    counter.observe("Pod", before)
    assert counted(counter, "etl") == 0
    clock.now += timedelta(minutes=1)
    counter.observe("Pod", kube.api.seed(pod("after", "etl")))
    assert counted(counter, "etl") == 1


def test_a_failed_namespace_list_is_counted_and_nothing_is_lost(
        kube: kube_api.RunningKubeApi, counter: unreviewed.Unreviewed) -> None:
    kube.api.seed(namespace("ml", tier="3"))
    kube.api.fail_next(1)
    assert not counter.refresh()
    assert sample(counter, "carbongate_namespace_list_errors_total") == 1
    counter.observe("Pod", kube.api.seed(pod("missed", "ml")))
    assert counted(counter, "ml") == 0
    assert counter.refresh()
    assert counted(counter, "ml") == 1
