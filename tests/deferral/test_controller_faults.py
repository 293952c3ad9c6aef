"""The controller keeps its promise when the world misbehaves.

Concurrent writers, dropped and expired watches, a leader that dies, a policy
engine and a grid feed that are down at the deadline, workloads deleted
while held, break-glass, and a restart with workloads already waiting.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import kubernetes.client
import pytest

from deferral import workloads
from policy_engine import opa_server
from tests.deferral import builders, grid_files
from tests.deferral.conftest import START, Cluster
from tests.support import kube_api
from tests.support.waiting import eventually

NS = "ml-team"
DAY = START + timedelta(hours=24)


def _gates(cluster: Cluster, name: str) -> list[str]:
    pod = cluster.kube.api.get("Pod", NS, name)
    assert pod is not None, f"pod {name} is gone"
    return workloads.gates(pod)


def _reasons(cluster: Cluster, name: str) -> list[str]:
    return sorted(e["reason"] for e in cluster.kube.api.objects("Event")
                  if e["involvedObject"]["name"] == name)


def _lease_reads(cluster: Cluster) -> int:
    return sum(1 for r in cluster.kube.api.requests
               if r.method == "GET" and r.path.endswith("/leases/carbongate-deferral"))


def _patches(cluster: Cluster, name: str) -> list[kube_api.RecordedRequest]:
    return [r for r in cluster.kube.api.requests
            if r.method == "PATCH" and r.path.endswith(f"/pods/{name}")]


@pytest.fixture
def down_engine(tmp_path: Path, release_policy_dir: Path) -> opa_server.OpaServerEngine:
    """An OPA server engine pointed at a port where nothing listens: OPA is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return opa_server.OpaServerEngine(url=f"http://127.0.0.1:{port}",
                                      policy_dir=release_policy_dir, timeout_s=0.2)


def test_concurrent_gate_change_fails_the_test_op_and_the_reread_keeps_the_other_gate(
        cluster, release_engine) -> None:
    pod = builders.gated_pod("race", not_before=START - timedelta(minutes=5), deadline=DAY,
                             gates=("a.example.io/first", builders.GATE, "c.example.io/last"))
    cluster.kube.api.seed(pod)
    raced = []

    def kueue_removes_its_gate(request: kube_api.RecordedRequest) -> None:
        if request.method == "PATCH" and request.path.endswith("/pods/race") and not raced:
            raced.append(request)
            cluster.kube.api.mutate("Pod", NS, "race", lambda o: o["spec"][
                "schedulingGates"].pop(0))

    cluster.kube.api.on_request = kueue_removes_its_gate
    replica = cluster.start(engine=release_engine)
    eventually(lambda: _gates(cluster, "race") == ["c.example.io/last"])
    first, second = (r.body for r in _patches(cluster, "race"))
    assert first[0]["value"] == [{"name": "a.example.io/first"}, {"name": builders.GATE},
                                 {"name": "c.example.io/last"}]
    assert first[1] == {"op": "remove", "path": "/spec/schedulingGates/1"}
    assert second == [{"op": "test", "path": "/spec/schedulingGates",
                       "value": [{"name": builders.GATE}, {"name": "c.example.io/last"}]},
                      {"op": "remove", "path": "/spec/schedulingGates/0"}]
    assert replica.value("carbongate_deferral_patch_conflicts_total") == 1
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Pod",
                                     reason="window-open") == 1)


def test_a_watch_that_drops_is_resumed_from_its_resource_version(cluster, release_engine) -> None:
    cluster.kube.api.drop_watches_after = 1
    replica = cluster.start(engine=release_engine)
    core = kubernetes.client.CoreV1Api(cluster.kube.api_client())
    for name in ("one", "two", "three"):
        core.create_namespaced_pod(NS, builders.gated_pod(
            name, not_before=START - timedelta(minutes=1), deadline=DAY))
        eventually(lambda name=name: _gates(cluster, name) == [])
    pod_gets = [r for r in cluster.kube.api.requests
                if r.method == "GET" and r.path == "/api/v1/pods"]
    lists = [r for r in pod_gets if "watch" not in r.query]
    watches = [int(r.query["resourceVersion"]) for r in pod_gets if "watch" in r.query]
    assert len(lists) == 1
    assert len(watches) >= 4 and watches == sorted(watches)
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Pod",
                                     reason="window-open") == 3)


def test_an_expired_watch_relists_and_misses_nothing(cluster, release_engine) -> None:
    replica = cluster.start(engine=release_engine)
    eventually(lambda: any("watch" in r.query for r in cluster.kube.api.requests
                           if r.path == "/api/v1/pods"))
    cluster.kube.api.compact()
    cluster.kube.api.seed(builders.gated_pod("after-gone", not_before=START, deadline=DAY))
    cluster.kube.api.compact()
    cluster.kube.api.close_watches()
    eventually(lambda: _gates(cluster, "after-gone") == [])
    assert replica.value("carbongate_deferral_watch_restarts_total", kind="Pod",
                         cause="gone") >= 1


