"""Where and when each policy ran each job, and what that emitted on the true grid.

A placement is a start instant and a region per job. Emissions are always
computed on the truth, whatever forecast the policy planned on:

    job emissions = energy_kwh x mean true intensity of its region over the run
                    + data_gb x network_kwh_per_gb x mean of home's and the region's
                      true intensity over the run          (only when it left home)

The second term is the cost of moving the job's data, the same breakeven the
policy weighs (``move_g`` in the plan); it is zero for a job that stays home.
Means are time-weighted integrals on the trace (``planner.series`` prefix
sums), for all jobs of a region at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from planner import series as series_mod
from simulate import workload as workload_mod

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Table:
    """The jobs as columns, for arithmetic on all of them at once."""

    jobs: tuple[workload_mod.Job, ...]
    submit_s: Floats
    duration_s: Floats
    max_delay_s: Floats
    deadline_s: Floats
    energy_kwh: Floats
    data_gb: Floats

    @classmethod
    def of(cls, jobs: Sequence[workload_mod.Job], energy_kwh: Sequence[float]) -> Table:
        return cls(
            jobs=tuple(jobs),
            submit_s=np.array([j.submit_s for j in jobs], dtype=np.float64),
            duration_s=np.array([j.duration_s for j in jobs], dtype=np.float64),
            max_delay_s=np.array([j.max_delay_s for j in jobs], dtype=np.float64),
            deadline_s=np.array([j.deadline_s for j in jobs], dtype=np.float64),
            energy_kwh=np.array(energy_kwh, dtype=np.float64),
            data_gb=np.array([j.data_gb for j in jobs], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.jobs)


@dataclass(frozen=True)
class Placements:
    """One policy's choice for every job of a table: start instants and regions."""

    start_s: Floats
    region: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.start_s) != len(self.region):
            raise ValueError("a placement needs as many regions as starts")


def run_at_submit(table: Table) -> Placements:
    """Every job at its submit time, in its home region."""
    return Placements(start_s=table.submit_s.copy(), region=tuple(j.home for j in table.jobs))


def emissions_g(table: Table, placements: Placements, truths: Mapping[str, series_mod.Series], *,
                network_kwh_per_gb: float) -> Floats:
    """Each job's emissions (g) on the true grid, moving its data included."""
    regions = np.array(placements.region, dtype=object)
    homes = np.array([j.home for j in table.jobs], dtype=object)
    ran = _region_means(regions, placements.start_s, table.duration_s, truths)
    total = table.energy_kwh * ran
    moved = (regions != homes) & (table.data_gb > 0)
    if network_kwh_per_gb > 0 and moved.any():
        home_means = _region_means(homes, placements.start_s, table.duration_s, truths)
        move = table.data_gb * network_kwh_per_gb * (home_means + ran) / 2.0
        total = total + np.where(moved, move, 0.0)
    return total


def window_means(series: series_mod.Series, start_s: Floats, duration_s: Floats) -> Floats:
    """Time-weighted mean intensity over ``[start, start + duration)`` for each pair.

    Every window must lie inside the series: a mean over part of a run would
    charge a job for less than it ran.
    """
    if len(start_s) == 0:
        return np.zeros(0)
    index = series.index
    end_s = start_s + duration_s
    if start_s.min() < index.bounds[0] or end_s.max() > index.bounds[-1] + 1e-6:
        raise ValueError("a run lies outside the trace")
    return (series.integrals_to(np.minimum(end_s, index.bounds[-1])) - series.integrals_to(start_s)) / duration_s


def _region_means(regions: npt.NDArray[np.object_], start_s: Floats, duration_s: Floats,
                  truths: Mapping[str, series_mod.Series]) -> Floats:
    means = np.zeros(len(regions), dtype=np.float64)
    for region in set(regions.tolist()):
        mask = regions == region
        means[mask] = window_means(truths[region], start_s[mask], duration_s[mask])
    return means
