"""A synthetic workload when a team has no export of its own: ``--generate SPEC``.

SPEC is an optional preset followed by ``key=value`` pairs, comma-separated;
lists inside a value use ``/``::

    mixed,jobs=10000
    batch-1h,jobs=8760,regions=US-CAL-CISO
    jobs=500,tiers=2:0.5/3:0.5,duration=uniform:0.5:4,arrivals=flat

Keys (the ``mixed`` preset's values in brackets):

- ``jobs`` [1000]: how many;
- ``start``, ``end``: RFC 3339 span of submissions [the span every trace
  covers, less room for the longest deadline];
- ``tiers`` [``1:0.1/2:0.3/3:0.6``]: share of each tier;
- ``max_delay`` [``0/2/24``]: hours each of tiers 1/2/3 may wait (the
  shipped config's caps, so no policy is handed slack the platform refuses);
- ``duration`` [``lognormal:1:0.8``]: hours, ``fixed:H``, ``uniform:LO:HI``
  or ``lognormal:MEDIAN:SIGMA`` (kept within 5 minutes and 12 hours,
  rounded to 5 minutes);
- ``arrivals`` [``office``]: ``flat`` (any hour alike) or ``office``
  (weekdays 08:00-18:00 UTC four times as busy as other weekday hours,
  weekends half as busy);
- ``regions`` [every grid region, in order]: home first; ``shiftable``
  [0.25] is the share of jobs that may run in any of them, the rest stay home;
- ``teams`` [``ml/data/web``], ``cpu`` [``1/2/4/8``], ``memory_per_cpu``
  [4 GB], ``data_gb`` [``0/1/10/50``]: drawn uniformly from the lists.

``batch-1h`` is the setting of Sukprasert et al. (EuroSys 2024): tier-3
one-hour jobs with 24 hours of slack, arriving evenly, staying home.
Everything is drawn from one generator seeded with ``--seed``: the same
SPEC and seed write the same CSV.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

import numpy as np

from carbongate import timefmt
from simulate import workload as workload_mod

HOUR_S: Final = 3600
MIN_DURATION_H: Final = 5 / 60
MAX_DURATION_H: Final = 12.0
DurationKind = Literal["fixed", "uniform", "lognormal"]


class SpecError(ValueError):
    """A generator SPEC that cannot be read; the message names the key."""


@dataclass(frozen=True)
class Duration:
    """How long jobs run, in hours."""

    kind: DurationKind
    a: float
    b: float = 0.0


@dataclass(frozen=True)
class Spec:
    """A workload to draw (see the module docstring for every field)."""

    jobs: int = 1000
    start: datetime | None = None
    end: datetime | None = None
    tiers: tuple[tuple[str, float], ...] = (("1", 0.1), ("2", 0.3), ("3", 0.6))
    max_delay_h: tuple[float, float, float] = (0.0, 2.0, 24.0)
    duration: Duration = Duration("lognormal", 1.0, 0.8)
    arrivals: Literal["flat", "office"] = "office"
    regions: tuple[str, ...] = ()
    shiftable: float = 0.25
    teams: tuple[str, ...] = ("ml", "data", "web")
    cpu: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    memory_per_cpu: float = 4.0
    data_gb: tuple[float, ...] = (0.0, 1.0, 10.0, 50.0)

    @property
    def longest_h(self) -> float:
        """The longest a job may take from submission to deadline."""
        return max(self.max_delay_h) + self.duration_bound_h

    @property
    def duration_bound_h(self) -> float:
        if self.duration.kind == "fixed":
            return self.duration.a
        if self.duration.kind == "uniform":
            return self.duration.b
        return MAX_DURATION_H


PRESETS: Final[Mapping[str, Spec]] = {
    "mixed": Spec(),
    "batch-1h": Spec(tiers=(("3", 1.0),), duration=Duration("fixed", 1.0), arrivals="flat",
                     shiftable=0.0, cpu=(2.0,), data_gb=(0.0,)),
}


def parse_spec(text: str) -> Spec:
    """A ``Spec`` from ``[preset,]key=value,...``; unknown keys and bad values are errors."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    spec = PRESETS["mixed"]
    if parts and "=" not in parts[0]:
        if parts[0] not in PRESETS:
            raise SpecError(f"unknown preset {parts[0]!r}: use one of {', '.join(PRESETS)}")
        spec = PRESETS[parts.pop(0)]
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in _READERS:
            raise SpecError(f"{part!r}: expected key=value with key one of {', '.join(_READERS)}")
        try:
            name = _FIELDS.get(key.strip(), key.strip())
            spec = replace(spec, **{name: _READERS[key.strip()](value.strip())})
        except (ValueError, TypeError) as error:
            raise SpecError(f"{key.strip()}={value.strip()}: {error}") from error
    _check(spec)
    return spec


