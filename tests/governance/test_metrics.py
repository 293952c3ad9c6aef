"""Per-team emitted, saved and overshoot counters: moved by a run's first insert only.

Runs are priced on the hand-made traces of test_accounting (GB 2026-11-03:
10h 300, 12h 250, 13h 200, 14h 100, 15h 100, 16h 120, 17h 300 g/kWh); the
pod draws 0.01318416 kWh over two hours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest

from governance import collector, history, ledger, metrics, pods
from planner import energy
from tests.governance.conftest import FIXTURES, at, finished_pod

TWO_HOURS_KWH = 0.01318416


class NoLookups:
    """A cluster that knows nothing beyond the pod itself."""

    def job(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return None

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return {}

    def node_pool(self, node_name: str) -> str | None:
        return None


@pytest.fixture
def meters() -> metrics.GovernanceMetrics:
    return metrics.create()


@pytest.fixture
def recorder(sqlite_store: ledger.SqlLedger, meters: metrics.GovernanceMetrics) -> collector.Recorder:
    return collector.Recorder(
        store=sqlite_store, model=energy.EnergyModel.default(),
        grid=history.load_traces((FIXTURES / "grid-GB.csv",)),
        defaults=pods.Defaults(home_region="GB"), lookups=NoLookups(), meters=meters,
        clock=lambda: at("2026-11-03T19:00"))


def grams(meters: metrics.GovernanceMetrics, team: str = "ml") -> tuple[float | None, ...]:
    """(emitted, saved, overshoot) for a team; None for a series that does not exist."""
    return tuple(meters.registry.get_sample_value(f"carbongate_governance_{name}_grams_total",
                                                  {"team": team})
                 for name in ("emitted", "saved", "overshoot"))


def test_a_deferred_run_adds_its_emissions_and_its_saving(
        recorder: collector.Recorder, meters: metrics.GovernanceMetrics) -> None:
    # ran 13h-15h (150 g/kWh), admitted 10h (10h-12h: 300 g/kWh)
    assert recorder.record(finished_pod("train-1", uid="u1"))
    assert grams(meters) == pytest.approx((TWO_HOURS_KWH * 150, TWO_HOURS_KWH * 150, 0.0))


def test_a_run_seen_again_is_not_counted_again(
        recorder: collector.Recorder, meters: metrics.GovernanceMetrics,
        sqlite_store: ledger.SqlLedger) -> None:
    pod = finished_pod("train-1", uid="u1")
    assert recorder.record(pod)
    assert not recorder.record(pod)  # a relist, or a watch event after the list
    assert grams(meters) == pytest.approx((TWO_HOURS_KWH * 150, TWO_HOURS_KWH * 150, 0.0))


class LateCheck:
    """The shared ledger as seen by a replica whose "already recorded?" check ran just
    before another replica's insert landed: the check says no, the insert finds the row."""

    def __init__(self, store: ledger.SqlLedger) -> None:
        self._store = store

    def contains(self, uid: str) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_a_run_another_replica_inserted_first_is_not_counted_here(
        recorder: collector.Recorder, meters: metrics.GovernanceMetrics,
        sqlite_store: ledger.SqlLedger) -> None:
    """The insert, not the check before it, decides what the counters add."""
    other_meters = metrics.create()
    other = dataclasses.replace(recorder, meters=other_meters)
    late = dataclasses.replace(recorder, store=LateCheck(sqlite_store))
    pod = finished_pod("train-1", uid="u1")
    assert other.record(pod)
    assert not late.record(pod)
    assert grams(other_meters)[0] == pytest.approx(TWO_HOURS_KWH * 150)
    assert grams(meters) == (None, None, None)
    assert meters.registry.get_sample_value("carbongate_governance_runs_recorded_total",
                                            {"phase": "Succeeded"}) is None


