"""Two governance replicas, one Lease: only the holder collects and publishes.

Each replica is the real service (``governance.service.start``): election
through ``carbongate.leases.Elector``, collector, publisher, ledger on one
shared SQLite file, budgets to the snapshot file and the ConfigMap. The API
server is the double of tests/support/kube_api.py; Lease time is a hand-moved
clock. ``SteppedClock.step`` moves it by one renew interval and returns only
once every election loop has ticked at the new time and is waiting again, so
no replica misses a renewal because the test ran ahead of it.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carbongate import clock as clock_mod
from carbongate import settings as settings_mod
from governance import metrics
from governance import service as service_mod
from tests.governance.conftest import FIXTURES, at, finished_pod
from tests.support import kube_api, waiting

NAMESPACE, LEASE, CONFIG_MAP = "carbongate", "carbongate-governance", "carbongate-budgets-published"
LEASE_S, RENEW_S = 15, 2.0
START = at("2026-11-03T20:00")


class SteppedClock(clock_mod.ManualClock):
    """A manual clock that knows which instants the election loops have waited at."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self._entered: collections.Counter[datetime] = collections.Counter()
        self._seen = threading.Condition()

    def wait(self, wake: threading.Event, timeout_s: float) -> None:
        with self._seen:
            self._entered[self.now()] += 1
            self._seen.notify_all()
        super().wait(wake, timeout_s)

    def settled(self, loops: int, timeout_s: float = 15.0) -> None:
        """Until ``loops`` election loops have ticked at the current time and wait again."""
        now = self.now()
        with self._seen:
            assert self._seen.wait_for(lambda: self._entered[now] >= loops, timeout_s), (
                f"only {self._entered[now]} of {loops} election loops ticked at {now}")

    def step(self, loops: int, seconds: float = RENEW_S) -> datetime:
        now = self.advance(seconds)
        self.settled(loops)
        return now


def eventually(check: Callable[[], Any], timeout_s: float = 15.0) -> Any:
    return waiting.eventually(check, timeout_s=timeout_s, interval_s=0.02)


@dataclass
class Replica:
    identity: str
    running: service_mod.Running
    meters: metrics.GovernanceMetrics

    @property
    def leading(self) -> bool:
        return self.running.leadership.leading

    def sample(self, name: str, **labels: str) -> float | None:
        return self.meters.registry.get_sample_value(name, labels)

    def recorded(self) -> float:
        return self.sample("carbongate_governance_runs_recorded_total", phase="Succeeded") or 0.0

    def healthz(self) -> Any:
        return service_mod.health(self.running)[1]


@dataclass
class Cluster:
    kube: kube_api.RunningKubeApi
    clock: SteppedClock
    directory: Path
    replicas: list[Replica] = field(default_factory=list)

    def settings(self, identity: str, **governance: Any) -> settings_mod.Settings:
        budgets_file = self.directory / "budgets.yaml"
        budgets_file.write_text("teams:\n  ml: {limit_g: 16}\n", encoding="utf-8")
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{self.directory / 'ledger.db'}",
            "budgets_file": budgets_file,
            "budgets_snapshot_path": self.directory / f"budgets-{identity}.json",
            "publish_interval_s": 0.2, "watch_timeout_s": 2, "namespace": NAMESPACE,
            "lease_name": LEASE, "lease_duration_s": LEASE_S, "lease_renew_s": RENEW_S,
            "budgets_configmap": CONFIG_MAP}
        values.update(governance)
        return settings_mod.load(environ={}, overrides={
            "grid": {"home_region": "GB", "snapshot_path": self.directory / "grid-snapshot.json"},
            "feed": {"trace_files": (FIXTURES / "grid-GB.csv",)},
            "governance": values})

    def start(self, identity: str, **governance: Any) -> Replica:
        meters = metrics.create()
        running = service_mod.start(self.settings(identity, **governance),
                                    api_client=self.kube.api_client(), clock=self.clock,
                                    meters=meters, identity=identity)
        replica = Replica(identity=identity, running=running, meters=meters)
        self.replicas.append(replica)
        return replica

    def lease(self) -> dict[str, Any]:
        found = self.kube.api.get("Lease", NAMESPACE, LEASE)
        assert found is not None
        return found

    def holder(self) -> str | None:
        holder: str | None = self.lease()["spec"].get("holderIdentity")
        return holder

    def seed_finished_pods(self, *names: str) -> None:
        for name in names:
            self.kube.api.seed(finished_pod(name))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    api = kube_api.FakeKubeApi(clock=lambda: at("2026-11-03T10:00"))
    with kube_api.serve(api) as served:
        built = Cluster(kube=served, clock=SteppedClock(START), directory=tmp_path)
        try:
            yield built
        finally:
            for replica in built.replicas:
                replica.running.stop()


def leader_and_follower(cluster: Cluster) -> tuple[Replica, Replica]:
    """A leads (it asked first); B, started at the same instant, follows."""
    first = cluster.start("governance-a")
    cluster.clock.settled(1)
    assert eventually(lambda: first.leading)
    second = cluster.start("governance-b")
    cluster.clock.settled(2)
    return first, second


