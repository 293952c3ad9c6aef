"""What the controller measures, on its own registry (served at ``/metrics``).

The numbers that say whether deferral can be trusted: how many workloads wait
and for how long, why they were released, how late a release came compared
with the instant it became due, and deadline misses, which must stay at zero.
Policy failures count every time the engine could not answer and the
controller fell back on its own rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import prometheus_client

AGE_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0,
               86400.0, 172800.0)
LAG_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


@dataclass
class Metrics:
    """One set of collectors per controller (a test builds its own, nothing is global)."""

    registry: prometheus_client.CollectorRegistry = field(
        default_factory=lambda: prometheus_client.CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.gated = prometheus_client.Gauge(
            "carbongate_deferral_gated_workloads", "Workloads carbongate holds back now.",
            ["kind"], registry=r)
        self.gate_age = prometheus_client.Histogram(
            "carbongate_deferral_gate_age_seconds",
            "How long a workload waited, from creation to release.", ["kind"],
            buckets=AGE_BUCKETS, registry=r)
        self.releases = prometheus_client.Counter(
            "carbongate_deferral_releases", "Releases by reason.", ["kind", "reason"],
            registry=r)
        self.release_lag = prometheus_client.Histogram(
            "carbongate_deferral_release_lag_seconds",
            "Actual release time minus the instant the release became due.", ["reason"],
            buckets=LAG_BUCKETS, registry=r)
        self.deadline_misses = prometheus_client.Counter(
            "carbongate_deferral_deadline_misses",
            "Releases after release_by (deadline - expected duration), and interruptible Jobs "
            "resumed after resume_by or finished after their deadline; must stay 0.",
            registry=r)
        self.policy_failures = prometheus_client.Counter(
            "carbongate_deferral_policy_failures",
            "Release decisions the policy engine could not give (fell back).", ["kind"],
            registry=r)
        self.replans = prometheus_client.Counter(
            "carbongate_deferral_replans", "Waiting workloads moved to a new window.",
            registry=r)
        self.deleted_while_gated = prometheus_client.Counter(
            "carbongate_deferral_deleted_while_gated",
            "Workloads deleted before carbongate released them.", ["kind"], registry=r)
        self.api_errors = prometheus_client.Counter(
            "carbongate_deferral_api_errors", "Failed Kubernetes API calls.", ["operation"],
            registry=r)
        self.patch_conflicts = prometheus_client.Counter(
            "carbongate_deferral_patch_conflicts",
            "Release patches refused because the object changed (test op failed).",
            registry=r)
        self.watch_restarts = prometheus_client.Counter(
            "carbongate_deferral_watch_restarts", "Watch streams restarted, by cause.",
            ["kind", "cause"], registry=r)
        self.grid_errors = prometheus_client.Counter(
            "carbongate_deferral_grid_errors", "Grid snapshot reads that failed.", registry=r)
        self.loop_errors = prometheus_client.Counter(
            "carbongate_deferral_loop_errors",
            "Reconciler steps that failed unexpectedly (a bug: the loop carries on).",
            registry=r)
        self.pauses = prometheus_client.Counter(
            "carbongate_deferral_pauses", "Interruptible Jobs suspended while running, by reason.",
            ["reason"], registry=r)
        self.resumes = prometheus_client.Counter(
            "carbongate_deferral_resumes", "Interruptible Jobs resumed, by reason.", ["reason"],
            registry=r)
        self.run_seconds = prometheus_client.Counter(
            "carbongate_deferral_interruptible_run_seconds",
            "Run time of interruptible Jobs' finished slices (added at each pause and finish).",
            registry=r)
        self.slack = prometheus_client.Gauge(
            "carbongate_deferral_interruptible_slack_seconds",
            "Smallest time left before an interruptible Job must run to its end (resume_by).",
            registry=r)
        self.interruptible = prometheus_client.Gauge(
            "carbongate_deferral_interruptible_jobs", "Interruptible Jobs tracked, by state.",
            ["state"], registry=r)
        self.leader = prometheus_client.Gauge(
            "carbongate_deferral_leader", "1 while this replica holds the Lease.", registry=r)

    def text(self) -> str:
        """The exposition text, for tests and the CLI."""
        return prometheus_client.generate_latest(self.registry).decode()

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """One sample's value (0 when absent), for tests and health checks."""
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else found
