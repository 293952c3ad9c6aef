"""The workload CSV: exactly its header, every bad row named, and Jobs the webhook reads back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from carbongate import timefmt
from planner import energy
from simulate import workload as workload_mod
from webhook import workloads

HEADER = "job_id,submit_time,tier,team,cpu,memory_gb,duration_h,max_delay_h,regions,data_gb"
ROW = "train-1,2023-03-01T10:15:00Z,3,ml,2,8,1.5,24,GB;DE,10"


def test_a_row_reads_into_a_job_with_its_deadline() -> None:
    (job,) = workload_mod.parse_csv(f"{HEADER}\n{ROW}\n")
    assert job.submit_time == datetime(2023, 3, 1, 10, 15, tzinfo=UTC)
    assert (job.tier, job.team, job.cpu, job.memory_gb) == ("3", "ml", 2.0, 8.0)
    assert (job.duration_s, job.max_delay_s, job.regions, job.home) == (5400, 86400, ("GB", "DE"), "GB")
    assert job.data_gb == 10.0
    assert job.deadline_s == job.submit_s + 86400 + 5400


def test_written_workloads_read_back_unchanged(tmp_path: Path) -> None:
    jobs = workload_mod.parse_csv(f"{HEADER}\n{ROW}\nb,2023-03-01T09:00:00Z,1,web,0.5,1,0.25,0,GB,0\n")
    path = tmp_path / "jobs.csv"
    workload_mod.write_csv(jobs, path)
    assert path.read_text().splitlines()[0] == HEADER
    assert workload_mod.read_csv(path) == jobs
    assert [j.job_id for j in jobs] == ["b", "train-1"]  # in submit order


@pytest.mark.parametrize("header", [
    "job_id,submit_time,tier,team,cpu,memory_gb,duration_h,max_delay_h,data_gb,regions",
    "job_id,submit_time,tier,team,cpu,memory_gb,duration_h,max_delay_h,regions",
    "id,submit_time,tier,team,cpu,memory_gb,duration_h,max_delay_h,regions,data_gb",
])
def test_any_other_header_is_refused(header: str) -> None:
    with pytest.raises(workload_mod.WorkloadError, match="header must be exactly"):
        workload_mod.parse_csv(f"{header}\n{ROW}\n")


@pytest.mark.parametrize(("row", "message"), [
    ("a,2023-03-01 10:00:00,3,ml,2,8,1,24,GB,0", "no time zone"),
    ("a,yesterday,3,ml,2,8,1,24,GB,0", "not RFC 3339"),
    ("a,2023-03-01T10:00:00Z,4,ml,2,8,1,24,GB,0", "tier '4'"),
    ("a,2023-03-01T10:00:00Z,3,ml,0,8,1,24,GB,0", "cpu must be more than 0"),
    ("a,2023-03-01T10:00:00Z,3,ml,2,8,0,24,GB,0", "duration_h must be more than 0"),
    ("a,2023-03-01T10:00:00Z,3,ml,2,8,1,-1,GB,0", "max_delay_h must be a finite number >= 0"),
    ("a,2023-03-01T10:00:00Z,3,ml,2,8,1,24,,0", "regions is empty"),
    ("a,2023-03-01T10:00:00Z,3,ml,2,8,1,24,GB,lots", "data_gb 'lots' is not a number"),
    ("a,2023-03-01T10:00:00Z,3,ml,2,8,1,24,GB", "9 columns"),
])
def test_a_bad_row_is_named_by_file_and_line(row: str, message: str) -> None:
    with pytest.raises(workload_mod.WorkloadError, match=message) as caught:
        workload_mod.parse_csv(f"{HEADER}\n{ROW}\n{row}\n", where="jobs.csv")
    assert "jobs.csv:3" in str(caught.value)


def test_a_job_id_twice_is_refused() -> None:
    with pytest.raises(workload_mod.WorkloadError, match="appears twice"):
        workload_mod.parse_csv(f"{HEADER}\n{ROW}\n{ROW}\n")


def test_an_empty_workload_is_refused(tmp_path: Path) -> None:
    with pytest.raises(workload_mod.WorkloadError, match="no jobs"):
        workload_mod.parse_csv(f"{HEADER}\n")
    with pytest.raises(workload_mod.WorkloadError, match="cannot read"):
        workload_mod.read_csv(tmp_path / "missing.csv")


def test_the_kubernetes_job_says_to_the_webhook_what_the_row_says() -> None:
    (job,) = workload_mod.parse_csv(f"{HEADER}\n{ROW}\n")
    obj = workload_mod.kubernetes_job(job)
    read = workloads.read("Job", obj)
    assert read.parse_errors == ()
    assert (read.expected_duration_s, read.max_delay_s) == (5400, 86400)
    assert (read.regions, read.data_region, read.data_gb) == (("GB", "DE"), "GB", 10.0)
    assert read.labels == {"carbongate.io/tier": "3", "carbongate.io/team": "ml"}


def test_the_energy_model_charges_the_rows_cpu_and_memory() -> None:
    (job,) = workload_mod.parse_csv(f"{HEADER}\n{ROW}\n")
    model = energy.EnergyModel.default()
    pool = model.default_pool
    expected_w = pool.pue * (2 * pool.watts_per_vcpu + 8 * pool.memory_watts_per_gb)
    assert model.energy_kwh(workload_mod.kubernetes_job(job), job.duration_s) == pytest.approx(
        expected_w * 1.5 / 1000)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (5400, "1h30m"), (86400, "24h"), (45, "45s")])
def test_durations_are_written_in_the_annotation_syntax(seconds: int, text: str) -> None:
    assert workload_mod.duration_text(seconds) == text
    assert timefmt.parse_duration(text) == seconds