def generate(spec: Spec, *, seed: int, span_s: tuple[float, float],
             grid_regions: Sequence[str]) -> list[workload_mod.Job]:
    """Draw the workload. ``span_s`` is what every trace covers; jobs fit inside it whole."""
    regions = spec.regions or tuple(grid_regions)
    start_s = spec.start.timestamp() if spec.start else span_s[0]
    end_s = spec.end.timestamp() if spec.end else span_s[1] - spec.longest_h * HOUR_S
    if end_s - start_s < HOUR_S:
        raise SpecError(f"the traces leave no room for jobs taking up to {spec.longest_h:g} h "
                        "(give start= and end=, or longer traces)")
    rng = np.random.default_rng(seed)
    submits = _arrivals(rng, spec, start_s, end_s)
    tiers = rng.choice([t for t, _ in spec.tiers], size=spec.jobs, p=_shares(spec))
    durations = _durations(rng, spec.duration, spec.jobs)
    shift = rng.random(spec.jobs) < spec.shiftable
    teams, cpus = rng.choice(spec.teams, size=spec.jobs), rng.choice(spec.cpu, size=spec.jobs)
    data = rng.choice(spec.data_gb, size=spec.jobs)
    return [
        workload_mod.Job(
            job_id=f"j{n:06d}", submit_time=datetime.fromtimestamp(int(submits[n]), UTC), tier=str(tiers[n]),
            team=str(teams[n]), cpu=float(cpus[n]), memory_gb=float(cpus[n]) * spec.memory_per_cpu,
            duration_h=float(durations[n]), max_delay_h=spec.max_delay_h[int(tiers[n]) - 1],
            regions=regions if shift[n] else regions[:1], data_gb=float(data[n]),
        )
        for n in range(spec.jobs)
    ]


def _arrivals(rng: np.random.Generator, spec: Spec, start_s: float, end_s: float) -> np.ndarray:
    """Submission instants (sorted) drawn hour by hour with the arrival pattern's weights."""
    hours = np.arange(math.floor(start_s / HOUR_S), math.ceil(end_s / HOUR_S)) * HOUR_S
    weights = np.ones(len(hours)) if spec.arrivals == "flat" else _office_weights(hours)
    chosen = rng.choice(hours, size=spec.jobs, p=weights / weights.sum())
    instants = chosen + rng.random(spec.jobs) * HOUR_S
    sorted_instants: np.ndarray = np.sort(np.clip(instants, start_s, end_s))
    return sorted_instants


