"""Emissions, counterfactual and saving of a run, worked by hand on small traces.

The fixture traces (tests/fixtures/governance/grid-*.csv, Electricity Maps
data-portal layout) give GB and DE hourly lifecycle intensities on
2026-11-03: GB 10h 300, 11h 300, 12h 250, 13h 200, 14h 100, 15h 100 …;
DE 13h 50, 14h 60, 15h 70. The pod (2 vCPU, 4 GiB) draws 6.59208 W on the
default model (see test_energy), i.e. 0.01318416 kWh over two hours.
"""

from __future__ import annotations

import csv
import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from carbongate import settings
from governance import accounting, history, ledger, runs
from planner import energy
from tests.governance.conftest import FIXTURES, at

TRACES = (FIXTURES / "grid-GB.csv", FIXTURES / "grid-DE.csv")
POD_SPEC = {"containers": [{"name": "main",
                            "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}]}
TWO_HOURS_KWH = 0.01318416


def facts(**changes: Any) -> runs.RunFacts:
    base = runs.RunFacts(
        uid="u1", namespace="ml-train", pod="train-1", team="ml", tier="3", decision="defer",
        region="GB", home_region="GB", phase="Succeeded", admitted_at=at("2026-11-03T10:00"),
        start=at("2026-11-03T13:00"), end=at("2026-11-03T15:00"), pod_spec=POD_SPEC)
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def traces() -> history.TraceHistory:
    return history.load_traces(TRACES)


def account(found: runs.RunFacts, grid: history.IntensityHistory) -> runs.RunRecord:
    return accounting.account(found, model=energy.EnergyModel.default(), grid=grid)


def test_emissions_are_energy_times_the_mean_intensity_of_the_hours_it_ran(
        traces: history.TraceHistory) -> None:
    # GB 13h-15h: (200 + 100) / 2 = 150 g/kWh; 0.01318416 kWh × 150 = 1.977624 g
    row = account(facts(), traces)
    assert row.energy_kwh == pytest.approx(TWO_HOURS_KWH)
    assert row.mean_g_per_kwh == pytest.approx(150.0)
    assert row.emissions_g == pytest.approx(1.977624)
    assert (row.signal, row.intensity_source) == ("average", "history")


def test_a_deferred_run_saves_against_running_when_admitted(
        traces: history.TraceHistory) -> None:
    # counterfactual: GB 10h-12h = 300 g/kWh -> 3.955248 g; saved 3.955248 - 1.977624
    row = account(facts(), traces)
    assert row.counterfactual_g == pytest.approx(3.955248)
    assert row.saved_g == pytest.approx(1.977624)
    assert row.deferred_s == 3 * 3600


def test_partial_hours_are_time_weighted(traces: history.TraceHistory) -> None:
    # 13:30-15:00: (200 × 0.5 h + 100 × 1 h) / 1.5 h = 133.33 g/kWh
    row = account(facts(start=at("2026-11-03T13:30")), traces)
    assert row.mean_g_per_kwh == pytest.approx(400 / 3)


def test_a_shifted_run_is_priced_where_it_ran_and_compared_with_home(
        traces: history.TraceHistory) -> None:
    # ran in DE 13h-15h: (50 + 60) / 2 = 55 -> 0.7251288 g; home GB then: 150 -> 1.977624 g
    row = account(facts(decision="shift", region="DE", admitted_at=at("2026-11-03T13:00")),
                  traces)
    assert row.emissions_g == pytest.approx(0.7251288)
    assert row.counterfactual_g == pytest.approx(1.977624)
    assert row.saved_g == pytest.approx(1.2524952)
    assert row.deferred_s == 0


def test_a_change_that_turned_out_dirtier_shows_a_negative_saving(
        traces: history.TraceHistory) -> None:
    # admitted 14h (GB 14h-16h: 100) but ran 16h-18h (120, 300: 210)
    row = account(facts(admitted_at=at("2026-11-03T14:00"), start=at("2026-11-03T16:00"),
                        end=at("2026-11-03T18:00")), traces)
    assert row.saved_g == pytest.approx(TWO_HOURS_KWH * (100 - 210))


@pytest.mark.parametrize("changes", [
    {"tier": "1"},                       # production is never changed, never credited
    {"decision": "admit"},               # carbongate let it run as asked
    {"decision": "none"},                # carbongate never saw it
])
def test_no_saving_is_claimed_for_runs_carbongate_did_not_change(
        traces: history.TraceHistory, changes: dict[str, Any]) -> None:
    row = account(facts(**changes), traces)
    assert row.saved_g == 0.0
    assert row.counterfactual_g == row.emissions_g


def test_no_saving_is_claimed_when_the_home_region_has_no_history(
        traces: history.TraceHistory) -> None:
    row = account(facts(decision="shift", region="DE", home_region="FR"), traces)
    assert row.emissions_g == pytest.approx(0.7251288)
    assert (row.counterfactual_g, row.saved_g) == (None, 0.0)


def test_the_admission_intensity_prices_a_run_no_history_covers(
        traces: history.TraceHistory) -> None:
    row = account(facts(region="FR", home_region="FR", admission_g_per_kwh=412.0), traces)
    assert row.emissions_g == pytest.approx(TWO_HOURS_KWH * 412.0)
    assert (row.intensity_source, row.signal, row.saved_g) == ("admission", "unknown", 0.0)


def test_a_run_nothing_can_price_is_recorded_unpriced(traces: history.TraceHistory) -> None:
    row = account(facts(region="FR", home_region="FR"), traces)
    assert (row.emissions_g, row.intensity_source, row.saved_g) == (None, "none", 0.0)
    assert row.energy_kwh == pytest.approx(TWO_HOURS_KWH)


def test_a_run_longer_than_the_data_is_priced_on_the_part_known(
        traces: history.TraceHistory) -> None:
    # GB data ends at 18h; 17h-20h is priced at 17h's 300
    row = account(facts(start=at("2026-11-03T17:00"), end=at("2026-11-03T20:00")), traces)
    assert row.mean_g_per_kwh == pytest.approx(300.0)


def test_the_direct_emission_factor_can_be_chosen() -> None:
    direct = history.load_traces(TRACES, emission_factor="direct")
    row = account(facts(), direct)
    assert row.mean_g_per_kwh == pytest.approx((160 + 80) / 2)


# --- the demo traces: same time of year -------------------------------------------------

def _gb_2023(when: datetime) -> float:
    with (settings.DEMO_GRID_DIR / "GB_2023_hourly.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["Datetime (UTC)"] == when.strftime("2023-%m-%d %H:00:00"):
                return float(row["Carbon Intensity gCO₂eq/kWh (LCA)"])
    raise AssertionError(f"no 2023 row for {when}")


def test_the_demo_traces_price_a_2026_run_at_the_same_hour_of_2023() -> None:
    demo = history.load_traces(sorted(settings.DEMO_GRID_DIR.glob("*.csv")))
    run = facts(start=at("2026-11-03T13:00"), end=at("2026-11-03T14:00"))
    row = account(run, demo)
    assert row.mean_g_per_kwh == pytest.approx(_gb_2023(run.start))


# --- the archive of published snapshots -------------------------------------------------

def snapshot(region: str, points: list[tuple[str, float]], *, signal: str = "average"
             ) -> dict[str, Any]:
    return {"schema": 1, "generated_at": "2026-11-03T10:00:05Z", "regions": {region: {
        "region": region, "g_per_kwh": points[0][1], "signal": signal, "source": "ukci",
        "observed_at": points[0][0], "stale": False, "forecast_step_s": 3600,
        "forecast": [{"start": s, "g_per_kwh": v} for s, v in points], "best_windows": {}}}}


def test_runs_are_priced_from_the_archived_snapshots_first(
        sqlite_store: ledger.SqlLedger, traces: history.TraceHistory) -> None:
    history.archive_snapshot(sqlite_store, snapshot("GB", [
        ("2026-11-03T13:00:00Z", 80.0), ("2026-11-03T14:00:00Z", 40.0)]))
    grid = history.ChainHistory(histories=(history.ArchiveHistory(ledger=sqlite_store), traces))
    row = account(facts(), grid)
    assert row.mean_g_per_kwh == pytest.approx(60.0)
    # the counterfactual hours (10h-12h) are not archived: the traces answer (300)
    assert row.counterfactual_g == pytest.approx(TWO_HOURS_KWH * 300.0)


def test_index_only_signals_are_not_archived(sqlite_store: ledger.SqlLedger) -> None:
    stored = history.archive_snapshot(sqlite_store, snapshot(
        "CAISO", [("2026-11-03T13:00:00Z", 55.0)], signal="index"))
    assert stored == 0


def test_a_malformed_trace_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    lines = (FIXTURES / "grid-GB.csv").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace("2026-11-03 12:00:00", "yesterday")
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(history.HistoryError, match=r"bad.csv:4"):
        history.load_traces([path])


def test_a_file_that_is_not_a_trace_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(history.HistoryError, match="missing column"):
        history.load_traces([path])


# --- runs the calendar tears: a new year, 29 February ------------------------------------

def _gb_2023_mean(hours: list[str]) -> float:
    """The mean of the 2023 demo trace's GB values at these ``MM-DD HH`` hours."""
    return sum(_gb_2023(datetime.strptime(f"2023-{h}", "%Y-%m-%d %H")) for h in hours) / len(hours)


def test_a_run_across_the_new_year_is_priced_on_every_hour() -> None:
    demo = history.TraceHistory(series={"GB": history.load_traces(
        sorted(settings.DEMO_GRID_DIR.glob("GB_*.csv"))).series["GB"]})
    reading = demo.mean("GB", at("2027-12-31T22:00"), at("2028-01-01T02:00"))
    assert reading is not None
    assert reading.covered_s == 4 * 3600
    assert reading.mean_g_per_kwh == pytest.approx(
        _gb_2023_mean(["12-31 22", "12-31 23", "01-01 00", "01-01 01"]))


def test_a_run_into_a_leap_day_is_priced_on_every_hour_with_the_28th_for_the_29th() -> None:
    demo = history.load_traces(sorted(settings.DEMO_GRID_DIR.glob("GB_*.csv")))
    reading = demo.mean("GB", at("2028-02-28T22:00"), at("2028-02-29T02:00"))
    assert reading is not None
    assert reading.covered_s == 4 * 3600
    # 2023 has no 29 February: its hours are priced as the 28th's.
    assert reading.mean_g_per_kwh == pytest.approx(
        _gb_2023_mean(["02-28 22", "02-28 23", "02-28 00", "02-28 01"]))


def test_a_run_across_a_leap_day_into_march_is_priced_on_every_hour() -> None:
    demo = history.load_traces(sorted(settings.DEMO_GRID_DIR.glob("GB_*.csv")))
    reading = demo.mean("GB", at("2028-02-29T23:00"), at("2028-03-01T01:00"))
    assert reading is not None
    assert reading.covered_s == 2 * 3600
    assert reading.mean_g_per_kwh == pytest.approx(_gb_2023_mean(["02-28 23", "03-01 00"]))
