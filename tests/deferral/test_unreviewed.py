"""The running controller counts the Pods and Jobs the webhook never saw.

Against the Kubernetes API double (``tests/support/kube_api.py``, the
published Namespace, Pod and Job API on 127.0.0.1): the controller's own
watchers feed :mod:`carbongate.unreviewed` on their way to the reconciler.
"""

from __future__ import annotations

from datetime import timedelta

from tests.deferral import builders
from tests.deferral.conftest import START, Cluster
from tests.support.waiting import eventually

UNREVIEWED = "carbongate_unreviewed_workloads_total"


def _namespace(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def test_workloads_without_a_decision_in_an_enforced_namespace_are_counted_once(
        cluster: Cluster) -> None:
    api = cluster.kube.api
    api.seed(_namespace("ml-team", **{"carbongate.io/tier": "3",
                                      "carbongate.io/enforcement": "enforce"}))
    api.seed(_namespace("sandbox"))
    for namespace in ("ml-team", "sandbox"):
        missed_job = builders.suspended_job("missed", not_before=None, deadline=None,
                                            namespace=namespace)
        missed_job["metadata"]["annotations"] = {}
        missed_job["spec"]["suspend"] = False
        api.seed(missed_job)
        missed_pod = builders.gated_pod("missed", not_before=None, deadline=None,
                                        namespace=namespace, gates=())
        missed_pod["metadata"]["annotations"] = {}
        api.seed(missed_pod)
    api.seed(builders.gated_pod("held", not_before=START + timedelta(hours=8),
                                deadline=START + timedelta(hours=20)))
    replica = cluster.start(engine=None)
    eventually(lambda: replica.value(UNREVIEWED, namespace="ml-team", kind="Job") == 1
               and replica.value(UNREVIEWED, namespace="ml-team", kind="Pod") == 1)
    api.mutate("Pod", "ml-team", "missed",
               lambda pod: pod["metadata"].setdefault("labels", {}).update(seen="again"))
    later = builders.gated_pod("later", not_before=None, deadline=None, gates=())
    later["metadata"]["annotations"] = {}
    api.seed(later)  # streamed after the change above: once it counts, the change was seen
    eventually(lambda: replica.value(UNREVIEWED, namespace="ml-team", kind="Pod") == 2)
    assert replica.value(UNREVIEWED, namespace="ml-team", kind="Job") == 1
    assert replica.value(UNREVIEWED, namespace="sandbox", kind="Pod") == 0
    assert replica.value(UNREVIEWED, namespace="sandbox", kind="Job") == 0
