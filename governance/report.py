"""The budget report: per team (and per namespace below it) for one period.

For each team: emissions used against its limit, the state the policies see,
what carbongate saved against the counterfactual, how many runs it deferred
or shifted and how long deferred runs waited on average; and the same
figures for the whole cluster (every team shown, added up). The same
:class:`Report` feeds every format (table, CSV, JSON, HTML) and
``GET /budgets``, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from governance import budgets, ledger, periods, runs


@dataclass(frozen=True)
class Totals:
    """What a group of runs (a team, a namespace) emitted, saved and waited."""

    name: str
    used_g: float
    saved_g: float
    energy_kwh: float
    runs: int
    runs_deferred: int
    runs_shifted: int
    unpriced: int
    mean_delay_s: float | None


@dataclass(frozen=True)
class TeamReport:
    """A team's line, its namespaces, and the series its charts draw."""

    totals: Totals
    limit_g: float | None
    percent: float | None
    state: budgets.State | None
    namespaces: tuple[Totals, ...]
    # (run end, cumulative grams used) in time order, for the use-against-limit chart.
    cumulative: tuple[tuple[datetime, float], ...]
    # (week start, grams saved in that week), every week of the period.
    weekly_saved: tuple[tuple[datetime, float], ...]
    # Workloads whose own tier was refused, and break-glass releases, this period.
    tier_refusals: int = 0
    break_glass: int = 0


@dataclass(frozen=True)
class Report:
    """Everything the formats render, for one period."""

    period: periods.Period
    generated_at: datetime
    signals: tuple[str, ...]
    warn_percent: float
    teams: tuple[TeamReport, ...]

    @property
    def cluster(self) -> ClusterTotals:
        """Every team of the report added up (with ``--team``, that one team)."""
        return cluster_of(self.teams)

    def masses_g(self) -> list[float]:
        """Every mass the report shows, so one unit can be chosen for them all."""
        found = [self.cluster.totals.used_g, self.cluster.totals.saved_g]
        for team in self.teams:
            found += [team.totals.used_g, team.totals.saved_g, team.limit_g or 0.0]
            found += [v for _, v in team.weekly_saved]
        return found


@dataclass(frozen=True)
class ClusterTotals:
    """The cluster's line: its totals, and the per-team counters added up."""

    totals: Totals
    limit_g: float | None
    tier_refusals: int
    break_glass: int


CLUSTER: str = "cluster total"


def cluster_of(teams: Sequence[TeamReport]) -> ClusterTotals:
    """Teams added up; the mean delay is weighted by each team's deferred runs."""
    deferred = sum(t.totals.runs_deferred for t in teams)
    waited = sum((t.totals.mean_delay_s or 0.0) * t.totals.runs_deferred for t in teams)
    limits = [t.limit_g for t in teams if t.limit_g is not None]
    totals = Totals(
        name=CLUSTER,
        used_g=sum(t.totals.used_g for t in teams),
        saved_g=sum(t.totals.saved_g for t in teams),
        energy_kwh=sum(t.totals.energy_kwh for t in teams),
        runs=sum(t.totals.runs for t in teams),
        runs_deferred=deferred,
        runs_shifted=sum(t.totals.runs_shifted for t in teams),
        unpriced=sum(t.totals.unpriced for t in teams),
        mean_delay_s=waited / deferred if deferred else None,
    )
    return ClusterTotals(totals=totals, limit_g=sum(limits) if limits else None,
                         tier_refusals=sum(t.tier_refusals for t in teams),
                         break_glass=sum(t.break_glass for t in teams))


def build(
    store: ledger.Ledger, config: budgets.BudgetConfig, *, period: periods.Period,
    now: datetime, team: str | None = None,
) -> Report:
    """Read the period's runs from the ledger and add them up per team and namespace."""
    records = store.runs(since=period.start, until=period.end, team=team)
    by_team: dict[str, list[runs.RunRecord]] = {}
    for record in records:
        by_team.setdefault(record.team, []).append(record)
    mandate = store.mandate_counts(since=period.start, until=period.end)
    names = {team} if team is not None else set(by_team) | set(config.limits_g) | set(mandate)
    teams = tuple(_team(name, by_team.get(name, []), config, period, mandate.get(name, {}))
                  for name in sorted(names))
    signals = tuple(sorted({r.signal for r in records if r.emissions_g is not None}))
    return Report(period=period, generated_at=now, signals=signals,
                  warn_percent=config.warn_percent, teams=teams)


