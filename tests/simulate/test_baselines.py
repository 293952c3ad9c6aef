"""The peers carbongate is measured against: run-now, the 30-minute threshold rule, the SDK's window."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from planner import series as series_mod
from planner import windows
from simulate import baselines, forecasts, grid, placements
from simulate import workload as workload_mod
from tests.simulate.conftest import CAISO

T0 = datetime(2023, 5, 1, tzinfo=UTC)
THRESHOLDS = {"3": 150.0}


def hourly(values: Sequence[float]) -> series_mod.Series:
    return series_mod.Series(points=tuple(series_mod.Point(T0 + timedelta(hours=h), v) for h, v in enumerate(values)),
                             step_s=3600)


def job(submit: timedelta, *, delay_h: float, duration_h: float = 1.0, tier: str = "3",
        regions: tuple[str, ...] = ("A",)) -> workload_mod.Job:
    return workload_mod.Job(job_id="j", submit_time=T0 + submit, tier=tier, team="t", cpu=1.0, memory_gb=1.0,
                            duration_h=duration_h, max_delay_h=delay_h, regions=regions, data_gb=0.0)


def table(*jobs: workload_mod.Job) -> placements.Table:
    return placements.Table.of(jobs, [1.0] * len(jobs))


def test_the_threshold_rule_waits_in_half_hours_until_the_reading_is_clean() -> None:
    truth = hourly([300, 300, 100, 100, 300, 300, 300, 300])
    placed = baselines.threshold_30min(table(job(timedelta(minutes=10), delay_h=2)), {"A": truth}, THRESHOLDS)
    assert placed.start_s[0] == (T0 + timedelta(hours=2, minutes=10)).timestamp()


def test_the_threshold_rule_runs_at_its_max_delay_when_the_grid_stays_dirty() -> None:
    truth = hourly([300] * 8)
    placed = baselines.threshold_30min(table(job(timedelta(minutes=10), delay_h=1.25)), {"A": truth}, THRESHOLDS)
    assert placed.start_s[0] == (T0 + timedelta(hours=1, minutes=10)).timestamp()  # another 30 min is too late


def test_the_threshold_rule_never_delays_a_tier_without_threshold() -> None:
    truth = hourly([300] * 8)
    placed = baselines.threshold_30min(table(job(timedelta(0), delay_h=4, tier="1")), {"A": truth}, THRESHOLDS)
    assert placed.start_s[0] == T0.timestamp()


def test_the_threshold_rule_keeps_its_own_thresholds_whatever_carbongates_config_says() -> None:
    truth = hourly([300, 300, 180, 100, 300, 300, 300, 300])
    placed = baselines.threshold_30min(table(job(timedelta(minutes=10), delay_h=4),
                                             job(timedelta(minutes=10), delay_h=4, tier="2")), {"A": truth})
    assert list(placed.start_s) == [(T0 + timedelta(hours=3, minutes=10)).timestamp(),  # tier 3: 150
                                    (T0 + timedelta(hours=2, minutes=10)).timestamp()]  # tier 2: 200


def test_the_sdk_window_is_the_best_window_of_the_forecast_issued_at_submission() -> None:
    truth = grid.load([CAISO])["US-CAL-CISO"].series
    begin = truth.points[0].start
    jobs = [job(timedelta(days=d, minutes=17), delay_h=12, regions=("US-CAL-CISO",)) for d in range(3, 9)]
    jobs = [dataclasses.replace(j, submit_time=begin + (j.submit_time - T0)) for j in jobs]
    forecast = forecasts.Forecasts(forecasts.Spec("perfect"), truths={"US-CAL-CISO": truth}, horizon_s=48 * 3600,
                                   seed=0)
    placed = baselines.sdk_window(table(*jobs), forecast)
    for j, start in zip(jobs, placed.start_s, strict=True):
        best = windows.best_window(truth, 3600, earliest=j.submit_time,
                                   latest_start=j.submit_time + timedelta(hours=12))
        assert best is not None and start == best.start.timestamp()


def test_the_sdk_window_trusts_the_forecast_it_was_given() -> None:
    truth = hourly([300, 300, 300, 100, 300, 300, 300, 300] + [300] * 40)
    fooled = hourly([300, 50, 300, 300, 300, 300, 300, 300] + [300] * 40)
    forecast = forecasts.Forecasts(forecasts.Spec("perfect"), truths={"A": fooled}, horizon_s=24 * 3600, seed=0)
    placed = baselines.sdk_window(table(job(timedelta(0), delay_h=6)), forecast)
    assert placed.start_s[0] == (T0 + timedelta(hours=1)).timestamp()
    emitted = placements.emissions_g(table(job(timedelta(0), delay_h=6)), placed, {"A": truth}, network_kwh_per_gb=0)
    assert emitted[0] == pytest.approx(300.0)  # charged on the truth, not on what it believed


def test_run_now_is_the_submission_at_home() -> None:
    placed = placements.run_at_submit(table(job(timedelta(minutes=5), delay_h=3, regions=("A", "B"))))
    assert placed.region == ("A",)
    assert placed.start_s[0] == (T0 + timedelta(minutes=5)).timestamp()


def test_emissions_integrate_the_truth_over_the_run() -> None:
    truth = hourly([100, 300, 500])
    placed = placements.Placements(start_s=np.array([(T0 + timedelta(minutes=30)).timestamp()]), region=("A",))
    emitted = placements.emissions_g(table(job(timedelta(0), delay_h=1)), placed, {"A": truth}, network_kwh_per_gb=0)
    assert emitted[0] == pytest.approx(200.0)  # half an hour at 100, half at 300, for 1 kWh


def test_a_run_off_the_trace_is_refused() -> None:
    truth = hourly([100, 300])
    placed = placements.Placements(start_s=np.array([(T0 + timedelta(hours=1, minutes=30)).timestamp()]), region=("A",))
    with pytest.raises(ValueError, match="outside the trace"):
        placements.emissions_g(table(job(timedelta(0), delay_h=2)), placed, {"A": truth}, network_kwh_per_gb=0)
