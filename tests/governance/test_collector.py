"""The collector through the Kubernetes API test double and the real ``kubernetes`` client.

``tests/support/kube_api.py`` serves the published pod/job REST API and watch
protocol on 127.0.0.1 (no kube-apiserver can run here); the collector talks
to it with the same client code it uses in a cluster.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import kubernetes.client
import pytest

from carbongate import unreviewed
from governance import collector, history, ledger, metrics, pods
from planner import energy
from tests.governance.conftest import FIXTURES, at, finished_pod
from tests.support import kube_api, waiting

TRACES = (FIXTURES / "grid-GB.csv", FIXTURES / "grid-DE.csv")
ONE_RUN_G = 1.977624  # 2 vCPU, 4 GiB for GB 13h-15h (test_accounting)


@dataclass
class Clock:
    """The double's clock: what creationTimestamp it stamps on new objects."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-11-03T10:00"))


@pytest.fixture
def kube(clock: Clock) -> Iterator[kube_api.RunningKubeApi]:
    with kube_api.serve(kube_api.FakeKubeApi(clock=clock)) as running:
        yield running


@dataclass
class Running:
    """A collector on its thread, its metrics, and how to stop it."""

    collector: collector.Collector
    meters: metrics.GovernanceMetrics
    stop_event: threading.Event
    thread: threading.Thread

    def stop(self) -> None:
        self.stop_event.set()
        self.collector.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture
def start(kube: kube_api.RunningKubeApi) -> Iterator[Callable[[ledger.SqlLedger], Running]]:
    started: list[Running] = []
    grid = history.load_traces(TRACES)

    def run(store: ledger.SqlLedger) -> Running:
        client = kube.api_client()
        core = kubernetes.client.CoreV1Api(client)
        meters = metrics.create()
        recorder = collector.Recorder(
            store=store, model=energy.EnergyModel.default(), grid=grid,
            defaults=pods.Defaults(home_region="GB"),
            lookups=collector.KubeLookups(core=core, batch=kubernetes.client.BatchV1Api(client)),
            meters=meters, clock=lambda: at("2026-11-03T16:00"))
        watcher = collector.Collector(api=core, recorder=recorder, meters=meters,
                                      watch_timeout_s=2, retry_s=0.05)
        stop = threading.Event()
        thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
        thread.start()
        running = Running(watcher, meters, stop, thread)
        started.append(running)
        return running

    yield run
    for running in started:
        if running.thread.is_alive():
            running.stop()


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    waiting.eventually(check, timeout_s=timeout_s, interval_s=0.02)


def sample(meters: metrics.GovernanceMetrics, name: str, **labels: str) -> float:
    return meters.registry.get_sample_value(name, labels) or 0.0


def running_pod(name: str, **kwargs: Any) -> dict[str, Any]:
    pod = finished_pod(name, **kwargs)
    pod["status"] = {"phase": "Running", "startTime": "2026-11-03T13:00:00Z"}
    return pod


def finish(obj: dict[str, Any]) -> None:
    obj["status"] = finished_pod(obj["metadata"]["name"])["status"]


def uids(store: ledger.SqlLedger) -> list[str]:
    return sorted(r.uid for r in store.runs(since=at("2026-01-01T00:00"),
                                             until=at("2027-01-01T00:00")))


def test_finished_pods_are_recorded_and_running_ones_are_not(
        kube: kube_api.RunningKubeApi, sqlite_store: ledger.SqlLedger,
        start: Callable[[ledger.SqlLedger], Running]) -> None:
    done = [kube.api.seed(finished_pod(f"train-{i}")) for i in range(3)]
    kube.api.seed(running_pod("still-running"))
    failed = kube.api.seed(finished_pod("crashed", phase="Failed"))
    running = start(sqlite_store)
    assert running.collector.wait_idle(10)
    assert uids(sqlite_store) == sorted(p["metadata"]["uid"] for p in [*done, failed])
    (row, *_) = sqlite_store.runs(since=at("2026-11-01T00:00"), until=at("2026-12-01T00:00"))
    assert row.emissions_g == pytest.approx(ONE_RUN_G)
    assert row.admitted_at == at("2026-11-03T10:00")
    assert sample(running.meters, "carbongate_governance_runs_recorded_total",
                  phase="Failed") == 1


def test_a_pod_that_finishes_later_is_recorded_through_the_watch(
        kube: kube_api.RunningKubeApi, sqlite_store: ledger.SqlLedger,
        start: Callable[[ledger.SqlLedger], Running]) -> None:
    pod = kube.api.seed(running_pod("train"))
    running = start(sqlite_store)
    assert running.collector.wait_idle(10)
    assert sqlite_store.count() == 0
    kube.api.mutate("Pod", "ml-train", "train", finish)
    eventually(lambda: sqlite_store.contains(pod["metadata"]["uid"]))
    # later updates of the finished pod (labels, deletion) record nothing more
    kube.api.mutate("Pod", "ml-train", "train",
                    lambda o: o["metadata"]["labels"].update(seen="yes"))
    kube.api.remove("Pod", "ml-train", "train")
    time.sleep(0.3)
    assert running.collector.wait_idle(10)
    assert sqlite_store.count() == 1


def test_a_pod_deleted_right_after_finishing_is_still_recorded(
        kube: kube_api.RunningKubeApi, sqlite_store: ledger.SqlLedger,
        start: Callable[[ledger.SqlLedger], Running]) -> None:
    running = start(sqlite_store)
    assert running.collector.wait_idle(10)
    pod = kube.api.seed(running_pod("short-lived"))
    kube.api.mutate("Pod", "ml-train", "short-lived", finish)
    kube.api.remove("Pod", "ml-train", "short-lived")
    eventually(lambda: sqlite_store.contains(pod["metadata"]["uid"]))
    assert sqlite_store.count() == 1


