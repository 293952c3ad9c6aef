"""Interruptible Jobs: paused when the grid turns dirty, resumed when clean, done by the deadline.

Against the Kubernetes API double, whose Job controller part follows the
published Job suspension semantics (tests/support/kube_api.py: suspending
terminates the active pods, resuming resets ``status.startTime``, Indexed
Jobs keep their completed indexes), with the real embedded OPA engine and
the shipped interrupt policy, on the demo GB trace from 2023-11-22 12:00 UTC
(193 gCO2/kWh, above 186 until 20:00, 90 from midnight).

The Job needs 4 h of work and must be done by 04:00 the next morning. Tier 3
(shipped config): slices of at least 1 h, 4 pauses, 15 min of overhead per
resume. It runs from 12:00; after its first hour the plan puts the other 3 h
(plus 15 min) into 00:00-03:15, so it is paused at 13:00 and resumed at
00:00. Its completion guarantee: resume_by = 04:00 - 3 h - 15 min - 30 s lead
= 00:44:30.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from carbongate import platform as platform_mod
from carbongate.clock import ManualClock
from deferral import interrupt, listing, service, workloads
from deferral import kube as kube_mod
from deferral import metrics as metrics_mod
from policy_engine import opa_server
from tests.deferral import builders, grid_files
from tests.deferral.conftest import START, Cluster, Replica, settings_for_test
from tests.support import kube_api
from tests.support.waiting import eventually

NS, NAME = "ml-team", "train"
DEADLINE = START + timedelta(hours=16)
MIDNIGHT = START + timedelta(hours=12)
RESUME_BY = DEADLINE - timedelta(hours=3, minutes=15, seconds=30)


@pytest.fixture
def kube(clock: ManualClock) -> Iterator[kube_api.RunningKubeApi]:
    """The API double on the test's clock: startTime and completionTime follow it."""
    with kube_api.serve(kube_api.FakeKubeApi(clock=clock.now)) as served:
        yield served


def running_job(*, name: str = NAME, indexed: bool = False, duration: str = "4h") -> dict[str, Any]:
    job = builders.suspended_job(name, not_before=None, deadline=DEADLINE, duration=duration,
                                 extra={interrupt.INTERRUPTIBLE: "true"})
    job["metadata"]["annotations"][workloads.DECISION] = "admit"
    job["spec"]["suspend"] = False
    if indexed:
        job["spec"].update(completionMode="Indexed", completions=4, parallelism=2)
    return job


def job(cluster: Cluster, name: str = NAME) -> dict[str, Any]:
    found = cluster.kube.api.get("Job", NS, name)
    assert found is not None
    return found


def suspended(cluster: Cluster, name: str = NAME) -> bool:
    return bool(job(cluster, name)["spec"].get("suspend"))


def reasons(cluster: Cluster, name: str = NAME) -> list[str]:
    return sorted(e["reason"] for e in cluster.kube.api.objects("Event")
                  if e["involvedObject"]["name"] == name)


def at(cluster: Cluster, when, *, feed: bool = True) -> None:
    """Move the clock to ``when``; the feed (when running) publishes that hour's snapshot."""
    if feed:
        grid_files.publish(cluster.snapshot_path, grid_files.snapshot(when))
    cluster.clock.set(when)


def start(cluster: Cluster, engine, **objects: Any) -> Replica:
    at(cluster, START)
    for obj in objects.values():
        cluster.kube.api.seed(obj)
    replica = cluster.start(engine=engine)
    eventually(lambda: replica.value("carbongate_deferral_interruptible_jobs", state="running")
               == len(objects))
    return replica


def pause_at_one(cluster: Cluster, replica: Replica, name: str = NAME) -> None:
    at(cluster, START + timedelta(minutes=30))
    assert not suspended(cluster, name)  # the first slice has not run its minimum hour
    at(cluster, START + timedelta(hours=1))
    eventually(lambda: suspended(cluster, name))
    eventually(lambda: replica.value("carbongate_deferral_pauses_total", reason="dirty-now") >= 1)


