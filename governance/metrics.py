"""Prometheus metrics of the governance service, on a registry of its own.

A registry per service instance (not the global one) so tests can build as
many as they like and ``/metrics`` shows exactly this process's figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import prometheus_client as prom


@dataclass(frozen=True)
class GovernanceMetrics:
    """Counters and gauges the collector, the publisher and the service update."""

    registry: prom.CollectorRegistry
    recorded: prom.Counter
    skipped: prom.Counter
    relists: prom.Counter
    watch_errors: prom.Counter
    ledger_errors: prom.Counter
    publish_failures: prom.Counter
    published: prom.Counter
    team_used_g: prom.Gauge
    team_percent: prom.Gauge
    team_emitted_g: prom.Counter
    team_saved_g: prom.Counter
    team_overshoot_g: prom.Counter
    leader: prom.Gauge
    tier_refusals: prom.Counter
    break_glass: prom.Counter

    def count_run(self, *, team: str, emissions_g: float | None, saved_g: float) -> None:
        """Add a newly recorded run's grams to its team's counters (only on a real insert).

        A counter only goes up, so a change that turned out dirtier than its
        counterfactual (a negative saving) goes to ``overshoot`` rather than
        being hidden; net saving = saved - overshoot. All three series of a
        team exist from its first run, so that PromQL can subtract them.
        """
        emitted = self.team_emitted_g.labels(team=team)
        saved = self.team_saved_g.labels(team=team)
        overshoot = self.team_overshoot_g.labels(team=team)
        if emissions_g is not None:
            emitted.inc(max(emissions_g, 0.0))
        saved.inc(max(saved_g, 0.0))
        overshoot.inc(max(-saved_g, 0.0))

    def count_mandate(self, event: str, *, team: str) -> None:
        """A refusal or break-glass the ledger just took (once per workload, like the row)."""
        counter = self.tier_refusals if event == "tier-refused" else self.break_glass
        counter.labels(team=team).inc()

    def forget_budgets(self) -> None:
        """Drop the per-team budget gauges: a replica that stopped leading no longer knows."""
        self.team_used_g.clear()
        self.team_percent.clear()


def create(registry: prom.CollectorRegistry | None = None) -> GovernanceMetrics:
    """Register the metrics on ``registry`` (a new one when not given)."""
    registry = registry or prom.CollectorRegistry()
    return GovernanceMetrics(
        registry=registry,
        recorded=prom.Counter("carbongate_governance_runs_recorded_total",
                              "Runs appended to the ledger, by pod phase", ["phase"],
                              registry=registry),
        skipped=prom.Counter("carbongate_governance_runs_unaccounted_total",
                             "Runs not (fully) priced, by reason", ["reason"], registry=registry),
        relists=prom.Counter("carbongate_governance_relists_total",
                             "Pod lists after the watch version expired (410 Gone)",
                             registry=registry),
        watch_errors=prom.Counter("carbongate_governance_watch_errors_total",
                                  "Pod list/watch failures (retried)", registry=registry),
        ledger_errors=prom.Counter("carbongate_governance_ledger_errors_total",
                                   "Ledger writes that failed (retried)", registry=registry),
        publish_failures=prom.Counter("carbongate_governance_publish_failures_total",
                                      "Budget publications that failed, by sink", ["sink"],
                                      registry=registry),
        published=prom.Counter("carbongate_governance_budgets_published_total",
                               "Budget documents published", registry=registry),
        team_used_g=prom.Gauge("carbongate_budget_used_grams",
                               "Emissions charged to a team this period (gCO2e)", ["team"],
                               registry=registry),
        team_percent=prom.Gauge("carbongate_budget_used_percent",
                                "Share of a team's budget used this period", ["team"],
                                registry=registry),
        team_emitted_g=prom.Counter("carbongate_governance_emitted_grams_total",
                                    "gCO2e emitted by the runs recorded, per team", ["team"],
                                    registry=registry),
        team_saved_g=prom.Counter("carbongate_governance_saved_grams_total",
                                  "gCO2e saved against the counterfactual by the runs "
                                  "recorded, per team", ["team"], registry=registry),
        team_overshoot_g=prom.Counter("carbongate_governance_overshoot_grams_total",
                                      "gCO2e emitted beyond the counterfactual by runs carbongate "
                                      "changed that turned out dirtier, per team", ["team"],
                                      registry=registry),
        leader=prom.Gauge("carbongate_governance_leader",
                          "1 while this replica holds the Lease (collects and publishes)",
                          registry=registry),
        tier_refusals=prom.Counter("carbongate_governance_tier_refusals_total",
                                   "Workloads whose own tier label the platform refused "
                                   "(carbongate.io/tier-refused), per team, once per workload",
                                   ["team"], registry=registry),
        break_glass=prom.Counter("carbongate_governance_break_glass_total",
                                 "Workloads released by break-glass (carbongate.io/release-now), "
                                 "per team, once per workload", ["team"], registry=registry),
    )