def test_only_the_leader_releases_and_a_standby_takes_over_after_the_lease_expires(
        cluster, release_engine) -> None:
    # An hour-long lease: the manual clock jumps minutes at a time, and a jump
    # shorter than the lease must not look like a dead leader.
    lease = {"lease_duration_s": 3600, "lease_renew_s": 2}
    leases = kubernetes.client.CoordinationV1Api(cluster.kube.api_client())
    first = cluster.start(engine=release_engine, identity="replica-a", **lease)
    eventually(lambda: cluster.kube.api.get("Lease", "carbongate", "carbongate-deferral"))
    second = cluster.start(engine=release_engine, identity="replica-b", **lease)
    cluster.kube.api.seed(builders.gated_pod("early", not_before=START + timedelta(minutes=10),
                                             deadline=DAY))
    cluster.kube.api.seed(builders.gated_pod("late", not_before=START + timedelta(minutes=30),
                                             deadline=DAY))
    eventually(lambda: second.value("carbongate_deferral_gated_workloads", kind="Pod") == 2)
    cluster.clock.advance(600)
    eventually(lambda: first.value("carbongate_deferral_releases_total", kind="Pod",
                                   reason="window-open") == 1)
    assert _gates(cluster, "early") == []
    assert second.value("carbongate_deferral_releases_total", kind="Pod",
                        reason="window-open") == 0
    assert second.value("carbongate_deferral_leader") == 0

    first.running.stop(release_lease=False)  # a crash: the Lease stays with replica-a
    reads = _lease_reads(cluster)
    cluster.clock.advance(2)  # the standby's next attempt: it sees the last renewal
    eventually(lambda: _lease_reads(cluster) > reads)
    reads = _lease_reads(cluster)
    cluster.clock.set(START + timedelta(minutes=59))  # "late" is due, but nobody leads
    eventually(lambda: _lease_reads(cluster) > reads)
    assert _gates(cluster, "late") == [builders.GATE]
    cluster.clock.set(START + timedelta(minutes=70, seconds=5))  # a lease duration later
    eventually(lambda: _gates(cluster, "late") == [])
    taken = leases.read_namespaced_lease("carbongate-deferral", "carbongate")
    assert taken.spec.holder_identity == "replica-b"
    assert taken.spec.lease_transitions == 1
    eventually(lambda: second.value("carbongate_deferral_releases_total", kind="Pod",
                                    reason="window-open") == 1)
    assert second.value("carbongate_deferral_deadline_misses_total") == 0


def test_opa_and_the_feed_down_at_the_deadline_still_release_at_release_by(
        cluster, down_engine) -> None:
    deadline = START + timedelta(hours=11)  # expected 2h: release_by 21:00
    cluster.kube.api.seed(builders.gated_pod("urgent", not_before=START + timedelta(hours=10),
                                             deadline=deadline))
    assert not cluster.snapshot_path.exists()  # no grid data either
    replica = cluster.start(engine=down_engine)
    eventually(lambda: replica.value("carbongate_deferral_policy_failures_total",
                                     kind="error") >= 1)
    release_by = deadline - timedelta(hours=2)
    cluster.clock.set(release_by - timedelta(seconds=31))
    cluster.clock.advance(0)
    assert _gates(cluster, "urgent") == [builders.GATE]
    cluster.clock.set(release_by - timedelta(seconds=30))  # deadline_lead_s before release_by
    eventually(lambda: _gates(cluster, "urgent") == [])
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Pod",
                                     reason="deadline") == 1)
    assert replica.value("carbongate_deferral_deadline_misses_total") == 0
    released = eventually(lambda: [e for e in cluster.kube.api.objects("Event")
                                   if e["reason"] == "Released"])
    assert "released (deadline)" in released[0]["message"]


def test_a_pod_deleted_while_gated_is_forgotten_without_a_patch(cluster, release_engine) -> None:
    cluster.kube.api.seed(builders.gated_pod("doomed", not_before=START + timedelta(hours=2),
                                             deadline=DAY))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Pod") == 1)
    kubernetes.client.CoreV1Api(cluster.kube.api_client()).delete_namespaced_pod("doomed", NS)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Pod") == 0)
    assert replica.value("carbongate_deferral_deleted_while_gated_total", kind="Pod") == 1
    cluster.clock.advance(3 * 3600)
    cluster.clock.advance(0)
    assert _patches(cluster, "doomed") == []
    assert replica.value("carbongate_deferral_releases_total", kind="Pod",
                         reason="window-open") == 0


def test_break_glass_annotation_releases_at_once_and_is_recorded(cluster, release_engine) -> None:
    cluster.kube.api.seed(builders.gated_pod("hotfix", not_before=START + timedelta(hours=10),
                                             deadline=DAY))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: "Deferred" in _reasons(cluster, "hotfix"))
    cluster.kube.api.mutate("Pod", NS, "hotfix", lambda o: o["metadata"]["annotations"].update(
        {workloads.RELEASE_NOW: "true"}))
    eventually(lambda: _gates(cluster, "hotfix") == [])
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Pod",
                                     reason="break-glass") == 1)
    released = eventually(lambda: [e for e in cluster.kube.api.objects("Event")
                                   if e["reason"] == "Released"])
    assert "carbongate.io/release-now was set" in released[0]["message"]


