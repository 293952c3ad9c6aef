"""How a replay is told: one JSON object (``--json``) or a table for people.

The JSON has exactly the shape of issue 6, so scripts can rely on it::

    {"jobs": N, "deadline_misses": N,
     "policies": {"run_now": {...}, "threshold_30min": {...}, "sdk_window": {...},
                  "carbongate": {...}, "oracle": {...}}}

each policy holding ``emissions_g``, ``savings_pct`` (against run_now),
``oracle_share`` (its savings over the oracle's; null when the oracle saves
nothing), ``mean_delay_h``, ``p95_delay_h`` and ``deadline_misses``. The
top-level ``deadline_misses`` is carbongate's, the promise under test.
When the workload has interruptible jobs, an ``interruptible`` object is
added: ``jobs``, ``deadline_misses``, ``pauses``, ``decisions`` and ``ways``
(``run_now``, ``start_time``, ``start_oracle``, ``interruptible``,
``slice_oracle``, each with ``emissions_g``, ``savings_pct`` and
``oracle_share`` against the slice oracle).
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from simulate import run


class PolicyFigures(TypedDict):
    emissions_g: float
    savings_pct: float
    oracle_share: float | None
    mean_delay_h: float
    p95_delay_h: float
    deadline_misses: int


class Document(TypedDict):
    jobs: int
    deadline_misses: int
    policies: dict[str, PolicyFigures]
    interruptible: NotRequired[dict[str, Any]]  # only when the workload has interruptible jobs


def as_json(result: run.Result) -> Document:
    """The issue's JSON document."""
    document: Document = {
        "jobs": len(result.table),
        "deadline_misses": result.deadline_misses,
        "policies": {name: _figures(result.summaries[name]) for name in run.POLICIES},
    }
    found = interrupted_json(result.interrupted)
    if found is not None:
        document["interruptible"] = found
    return document


def as_text(result: run.Result) -> str:
    """A table of the five policies, and how carbongate decided."""
    options = result.options
    first, last = result.table.submit_s.min(), result.table.submit_s.max()
    lines = [
        (f"{len(result.table)} jobs submitted {_day(first)} .. {_day(last)} in {', '.join(result.truths)}; "
        f"forecast {options.forecast}, horizon {options.horizon_h} h; policies {result.policy_version}"),
    ]
    if result.skipped:
        lines.append(f"({result.skipped} jobs skipped: their window runs off the traces)")
    lines += ["", (f"{'policy':<16}{'emissions kg':>14}{'savings':>10}{'of oracle':>11}"
                  f"{'mean delay':>12}{'p95 delay':>11}{'misses':>8}")]
    for name in run.POLICIES:
        s = result.summaries[name]
        share = "-" if s.oracle_share is None else f"{100 * s.oracle_share:.1f} %"
        lines.append(f"{name:<16}{s.emissions_g / 1000:>14.2f}{s.savings_pct:>8.2f} %{share:>11}"
                     f"{s.mean_delay_h:>10.2f} h{s.p95_delay_h:>9.2f} h{s.deadline_misses:>8}")
    lines += ["", "carbongate decisions: " + _counts((o.action, o.reason) for o in result.outcomes)]
    released = [o.release_reason for o in result.outcomes if o.release_reason]
    if released:
        lines.append("releases: " + _counts((r,) for r in released)
                     + f"; {sum(o.release_decisions for o in result.outcomes)} release decisions, "
                       f"{sum(o.replans for o in result.outcomes)} re-plans")
    lines += interrupted_text(result.interrupted)
    lines.append(f"replayed in {result.elapsed_s:.1f} s")
    return "\n".join(lines)


def interrupted_text(found: run.Interrupted | None) -> list[str]:
    """The interruptible jobs' own table: start time only, paused and resumed, and the oracles."""
    if found is None:
        return []
    count = len(found.ways["run_now"])
    lines = ["", (f"interruptible jobs: {count} ({found.work_h:.0f} h of work), {found.pauses} pauses, "
                  f"{found.decisions} decisions, {found.deadline_misses} deadline misses"),
             f"{'way':<16}{'emissions kg':>14}{'savings':>10}{'of oracle':>11}"]
    for way in run.INTERRUPT_WAYS:
        share = found.oracle_share(way)
        lines.append(f"{way:<16}{float(found.ways[way].sum()) / 1000:>14.2f}{found.savings_pct(way):>8.2f} %"
                     f"{'-' if share is None else f'{100 * share:.1f} %':>11}")
    return lines


def interrupted_json(found: run.Interrupted | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {"jobs": len(found.ways["run_now"]), "deadline_misses": found.deadline_misses,
            "pauses": found.pauses, "decisions": found.decisions,
            "ways": {way: {"emissions_g": round(float(found.ways[way].sum()), 3),
                           "savings_pct": found.savings_pct(way), "oracle_share": found.oracle_share(way)}
                     for way in run.INTERRUPT_WAYS}}


def _figures(summary: run.Summary) -> PolicyFigures:
    return {
        "emissions_g": summary.emissions_g,
        "savings_pct": summary.savings_pct,
        "oracle_share": summary.oracle_share,
        "mean_delay_h": summary.mean_delay_h,
        "p95_delay_h": summary.p95_delay_h,
        "deadline_misses": summary.deadline_misses,
    }


def _counts(keys: Any) -> str:
    counted = collections.Counter(" ".join(k) for k in keys)
    return ", ".join(f"{key} {n}" for key, n in counted.most_common())


def _day(epoch_s: float) -> str:
    return datetime.fromtimestamp(float(epoch_s), UTC).strftime("%Y-%m-%d")
