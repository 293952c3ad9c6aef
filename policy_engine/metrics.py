"""Prometheus metrics of the policy engines (default registry).

Defined once here so both engines and the watcher count into the same
series. The webhook configures multiprocess mode for gunicorn workers; these
objects work in either mode.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram

# Evaluations take tens of microseconds embedded, around a millisecond over
# REST: buckets from 50 µs to the webhook's decision deadline and beyond.
_EVAL_BUCKETS: Final = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

POLICY_RELOADS: Final = Counter(
    "carbongate_policy_reloads",
    "Policy reloads by outcome; an error keeps the running policies.",
    ["result"],
)
COMPILE_ERRORS: Final = Counter(
    "carbongate_policy_compile_errors",
    "Policy directory versions rejected because they do not load or compile.",
)
EVAL_SECONDS: Final = Histogram(
    "carbongate_policy_eval_seconds",
    "Time to evaluate one policy document, failures included.",
    ["engine"],
    buckets=_EVAL_BUCKETS,
)
EVAL_ERRORS: Final = Counter(
    "carbongate_policy_eval_errors",
    "Evaluations that raised PolicyEvaluationError (callers fail open).",
    ["engine"],
)
ENGINE_SWAPS: Final = Counter(
    "carbongate_policy_engine_swaps",
    "Embedded engines swapped in (one per new data or policy version).",
)
DATA_UPDATES: Final = Counter(
    "carbongate_policy_data_updates",
    "put_data calls by data root and outcome; an error keeps the old data.",
    ["engine", "root", "result"],
)
