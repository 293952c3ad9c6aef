"""Fixtures for the controller: an API double, a hand-driven clock, the real engine.

The policy engine is the real embedded OPA engine, loaded with the release
and interrupt policies and what they import (shared libraries, freshness, the platform config)
copied from ``policies/rego``: the whole directory would also compile every
admission policy, which these tests neither exercise nor should wait for.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from carbongate import clock as clock_mod
from carbongate import settings as settings_mod
from deferral import metrics as metrics_mod
from deferral import service
from policy_engine import embedded
from policy_engine import engine as engine_mod
from tests.support import kube_api

# 2023-11-22 12:00 UTC: GB at 193 gCO2/kWh, falling under 150 at 20:00 (demo trace).
START = datetime(2023, 11, 22, 12, tzinfo=UTC)
RELEASE_POLICY_PARTS = ("carbongate/release", "carbongate/interrupt", "carbongate/lib",
                        "carbongate/config", "carbongate/admission/freshness")


@pytest.fixture(scope="session")
def release_policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("policies")
    for part in RELEASE_POLICY_PARTS:
        shutil.copytree(settings_mod.DEFAULT_POLICY_DIR / part, target / part)
    return target


@pytest.fixture(scope="session")
def release_engine(release_policy_dir: Path) -> Iterator[engine_mod.PolicyEngine]:
    built = embedded.EmbeddedEngine(policy_dir=release_policy_dir, pool_size=1,
                                    entry_points=(engine_mod.RELEASE_DECISION,
                                                  engine_mod.INTERRUPT_DECISION))
    yield built
    built.close()


@pytest.fixture
def clock() -> clock_mod.ManualClock:
    return clock_mod.ManualClock(START)


@pytest.fixture
def kube() -> Iterator[kube_api.RunningKubeApi]:
    with kube_api.serve() as served:
        yield served


@pytest.fixture
def snapshot_path(tmp_path: Path) -> Path:
    return tmp_path / "grid-snapshot.json"


def settings_for_test(*, snapshot_path: Path, policy_dir: Path, **deferral: Any) -> settings_mod.Settings:
    """Settings with short real-time intervals (watch, back-off) for tests."""
    values: dict[str, Any] = {"watch_timeout_s": 2, "watch_backoff_initial_s": 0.02,
                              "watch_backoff_max_s": 0.2, "resync_s": 600,
                              "lease_duration_s": 15, "lease_renew_s": 2,
                              "deadline_lead_s": 30, "recheck_s": 900}
    values.update(deferral)
    return settings_mod.load(environ={}, overrides={
        "deferral": values,
        "grid": {"snapshot_path": snapshot_path, "home_region": "GB"},
        "engine": {"policy_dir": policy_dir},
    })


@dataclass
class Replica:
    """One running controller and what it measures."""

    running: service.Running
    metrics: metrics_mod.Metrics
    identity: str

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.value(name, labels)


@dataclass
class Cluster:
    """Starts controllers against one API double and one clock; stops them all."""

    kube: kube_api.RunningKubeApi
    clock: clock_mod.ManualClock
    snapshot_path: Path
    policy_dir: Path
    replicas: list[Replica] = field(default_factory=list)

    def start(self, *, engine: engine_mod.PolicyEngine | None, identity: str = "replica-a",
              **deferral: Any) -> Replica:
        metrics = metrics_mod.Metrics()
        settings = settings_for_test(snapshot_path=self.snapshot_path, policy_dir=self.policy_dir,
                                 **deferral)
        running = service.start(settings, api_client=self.kube.api_client(), engine=engine,
                                clock=self.clock, metrics=metrics, identity=identity)
        replica = Replica(running=running, metrics=metrics, identity=identity)
        self.replicas.append(replica)
        return replica

    def stop_all(self) -> None:
        for replica in self.replicas:
            replica.running.stop()


@pytest.fixture
def cluster(kube: kube_api.RunningKubeApi, clock: clock_mod.ManualClock, snapshot_path: Path,
            release_policy_dir: Path) -> Iterator[Cluster]:
    made = Cluster(kube=kube, clock=clock, snapshot_path=snapshot_path,
                   policy_dir=release_policy_dir)
    yield made
    made.stop_all()
