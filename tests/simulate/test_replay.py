"""carbongate in the replay: the real admission and release paths, a real OPA engine, the shipped Rego.

Hand-made traces show single decisions (defer to the clean window, release
early under the threshold, keep the deadline); real traces show that a
replay is deterministic for a seed, that policy edits move the result the
way they should, and that failures of the policy fail open as in production.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carbongate import settings as settings_mod
from planner import energy
from policy_engine import factory
from simulate import forecasts, grid, replay, report, run, snapshots
from simulate import workload as workload_mod
from tests.simulate.conftest import CAISO, POLICIES, EditConfig, options, write_trace

T0 = datetime(2023, 5, 1, tzinfo=UTC)
HEADER = ",".join(workload_mod.HEADER)


def one_job(tmp_path: Path, values: Sequence[float], *, tier: str = "3", delay_h: float = 24,
            submit: timedelta = timedelta(minutes=10), policy_dir: Path = POLICIES) -> run.Result:
    """Replay one 1-hour job on an hourly GB trace made of ``values``."""
    trace = write_trace(tmp_path / "gb.csv", "GB", T0, values)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"{HEADER}\nj1,{(T0 + submit).strftime('%Y-%m-%dT%H:%M:%SZ')},{tier},ml,2,8,1,{delay_h},GB,0\n")
    return run.simulate(options([trace], workload=jobs, policy_dir=policy_dir))


def test_a_job_submitted_on_a_dirty_hour_waits_for_the_clean_window(tmp_path: Path) -> None:
    result = one_job(tmp_path, [400] * 5 + [50] * 3 + [400] * 60)
    (outcome,) = result.outcomes
    assert (outcome.action, outcome.reason, outcome.release_reason) == ("defer", "cleaner-window", "window-open")
    assert outcome.start_s == (T0 + timedelta(hours=5)).timestamp()
    assert result.summaries["carbongate"].emissions_g == pytest.approx(result.summaries["oracle"].emissions_g)
    assert outcome.release_decisions == 5  # the forecast issues at 01:00..04:00 and the window at 05:00


def test_a_waiting_job_goes_early_once_the_grid_falls_under_its_tier_threshold(tmp_path: Path) -> None:
    # Tier 2 (threshold 200 gCO2/kWh; tier 3 ships with none) waits for 02:00 at 30 ...
    result = one_job(tmp_path, [400, 140, 30, 30] + [400] * 60, tier="2", delay_h=2)
    (outcome,) = result.outcomes
    assert outcome.action == "defer" and outcome.release_reason == "clean-now"
    assert outcome.start_s == (T0 + timedelta(hours=1)).timestamp()  # ... but goes at 01:00, under 200
    assert result.summaries["carbongate"].emissions_g > result.summaries["oracle"].emissions_g


def test_a_clean_hour_admits_a_tier2_job_at_once(tmp_path: Path) -> None:
    (outcome,) = one_job(tmp_path, [100] * 5 + [20] * 3 + [400] * 60, tier="2", delay_h=2).outcomes
    assert (outcome.action, outcome.reason) == ("admit", "clean-now")
    assert outcome.start_s == (T0 + timedelta(minutes=10)).timestamp()


def test_a_tier3_job_waits_for_the_cleanest_hour_however_clean_it_is_now(tmp_path: Path) -> None:
    result = one_job(tmp_path, [100] * 5 + [20] * 3 + [400] * 60)
    (outcome,) = result.outcomes
    assert (outcome.action, outcome.release_reason) == ("defer", "window-open")
    assert outcome.start_s == (T0 + timedelta(hours=5)).timestamp()
    assert result.summaries["carbongate"].emissions_g == pytest.approx(result.summaries["oracle"].emissions_g)


def test_tier_one_is_never_moved(tmp_path: Path) -> None:
    (outcome,) = one_job(tmp_path, [400] * 5 + [50] * 3 + [400] * 60, tier="1", delay_h=0).outcomes
    assert outcome.action == "admit" and outcome.start_s == (T0 + timedelta(minutes=10)).timestamp()


def test_every_job_finishes_by_its_deadline_whatever_the_forecast_said() -> None:
    result = run.simulate(options([CAISO], generate="mixed,jobs=60", forecast="noisy:0.3", seed=11))
    assert result.deadline_misses == 0
    assert all(s.deadline_misses == 0 for s in result.summaries.values())
    assert any(o.action == "defer" for o in result.outcomes)


def test_the_replay_is_the_same_for_the_same_seed() -> None:
    first = report.as_json(run.simulate(options([CAISO], generate="mixed,jobs=40", forecast="noisy:0.10", seed=4)))
    again = report.as_json(run.simulate(options([CAISO], generate="mixed,jobs=40", forecast="noisy:0.10", seed=4)))
    other = report.as_json(run.simulate(options([CAISO], generate="mixed,jobs=40", forecast="noisy:0.10", seed=5)))
    assert json.dumps(first) == json.dumps(again)
    assert json.dumps(first) != json.dumps(other)


def test_worker_processes_decide_exactly_as_one_process_does() -> None:
    alone = run.simulate(options([CAISO], generate="batch-1h,jobs=30", forecast="noisy:0.10", seed=2))
    split = run.simulate(options([CAISO], generate="batch-1h,jobs=30", forecast="noisy:0.10", seed=2, workers=2))
    assert alone.outcomes == split.outcomes


def test_a_threshold_above_every_reading_runs_everything_at_submission(edited_policies: EditConfig) -> None:
    directory = edited_policies(lambda c: c["tiers"]["3"].update(threshold_g_per_kwh=10_000))
    result = run.simulate(options([CAISO], generate="batch-1h,jobs=40", policy_dir=directory))
    assert {(o.action, o.reason) for o in result.outcomes} == {("admit", "clean-now")}
    assert result.summaries["carbongate"].emissions_g == result.summaries["run_now"].emissions_g


def test_a_higher_threshold_runs_more_at_once_and_saves_less(edited_policies: EditConfig) -> None:
    shipped = run.simulate(options([CAISO], generate="batch-1h,jobs=40"))
    directory = edited_policies(lambda c: c["tiers"]["3"].update(threshold_g_per_kwh=250))
    raised = run.simulate(options([CAISO], generate="batch-1h,jobs=40", policy_dir=directory))

    def clean_now(result: run.Result) -> int:
        return sum("clean-now" in (o.reason, o.release_reason) for o in result.outcomes)

    assert clean_now(raised) > clean_now(shipped)
    assert raised.summaries["carbongate"].savings_pct < shipped.summaries["carbongate"].savings_pct
    assert raised.summaries["oracle"] == shipped.summaries["oracle"]  # the edit moves carbongate only


def test_a_failing_admission_policy_admits_every_job_unchanged(tmp_path: Path, edited_policies: EditConfig) -> None:
    directory = edited_policies(lambda c: None)
    decision = directory / "carbongate" / "admission" / "decision.rego"
    decision.write_text(decision.read_text() + '\ndecision := {"action": "deny"} if input.kind == "Job"\n')
    result = run.simulate(options([CAISO], generate="batch-1h,jobs=10", policy_dir=directory))
    assert {o.reason for o in result.outcomes} == {"fail-open:engine-error"}
    assert result.summaries["carbongate"].emissions_g == result.summaries["run_now"].emissions_g


def test_policies_that_read_the_grid_document_get_every_forecast_issue(edited_policies: EditConfig) -> None:
    directory = edited_policies(lambda c: None)
    extra = directory / "carbongate" / "simcheck"
    extra.mkdir()
    (extra / "simcheck.rego").write_text(
        "package carbongate.simcheck\n\nimport rego.v1\n\ngenerated := data.carbongate.grid.generated_at\n")
    setup = options([CAISO], generate="mixed,jobs=3", policy_dir=directory)
    assert run.reads_grid(run._policies(directory)) and not run.reads_grid(run._policies(POLICIES))
    traces = grid.load([CAISO])
    truths = {"US-CAL-CISO": traces["US-CAL-CISO"].series}
    forecast = forecasts.Forecasts(forecasts.Spec("perfect"), truths=truths, horizon_s=48 * 3600, seed=0)
    engine = factory.build(dataclasses.replace(setup.settings.engine, policy_dir=directory, embedded_pool_size=1))
    config: dict[str, Any] = json.loads((directory / "carbongate" / "config" / "data.json").read_text())
    jobs = workload_mod.parse_csv(f"{HEADER}\n"
                                  "a,2023-03-02T10:20:00Z,2,ml,1,4,1,2,US-CAL-CISO,0\n"
                                  "b,2023-03-02T13:05:00Z,2,ml,1,4,1,2,US-CAL-CISO,0\n")
    try:
        replay.Replay(engine=engine, publisher=snapshots.Publisher(forecast, window_durations_min=(60,)),
                      setup=replay.Setup(settings=settings_mod.load(environ={}), config=config,
                                         horizon_s=48 * 3600, publish_grid=True),
                      energy_model=energy.EnergyModel.default()).run(jobs)
        last = engine.evaluate("carbongate/simcheck/generated", {})
    finally:
        engine.close()
    assert last is not None and last >= "2023-03-02T13:00:00Z"


def test_a_later_forecast_issue_re_plans_a_waiting_job_to_a_window_beyond_the_first_horizon(
        tmp_path: Path) -> None:
    # Submitted at 00:10 with 24 h of slack. A 24-hour forecast issued at 00:00 sees 05:00
    # (200 g) as the best hour; the one issued at 01:00 also sees 24:00 (30 g), still
    # before release_by (24:10): the controller moves the window there.
    values = [400] * 5 + [200] + [400] * 18 + [30] + [400] * 40
    trace = write_trace(tmp_path / "gb.csv", "GB", T0, values)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"{HEADER}\nj1,{(T0 + timedelta(minutes=10)).strftime('%Y-%m-%dT%H:%M:%SZ')},3,ml,2,8,1,24,GB,0\n")
    short = run.simulate(options([trace], workload=jobs, horizon_h=24))
    (outcome,) = short.outcomes
    assert (outcome.action, outcome.release_reason) == ("defer", "window-open")
    assert outcome.replans == 1
    assert outcome.start_s == (T0 + timedelta(hours=24)).timestamp()
    assert short.summaries["carbongate"].emissions_g == pytest.approx(short.summaries["oracle"].emissions_g)
    # With 48 hours of forecast the first plan already sees 24:00: nothing to re-plan.
    (seen,) = run.simulate(options([trace], workload=jobs, horizon_h=48)).outcomes
    assert seen.replans == 0 and seen.start_s == outcome.start_s
    # The SDK window asks once, on the 24-hour forecast of 00:00, and keeps 05:00.
    assert short.placements["sdk_window"].start_s[0] == (T0 + timedelta(hours=5)).timestamp()
