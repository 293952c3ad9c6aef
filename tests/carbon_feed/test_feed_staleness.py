"""Staleness that means something: the demo trace replayed for 48 hours is never stale.

The feed replays the bundled hourly traces (GB, DE, NO) on a manual clock that
starts a few seconds past an hour, polling every ``feed.ttl_s`` as it does in
production; every three minutes of simulated time it refreshes, and every half
hour a tier-3 Job is decided by the real engine and shipped policies on the
snapshot it published. With ``grid.max_age_s`` (3600 s) the webhook said
"grid data for GB is stale (observed 1h46s ago)" at the top of every hour;
with freshness by the provider's cadence none of the 97 decisions may be.

A provider that stops answering is flagged stale within cadence + grace:
tests/reliability/test_faults_providers.py, against real processes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carbon_feed import service
from carbongate import clock
from carbongate import settings as settings_mod
from planner import energy, snapshot
from planner import plan as planning
from policy_engine import embedded
from tests.webhook import builders
from webhook import admission, reviews

START = datetime(2026, 3, 9, 0, 0, 7, tzinfo=UTC)  # an injected clock: any instant would do
NAMESPACE = {"carbongate.io/tier": "3", "carbongate.io/team": "ml", "carbongate.io/enforcement": "enforce"}
MODEL = energy.EnergyModel.default()


@pytest.fixture(scope="module")
def engine() -> Iterator[embedded.EmbeddedEngine]:
    built = embedded.EmbeddedEngine(policy_dir=settings_mod.DEFAULT_POLICY_DIR, pool_size=1)
    yield built
    built.close()


def decide(engine: embedded.EmbeddedEngine, grid: snapshot.GridSnapshot, now: datetime) -> dict[str, Any]:
    config = json.loads((settings_mod.DEFAULT_POLICY_DIR / "carbongate/config/data.json").read_text())
    knowledge = admission.Knowledge(
        now=now, grid=grid, budgets=None, config=config, namespace_labels=NAMESPACE, home_region="GB",
        own_namespace="carbongate", exempt_namespaces=frozenset({"kube-system"}), policy_version="test",
        grid_series=planning.parse_regions(grid["regions"]))
    document = builders.loopback("01_create-job_nightly-train.json")
    result = admission.review(
        reviews.parse(json.dumps(document).encode()), knowledge=knowledge,
        decide=lambda doc: engine.evaluate("carbongate/admission/decision", doc),
        energy_kwh=lambda obj, seconds: MODEL.energy_kwh(obj, seconds))
    assert result.decision is not None, result
    return dict(result.decision)


def test_the_demo_trace_replayed_for_48_hours_yields_no_stale_decision(
        tmp_path: Path, engine: embedded.EmbeddedEngine) -> None:
    settings = settings_mod.load(environ={}, overrides={
        "feed": {"state_dir": tmp_path / "state"}, "grid": {"snapshot_path": tmp_path / "grid.json"}})
    manual = clock.ManualClock(START)
    feed = service.build_feed(settings, clock=manual)
    reasons: list[str] = []
    for step in range(48 * 20 + 1):  # every 3 minutes for 48 hours
        now = START + timedelta(minutes=3 * step)
        manual.set(now)
        published = feed.refresh()
        for name, region in published["regions"].items():
            assert not region["stale"], (now, name, region["observed_at"], region.get("fresh_until"))
            assert snapshot.parse_time(region["fresh_until"]) > now
        if step % 10 == 0:
            reasons.append(decide(engine, published, now)["reason"])
    assert len(reasons) == 97
    assert not {"stale-data", "no-data"} & set(reasons), reasons


def test_an_hourly_reading_is_fresh_until_its_next_hour_plus_the_grace(tmp_path: Path) -> None:
    settings = settings_mod.load(environ={}, overrides={
        "feed": {"state_dir": tmp_path / "state"}, "grid": {"snapshot_path": tmp_path / "grid.json"}})
    manual = clock.ManualClock(START)
    feed = service.build_feed(settings, clock=manual)
    region = feed.refresh()["regions"]["GB"]
    observed = snapshot.parse_time(region["observed_at"])
    assert snapshot.parse_time(region["fresh_until"]) == observed + timedelta(seconds=3600 + 900)
    # The feed stops refreshing (stalled): the policy's own comparison with input.now takes over.
    stalled = feed.snapshot
    assert stalled is not None
    later = observed + timedelta(seconds=3600 + 900)
    plan = planning.plan_workload(stalled["regions"], planning.WorkloadShape(duration_s=3600, max_start_s=0),
                                  now=later, rules=planning.PlanningRules(home_region="GB"))
    assert plan["regions"]["GB"]["fresh_until_ns"] == int(later.timestamp()) * 10**9


def test_a_grace_not_above_the_poll_interval_is_refused() -> None:
    with pytest.raises(settings_mod.SettingsError, match="stale_grace_s .* must exceed feed.ttl_s"):
        settings_mod.load(environ={}, overrides={"grid": {"stale_grace_s": 300}, "feed": {"ttl_s": 300}})


def test_the_replaced_max_age_setting_says_what_replaced_it() -> None:
    with pytest.raises(settings_mod.SettingsError, match="replaced by grid.stale_grace_s"):
        settings_mod.load(environ={}, overrides={"grid": {"max_age_s": 3600}})
