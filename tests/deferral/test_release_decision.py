"""Deciding a release: the deadline without anything else, then the policy, then fallbacks."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from deferral import grid, release, workloads
from deferral import metrics as metrics_mod
from policy_engine import embedded, opa_server
from policy_engine import engine as engine_mod
from tests.deferral import builders, grid_files
from tests.deferral.conftest import START

DEADLINE = START + timedelta(hours=24)  # release_by = START + 22h (2h jobs)


def _deferred(not_before: datetime | None, **notes) -> workloads.Deferred:
    pod = builders.gated_pod("p", not_before=not_before, deadline=DEADLINE, **notes)
    found = workloads.read("Pod", pod, default_duration_s=3600, seen_at=START)
    assert found is not None
    return found


def _grid(tmp_path: Path, at: datetime, metrics: metrics_mod.Metrics) -> grid.GridView:
    path = tmp_path / "grid.json"
    grid_files.publish(path, grid_files.snapshot(at))
    view = grid.GridView(path=path, metrics=metrics,
                         defaults=grid.PlanningDefaults(home_region="GB", step_s=900))
    assert view.refresh()
    return view


@pytest.fixture
def down_engine(release_policy_dir: Path) -> opa_server.OpaServerEngine:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return opa_server.OpaServerEngine(url=f"http://127.0.0.1:{port}",
                                      policy_dir=release_policy_dir, timeout_s=0.2)


def _policy_engine(tmp_path: Path, source: str) -> embedded.EmbeddedEngine:
    (tmp_path / "carbongate" / "release").mkdir(parents=True)
    (tmp_path / "carbongate" / "release" / "release.rego").write_text(source)
    return embedded.EmbeddedEngine(policy_dir=tmp_path, pool_size=1,
                                   entry_points=(engine_mod.RELEASE_DECISION,))


def test_the_deadline_path_asks_neither_the_engine_nor_the_grid(down_engine) -> None:
    metrics = metrics_mod.Metrics()
    planned: list[bool] = []
    deferred = _deferred(START + timedelta(hours=23))
    decision = release.decide(deferred, now=deferred.release_by - timedelta(seconds=30),
                              plan=lambda: planned.append(True) or {}, engine=down_engine,
                              metrics=metrics, lead_s=30)
    assert (decision.release, decision.reason, decision.source) == (True, "deadline", "deadline")
    assert planned == []
    assert metrics.value("carbongate_deferral_policy_failures_total", {"kind": "error"}) == 0


def test_an_engine_that_is_down_falls_back_on_the_planned_window(down_engine) -> None:
    metrics = metrics_mod.Metrics()
    deferred = _deferred(START + timedelta(hours=2))
    before = release.decide(deferred, now=START, plan=dict, engine=down_engine, metrics=metrics,
                            lead_s=30)
    after = release.decide(deferred, now=START + timedelta(hours=2), plan=dict,
                           engine=down_engine, metrics=metrics, lead_s=30)
    assert (before.release, before.source) == (False, "fallback")
    assert (after.release, after.reason, after.source) == (True, "window-open", "fallback")
    assert metrics.value("carbongate_deferral_policy_failures_total", {"kind": "error"}) == 2


def test_an_undefined_decision_is_counted_and_falls_back(tmp_path: Path) -> None:
    engine = _policy_engine(tmp_path, "package carbongate.release\n\nimport rego.v1\n\n"
                                      "decision := {} if input.never\n")
    metrics = metrics_mod.Metrics()
    try:
        decision = release.decide(_deferred(START + timedelta(hours=2)), now=START, plan=dict,
                                  engine=engine, metrics=metrics, lead_s=30)
    finally:
        engine.close()
    assert (decision.release, decision.source) == (False, "fallback")
    assert metrics.value("carbongate_deferral_policy_failures_total", {"kind": "undefined"}) == 1


def test_a_malformed_decision_is_counted_and_falls_back(tmp_path: Path) -> None:
    engine = _policy_engine(tmp_path, "package carbongate.release\n\nimport rego.v1\n\n"
                                      'decision := {"release": "yes", "reason": "because"}\n')
    metrics = metrics_mod.Metrics()
    try:
        decision = release.decide(_deferred(START - timedelta(hours=1)), now=START, plan=dict,
                                  engine=engine, metrics=metrics, lead_s=30)
    finally:
        engine.close()
    assert (decision.release, decision.reason, decision.source) == (True, "window-open", "fallback")
    assert metrics.value("carbongate_deferral_policy_failures_total", {"kind": "malformed"}) == 1


def test_intensity_under_the_tier_threshold_releases_early(tmp_path, release_engine) -> None:
    at = START + timedelta(hours=9)  # 21:00: GB at 119 gCO2/kWh, tier 2 threshold 200 (tier 3 has none)
    metrics = metrics_mod.Metrics()
    view = _grid(tmp_path, at, metrics)
    deferred = _deferred(START + timedelta(hours=12), tier="2")
    decision = release.decide(deferred, now=at, plan=lambda: view.plan(deferred, at),
                              engine=release_engine, metrics=metrics, lead_s=30)
    assert (decision.release, decision.reason, decision.source) == (True, "clean-now", "policy")
    assert decision.g_per_kwh == pytest.approx(grid_files.intensity("GB", at))
    assert "under the tier 2 threshold of 200" in decision.message


def test_a_new_forecast_with_a_cleaner_window_moves_not_before(tmp_path, release_engine) -> None:
    planned = START + timedelta(hours=8)  # 20:00, as an older forecast had it
    deferred = _deferred(planned)
    metrics = metrics_mod.Metrics()
    view = _grid(tmp_path, START, metrics)
    decision = release.decide(deferred, now=START, plan=lambda: view.plan(deferred, START),
                              engine=release_engine, metrics=metrics, lead_s=30)
    starts = [START + timedelta(hours=h) for h in range(0, 23)]  # hourly, up to release_by

    def mean(start: datetime) -> float:
        return (grid_files.intensity("GB", start)
                + grid_files.intensity("GB", start + timedelta(hours=1))) / 2

    best = min(starts, key=lambda s: (mean(s), s))
    assert mean(best) < mean(planned)
    assert (decision.release, decision.reason) == (False, "waiting")
    assert decision.not_before == best


def test_a_shifted_workload_is_released_with_its_region_affinity(tmp_path, release_engine) -> None:
    metrics = metrics_mod.Metrics()
    view = _grid(tmp_path, START, metrics)
    deferred = _deferred(START, region="NO")
    decision = release.decide(deferred, now=START, plan=lambda: view.plan(deferred, START),
                              engine=release_engine, metrics=metrics, lead_s=30)
    assert decision.release and decision.region == "NO"
    assert decision.node_affinity == release.NodeAffinity("topology.kubernetes.io/region",
                                                          ("norwayeast",))


def test_release_input_carries_only_what_the_decision_reads() -> None:
    deferred = _deferred(START + timedelta(hours=2), region="NO")
    plan = {"home_region": "GB", "duration_s": 7200, "regions": {
        "GB": {"now_g_per_kwh": 300.0, "stale": False, "fresh_until_ns": 1, "windows": []},
        "NO": {"now_g_per_kwh": 30.0, "signal": "average", "stale": False, "source": "trace",
               "observed_at": "2023-11-22T11:00:00Z", "fresh_until_ns": 2, "move_g": 1.5,
               "windows": [{"start_ns": 3, "mean_g_per_kwh": 29.0}]}}}
    document = release.release_input(deferred, now=START, plan=plan)
    assert document == {
        "facts_version": 2,
        "now_ns": int(START.timestamp()) * 10**9,
        "workload": {
            "tier": "3",
            "annotations": {workloads.REGION: "NO"},
            "not_before_ns": int((START + timedelta(hours=2)).timestamp()) * 10**9,
            "deadline": "2023-11-23T12:00:00Z",
            "release_by_ns": int((DEADLINE - timedelta(hours=2)).timestamp()) * 10**9,
        },
        "plan": {"home_region": "GB", "regions": {"NO": {
            "now_g_per_kwh": 30.0, "stale": False, "fresh_until_ns": 2,
            "windows": [{"start_ns": 3, "mean_g_per_kwh": 29.0}]}}},
    }


def test_release_input_keeps_break_glass_and_plans_home_without_a_region() -> None:
    deferred = _deferred(None, region="", extra={workloads.RELEASE_NOW: "true"})
    plan = {"home_region": "GB", "regions": {"GB": {"stale": True}, "NO": {"stale": False}}}
    document = release.release_input(deferred, now=START, plan=plan)
    assert document["workload"]["annotations"] == {workloads.REGION: "", workloads.RELEASE_NOW: "true"}
    assert document["workload"]["not_before_ns"] is None
    assert document["plan"] == {"home_region": "GB", "regions": {"GB": {"stale": True}}}
    assert release.release_input(deferred, now=START, plan={})["plan"] == {"home_region": None, "regions": {}}


@pytest.mark.parametrize("hours", [0, 3, 8, 9, 12, 21])
@pytest.mark.parametrize("tier", ["2", "3"])
def test_the_compact_input_decides_as_the_whole_record_did(tmp_path, release_engine, hours, tier) -> None:
    """Version 1 of the input (the whole record, every region) and version 2 give one decision."""
    at = START + timedelta(hours=hours)
    view = _grid(tmp_path, at, metrics_mod.Metrics())
    for region in ("", "GB", "NO"):  # "": no region written, the workload runs at home
        deferred = _deferred(START + timedelta(hours=8), tier=tier, region=region)
        plan = view.plan(deferred, at)
        whole = {
            "now": workloads.format_time(at), "now_ns": release.to_ns(at),
            "workload": {
                "kind": deferred.key.kind, "namespace": deferred.key.namespace, "name": deferred.key.name,
                "tier": deferred.tier, "annotations": dict(deferred.annotations),
                "not_before": workloads.format_time(deferred.not_before),
                "not_before_ns": release.to_ns(deferred.not_before),
                "deadline": workloads.format_time(DEADLINE), "deadline_ns": release.to_ns(DEADLINE),
                "expected_duration_s": deferred.expected_duration_s,
                "release_by_ns": release.to_ns(deferred.release_by)},
            "plan": plan,
        }
        compact = release.release_input(deferred, now=at, plan=plan)
        assert release_engine.evaluate(release.RELEASE_PATH, compact) == \
            release_engine.evaluate(release.RELEASE_PATH, whole)


class _Counting:
    """An engine that counts its calls by path and hands each to a real one."""

    def __init__(self, inner: engine_mod.PolicyEngine) -> None:
        self.inner, self.calls = inner, []

    def evaluate(self, path: str, policy_input):
        self.calls.append(path)
        return self.inner.evaluate(path, policy_input)


def _burst(at: datetime) -> list[workloads.Deferred]:
    """Workloads due at ``at``: one past its deadline, windows open and not, home and shifted, tiers 2 and 3."""
    return [
        _deferred(START + timedelta(hours=8)),
        _deferred(at - timedelta(minutes=1), tier="2"),
        _deferred(START + timedelta(hours=8), region="NO"),
        workloads.read("Pod", builders.gated_pod("late", not_before=None, deadline=at + timedelta(hours=1)),
                       default_duration_s=3600, seen_at=START),
        _deferred(START + timedelta(hours=3), region="", tier="2"),
        _deferred(None, region="", extra={workloads.RELEASE_NOW: "true"}),
    ]


@pytest.mark.parametrize("hours", [0, 3, 9, 21])
def test_a_burst_is_decided_in_one_call_as_each_alone(tmp_path, release_engine, hours) -> None:
    at = START + timedelta(hours=hours)
    view = _grid(tmp_path, at, metrics_mod.Metrics())
    burst = [d for d in _burst(at) if d is not None]
    alone = [release.decide(d, now=at, plan=lambda d=d: view.plan(d, at), engine=release_engine,
                            metrics=metrics_mod.Metrics(), lead_s=30) for d in burst]
    counting = _Counting(release_engine)
    together = release.decide_many([(d, lambda d=d: view.plan(d, at)) for d in burst], now=at,
                                   engine=counting, metrics=metrics_mod.Metrics(), lead_s=30)
    assert together == alone
    assert counting.calls == [release.BATCH_PATH]
    assert {d.source for d in together} == {"policy", "deadline"}


def test_policies_without_the_batch_rule_are_asked_one_by_one(tmp_path: Path) -> None:
    engine = _policy_engine(tmp_path, "package carbongate.release\n\nimport rego.v1\n\n"
                                      'decision := {"release": false, "reason": "waiting"} if input.now_ns\n')
    counting = _Counting(engine)
    burst = [_deferred(START + timedelta(hours=2)), _deferred(START + timedelta(hours=3))]
    try:
        decisions = release.decide_many([(d, dict) for d in burst], now=START, engine=counting,
                                        metrics=metrics_mod.Metrics(), lead_s=30)
    finally:
        engine.close()
    assert [(d.release, d.source) for d in decisions] == [(False, "policy"), (False, "policy")]
    assert counting.calls == [release.BATCH_PATH, release.RELEASE_PATH, release.RELEASE_PATH]


def test_a_burst_on_an_engine_that_is_down_falls_back_and_counts_each(down_engine) -> None:
    metrics = metrics_mod.Metrics()
    burst = [_deferred(START + timedelta(hours=2)), _deferred(START - timedelta(minutes=5))]
    decisions = release.decide_many([(d, dict) for d in burst], now=START, engine=down_engine,
                                    metrics=metrics, lead_s=30)
    assert [(d.release, d.reason, d.source) for d in decisions] == [
        (False, "waiting", "fallback"), (True, "window-open", "fallback")]
    assert metrics.value("carbongate_deferral_policy_failures_total", {"kind": "error"}) == 2
    assert release.decide_many([(d, dict) for d in burst], now=START, engine=None, metrics=metrics,
                               lead_s=30) == [release.fallback(d, now=START) for d in burst]
