"""``carbongate deferred``: what waits, why, and until when, read from the API.

The table is computed from the objects themselves (the annotations written
at admission and any re-plan), the same way the controller reads them, so it
is right even when the controller is down: "release by" is the latest
instant the controller will let the workload wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TypedDict

from deferral import kube, workloads

COLUMNS = ("KIND", "NAMESPACE", "NAME", "TIER", "REASON", "NOT-BEFORE", "RELEASE-BY", "DEADLINE",
           "WAITING")


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


def collect(gateway: kube.Gateway, *, now: datetime, default_duration_s: int) -> list[Row]:
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
        _age(r["waiting_s"])) for r in rows]
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
    }


def _text(value: datetime | None) -> str | None:
    return None if value is None else workloads.format_time(value)


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
