"""A held workload is released at its planned window: gated Pods and suspended Jobs."""

from __future__ import annotations

from datetime import timedelta

from deferral import workloads
from tests.deferral import builders, grid_files
from tests.deferral.conftest import START, Cluster, eventually


def _events(cluster: Cluster, name: str) -> list[dict]:
    return [e for e in cluster.kube.api.objects("Event")
            if e["involvedObject"]["name"] == name]


def test_gated_pod_is_released_when_its_window_opens(cluster, release_engine) -> None:
    grid_files.publish(cluster.snapshot_path, grid_files.snapshot(START))
    window = START + timedelta(hours=12)  # 2023-11-23 00:00, GB ~90 gCO2/kWh
    cluster.kube.api.seed(builders.gated_pod("train", not_before=window,
                                             deadline=START + timedelta(hours=24)))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Pod") == 1)
    deferred = eventually(lambda: [e for e in _events(cluster, "train") if e["reason"] == "Deferred"])
    assert "waiting for a clean window from 2023-11-23T00:00:00Z" in deferred[0]["message"]

    cluster.clock.set(window - timedelta(minutes=1))
    cluster.clock.advance(0)
    assert cluster.kube.api.get("Pod", "ml-team", "train")["spec"]["schedulingGates"]

    cluster.clock.set(window)
    eventually(lambda: not cluster.kube.api.get("Pod", "ml-team", "train")["spec"].get(
        "schedulingGates"))
    released = eventually(lambda: [e for e in _events(cluster, "train")
                                   if e["reason"] == "Released"])
    assert released[0]["message"].startswith("released (window-open)")
    assert replica.value("carbongate_deferral_releases_total", kind="Pod",
                         reason="window-open") == 1
    assert replica.value("carbongate_deferral_deadline_misses_total") == 0
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Pod") == 0)


def test_suspended_job_is_unsuspended_at_its_planned_window(cluster, release_engine) -> None:
    grid_files.publish(cluster.snapshot_path, grid_files.snapshot(START))
    window = START + timedelta(hours=12)
    cluster.kube.api.seed(builders.suspended_job("nightly", not_before=window,
                                                 deadline=START + timedelta(hours=24)))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Job") == 1)
    cluster.clock.set(window)
    eventually(lambda: cluster.kube.api.get("Job", "ml-team", "nightly")["spec"]["suspend"]
               is False)
    patches = [r.body for r in cluster.kube.api.requests
               if r.method == "PATCH" and r.path.endswith("/jobs/nightly")]
    assert patches == [[{"op": "test", "path": "/spec/suspend", "value": True},
                        {"op": "replace", "path": "/spec/suspend", "value": False}]]
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Job",
                                     reason="window-open") == 1)
    assert workloads.is_waiting("Job", cluster.kube.api.get("Job", "ml-team", "nightly")) is False
