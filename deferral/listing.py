"""``carbongate deferred``: what waits, why, and until when, read from the API.

The table is computed from the objects themselves (the annotations written
at admission and any re-plan), the same way the controller reads them, so it
is right even when the controller is down: "release by" is the latest
instant the controller will let the workload wait.

Interruptible Jobs are listed too, running or paused: their "release by" is
resume_by (after it they run to the end), "not before" the next planned
slice, and ``PLAN`` the slices the controller would plan now on the feed's
latest snapshot (the same ``planner.slices`` function it uses).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TypedDict

from deferral import grid, interrupt, kube, pausing, workloads
from planner import slices

COLUMNS = ("KIND", "NAMESPACE", "NAME", "TIER", "REASON", "NOT-BEFORE", "RELEASE-BY", "DEADLINE",
           "WAITING", "PLAN")


class Row(TypedDict):
    kind: str
    namespace: str
    name: str
    tier: str | None
    reason: str
    region: str | None
    not_before: str | None
    release_by: str
    deadline: str | None
    waiting_s: int | None
    break_glass: bool
    problems: list[str]
    slices: list[dict[str, str]] | None  # interruptible Jobs: the planned slices
    plan: str | None


def collect(gateway: kube.Gateway, *, now: datetime, default_duration_s: int,
            grid_view: grid.GridView | None = None,
            pausing_config: pausing.PausingConfig | None = None) -> list[Row]:
    """Every held Pod and Job and every unfinished interruptible Job, earliest release first."""
    rows = held(gateway, now=now, default_duration_s=default_duration_s)
    config = pausing_config or pausing.PausingConfig(default_duration_s=default_duration_s)
    jobs = [o for o in gateway.list("Job").items if interrupt.is_managed("Job", o)]
    if grid_view is not None:
        grid_view.refresh()
    rows += [_interruptible_row(o, now=now, grid_view=grid_view, config=config) for o in jobs]
    return sorted(rows, key=lambda r: (r["release_by"], r["kind"], r["namespace"], r["name"]))


def held(gateway: kube.Gateway, *, now: datetime, default_duration_s: int) -> list[Row]:
    """Every held Pod and Job, earliest release first."""
    found: list[workloads.Deferred] = []
    for kind in workloads.KINDS:
        for obj in gateway.list(kind).items:
            deferred = workloads.read(kind, obj, default_duration_s=default_duration_s,
                                      seen_at=now)
            if deferred is not None:
                found.append(deferred)
    found.sort(key=lambda d: (d.release_by, d.key))
    return [_row(d, now) for d in found]


def table(rows: Iterable[Row]) -> str:
    """Aligned columns, like ``kubectl get``."""
    lines = [COLUMNS] + [(
        r["kind"], r["namespace"], r["name"], r["tier"] or "-",
        ("break-glass" if r["break_glass"] else r["reason"]) + (" (!)" if r["problems"] else ""),
        r["not_before"] or "-", r["release_by"], r["deadline"] or "-",
        _age(r["waiting_s"]), r["plan"] or "-") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def _row(deferred: workloads.Deferred, now: datetime) -> Row:
    waited = None if deferred.created is None else int((now - deferred.created).total_seconds())
    return {
        "kind": deferred.key.kind, "namespace": deferred.key.namespace,
        "name": deferred.key.name, "tier": deferred.tier,
        "reason": deferred.annotations.get(workloads.REASON, "unknown"),
        "region": deferred.annotations.get(workloads.REGION),
        "not_before": _text(deferred.not_before),
        "release_by": workloads.format_time(deferred.release_by),
        "deadline": _text(deferred.deadline), "waiting_s": waited,
        "break_glass": deferred.break_glass, "problems": list(deferred.problems),
        "slices": None, "plan": None,
    }


def _interruptible_row(obj: dict[str, object], *, now: datetime, grid_view: grid.GridView | None,
                       config: pausing.PausingConfig) -> Row:
    tier = interrupt.tier_of(obj)
    rules = config.rules.get(tier or config.default_tier)
    job = interrupt.read(obj, now=now, default_duration_s=config.default_duration_s, rules=rules,
                         lead_s=config.lead_s)
    plan = (None if grid_view is None or job.final
            else pausing.plan_for(job, grid_view=grid_view, rules=rules, now=now))
    nxt = None if plan is None else plan.next_start(now)
    state = "running" if job.running else "paused"
    return {
        "kind": "Job", "namespace": job.key.namespace, "name": job.key.name, "tier": job.tier,
        "reason": f"interruptible, {state}" + (", final" if job.final else "")
                  + f", {job.pauses} pause(s), {job.remaining_s // 60}m of work left",
        "region": job.annotations.get(workloads.REGION),
        "not_before": _text(nxt), "release_by": workloads.format_time(job.resume_by),
        "deadline": workloads.format_time(job.deadline), "waiting_s": None,
        "break_glass": False, "problems": list(job.problems),
        "slices": None if plan is None else [
            {"start": workloads.format_time(s.start), "end": workloads.format_time(s.end),
             "mean_g_per_kwh": f"{s.mean_g_per_kwh:.0f}"} for s in plan.slices],
        "plan": "runs to the end" if job.final else slices.describe(plan),
    }


def _text(value: datetime | None) -> str | None:
    return None if value is None else workloads.format_time(value)


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
