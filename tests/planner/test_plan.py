"""A workload's plan: candidate windows per region, data-move cost, what reaches Rego."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from planner import plan, windows
from tests.webhook import builders

NOW = datetime(2026, 11, 22, 10, tzinfo=timezone.utc)


def window(hour: int, mean: float) -> windows.Window:
    start = NOW + timedelta(hours=hour)
    return windows.Window(start, start + timedelta(hours=1), mean)


def test_only_windows_cleaner_than_all_earlier_ones_are_kept() -> None:
    found = [window(0, 400), window(1, 420), window(2, 300), window(3, 300), window(4, 96), window(5, 200)]
    assert [w.mean_g_per_kwh for w in plan.improving(found)] == [400, 300, 96]


def test_the_kept_windows_answer_every_latest_start_like_the_full_list() -> None:
    """Lowest mean up to any latest start (ties to the earliest) is always among the kept ones."""
    means = [400, 420, 300, 300, 96, 200, 96, 50, 80]
    found = [window(h, m) for h, m in enumerate(means)]
    kept = plan.improving(found)
    for latest in range(len(means)):
        allowed = [w for w in found if w.start <= NOW + timedelta(hours=latest)]
        best = min(allowed, key=lambda w: (w.mean_g_per_kwh, w.start))
        best_kept = min([w for w in kept if w.start <= best.start], key=lambda w: (w.mean_g_per_kwh, w.start))
        assert best_kept == best


def test_moving_data_costs_its_network_energy_at_both_ends_intensity() -> None:
    grid = builders.grid("2026-11-22T10:00:00Z", {"GB": [400] * 48, "NO": [30] * 48})
    shape = plan.WorkloadShape(duration_s=3600, max_start_s=6 * 3600, data_gb=10)
    rules = plan.PlanningRules(home_region="GB", network_kwh_per_gb=0.06)
    result = plan.plan_workload(grid["regions"], shape, now=NOW, rules=rules)
    assert result["regions"]["GB"]["move_g"] == 0.0
    assert result["regions"]["NO"]["move_g"] == 10 * 0.06 * (400 + 30) / 2


def test_a_region_without_a_forecast_has_no_windows_but_keeps_its_reading() -> None:
    grid = builders.grid("2026-11-22T10:00:00Z", {"GB": [400] * 48})
    grid["regions"]["GB"]["forecast"] = []
    result = plan.plan_workload(grid["regions"], plan.WorkloadShape(duration_s=3600, max_start_s=3600),
                                now=NOW, rules=plan.PlanningRules(home_region="GB"))
    assert result["regions"]["GB"]["windows"] == []
    assert result["regions"]["GB"]["now_g_per_kwh"] == 400


def test_a_plan_keeps_exactly_the_improving_candidate_windows() -> None:
    """The plan builds only the windows it keeps: the same as improving() over every candidate."""
    values = [400, 420, 300, 310, 96, 200, 96, 50, 80, 120, 45, 45, 300] * 4
    grid = builders.grid("2026-11-22T10:00:00Z", {"GB": values})
    parsed = plan.parse_regions(grid["regions"])
    rules = plan.PlanningRules(home_region="GB", step_s=900, horizon_s=48 * 3600)
    for now in (NOW, NOW + timedelta(minutes=7, seconds=3), NOW + timedelta(hours=5)):
        for duration_s in (1800, 3600, 5 * 3600):
            shape = plan.WorkloadShape(duration_s=duration_s, max_start_s=30 * 3600, data_gb=0)
            made = plan.plan_workload(grid["regions"], shape, now=now, rules=rules, parsed=parsed)
            series = parsed["GB"]
            assert series is not None
            every = windows.candidate_windows(series, duration_s, earliest=now,
                                              latest_start=now + timedelta(seconds=30 * 3600), step_s=3600)
            assert made["regions"]["GB"]["windows"] == [
                {"start_ns": int(w.start.timestamp()) * 10**9, "mean_g_per_kwh": round(w.mean_g_per_kwh, 3)}
                for w in plan.improving(every)]
            assert len(made["regions"]["GB"]["windows"]) > 1
