"""A held workload is released at its planned window: gated Pods and suspended Jobs."""

from __future__ import annotations

from datetime import timedelta

from deferral import workloads
from tests.deferral import builders, grid_files
from tests.deferral.conftest import START, Cluster
from tests.support.waiting import eventually


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


def test_a_new_snapshot_under_the_threshold_releases_early_with_the_intensity(
        cluster, release_engine) -> None:
    # Tier 2, whose threshold is 200 gCO2/kWh (tier 3 ships with none: it waits for its
    # window), seen at 16:00 when GB is at 216.
    afternoon = START + timedelta(hours=4)
    cluster.clock.set(afternoon)
    grid_files.publish(cluster.snapshot_path, grid_files.snapshot(afternoon))
    cluster.kube.api.seed(builders.gated_pod("train", not_before=START + timedelta(hours=12),
                                             deadline=START + timedelta(hours=24), tier="2"))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Pod") == 1)
    evening = START + timedelta(hours=9)  # 21:00, GB at 119 gCO2/kWh
    # The feed's hourly update lands, then time passes: the other order raced (a controller
    # woken by the clock could read the old file and, the clock then standing still, not
    # look again for grid_poll_s of clock time, which never came).
    grid_files.publish(cluster.snapshot_path, grid_files.snapshot(evening))
    cluster.clock.set(evening)
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Pod",
                                     reason="clean-now") == 1)
    released = eventually(lambda: [e for e in _events(cluster, "train") if e["reason"] == "Released"])
    assert "GB is at 119 gCO2/kWh now, under the tier 2 threshold of 200" in released[0]["message"]
    assert "intensity 119 gCO2/kWh now, 275 at admission" in released[0]["message"]
    text = replica.metrics.text()
    assert 'carbongate_deferral_gate_age_seconds_count{kind="Pod"} 1.0' in text


def test_a_new_forecast_moves_the_window_and_the_pod_waits_for_it(cluster, release_engine) -> None:
    grid_files.publish(cluster.snapshot_path, grid_files.snapshot(START))
    planned = START + timedelta(hours=8)  # what an older forecast said: 20:00
    cluster.kube.api.seed(builders.gated_pod("train", not_before=planned,
                                             deadline=START + timedelta(hours=24)))
    replica = cluster.start(engine=release_engine)
    moved = eventually(lambda: cluster.kube.api.get("Pod", "ml-team", "train")["metadata"][
        "annotations"][workloads.NOT_BEFORE] != workloads.format_time(planned) and cluster.kube.api.get(
        "Pod", "ml-team", "train")["metadata"]["annotations"][workloads.NOT_BEFORE])
    new_window = workloads.parse_time(moved)
    assert new_window > planned
    replanned = eventually(lambda: [e for e in _events(cluster, "train") if e["reason"] == "Replanned"])
    assert f"window moved from 2023-11-22T20:00:00Z to {moved}" in replanned[0]["message"]
    assert replica.value("carbongate_deferral_replans_total") == 1

    cluster.clock.set(planned)  # the old window: nothing happens
    cluster.clock.advance(0)
    assert cluster.kube.api.get("Pod", "ml-team", "train")["spec"]["schedulingGates"]
    cluster.clock.set(new_window)
    eventually(lambda: not cluster.kube.api.get("Pod", "ml-team", "train")["spec"].get(
        "schedulingGates"))
    eventually(lambda: replica.value("carbongate_deferral_releases_total", kind="Pod",
                                     reason="window-open") == 1)
    assert replica.value("carbongate_deferral_deadline_misses_total") == 0


def test_a_shifted_pod_is_narrowed_to_its_region_when_released(cluster, release_engine) -> None:
    grid_files.publish(cluster.snapshot_path, grid_files.snapshot(START))
    cluster.kube.api.seed(builders.gated_pod("moved", not_before=START + timedelta(hours=1),
                                             deadline=START + timedelta(hours=24), region="NO"))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Pod") == 1)
    # NO's best window is 18:00 on this day, so the controller moves the planned 13:00 there
    # (tier 3 waits for the best window); by 18:00 it is released either way.
    cluster.clock.set(START + timedelta(hours=6))
    eventually(lambda: not cluster.kube.api.get("Pod", "ml-team", "moved")["spec"].get(
        "schedulingGates"))
    affinity = cluster.kube.api.get("Pod", "ml-team", "moved")["spec"]["affinity"]
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "topology.kubernetes.io/region",
                                            "operator": "In", "values": ["norwayeast"]}]}]


def test_release_lag_is_measured_against_the_planned_window(cluster, release_engine) -> None:
    window = START + timedelta(hours=2)
    cluster.kube.api.seed(builders.gated_pod("train", not_before=window,
                                             deadline=START + timedelta(hours=24)))
    replica = cluster.start(engine=release_engine)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Pod") == 1)
    replica.running.stop()  # the controller is away when the window opens...
    cluster.clock.set(window + timedelta(seconds=45))
    late = cluster.start(engine=release_engine, identity="replica-b")  # ...and back 45 s later
    eventually(lambda: late.value("carbongate_deferral_releases_total", kind="Pod",
                                  reason="window-open") == 1)
    assert late.value("carbongate_deferral_release_lag_seconds_sum", reason="window-open") == 45
    assert late.value("carbongate_deferral_release_lag_seconds_bucket", reason="window-open",
                      le="30.0") == 0


class _CountingEngine:
    """The real release engine, with the paths it was asked for recorded."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.paths: list[str] = []

    def evaluate(self, path, policy_input, **options):
        self.paths.append(path)
        return self.inner.evaluate(path, policy_input, **options)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_new_snapshot_decides_every_waiting_workload_in_one_engine_call(cluster, release_engine) -> None:
    """The controller asks the batch rule once for all the workloads a snapshot makes due
    (release.decide_many), and each still gets its own decision: one is re-planned."""
    grid_files.publish(cluster.snapshot_path, grid_files.snapshot(START))
    names = [f"train-{n}" for n in range(5)]
    for name in names:
        cluster.kube.api.seed(builders.gated_pod(name, not_before=START + timedelta(hours=8),
                                                 deadline=START + timedelta(hours=24)))
    engine = _CountingEngine(release_engine)
    replica = cluster.start(engine=engine)
    eventually(lambda: replica.value("carbongate_deferral_gated_workloads", kind="Pod") == 5)
    eventually(lambda: all(any(e["reason"] == "Replanned" for e in _events(cluster, n)) for n in names))
    asked = list(engine.paths)
    assert asked and set(asked) == {"carbongate/release/batch/decisions"}, asked

    later = START + timedelta(hours=1)
    grid_files.publish(cluster.snapshot_path, grid_files.snapshot(later))
    cluster.clock.set(later)
    eventually(lambda: len(engine.paths) > len(asked))
    cluster.clock.advance(0)  # one more step: anything else due would be asked now
    assert engine.paths[len(asked):] == ["carbongate/release/batch/decisions"]