def test_a_running_job_is_paused_at_the_dirty_hour_resumed_at_the_clean_one_and_finishes_with_the_feed_stopped(
        cluster, release_engine) -> None:
    replica = start(cluster, release_engine, train=running_job())
    pause_at_one(cluster, replica)
    notes = job(cluster)["metadata"]["annotations"]
    assert (notes[interrupt.RUN_SECONDS], notes[interrupt.PAUSES]) == ("3600", "1")
    assert job(cluster)["status"]["active"] == 0
    for hour in range(2, 12):  # 14:00 .. 23:00: dirtier than the night, stays paused
        at(cluster, START + timedelta(hours=hour))
        cluster.clock.advance(0)
    assert suspended(cluster)
    at(cluster, MIDNIGHT)
    eventually(lambda: not suspended(cluster))
    eventually(lambda: replica.value("carbongate_deferral_resumes_total", reason="clean-slice") == 1)
    assert job(cluster)["status"]["startTime"] == workloads.format_time(MIDNIGHT)
    # The feed stops: no snapshot after midnight, the data goes stale at 02:00.
    for minutes in (60, 120, 150, 180):
        at(cluster, MIDNIGHT + timedelta(minutes=minutes), feed=False)
        cluster.clock.advance(0)
    assert not suspended(cluster)
    cluster.kube.api.finish_job(NS, NAME)  # 3 h of work + 15 min of restart done at 03:15
    at(cluster, MIDNIGHT + timedelta(hours=3, minutes=15), feed=False)
    eventually(lambda: "Finished" in reasons(cluster))
    eventually(lambda: replica.value("carbongate_deferral_interruptible_jobs", state="running") == 0)
    assert reasons(cluster) == ["Finished", "Paused", "Resumed"]
    assert replica.value("carbongate_deferral_deadline_misses_total") == 0
    assert replica.value("carbongate_deferral_interruptible_run_seconds_total") >= 3600 + 3 * 3600


def test_the_deadline_resumes_a_paused_job_with_the_engine_stopped_and_it_is_never_paused_again(
        cluster, release_engine) -> None:
    first = start(cluster, release_engine, train=running_job())
    pause_at_one(cluster, first)
    first.running.stop()
    stopped = opa_server.OpaServerEngine(url="http://127.0.0.1:9", policy_dir=cluster.policy_dir,
                                         timeout_s=0.2)
    second = cluster.start(engine=stopped, identity="replica-b")
    # The controller was away past its slice start; at resume_by it resumes without any policy.
    at(cluster, RESUME_BY + timedelta(seconds=5), feed=False)
    eventually(lambda: not suspended(cluster), timeout_s=20)
    assert job(cluster)["metadata"]["annotations"][interrupt.STATE] == interrupt.FINAL
    eventually(lambda: second.value("carbongate_deferral_resumes_total", reason="deadline") == 1)
    # Even with a working engine and a dirty forecast it is not paused again.
    second.running.stop()
    third = cluster.start(engine=release_engine, identity="replica-c")
    at(cluster, RESUME_BY + timedelta(hours=1))
    eventually(lambda: third.value("carbongate_deferral_interruptible_jobs", state="running") == 1)
    assert not suspended(cluster)
    assert third.value("carbongate_deferral_pauses_total", reason="dirty-now") == 0
    assert second.value("carbongate_deferral_deadline_misses_total") == 0


def test_a_job_that_finishes_early_is_let_go(cluster, release_engine) -> None:
    replica = start(cluster, release_engine, train=running_job(duration="30m"))
    cluster.kube.api.finish_job(NS, NAME)
    at(cluster, START + timedelta(minutes=20))
    eventually(lambda: "Finished" in reasons(cluster))
    eventually(lambda: replica.value("carbongate_deferral_interruptible_jobs", state="running") == 0)
    assert not suspended(cluster)
    assert replica.value("carbongate_deferral_deadline_misses_total") == 0


