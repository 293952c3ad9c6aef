"""Prometheus metrics of the admission path.

Under gunicorn every worker is its own process, so the server runs
prometheus-client in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set by
``python -m webhook`` before anything imports the client) and ``/metrics``
aggregates every worker's files. Imported lazily by the app, never at
import time of the package.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

FAIL_OPEN = Counter(
    "carbongate_fail_open_total",
    "Admissions answered allowed-unchanged because carbongate could not decide",
    ["reason"],
)
DECISIONS = Counter(
    "carbongate_admission_decisions_total",
    "Admission decisions by action, tier and enforcement mode",
    ["action", "tier", "mode"],
)
BAD_REQUESTS = Counter(
    "carbongate_bad_requests_total",
    "Requests refused with HTTP 400 (not an AdmissionReview v1)",
)
CONNECTIONS_REFUSED = Counter(
    "carbongate_connections_refused_total",
    "Connections closed on arrival because the worker already held webhook.max_connections",
)
DRY_RUN = Counter(
    "carbongate_dry_run_reviews_total",
    "Dry-run admission requests (decided, never recorded)",
)
LATENCY = Histogram(
    "carbongate_admission_seconds",
    "Time to answer an admission request, parse to serialise",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
TIER_REFUSALS = Counter(
    "carbongate_tier_refusals_total",
    "Workloads whose own carbongate.io/tier label the platform's mandate refused, by namespace and team",
    ["namespace", "team"],
)
DATA_RELOADS = Counter(
    "carbongate_webhook_data_reloads_total",
    "Grid and budget snapshot loads into the worker, by document and result",
    ["document", "result"],
)

# Every worker reads the same file; "livemin" keeps only live workers' values. Labelled, so
# a process that never read the file (the gunicorn master) has no sample, not a 0.
CERTIFICATE_EXPIRY = Gauge(
    "carbongate_webhook_certificate_expiry_seconds",
    "Seconds until the serving certificate expires (negative once expired), by file",
    ["file"],
    multiprocess_mode="livemin",
)


def exposition(multiprocess_dir: Path | None) -> tuple[bytes, str]:
    """The metrics page: every worker's when multiprocess, else this process's."""
    if multiprocess_dir is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
