"""The workload generator: seeded, shaped by its SPEC, and every job fits the traces."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from simulate import generate
from simulate import workload as workload_mod

SPAN = (datetime(2023, 1, 1, tzinfo=UTC).timestamp(), datetime(2024, 1, 1, tzinfo=UTC).timestamp())


def draw(text: str, *, seed: int = 1, regions: tuple[str, ...] = ("GB", "DE")) -> list[workload_mod.Job]:
    return generate.generate(generate.parse_spec(text), seed=seed, span_s=SPAN, grid_regions=regions)


def test_the_same_spec_and_seed_write_the_same_csv() -> None:
    assert workload_mod.format_csv(draw("mixed,jobs=300")) == workload_mod.format_csv(draw("mixed,jobs=300"))
    assert workload_mod.format_csv(draw("mixed,jobs=300")) != workload_mod.format_csv(draw("mixed,jobs=300", seed=2))


def test_generated_csv_is_a_valid_workload() -> None:
    jobs = draw("mixed,jobs=200")
    assert workload_mod.parse_csv(workload_mod.format_csv(jobs)) == sorted(jobs, key=lambda j: j.submit_time)


def test_every_job_fits_inside_the_traces_with_its_deadline() -> None:
    jobs = draw("mixed,jobs=2000")
    assert min(j.submit_s for j in jobs) >= SPAN[0]
    assert max(j.deadline_s for j in jobs) <= SPAN[1]


def test_tier_shares_and_delays_follow_the_spec() -> None:
    jobs = draw("jobs=4000,tiers=1:0.2/3:0.8,max_delay=0/2/12")
    share = sum(j.tier == "3" for j in jobs) / len(jobs)
    assert 0.77 < share < 0.83
    assert {j.tier for j in jobs} == {"1", "3"}
    assert {j.max_delay_h for j in jobs if j.tier == "3"} == {12.0}
    assert {j.max_delay_h for j in jobs if j.tier == "1"} == {0.0}


def test_batch_preset_is_the_papers_setting() -> None:
    jobs = draw("batch-1h,jobs=500")
    assert {(j.tier, j.duration_h, j.max_delay_h, j.regions) for j in jobs} == {("3", 1.0, 24.0, ("GB",))}


def test_office_arrivals_crowd_weekday_working_hours() -> None:
    def working_share(jobs: list[workload_mod.Job]) -> float:
        busy = [j for j in jobs if j.submit_time.weekday() < 5 and 8 <= j.submit_time.hour < 18]
        return len(busy) / len(jobs)

    assert working_share(draw("jobs=3000,arrivals=office")) > 0.5
    assert working_share(draw("jobs=3000,arrivals=flat")) < 0.35


def test_durations_stay_within_their_bounds() -> None:
    lognormal = np.array([j.duration_h for j in draw("jobs=3000,duration=lognormal:2:1.5")])
    assert lognormal.min() >= generate.MIN_DURATION_H and lognormal.max() <= generate.MAX_DURATION_H
    uniform = np.array([j.duration_h for j in draw("jobs=500,duration=uniform:0.5:4")])
    assert uniform.min() >= 0.5 and uniform.max() <= 4


def test_only_the_shiftable_share_may_leave_home() -> None:
    jobs = draw("jobs=2000,shiftable=0.3,regions=DE/GB")
    movable = sum(len(j.regions) == 2 for j in jobs) / len(jobs)
    assert 0.26 < movable < 0.34
    assert {j.home for j in jobs} == {"DE"}


def test_a_window_too_short_for_the_longest_deadline_is_refused() -> None:
    spec = generate.parse_spec("batch-1h,jobs=10")
    with pytest.raises(generate.SpecError, match="no room"):
        generate.generate(spec, seed=1, span_s=(SPAN[0], SPAN[0] + 20 * 3600), grid_regions=("GB",))


@pytest.mark.parametrize(("text", "message"), [
    ("weekly", "unknown preset"),
    ("mixed,jobs", "expected key=value"),
    ("colour=red", "expected key=value"),
    ("jobs=0", "at least 1"),
    ("tiers=5:1", "tiers wants"),
    ("max_delay=1/2", "three hours"),
    ("duration=gamma:1", "fixed:H"),
    ("duration=uniform:3:1", "LO <= HI"),
    ("arrivals=bursty", "flat or office"),
    ("shiftable=2", "between 0 and 1"),
    ("start=2023-01-01T00:00:00", "time zone"),
    ("cpu=0", "more than 0"),
])
def test_a_bad_spec_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(generate.SpecError, match=message):
        generate.parse_spec(text)