def _office_weights(hours: np.ndarray) -> np.ndarray:
    """Weekdays 08-18 UTC: 4; other weekday hours: 1; weekends: 0.5 (1970-01-01 was a Thursday)."""
    hour_of_day = (hours // HOUR_S) % 24
    weekday = ((hours // 86400) + 3) % 7  # Monday = 0
    weights = np.where((hour_of_day >= 8) & (hour_of_day < 18), 4.0, 1.0)
    return np.where(weekday >= 5, 0.5, weights)


def _durations(rng: np.random.Generator, duration: Duration, count: int) -> np.ndarray:
    if duration.kind == "fixed":
        drawn = np.full(count, duration.a)
    elif duration.kind == "uniform":
        drawn = rng.uniform(duration.a, duration.b, count)
    else:
        drawn = duration.a * np.exp(rng.normal(0.0, duration.b, count))
    if duration.kind == "fixed":
        return drawn
    return np.clip(np.round(drawn * 12) / 12, MIN_DURATION_H, MAX_DURATION_H)


def _shares(spec: Spec) -> np.ndarray:
    shares = np.array([s for _, s in spec.tiers], dtype=np.float64)
    normalised: np.ndarray = shares / shares.sum()
    return normalised


def _check(spec: Spec) -> None:
    if spec.jobs < 1:
        raise SpecError("jobs must be at least 1")
    if not spec.tiers or any(t not in workload_mod.TIERS or s < 0 for t, s in spec.tiers) or sum(
            s for _, s in spec.tiers) <= 0:
        raise SpecError("tiers wants shares such as 1:0.1/2:0.3/3:0.6 (tiers 1-3, shares >= 0)")
    if any(d < 0 for d in spec.max_delay_h):
        raise SpecError("max_delay hours must be >= 0")
    if not 0 <= spec.shiftable <= 1:
        raise SpecError("shiftable is a share between 0 and 1")
    if spec.duration_bound_h <= 0 or spec.duration.a <= 0:
        raise SpecError("durations must be positive")
    if spec.start and spec.end and spec.end <= spec.start:
        raise SpecError("end must come after start")
    if not spec.teams or not spec.cpu or not spec.data_gb or spec.memory_per_cpu < 0:
        raise SpecError("teams, cpu and data_gb need at least one value; memory_per_cpu >= 0")
    if min(spec.cpu) <= 0:
        raise SpecError("cpu values must be more than 0")


def _list(value: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split("/") if v.strip())
    if not items:
        raise ValueError("an empty list")
    return items


def _numbers(value: str) -> tuple[float, ...]:
    numbers = tuple(float(v) for v in _list(value))
    if any(not math.isfinite(n) or n < 0 for n in numbers):
        raise ValueError("numbers must be finite and >= 0")
    return numbers


def _tiers(value: str) -> tuple[tuple[str, float], ...]:
    pairs = []
    for item in _list(value):
        tier, sep, share = item.partition(":")
        if not sep:
            raise ValueError(f"{item!r} is not TIER:SHARE")
        pairs.append((tier.strip(), float(share)))
    return tuple(pairs)


def _delays(value: str) -> tuple[float, float, float]:
    numbers = _numbers(value)
    if len(numbers) != 3:
        raise ValueError("give three hours, for tiers 1/2/3 (e.g. 0/2/24)")
    return numbers[0], numbers[1], numbers[2]


def _duration(value: str) -> Duration:
    kind, *numbers = value.split(":")
    arguments = [float(n) for n in numbers]
    expected = {"fixed": 1, "uniform": 2, "lognormal": 2}
    if kind not in expected or len(arguments) != expected[kind]:
        raise ValueError("use fixed:H, uniform:LO:HI or lognormal:MEDIAN:SIGMA (hours)")
    if kind == "uniform" and not 0 < arguments[0] <= arguments[1]:
        raise ValueError("uniform wants 0 < LO <= HI")
    return Duration(kind, *arguments)  # type: ignore[arg-type]


def _instant(value: str) -> datetime:
    return timefmt.read_time(value, "start")


def _arrival(value: str) -> str:
    if value not in ("flat", "office"):
        raise ValueError("use flat or office")
    return value


def _share(value: str) -> float:
    share = float(value)
    if not 0 <= share <= 1:
        raise ValueError("a share between 0 and 1")
    return share


_READERS: dict[str, Callable[[str], Any]] = {
    "jobs": int, "start": _instant, "end": _instant, "tiers": _tiers, "max_delay": _delays,
    "duration": _duration, "arrivals": _arrival, "regions": _list, "shiftable": _share,
    "teams": _list, "cpu": _numbers, "memory_per_cpu": float, "data_gb": _numbers,
}
# Keys whose Spec field is named differently.
_FIELDS = {"max_delay": "max_delay_h"}