def test_break_glass_works_with_the_policy_engine_down(cluster, down_engine) -> None:
    cluster.kube.api.seed(builders.gated_pod("hotfix", not_before=START + timedelta(hours=10),
                                             deadline=DAY,
                                             extra={workloads.RELEASE_NOW: "true"}))
    replica = cluster.start(engine=down_engine)
    eventually(lambda: _gates(cluster, "hotfix") == [])
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Pod",
                                     reason="break-glass") == 1)


def test_a_restarted_controller_picks_up_workloads_already_waiting(cluster, release_engine) -> None:
    cluster.kube.api.seed(builders.gated_pod("overdue", not_before=START - timedelta(hours=1),
                                             deadline=DAY))
    cluster.kube.api.seed(builders.gated_pod("later", not_before=START + timedelta(hours=5),
                                             deadline=DAY))
    cluster.kube.api.seed(builders.suspended_job("batch", not_before=START + timedelta(hours=5),
                                                 deadline=DAY))
    first = cluster.start(engine=release_engine, identity="before-restart")
    eventually(lambda: _gates(cluster, "overdue") == [])
    eventually(lambda: "Deferred" in _reasons(cluster, "later"))
    first.running.stop()

    second = cluster.start(engine=release_engine, identity="after-restart")
    eventually(lambda: second.value("carbongate_deferral_gated_workloads", kind="Pod") == 1
               and second.value("carbongate_deferral_gated_workloads", kind="Job") == 1)
    eventually(lambda: second.value("carbongate_deferral_leader") == 1)
    cluster.clock.advance(5 * 3600)
    eventually(lambda: _gates(cluster, "later") == [])
    eventually(lambda: cluster.kube.api.get("Job", NS, "batch")["spec"]["suspend"] is False)
    eventually(lambda: _reasons(cluster, "later") == ["Deferred", "Released"])
    assert _reasons(cluster, "overdue") == ["Deferred", "Released"]  # no duplicates


def test_an_api_error_on_release_is_retried(cluster, release_engine) -> None:
    cluster.kube.api.fail_matching("PATCH", "/pods/flaky", 2)
    cluster.kube.api.seed(builders.gated_pod("flaky", not_before=START, deadline=DAY))
    replica = cluster.start(engine=release_engine, retry_s=5)
    eventually(lambda: replica.value("carbongate_deferral_api_errors_total",
                                     operation="release") == 1)
    cluster.clock.advance(5)
    eventually(lambda: replica.value("carbongate_deferral_api_errors_total",
                                     operation="release") == 2)
    assert _gates(cluster, "flaky") == [builders.GATE]
    cluster.clock.advance(5)
    eventually(lambda: _gates(cluster, "flaky") == [])


def test_a_pod_without_a_readable_deadline_is_released_at_once(cluster, release_engine) -> None:
    cluster.kube.api.seed(builders.gated_pod("orphan", not_before=START + timedelta(hours=4),
                                             deadline=None))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Pod",
                                     reason="deadline") == 1)
    assert _gates(cluster, "orphan") == []
    deferred = [e for e in cluster.kube.api.objects("Event") if e["reason"] == "Deferred"]
    assert "carbongate.io/deadline missing" in deferred[0]["message"]


def test_grid_file_is_not_needed_to_start(cluster, release_engine) -> None:
    grid_files.publish(cluster.snapshot_path, {"schema": 99})  # a snapshot nobody can use
    cluster.kube.api.seed(builders.gated_pod("plain", not_before=START + timedelta(hours=1),
                                             deadline=DAY))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: replica.value("carbongate_deferral_grid_errors_total") == 1)
    cluster.clock.advance(3600)
    eventually(lambda: _gates(cluster, "plain") == [])


def test_a_relist_tells_deleted_from_released_elsewhere(cluster, release_engine) -> None:
    for name in ("deleted", "ungated"):
        cluster.kube.api.seed(builders.gated_pod(name, not_before=START + timedelta(hours=5),
                                                 deadline=DAY))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Pod") == 2)
    cluster.kube.api.drop_watches_after = 0  # the watch is down while both change...
    cluster.kube.api.close_watches()
    cluster.kube.api.remove("Pod", NS, "deleted")
    cluster.kube.api.mutate("Pod", NS, "ungated", lambda o: o["spec"].update(schedulingGates=[]))
    cluster.kube.api.compact()  # ...and the history is gone: only a relist can tell
    cluster.kube.api.drop_watches_after = None
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Pod") == 0)
    assert replica.value("carbongate_deferral_deleted_while_gated_total", kind="Pod") == 1
