"""Whether a deferred workload goes now: the deadline first, then the policy.

The order is the guarantee. ``release_by`` (deadline - expected duration,
less a small lead for the API round trip) is checked here, in Python, before
anything else and with nothing else: no policy engine, no grid data. Only
when the deadline is not yet near does the release policy
(``data.carbongate.release.decision``) decide on the plan. When the engine
fails, answers nothing, or answers something malformed, the controller falls
back on the two rules that need no judgement: break-glass and the planned
window. Every fallback is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict, cast, get_args

from deferral import metrics as metrics_mod
from deferral import workloads
from policy_engine import engine as engine_mod

log = logging.getLogger(__name__)

RELEASE_PATH = "carbongate/release/decision"
# Many workloads' release decisions in one evaluation (policies/rego/carbongate/release/batch.rego).
BATCH_PATH = "carbongate/release/batch/decisions"
NS_PER_S = 1_000_000_000

Reason = Literal["window-open", "clean-now", "deadline", "break-glass", "waiting"]
Source = Literal["deadline", "policy", "fallback"]


# Version of the release facts: 2 is the compact input below (1 carried the whole
# workload record and every region's plan; docs/architecture.md, Release).
FACTS_VERSION = 2
# The annotations the release decision reads; no other annotation goes into its input.
READ_ANNOTATIONS = (workloads.REGION, workloads.RELEASE_NOW)
# What the release decision reads of the region the workload runs in.
REGION_FACTS = ("now_g_per_kwh", "stale", "fresh_until_ns", "windows")


class WorkloadInput(TypedDict):
    tier: str | None
    annotations: dict[str, str]
    not_before_ns: int | None
    deadline: str | None
    release_by_ns: int


class PlanInput(TypedDict):
    home_region: Any
    regions: dict[str, dict[str, Any]]


class ReleaseInput(TypedDict):
    facts_version: int
    now_ns: int
    workload: WorkloadInput
    plan: PlanInput


@dataclass(frozen=True)
class NodeAffinity:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """What to do with one workload now."""

    release: bool
    reason: Reason
    source: Source
    message: str
    region: str | None = None
    g_per_kwh: float | None = None
    not_before: datetime | None = None  # a re-plan's new window
    node_affinity: NodeAffinity | None = None


def deadline_due(deferred: workloads.Deferred, *, lead_s: float) -> datetime:
    """When the deadline path releases: release_by less the lead for the API call."""
    return deferred.release_by - timedelta(seconds=lead_s)


def decide(
    deferred: workloads.Deferred,
    *,
    now: datetime,
    plan: Callable[[], Mapping[str, Any]],
    engine: engine_mod.PolicyEngine | None,
    metrics: metrics_mod.Metrics,
    lead_s: float,
) -> Decision:
    """The decision for ``deferred`` at ``now``; ``plan`` is only called when needed."""
    return decide_many([(deferred, plan)], now=now, engine=engine, metrics=metrics, lead_s=lead_s)[0]


def decide_many(
    held: Sequence[tuple[workloads.Deferred, Callable[[], Mapping[str, Any]]]],
    *,
    now: datetime,
    engine: engine_mod.PolicyEngine | None,
    metrics: metrics_mod.Metrics,
    lead_s: float,
) -> list[Decision]:
    """``decide`` for each (workload, plan) at ``now``, the policy asked once for all.

    Item by item the same decisions as ``decide``: the deadline first without
    the engine or a plan, then ``data.carbongate.release.batch.decisions``,
    which is the release decision on each item's own input. A batch the
    engine cannot answer (an error, or policies without the batch rule) is
    asked again item by item, so failures are counted per workload as ever.
    """
    found = [_without_policy(deferred, now=now, lead_s=lead_s) for deferred, _ in held]
    if engine is None:
        return [d or fallback(deferred, now=now) for d, (deferred, _) in zip(found, held, strict=True)]
    asked = [(i, release_input(held[i][0], now=now, plan=held[i][1]()))
             for i, early in enumerate(found) if early is None]
    answers = _batch(engine, [policy_input for _, policy_input in asked]) if len(asked) > 1 else None
    for k, (i, policy_input) in enumerate(asked):
        deferred = held[i][0]
        found[i] = (_ask(engine, deferred, now=now, policy_input=policy_input, metrics=metrics)
                    if answers is None else _judge(deferred, answers.get(str(k)), now=now, metrics=metrics))
    return [d for d in found if d is not None]


def _without_policy(deferred: workloads.Deferred, *, now: datetime, lead_s: float) -> Decision | None:
    """The deadline's release (nothing else consulted), or None when the policy decides."""
    if now >= deadline_due(deferred, lead_s=lead_s):
        return Decision(True, "deadline", "deadline",
                        f"released: release_by {workloads.format_time(deferred.release_by)} "
                        f"(deadline {_text(deferred.deadline)} - expected duration "
                        f"{deferred.expected_duration_s}s)")
    return None


def _ask(engine: engine_mod.PolicyEngine, deferred: workloads.Deferred, *, now: datetime,
         policy_input: ReleaseInput, metrics: metrics_mod.Metrics) -> Decision:
    try:
        answer = engine.evaluate(RELEASE_PATH, policy_input)
    except Exception as error:  # fail-open boundary: any engine failure falls back
        metrics.policy_failures.labels(kind="error").inc()
        log.warning("release policy failed for %s: %s", deferred.key, error)
        return fallback(deferred, now=now)
    return _judge(deferred, answer, now=now, metrics=metrics)


