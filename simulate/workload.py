"""The workload a replay runs: one CSV row per job, and its Kubernetes Job.

The CSV is the exchange format between the generator, the simulator and the
platform team's own exports, so its header is fixed exactly::

    job_id,submit_time,tier,team,cpu,memory_gb,duration_h,max_delay_h,regions,data_gb

``submit_time`` is RFC 3339 UTC; ``regions`` is a ``;``-separated list whose
first entry is where the job was submitted and where its data lives. One
optional last column, ``interruptible`` (``true`` / ``false``, empty is
false), marks jobs that checkpoint and may be paused and resumed
(``carbongate.io/interruptible``); a file without it reads as before. A file
that does not fit is refused with the line and the column at fault, never
half-read: a replay of the wrong jobs is worse than none.

A job becomes the ``batch/v1`` Job a team would ``kubectl apply`` (labels and
annotations of docs/architecture.md), so the admission path sees exactly
what it sees in a cluster.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from carbongate import timefmt

HEADER: Final = ("job_id", "submit_time", "tier", "team", "cpu", "memory_gb",
                 "duration_h", "max_delay_h", "regions", "data_gb")
OPTIONAL: Final = ("interruptible",)
TIERS: Final = ("1", "2", "3")
NAMESPACE: Final = "simulated"


class WorkloadError(ValueError):
    """A workload file or row that cannot be replayed; the message names the place."""


@dataclass(frozen=True, slots=True)
class Job:
    """One job of the workload, as the CSV states it."""

    job_id: str
    submit_time: datetime
    tier: str
    team: str
    cpu: float
    memory_gb: float
    duration_h: float
    max_delay_h: float
    regions: tuple[str, ...]
    data_gb: float
    interruptible: bool = False

    @property
    def home(self) -> str:
        """Where it was submitted and where its data lives."""
        return self.regions[0]

    @property
    def submit_s(self) -> float:
        return self.submit_time.timestamp()

    @property
    def duration_s(self) -> int:
        return round(self.duration_h * 3600)

    @property
    def max_delay_s(self) -> int:
        return round(self.max_delay_h * 3600)

    @property
    def deadline_s(self) -> float:
        """``submit_time + max_delay_h + duration_h``: when it must have finished."""
        return self.submit_s + self.max_delay_s + self.duration_s


def read_csv(path: Path) -> list[Job]:
    """Every job of a workload file, in submit order (stable for equal times)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise WorkloadError(f"cannot read workload {path}: {error}") from error
    return parse_csv(text, where=str(path))