def test_an_indexed_job_keeps_its_completed_indexes_through_a_pause(cluster, release_engine) -> None:
    replica = start(cluster, release_engine, train=running_job(indexed=True))
    assert job(cluster)["status"]["active"] == 2
    cluster.kube.api.complete_indexes(NS, NAME, [0, 1])
    pause_at_one(cluster, replica)
    status = job(cluster)["status"]
    assert (status["active"], status["completedIndexes"], status["succeeded"]) == (0, "0-1", 2)
    at(cluster, MIDNIGHT)
    eventually(lambda: not suspended(cluster))
    status = job(cluster)["status"]
    assert (status["active"], status["completedIndexes"]) == (2, "0-1")


def test_a_restarted_controller_recovers_the_run_time_from_the_api(cluster, release_engine) -> None:
    first = start(cluster, release_engine, train=running_job())
    pause_at_one(cluster, first)
    first.running.stop()
    second = cluster.start(engine=release_engine, identity="replica-b")
    # Had it forgotten the hour already run, 4 h 15 min would be left and it would
    # resume at 23:00; knowing it from the annotations, it waits for midnight.
    at(cluster, MIDNIGHT - timedelta(hours=1))
    eventually(lambda: second.value("carbongate_deferral_interruptible_jobs", state="paused") == 1)
    cluster.clock.advance(1)
    assert suspended(cluster)
    at(cluster, MIDNIGHT)
    eventually(lambda: not suspended(cluster))
    resumed = eventually(lambda: [e for e in cluster.kube.api.objects("Event")
                                  if e["reason"] == "Resumed"])
    assert "3600s run so far" in resumed[0]["message"]
    assert resumed[0]["reportingInstance"] == "replica-b"


def test_a_job_deleted_while_paused_is_forgotten(cluster, release_engine) -> None:
    replica = start(cluster, release_engine, train=running_job())
    pause_at_one(cluster, replica)
    cluster.kube.api.remove("Job", NS, NAME)
    eventually(lambda: replica.value("carbongate_deferral_deleted_while_gated_total", kind="Job")
               == 1)
    eventually(lambda: replica.value("carbongate_deferral_interruptible_jobs", state="paused") == 0)
    at(cluster, MIDNIGHT)
    cluster.clock.advance(1)
    assert replica.value("carbongate_deferral_api_errors_total", operation="interrupt") == 0


def test_active_deadline_counts_from_each_resume(cluster, release_engine) -> None:
    """activeDeadlineSeconds restarts at every resume (startTime is reset), so 2 h is enough."""
    long_job = running_job()
    long_job["spec"]["activeDeadlineSeconds"] = 2 * 3600
    replica = start(cluster, release_engine, train=long_job)
    pause_at_one(cluster, replica)
    at(cluster, MIDNIGHT)
    eventually(lambda: not suspended(cluster))
    at(cluster, MIDNIGHT + timedelta(hours=1))
    assert cluster.kube.api.enforce_active_deadlines() == []  # 13 h after the first start


def test_carbongate_deferred_shows_the_plan_of_slices(cluster, release_engine) -> None:
    replica = start(cluster, release_engine, train=running_job())
    pause_at_one(cluster, replica)
    settings = settings_for_test(snapshot_path=cluster.snapshot_path, policy_dir=cluster.policy_dir)
    platform = platform_mod.read(cluster.policy_dir)
    config = service.controller_config(settings, platform)
    gateway = kube_mod.Gateway(api_client=cluster.kube.api_client())
    rows = listing.collect(gateway, now=START + timedelta(hours=1),
                           default_duration_s=config.default_duration_s,
                           grid_view=service.grid_view(settings, platform, metrics=metrics_mod.Metrics()),
                           pausing_config=config.pausing)
    (row,) = rows
    assert row["reason"] == "interruptible, paused, 1 pause(s), 180m of work left"
    assert row["release_by"] == workloads.format_time(RESUME_BY)
    assert row["slices"] == [{"start": "2023-11-23T00:00:00Z", "end": "2023-11-23T03:15:00Z",
                              "mean_g_per_kwh": "92"}]
    assert "11-23T00:00Z+3h15m" in listing.table(rows)