def _batch(engine: engine_mod.PolicyEngine, inputs: Sequence[ReleaseInput]) -> Mapping[str, Any] | None:
    """The batch's decisions by item index ("0", "1", ...), or None to ask item by item."""
    try:
        answers = engine.evaluate(BATCH_PATH, {"items": list(inputs)})
    except Exception as error:  # each item is asked alone, and its failure counted there
        log.info("release batch of %d not evaluated (%s): asking one by one", len(inputs), error)
        return None
    return answers if isinstance(answers, Mapping) else None


def _judge(deferred: workloads.Deferred, answer: Any, *, now: datetime,
           metrics: metrics_mod.Metrics) -> Decision:
    """The policy's answer as the decision, or the fallback (counted) when it is none."""
    if answer is None:
        metrics.policy_failures.labels(kind="undefined").inc()
        return fallback(deferred, now=now)
    parsed = parse_decision(answer)
    if parsed is None:
        metrics.policy_failures.labels(kind="malformed").inc()
        log.warning("release policy answered %r for %s", answer, deferred.key)
        return fallback(deferred, now=now)
    return parsed


def fallback(deferred: workloads.Deferred, *, now: datetime) -> Decision:
    """Without a policy: break-glass and the planned window release; nothing else does."""
    if deferred.break_glass:
        return Decision(True, "break-glass", "fallback",
                        f"released: {workloads.RELEASE_NOW} was set")
    if deferred.not_before is not None and now >= deferred.not_before:
        return Decision(True, "window-open", "fallback", "released: the planned window opened")
    return Decision(False, "waiting", "fallback",
                    f"waiting until {_text(deferred.not_before)} "
                    f"(release by {workloads.format_time(deferred.release_by)})")


def release_input(deferred: workloads.Deferred, *, now: datetime,
                  plan: Mapping[str, Any]) -> ReleaseInput:
    """``input`` of ``data.carbongate.release.decision`` (docs/architecture.md, Release).

    Only what the decision reads: the two annotations it acts on, the instants
    it compares, the deadline's text for its message, and of the plan only
    the region the workload runs in. Every other byte is engine work on each
    of the controller's many evaluations, and makes equal decisions unequal
    inputs for the decision cache.
    """
    notes = {key: deferred.annotations[key] for key in READ_ANNOTATIONS if key in deferred.annotations}
    return {
        "facts_version": FACTS_VERSION,
        "now_ns": to_ns(now),
        "workload": {
            "tier": deferred.tier,
            "annotations": notes,
            "not_before_ns": _opt_ns(deferred.not_before),
            "deadline": _opt_text(deferred.deadline),
            "release_by_ns": to_ns(deferred.release_by),
        },
        "plan": compact_plan(plan, region=notes.get(workloads.REGION) or None),
    }


def compact_plan(plan: Mapping[str, Any], *, region: str | None) -> PlanInput:
    """The plan's home region and, of its regions, only the one the workload runs in.

    ``region`` is the admitted region (the ``carbongate.io/region`` annotation),
    None for home, as the policy resolves it.
    """
    home = plan.get("home_region")
    chosen = region if region is not None else home
    regions = plan.get("regions")
    found = regions.get(chosen) if isinstance(regions, Mapping) and isinstance(chosen, str) else None
    kept = {} if not isinstance(found, Mapping) else {
        str(chosen): {key: found[key] for key in REGION_FACTS if key in found}}
    return {"home_region": home, "regions": kept}


def parse_decision(answer: Any) -> Decision | None:
    """The policy's answer as a ``Decision``; None when it does not fit the contract."""
    if not isinstance(answer, Mapping):
        return None
    release, reason = answer.get("release"), answer.get("reason")
    if not isinstance(release, bool) or reason not in get_args(Reason):
        return None
    if release != (reason != "waiting"):
        return None
    try:
        not_before = (workloads.parse_time(answer["not_before"])
                      if answer.get("not_before") else None)
    except (TypeError, ValueError):
        return None
    g = answer.get("g_per_kwh")
    return Decision(
        release=release, reason=cast(Reason, reason), source="policy",
        message=str(answer.get("message") or reason),
        region=answer.get("region") if isinstance(answer.get("region"), str) else None,
        g_per_kwh=float(g) if isinstance(g, int | float) and not isinstance(g, bool) else None,
        not_before=not_before,
        node_affinity=_affinity(answer.get("node_affinity")),
    )


def _affinity(value: Any) -> NodeAffinity | None:
    if not isinstance(value, Mapping):
        return None
    key, values = value.get("key"), value.get("values")
    if not isinstance(key, str) or not isinstance(values, list) or not values:
        return None
    if not all(isinstance(v, str) for v in values):
        return None
    return NodeAffinity(key=key, values=tuple(values))


def to_ns(value: datetime) -> int:
    """Nanoseconds since the epoch, as the policies compare instants."""
    return int(value.timestamp()) * NS_PER_S + value.microsecond * 1000


def _opt_ns(value: datetime | None) -> int | None:
    return None if value is None else to_ns(value)


def _opt_text(value: datetime | None) -> str | None:
    return None if value is None else workloads.format_time(value)


def _text(value: datetime | None) -> str:
    return "unknown" if value is None else workloads.format_time(value)
