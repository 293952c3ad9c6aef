"""The values governance passes around: what a finished pod was, and what the ledger keeps.

``RunFacts`` is read from the Kubernetes API (a completed Pod, its Job);
``RunRecord`` is the row the ledger appends once per pod UID. Keeping both
as frozen values lets the accounting between them be a pure function that
tests can feed by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

# Re-exported for governance's modules, which read run times through here.
from carbongate.timefmt import format_time as format_time
from carbongate.timefmt import parse_time as parse_time

Decision = Literal["admit", "defer", "shift", "deny", "none"]
IntensitySource = Literal["history", "admission", "none"]
# Decisions under which carbongate changed when or where a run happened.
CHANGING_DECISIONS: frozenset[str] = frozenset({"defer", "shift"})
UNASSIGNED_TEAM = "(unassigned)"


@dataclass(frozen=True)
class RunFacts:
    """A finished pod as the API server describes it, reduced to what accounting needs."""

    uid: str
    namespace: str
    pod: str
    team: str
    tier: str
    decision: str
    region: str
    home_region: str
    phase: str
    admitted_at: datetime
    start: datetime
    end: datetime
    pod_spec: Mapping[str, Any]
    workload: str = ""
    node_pool: str | None = None
    # carbongate.io/intensity: the g/kWh seen at admission, a last resort for pricing.
    admission_g_per_kwh: float | None = None

    @property
    def duration_s(self) -> float:
        """How long the pod ran; never negative even when clocks disagree."""
        return max(0.0, (self.end - self.start).total_seconds())

    @property
    def changed(self) -> bool:
        """Whether carbongate moved this run in time or space (and may claim a saving)."""
        return self.tier != "1" and self.decision in CHANGING_DECISIONS


@dataclass(frozen=True)
class RunRecord:
    """One row of the append-only ledger: a run, its energy, emissions and saving."""

    uid: str
    team: str
    namespace: str
    pod: str
    workload: str
    tier: str
    decision: str
    region: str
    home_region: str
    node_pool: str | None
    phase: str
    admitted_at: datetime
    start: datetime
    end: datetime
    energy_kwh: float
    emissions_g: float | None
    counterfactual_g: float | None
    saved_g: float
    mean_g_per_kwh: float | None
    signal: str
    intensity_source: str
    deferred_s: float


MandateKind = Literal["tier-refused", "break-glass"]


@dataclass(frozen=True)
class MandateEvent:
    """A workload whose own tier the platform refused, or that was released by break-glass.

    ``uid`` is the workload's: the Job's for a Job's pods (they carry its
    annotations), the pod's own for a bare pod, so a Job counts once however
    many pods it runs. ``at``: admission for a refusal, the run's start for a
    break-glass release. ``detail``: the refused tier.
    """

    uid: str
    event: MandateKind
    team: str
    namespace: str
    workload_kind: str
    workload: str
    detail: str
    at: datetime


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; naive values (SQLite hands them back) are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