def parse_csv(text: str, *, where: str = "workload") -> list[Job]:
    """Jobs from CSV text with exactly :data:`HEADER`."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    names = tuple(h.strip() for h in header or [])
    if header is None or names not in (HEADER, HEADER + OPTIONAL):
        raise WorkloadError(f"{where}: the header must be exactly {','.join(HEADER)!r} "
                            f"(optionally followed by ',interruptible'), "
                            f"not {','.join(header or [])!r}")
    jobs: list[Job] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        job = _job(row, where=f"{where}:{line}", columns=names)
        if job.job_id in seen:
            raise WorkloadError(f"{where}:{line}: job_id {job.job_id!r} appears twice")
        seen.add(job.job_id)
        jobs.append(job)
    if not jobs:
        raise WorkloadError(f"{where}: no jobs")
    return sorted(jobs, key=lambda j: j.submit_time)


def write_csv(jobs: Iterable[Job], path: Path) -> None:
    """Write jobs with :data:`HEADER`, the form :func:`read_csv` reads back exactly."""
    try:
        path.write_text(format_csv(jobs), encoding="utf-8")
    except OSError as error:
        raise WorkloadError(f"cannot write workload {path}: {error}") from error


def format_csv(jobs: Iterable[Job]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    listed = list(jobs)
    flagged = any(job.interruptible for job in listed)
    writer.writerow(HEADER + OPTIONAL if flagged else HEADER)
    for job in listed:
        writer.writerow([
            job.job_id, timefmt.format_time(job.submit_time), job.tier, job.team, _number(job.cpu),
            _number(job.memory_gb), _number(job.duration_h), _number(job.max_delay_h),
            ";".join(job.regions), _number(job.data_gb),
        ] + (["true" if job.interruptible else "false"] if flagged else []))
    return out.getvalue()


def kubernetes_job(job: Job) -> dict[str, Any]:
    """The ``batch/v1`` Job a team would submit for this row.

    Memory is written in ``Gi``: the energy model counts memory in units of
    2^30 bytes, so ``memory_gb`` reaches it unchanged.
    """
    labels = {"carbongate.io/tier": job.tier, "carbongate.io/team": job.team}
    annotations = {
        "carbongate.io/expected-duration": duration_text(job.duration_s),
        "carbongate.io/max-delay": duration_text(job.max_delay_s),
        "carbongate.io/regions": ",".join(job.regions),
        "carbongate.io/data-region": job.home,
        "carbongate.io/data-gb": _number(job.data_gb),
    }
    if job.interruptible:
        annotations["carbongate.io/interruptible"] = "true"
    container = {"name": "main", "image": "busybox:1.36",
                 "resources": {"requests": {"cpu": _number(job.cpu), "memory": f"{_number(job.memory_gb)}Gi"}}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(job), "namespace": NAMESPACE, "labels": labels,
                     "annotations": annotations},
        "spec": {"backoffLimit": 0,
                 "template": {"metadata": {"labels": dict(labels)},
                              "spec": {"containers": [container], "restartPolicy": "Never"}}},
    }


def job_name(job: Job) -> str:
    """A DNS-1123 name for the job (the id, lower-cased, other characters as dashes)."""
    cleaned = "".join(c if c.isalnum() else "-" for c in job.job_id.lower()).strip("-")
    return ("job-" + cleaned)[:63].rstrip("-")


def duration_text(seconds: int) -> str:
    """Seconds in the annotation syntax: ``24h``, ``1h30m``, ``45s``, ``0s``."""
    parts = [(seconds // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    text = "".join(f"{n}{unit}" for n, unit in parts if n)
    return text or "0s"


def _job(row: Sequence[str], *, where: str, columns: tuple[str, ...] = HEADER) -> Job:
    if len(row) != len(columns):
        raise WorkloadError(f"{where}: {len(row)} columns, expected {len(columns)}")
    cells = dict(zip(columns, (cell.strip() for cell in row), strict=True))
    flag = cells.get("interruptible", "").lower()
    if flag not in ("", "true", "false"):
        raise WorkloadError(f"{where}: interruptible {cells['interruptible']!r} is not true or false")
    if not cells["job_id"]:
        raise WorkloadError(f"{where}: job_id is empty")
    if cells["tier"] not in TIERS:
        raise WorkloadError(f"{where}: tier {cells['tier']!r} is not one of {', '.join(TIERS)}")
    regions = tuple(dict.fromkeys(r.strip() for r in cells["regions"].split(";") if r.strip()))
    if not regions:
        raise WorkloadError(f"{where}: regions is empty (a ;-separated list, home first)")
    duration_h = _positive(cells, "duration_h", where)
    return Job(
        job_id=cells["job_id"],
        submit_time=_time(cells["submit_time"], where),
        tier=cells["tier"],
        team=cells["team"] or "unassigned",
        cpu=_positive(cells, "cpu", where),
        memory_gb=_non_negative(cells, "memory_gb", where),
        duration_h=duration_h,
        max_delay_h=_non_negative(cells, "max_delay_h", where),
        regions=regions,
        data_gb=_non_negative(cells, "data_gb", where),
        interruptible=flag == "true",
    )


def _time(text: str, where: str) -> datetime:
    try:
        return timefmt.read_time(text, "submit_time")
    except ValueError as error:
        raise WorkloadError(f"{where}: {error}") from error


def _non_negative(cells: dict[str, str], name: str, where: str) -> float:
    try:
        value = float(cells[name])
    except ValueError as error:
        raise WorkloadError(f"{where}: {name} {cells[name]!r} is not a number") from error
    if not math.isfinite(value) or value < 0:
        raise WorkloadError(f"{where}: {name} must be a finite number >= 0, not {cells[name]!r}")
    return value


def _positive(cells: dict[str, str], name: str, where: str) -> float:
    value = _non_negative(cells, name, where)
    if value <= 0:
        raise WorkloadError(f"{where}: {name} must be more than 0")
    return value


def _number(value: float) -> str:
    """A number without a needless ``.0`` (``2``, ``0.5``, ``1.25``)."""
    text = repr(float(value))
    return text.removesuffix(".0")