def test_a_restarted_collector_counts_nothing_twice(
        kube: kube_api.RunningKubeApi, sqlite_store: ledger.SqlLedger,
        start: Callable[[ledger.SqlLedger], Running]) -> None:
    for i in range(4):
        kube.api.seed(finished_pod(f"train-{i}"))
    first = start(sqlite_store)
    assert first.collector.wait_idle(10)
    first.stop()
    late = kube.api.seed(finished_pod("finished-while-down"))
    second = start(sqlite_store)
    assert second.collector.wait_idle(10)
    assert sqlite_store.count() == 5
    assert sqlite_store.contains(late["metadata"]["uid"])
    assert sample(second.meters, "carbongate_governance_runs_recorded_total",
                  phase="Succeeded") == 1


def test_an_expired_watch_version_lists_again_and_misses_nothing(
        kube: kube_api.RunningKubeApi, sqlite_store: ledger.SqlLedger,
        start: Callable[[ledger.SqlLedger], Running]) -> None:
    kube.api.seed(finished_pod("before"))
    running = start(sqlite_store)
    assert running.collector.wait_idle(10)
    # the collector is cut off; meanwhile a pod finishes and history is compacted
    kube.api.seed(finished_pod("during-the-gap"))
    kube.api.compact()
    kube.api.close_watches()
    eventually(lambda: sqlite_store.count() == 2)
    eventually(lambda: sample(running.meters, "carbongate_governance_relists_total") >= 1)
    assert sqlite_store.count() == 2


def test_api_errors_are_retried(
        kube: kube_api.RunningKubeApi, sqlite_store: ledger.SqlLedger,
        start: Callable[[ledger.SqlLedger], Running]) -> None:
    pod = kube.api.seed(finished_pod("train"))
    kube.api.fail_next(3)
    running = start(sqlite_store)
    eventually(lambda: sqlite_store.contains(pod["metadata"]["uid"]))
    assert sample(running.meters, "carbongate_governance_watch_errors_total") >= 1


def test_a_jobs_pod_is_charged_from_when_the_job_was_admitted(
        kube: kube_api.RunningKubeApi, clock: Clock, sqlite_store: ledger.SqlLedger,
        start: Callable[[ledger.SqlLedger], Running]) -> None:
    # the Job is admitted (and deferred) at 10:00; its pod is created at release, 13:00
    kube.api.seed({"apiVersion": "batch/v1", "kind": "Job",
                   "metadata": {"name": "nightly", "namespace": "ml-train"},
                   "spec": {"template": {"spec": {"containers": []}}}})
    clock.now = at("2026-11-03T13:00")
    pod = kube.api.seed(finished_pod("nightly-abcde", job="nightly"))
    running = start(sqlite_store)
    assert running.collector.wait_idle(10)
    (row,) = sqlite_store.runs(since=at("2026-11-01T00:00"), until=at("2026-12-01T00:00"))
    assert row.uid == pod["metadata"]["uid"]
    assert (row.workload, row.admitted_at, row.deferred_s) == (
        "nightly", at("2026-11-03T10:00"), 3 * 3600)
    # counterfactual: GB 10h-12h at 300 g/kWh against 150 actually
    assert row.saved_g == pytest.approx(ONE_RUN_G)


def test_a_pod_without_a_team_is_charged_to_unassigned(
        kube: kube_api.RunningKubeApi, sqlite_store: ledger.SqlLedger,
        start: Callable[[ledger.SqlLedger], Running]) -> None:
    kube.api.seed(finished_pod("anonymous", team=None))
    running = start(sqlite_store)
    assert running.collector.wait_idle(10)
    (row,) = sqlite_store.runs(since=at("2026-11-01T00:00"), until=at("2026-12-01T00:00"))
    assert row.team == "(unassigned)"


def test_the_collector_shows_every_pod_it_lists_or_watches_to_the_unreviewed_counter(
        kube: kube_api.RunningKubeApi, sqlite_store: ledger.SqlLedger) -> None:
    """Running pods too, not only the finished ones it records (carbongate.unreviewed)."""
    client = kube.api_client()
    core = kubernetes.client.CoreV1Api(client)
    meters = metrics.create()
    counter = unreviewed.Unreviewed(
        api_client=client, registry=meters.registry,
        scope=unreviewed.Scope(own_namespace="carbongate", exempt=frozenset({"kube-system"})))
    kube.api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "ml-train", "labels": {"carbongate.io/tier": "3"}}})
    assert counter.refresh()
    kube.api.seed(running_pod("missed", decision=None))
    kube.api.seed(running_pod("decided"))
    recorder = collector.Recorder(
        store=sqlite_store, model=energy.EnergyModel.default(), grid=history.load_traces(TRACES),
        defaults=pods.Defaults(home_region="GB"),
        lookups=collector.KubeLookups(core=core, batch=kubernetes.client.BatchV1Api(client)),
        meters=meters)
    watcher = collector.Collector(api=core, recorder=recorder, meters=meters, watch_timeout_s=2,
                                  retry_s=0.05, observe=counter.observe)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        eventually(lambda: sample(meters, "carbongate_unreviewed_workloads_total",
                                  namespace="ml-train", kind="Pod") == 1)
        kube.api.seed(running_pod("missed-later", decision=None))  # through the watch
        eventually(lambda: sample(meters, "carbongate_unreviewed_workloads_total",
                                  namespace="ml-train", kind="Pod") == 2)
    finally:
        stop.set()
        watcher.stop()
        thread.join(timeout=10)
