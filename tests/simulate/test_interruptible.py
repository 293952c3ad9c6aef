"""Interruptible jobs in the replay: paused and resumed through the shipped policy, beside the oracle.

On the demo GB trace, 2023-12-07 18:00 UTC, an interruptible tier-3 job
needs 8 h of work and has 24 h of slack; the night is clean, the next
morning dirtier, the next evening clean again. By start time only, carbongate
waits for the cleanest 8-hour window; paused and resumed, it splits the
work over both clean stretches, as the oracle (the same slice planner on the
true grid) does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner import slices
from simulate import grid, interruptible, report, run
from simulate import workload as workload_mod
from tests.simulate.conftest import CONFIG, DEMO, POLICIES, options, write_trace

HEADER = ",".join(workload_mod.HEADER + workload_mod.OPTIONAL)


def _workload(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "jobs.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_an_interruptible_job_saves_beside_the_oracle_and_keeps_its_deadline(tmp_path: Path) -> None:
    jobs = _workload(tmp_path, ["train,2023-12-07T18:00:00Z,3,ml,4,16,8,24,GB,0,true",
                                "etl,2023-12-07T18:00:00Z,3,ml,4,16,8,24,GB,0,false"])
    result = run.simulate(options([DEMO / "GB_2023_hourly.csv"], workload=jobs))
    found = result.interrupted
    assert found is not None
    assert len(found.ways["run_now"]) == 1 and found.deadline_misses == 0
    grams = {way: float(found.ways[way].sum()) for way in run.INTERRUPT_WAYS}
    assert grams["slice_oracle"] <= grams["interruptible"] + 1e-6
    assert grams["interruptible"] < 0.9 * grams["start_time"] < grams["run_now"]
    assert found.pauses == 1
    assert found.oracle_share("interruptible") == pytest.approx(1.0)
    text = report.as_text(result)
    assert "interruptible jobs: 1 (8 h of work), 1 pauses" in text and "slice_oracle" in text
    assert report.as_json(result)["interruptible"]["deadline_misses"] == 0


def test_a_running_job_is_paused_through_the_dirty_hours(tmp_path: Path) -> None:
    """A trace that is dirty, clean, dirty, then clean again: the job starts, pauses, resumes."""
    job = workload_mod.parse_csv(HEADER + "\nj,2023-05-01T00:00:00Z,3,ml,1,1,6,8,GB,0,true\n")[0]
    values = [900] + [50] * 4 + [500] * 4 + [60] * 4 + [500] * 60
    trace = write_trace(tmp_path / "gb.csv", "GB", job.submit_time, values)
    jobs = _workload(tmp_path, ["j,2023-05-01T00:00:00Z,3,ml,1,1,6,8,GB,0,true"])
    result = run.simulate(options([trace], workload=jobs))
    (outcome,) = result.outcomes
    found = result.interrupted
    assert found is not None and found.deadline_misses == 0
    # By start time the best 6-hour window starts at 01:00 (two dirty hours in it); interrupted,
    # it runs 01:00-05:00, pauses through the dirty hours, runs 09:00-11:15 (15 min restart).
    assert (outcome.action, outcome.start_s) == ("defer", job.submit_s + 3600)
    assert found.pauses == 1
    rate = float(result.table.energy_kwh[0]) / job.duration_s
    assert float(found.ways["interruptible"].sum()) == pytest.approx(rate * 3600 * (4 * 50 + 2.25 * 60))


def test_the_oracle_is_the_cleanest_set_of_hours(tmp_path: Path) -> None:
    job = workload_mod.parse_csv(HEADER + "\nj,2023-05-01T00:00:00Z,3,ml,1,1,3,5,GB,0,true\n")[0]
    values = [300, 100, 400, 90, 95, 500, 80, 300] + [300] * 10
    series = grid.load([write_trace(tmp_path / "gb.csv", "GB", job.submit_time, values)])["GB"].series
    rules = slices.rules_from_config(json.loads((POLICIES / CONFIG).read_text(encoding="utf-8")))["3"]
    segments = interruptible.oracle(job, series, rules)
    # 3 h of work, 15 min per resume, slices of at least 1 h unless the last, done by 08:00:
    # 100 at 01:00, 90 and 95 at 03:00-05:00, then half an hour of 80 at 06:00 (365 in all).
    assert [((a - job.submit_s) / 3600, (b - job.submit_s) / 3600) for a, b in segments] == [
        (1.0, 2.0), (3.0, 5.0), (6.0, 6.5)]


def test_the_interruptible_column_is_optional_and_checked() -> None:
    plain = ",".join(workload_mod.HEADER) + "\nj,2023-05-01T00:00:00Z,3,ml,1,1,3,5,GB,0\n"
    assert workload_mod.parse_csv(plain)[0].interruptible is False
    flagged = workload_mod.parse_csv(HEADER + "\nj,2023-05-01T00:00:00Z,3,ml,1,1,3,5,GB,0,true\n")
    assert flagged[0].interruptible is True
    assert workload_mod.format_csv(flagged).splitlines()[0] == HEADER
    assert workload_mod.format_csv(workload_mod.parse_csv(plain)).splitlines()[0] == ",".join(workload_mod.HEADER)
    assert workload_mod.kubernetes_job(flagged[0])["metadata"]["annotations"]["carbongate.io/interruptible"] == "true"
    with pytest.raises(workload_mod.WorkloadError, match="interruptible 'maybe' is not true or false"):
        workload_mod.parse_csv(HEADER + "\nj,2023-05-01T00:00:00Z,3,ml,1,1,3,5,GB,0,maybe\n")


def test_a_job_admitted_at_once_has_no_deadline_and_is_not_paused(tmp_path: Path) -> None:
    """As in a cluster: admission writes carbongate.io/deadline only when it defers."""
    values = [50] * 4 + [500] * 4 + [60] * 4 + [500] * 60
    job = workload_mod.parse_csv(HEADER + "\nj,2023-05-01T00:00:00Z,3,ml,1,1,6,8,GB,0,true\n")[0]
    trace = write_trace(tmp_path / "gb.csv", "GB", job.submit_time, values)
    result = run.simulate(options([trace], workload=_workload(tmp_path, [
        "j,2023-05-01T00:00:00Z,3,ml,1,1,6,8,GB,0,true"])))
    found = result.interrupted
    assert found is not None and result.outcomes[0].action == "admit"
    assert found.pauses == 0
    assert float(found.ways["interruptible"].sum()) == pytest.approx(float(found.ways["start_time"].sum()))