def test_only_the_replica_holding_the_lease_collects_and_publishes(cluster: Cluster) -> None:
    cluster.seed_finished_pods("train-1", "train-2", "train-3")
    leader, follower = leader_and_follower(cluster)
    eventually(lambda: leader.recorded() == 3)
    eventually(lambda: cluster.kube.api.get("ConfigMap", NAMESPACE, CONFIG_MAP))
    # The publication after the runs were recorded (the first may have come before them).
    eventually(lambda: leader.sample("carbongate_budget_used_grams", team="ml") is not None)
    for _ in range(12):  # 24 s of renewals, well past one lease duration
        cluster.clock.step(loops=2)
        assert leader.leading and not follower.leading
    assert cluster.holder() == "governance-a"
    assert follower.recorded() == 0 and follower.running.collecting.current is None
    assert (follower.sample("carbongate_governance_budgets_published_total") or 0.0) == 0.0
    assert not (cluster.directory / "budgets-governance-b.json").exists()
    assert (leader.sample("carbongate_governance_leader"),
            follower.sample("carbongate_governance_leader")) == (1.0, 0.0)
    assert leader.sample("carbongate_budget_used_grams", team="ml") is not None
    assert follower.sample("carbongate_budget_used_grams", team="ml") is None
    # Both serve; only one says it leads.
    assert (leader.healthz(), follower.healthz()) == ({"ok": True, "leader": True},
                                                      {"ok": True, "leader": False})


def test_a_follower_takes_over_once_a_crashed_leaders_lease_has_expired(cluster: Cluster) -> None:
    leader, follower = leader_and_follower(cluster)
    for _ in range(3):
        cluster.clock.step(loops=2)
    leader.running.stop(release_lease=False)  # as SIGKILL would leave it
    last_renewal = datetime.fromisoformat(cluster.lease()["spec"]["renewTime"])
    while not follower.leading:
        now = cluster.clock.step(loops=1)
        assert now < last_renewal + timedelta(seconds=LEASE_S + 2 * RENEW_S), "no takeover"
    # Not a moment before the Lease, unrenewed, ran out on the follower's own clock.
    assert cluster.clock.now() >= last_renewal + timedelta(seconds=LEASE_S)
    lease = cluster.lease()["spec"]
    assert (lease["holderIdentity"], lease["leaseTransitions"]) == ("governance-b", 1)
    # The new leader collects: a run that finishes now is recorded, by it.
    cluster.seed_finished_pods("train-after-takeover")
    eventually(lambda: follower.recorded() == 1)
    assert follower.sample("carbongate_governance_leader") == 1.0


def test_a_leader_that_shuts_down_hands_over_at_the_next_renewal(cluster: Cluster) -> None:
    leader, follower = leader_and_follower(cluster)
    cluster.clock.step(loops=2)
    leader.running.stop()  # SIGTERM: the Lease is released
    assert cluster.holder() is None
    cluster.clock.step(loops=1)
    assert follower.leading and cluster.holder() == "governance-b"


def test_a_replica_that_loses_the_lease_stops_and_forgets_its_budget_gauges(
        cluster: Cluster) -> None:
    replica = cluster.start("governance-a")
    cluster.clock.settled(1)
    eventually(lambda: replica.sample("carbongate_budget_used_grams", team="ml") is not None)
    cluster.kube.api.mutate("Lease", NAMESPACE, LEASE, lambda lease: lease["spec"].update(
        holderIdentity="governance-intruder"))
    cluster.clock.step(loops=1)
    assert not replica.leading
    assert replica.sample("carbongate_budget_used_grams", team="ml") is None
    assert replica.sample("carbongate_budget_used_percent", team="ml") is None
    assert replica.sample("carbongate_governance_leader") == 0.0
    published = replica.sample("carbongate_governance_budgets_published_total")
    time.sleep(1.0)  # five publish intervals
    assert replica.sample("carbongate_governance_budgets_published_total") == published
    # The intruder never renews: once its Lease expires, this replica leads again.
    for _ in range(int(LEASE_S / RENEW_S) + 2):
        cluster.clock.step(loops=1)
    assert replica.leading
    eventually(lambda: replica.sample("carbongate_budget_used_grams", team="ml") is not None)


def test_without_a_lease_name_a_single_replica_always_collects(cluster: Cluster) -> None:
    cluster.seed_finished_pods("train-1")
    replica = cluster.start("governance-a", lease_name="")
    eventually(lambda: replica.recorded() == 1)
    assert replica.leading and replica.sample("carbongate_governance_leader") == 1.0
    assert cluster.kube.api.get("Lease", NAMESPACE, LEASE) is None
    assert not [r for r in cluster.kube.api.requests if "/leases" in r.path]


def test_a_renew_interval_that_cannot_keep_the_lease_is_refused(cluster: Cluster) -> None:
    settings = cluster.settings("governance-a", lease_duration_s=15, lease_renew_s=10.0)
    with pytest.raises(settings_mod.SettingsError, match="governance.lease_renew_s"):
        service_mod.candidate(settings.governance, api_client=cluster.kube.api_client())
