"""The slice planner against brute force: every subset of slots of small traces.

The brute force restates the rules of planner/slices.py independently (split
the chosen slots into slices, count pauses and overheads, check the minimum
slice) and keeps the cheapest valid subset; the dynamic programme must find
a plan of the same cost that the brute force also judges valid.
"""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from planner import series as series_mod
from planner import slices

STEP = 3600
NOW = datetime(2023, 11, 22, 12, tzinfo=UTC)


def _valid(chosen: tuple[int, ...], *, progress: slices.Progress, rules: slices.SliceRules) -> bool:
    if not chosen:
        return False
    runs = slices.runs_of(chosen)
    continued = progress.running and chosen[0] == 0
    if progress.running and not continued and progress.running_for_s < rules.min_slice_s:
        return False  # may not stop the running slice before its minimum
    pauses = len(runs) - 1 + (1 if progress.running and not continued else 0)
    if pauses > progress.pauses_left:
        return False
    for index, (first, last) in enumerate(runs[:-1]):  # slices followed by a pause
        owed = rules.min_slice_s - (progress.running_for_s if index == 0 and continued else 0)
        if last - first + 1 < math.ceil(max(owed, 0) / STEP):
            return False
    free = continued or (not progress.running and not progress.started)
    overheads = len(runs) - (1 if free else 0)
    return len(chosen) * STEP >= progress.remaining_s + overheads * rules.overhead_s


def _brute(costs: list[float], *, progress: slices.Progress,
           rules: slices.SliceRules) -> float | None:
    best: float | None = None
    for size in range(1, len(costs) + 1):
        for chosen in itertools.combinations(range(len(costs)), size):
            if _valid(chosen, progress=progress, rules=rules):
                total = sum(costs[k] for k in chosen)
                best = total if best is None else min(best, total)
    return best


CASES = [
    # (remaining h, running, running_for h, started, pauses_left, min_slice h, overhead min)
    (3, False, 0, False, 2, 1, 0),
    (3, False, 0, True, 1, 2, 30),
    (4, True, 1, True, 2, 2, 15),
    (2, True, 3, True, 1, 1, 60),
    (5, False, 0, False, 0, 1, 0),
    (1.5, True, 0.5, True, 3, 2, 20),
    (6, False, 0, True, 3, 1, 90),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", range(6))
def test_the_planner_finds_the_brute_force_optimum(case, seed) -> None:
    hours, running, ran_h, started, pauses, min_h, overhead_min = case
    rng = random.Random(seed * 97 + len(str(case)))
    costs = [float(rng.randint(20, 400)) for _ in range(rng.randint(6, 11))]
    progress = slices.Progress(remaining_s=int(hours * 3600), running=running,
                               running_for_s=int(ran_h * 3600), started=started or running,
                               pauses_left=pauses)
    rules = slices.SliceRules(min_slice_s=int(min_h * 3600), max_pauses=pauses,
                              overhead_s=overhead_min * 60)
    expected = _brute(costs, progress=progress, rules=rules)
    found = slices.choose_slots(costs, step_s=STEP, progress=progress, rules=rules)
    if expected is None:
        assert found is None
        return
    assert found is not None
    assert found.cost == pytest.approx(expected)
    assert _valid(found.slots, progress=progress, rules=rules)
    assert found.cost == pytest.approx(sum(costs[k] for k in found.slots))


def _series(values: list[float]) -> series_mod.Series:
    return series_mod.Series(points=tuple(
        series_mod.Point(NOW + timedelta(hours=i), v) for i, v in enumerate(values)), step_s=STEP)


def test_a_plan_pauses_through_the_dirty_hours_and_charges_the_overhead() -> None:
    grid = _series([100, 100, 400, 400, 400, 90, 90, 300])
    plan = slices.plan_slices(
        grid, now=NOW, deadline=NOW + timedelta(hours=8),
        progress=slices.Progress(remaining_s=3 * 3600, running=True, running_for_s=3600,
                                 started=True, pauses_left=2),
        rules=slices.SliceRules(min_slice_s=3600, max_pauses=2, overhead_s=1800), step_s=STEP)
    assert plan is not None
    assert [(s.start - NOW, s.end - NOW) for s in plan.slices] == [
        (timedelta(0), timedelta(hours=2)), (timedelta(hours=5), timedelta(hours=6, minutes=30))]
    assert plan.pauses == 1 and plan.run_s == 3 * 3600 + 1800
    assert plan.runs_at(NOW) and not plan.runs_at(NOW + timedelta(hours=3))
    assert plan.next_start(NOW) == NOW + timedelta(hours=5)


def test_no_pause_left_means_one_run_from_now() -> None:
    grid = _series([100, 400, 400, 90, 90, 90])
    plan = slices.plan_slices(
        grid, now=NOW, deadline=NOW + timedelta(hours=6),
        progress=slices.Progress(remaining_s=2 * 3600, running=True, running_for_s=7200,
                                 started=True, pauses_left=0),
        rules=slices.SliceRules(min_slice_s=3600, max_pauses=2, overhead_s=0), step_s=STEP)
    assert plan is not None
    assert [(s.start, s.end) for s in plan.slices] == [(NOW, NOW + timedelta(hours=2))]


def test_too_little_time_left_is_no_plan_and_no_work_is_an_empty_one() -> None:
    grid = _series([100] * 4)
    rules = slices.SliceRules(min_slice_s=3600, max_pauses=2, overhead_s=600)
    late = slices.plan_slices(grid, now=NOW, deadline=NOW + timedelta(hours=2), step_s=STEP,
                              progress=slices.Progress(remaining_s=3 * 3600, running=False),
                              rules=rules)
    done = slices.plan_slices(grid, now=NOW, deadline=NOW + timedelta(hours=2), step_s=STEP,
                              progress=slices.Progress(remaining_s=0, running=True), rules=rules)
    assert late is None
    assert done is not None and done.slices == ()


def test_hours_beyond_the_forecast_count_at_its_worst() -> None:
    costs = slices.slot_costs(_series([50, 300]), now=NOW, step_s=STEP, count=4)
    assert costs == [50, 300, 300, 300]