def _team(name: str, records: Sequence[runs.RunRecord], config: budgets.BudgetConfig,
          period: periods.Period, mandate: Mapping[str, int]) -> TeamReport:
    totals = totals_of(name, records)
    limit = config.limits_g.get(name)
    entry = (None if limit is None else
             budgets.team_budget(limit, totals.used_g, warn_percent=config.warn_percent))
    by_namespace: dict[str, list[runs.RunRecord]] = {}
    for record in records:
        by_namespace.setdefault(record.namespace, []).append(record)
    return TeamReport(
        totals=totals, limit_g=limit,
        percent=None if entry is None else entry["percent"],
        state=None if entry is None else entry["state"],
        namespaces=tuple(totals_of(ns, rs) for ns, rs in sorted(by_namespace.items())),
        cumulative=_cumulative(records), weekly_saved=_weekly_saved(records, period),
        tier_refusals=mandate.get("tier-refused", 0), break_glass=mandate.get("break-glass", 0),
    )


def totals_of(name: str, records: Iterable[runs.RunRecord]) -> Totals:
    """Sum a group of runs; the mean delay is over deferred runs only."""
    items = list(records)
    delays = [r.deferred_s for r in items if r.decision == "defer"]
    return Totals(
        name=name,
        used_g=sum(r.emissions_g or 0.0 for r in items),
        saved_g=sum(r.saved_g for r in items),
        energy_kwh=sum(r.energy_kwh for r in items),
        runs=len(items),
        runs_deferred=sum(1 for r in items if r.decision == "defer"),
        runs_shifted=sum(1 for r in items if r.decision == "shift"),
        unpriced=sum(1 for r in items if r.emissions_g is None),
        mean_delay_s=sum(delays) / len(delays) if delays else None,
    )


def _cumulative(records: Sequence[runs.RunRecord]) -> tuple[tuple[datetime, float], ...]:
    total, points = 0.0, []
    for record in sorted(records, key=lambda r: r.end):
        total += record.emissions_g or 0.0
        points.append((record.end, total))
    return tuple(points)


def _weekly_saved(records: Sequence[runs.RunRecord], period: periods.Period
                  ) -> tuple[tuple[datetime, float], ...]:
    spans = periods.weeks(period)
    saved = [0.0] * len(spans)
    for record in records:
        for i, (start, end) in enumerate(spans):
            if start <= record.end < end:
                saved[i] += record.saved_g
                break
    return tuple((start, value) for (start, _), value in zip(spans, saved, strict=True))


# --- the JSON form (also GET /budgets) --------------------------------------------------

class TotalsDoc(TypedDict):
    name: str
    used_g: float
    saved_g: float
    energy_kwh: float
    runs: int
    runs_deferred: int
    runs_shifted: int
    unpriced_runs: int
    mean_delay_s: float | None


class TeamDoc(TotalsDoc):
    limit_g: float | None
    percent: float | None
    state: str | None
    namespaces: list[TotalsDoc]
    weekly_saved: list[dict[str, Any]]
    tier_refusals: int
    break_glass: int


class ClusterDoc(TotalsDoc):
    limit_g: float | None  # the teams' limits added up (teams without a budget add nothing)
    tier_refusals: int
    break_glass: int


class ReportDoc(TypedDict):
    period: str
    period_start: str
    period_end: str
    generated_at: str
    signals: list[str]
    warn_percent: float
    teams: list[TeamDoc]
    cluster: ClusterDoc


def to_document(report: Report) -> ReportDoc:
    """The report as JSON-ready data (grams, kWh and seconds, as the contracts say)."""
    return {
        "period": report.period.key,
        "period_start": runs.format_time(report.period.start),
        "period_end": runs.format_time(report.period.end),
        "generated_at": runs.format_time(report.generated_at),
        "signals": list(report.signals),
        "warn_percent": report.warn_percent,
        "teams": [_team_doc(t) for t in report.teams],
        "cluster": _cluster_doc(report.cluster),
    }


def _cluster_doc(cluster: ClusterTotals) -> ClusterDoc:
    return {**_totals_doc(cluster.totals), "limit_g": cluster.limit_g,
            "tier_refusals": cluster.tier_refusals, "break_glass": cluster.break_glass}


def _team_doc(team: TeamReport) -> TeamDoc:
    totals = _totals_doc(team.totals)
    return {**totals, "limit_g": team.limit_g, "percent": team.percent, "state": team.state,
            "namespaces": [_totals_doc(ns) for ns in team.namespaces],
            "weekly_saved": [{"week_start": runs.format_time(start), "saved_g": round(value, 3)}
                             for start, value in team.weekly_saved],
            "tier_refusals": team.tier_refusals, "break_glass": team.break_glass}


def _totals_doc(totals: Totals) -> TotalsDoc:
    return {
        "name": totals.name, "used_g": round(totals.used_g, 3),
        "saved_g": round(totals.saved_g, 3), "energy_kwh": round(totals.energy_kwh, 6),
        "runs": totals.runs, "runs_deferred": totals.runs_deferred,
        "runs_shifted": totals.runs_shifted, "unpriced_runs": totals.unpriced,
        "mean_delay_s": None if totals.mean_delay_s is None else round(totals.mean_delay_s, 1),
    }