def test_a_change_that_turned_out_dirtier_counts_as_overshoot_not_as_negative_saving(
        recorder: collector.Recorder, meters: metrics.GovernanceMetrics) -> None:
    # admitted 14h (14h-16h: 100 g/kWh) but ran 16h-18h (120, 300: 210 g/kWh)
    assert recorder.record(finished_pod("train-2", uid="u2", created="2026-11-03T14:00:00Z",
                                        started="2026-11-03T16:00:00Z",
                                        finished="2026-11-03T18:00:00Z"))
    assert grams(meters) == pytest.approx((TWO_HOURS_KWH * 210, 0.0, TWO_HOURS_KWH * 110))


def test_net_saving_is_saved_minus_overshoot(
        recorder: collector.Recorder, meters: metrics.GovernanceMetrics) -> None:
    recorder.record(finished_pod("train-1", uid="u1"))
    recorder.record(finished_pod("train-2", uid="u2", created="2026-11-03T14:00:00Z",
                                 started="2026-11-03T16:00:00Z", finished="2026-11-03T18:00:00Z"))
    _, saved, overshoot = grams(meters)
    assert saved is not None and overshoot is not None
    assert saved - overshoot == pytest.approx(TWO_HOURS_KWH * (150 - 110))


def test_an_unpriced_run_adds_no_emissions_but_its_team_has_all_three_series(
        meters: metrics.GovernanceMetrics) -> None:
    meters.count_run(team="web", emissions_g=None, saved_g=0.0)
    assert grams(meters, "web") == (0.0, 0.0, 0.0)


def test_losing_leadership_forgets_the_budget_gauges_but_not_the_counters(
        meters: metrics.GovernanceMetrics) -> None:
    meters.team_used_g.labels(team="ml").set(652.0)
    meters.team_percent.labels(team="ml").set(81.5)
    meters.count_run(team="ml", emissions_g=1.0, saved_g=0.5)
    meters.forget_budgets()
    sample = meters.registry.get_sample_value
    assert sample("carbongate_budget_used_grams", {"team": "ml"}) is None
    assert sample("carbongate_budget_used_percent", {"team": "ml"}) is None
    assert grams(meters) == (1.0, 0.5, 0.0)


class JobLookups(NoLookups):
    """A cluster holding one Job, annotated for break-glass by someone in a hurry."""

    def job(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return {"metadata": {"name": name, "namespace": namespace, "uid": f"job-{name}",
                             "annotations": {"carbongate.io/release-now": "true"}}}


def mandate(meters: metrics.GovernanceMetrics, team: str = "ml") -> tuple[float, float]:
    return tuple(meters.registry.get_sample_value(f"carbongate_governance_{name}_total",
                                                  {"team": team}) or 0.0
                 for name in ("tier_refusals", "break_glass"))  # type: ignore[return-value]


def test_a_jobs_refusal_and_break_glass_count_once_however_many_pods_it_runs(
        recorder: collector.Recorder, meters: metrics.GovernanceMetrics,
        sqlite_store: ledger.SqlLedger) -> None:
    with_job = dataclasses.replace(recorder, lookups=JobLookups())
    for index in range(3):  # a Job's pods carry the refusal from its template
        pod = finished_pod(f"etl-{index}", uid=f"p{index}", job="etl")
        pod["metadata"]["annotations"]["carbongate.io/tier-refused"] = "1"
        assert with_job.record(pod)
    assert mandate(meters) == (1.0, 1.0)
    counts = sqlite_store.mandate_counts(since=at("2026-11-01T00:00"), until=at("2026-12-01T00:00"))
    assert counts == {"ml": {"tier-refused": 1, "break-glass": 1}}


def test_a_bare_pods_refusal_is_its_own_and_a_plain_run_records_none(
        recorder: collector.Recorder, meters: metrics.GovernanceMetrics,
        sqlite_store: ledger.SqlLedger) -> None:
    refused = finished_pod("adhoc", uid="u1", team="web")
    refused["metadata"]["annotations"]["carbongate.io/tier-refused"] = "1"
    assert recorder.record(refused)
    assert recorder.record(finished_pod("plain", uid="u2", team="web"))
    assert not recorder.record(refused)
    assert mandate(meters, "web") == (1.0, 0.0)
    assert sqlite_store.mandate_counts(since=at("2026-11-01T00:00"),
                                       until=at("2026-12-01T00:00")) == {"web": {"tier-refused": 1}}
