"""The decision path: an AdmissionReview request in, a response out.

``review`` is a pure function of its arguments: the request, the time, what
the worker knows (grid, budgets, platform config, namespace labels) and a
``decide`` callable that asks the policy engine. The HTTP layer only parses
and serialises around it, and ``carbongate review`` calls it offline, so a
Rego edit is checked by exactly the code that will run it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from carbongate import platform as platform_mod
from carbongate import settings as settings_mod
from planner import energy as energy_model
from planner import plan as planning
from planner import snapshot
from webhook import decisions, mutations, patches, reviews, workloads

log = logging.getLogger(__name__)

DECIDED_KINDS = {("", "Pod"), ("batch", "Job")}
NS_PER_S = 1_000_000_000
DEFAULT_DURATION_S = 3600

Decide = Callable[[Mapping[str, Any]], Any]
EnergyEstimate = Callable[[Mapping[str, Any], int], float]


class DecisionError(RuntimeError):
    """The engine failed (a policy that is wrong but answers is ``decisions.problems``' to report)."""


class DeadlinePassed(DecisionError):
    """No engine was free before the request's deadline: the same as no decision in time."""


@dataclass(frozen=True)
class Knowledge:
    """What the worker knows at the moment of a request."""

    now: datetime
    grid: snapshot.GridSnapshot | None
    budgets: Mapping[str, Any] | None
    config: Mapping[str, Any]
    namespace_labels: Mapping[str, str]
    home_region: str
    own_namespace: str
    exempt_namespaces: frozenset[str]
    policy_version: str
    plan_step_s: int = 3600
    horizon_s: int = 48 * 3600
    # For snapshots without fresh_until: grace past a provider's due observation (grid.stale_grace_s).
    stale_grace_s: int = 900
    # The grid's forecasts parsed once per snapshot version (planner.plan.parse_regions).
    grid_series: Mapping[str, Any] | None = None
    # webhook.policy_input_object: hand the policy the whole object as ``input.object``
    # (no shipped policy reads it; it costs the engine time on every request).
    object_in_input: bool = False
    # webhook.plan_regions == "all": the plan holds every region of the grid, not only home
    # and the regions the workload names (``_plan_for``).
    plan_every_region: bool = False
    # Plans already made under this grid version, by instant, shape and rules (the
    # service keeps one per grid version): a fan-out of identical pods plans once.
    plans: MutableMapping[Any, planning.Plan | None] | None = None


def knowledge(
    *,
    settings: settings_mod.Settings,
    platform: platform_mod.PlatformConfig,
    now: datetime,
    grid: snapshot.GridSnapshot | None,
    namespace_labels: Mapping[str, str],
    policy_version: str,
    budgets: Mapping[str, Any] | None = None,
    grid_series: Mapping[str, Any] | None = None,
    home_region: str | None = None,
    horizon_s: int | None = None,
    plans: MutableMapping[Any, planning.Plan | None] | None = None,
    object_in_input: bool = False,
) -> Knowledge:
    """What a review knows, built one way for the webhook, ``carbongate review`` and the replay.

    The home region, the exempt namespaces and the config document come from
    ``platform`` (:mod:`carbongate.platform`); the planning step, horizon and
    staleness grace from the settings. The replay names each job's home region
    and its forecast horizon itself.
    """
    regions: Mapping[str, Any] = grid["regions"] if grid is not None else {}
    return Knowledge(
        now=now, grid=grid, budgets=budgets, config=platform.document, namespace_labels=namespace_labels,
        home_region=home_region if home_region is not None else platform.home_region(settings, regions),
        own_namespace=settings.webhook.own_namespace, exempt_namespaces=platform.exempt_namespaces,
        policy_version=policy_version, plan_step_s=settings.grid.plan_step_min * 60,
        horizon_s=horizon_s if horizon_s is not None else settings.grid.forecast_horizon_h * 3600,
        stale_grace_s=settings.grid.stale_grace_s, grid_series=grid_series, plans=plans,
        object_in_input=object_in_input, plan_every_region=settings.webhook.plan_regions == "all",
    )


@dataclass(frozen=True)
class Result:
    """A response and what led to it (for metrics, logs and the CLI)."""

    response: reviews.ReviewResponse
    decision: Mapping[str, Any] | None = None
    patch: list[dict[str, Any]] = field(default_factory=list)
    fail_open: str | None = None
    policy_input: Mapping[str, Any] | None = None


def review(
    request: reviews.Request,
    *,
    knowledge: Knowledge,
    decide: Decide,
    energy_kwh: EnergyEstimate,
) -> Result:
    """Decide on one admission request; any failure admits the object unchanged."""
    if not _applies(request, knowledge):
        return Result(response=reviews.respond(request.uid))
    assert request.object is not None
    workload = workloads.read(request.kind, request.object)
    policy_input = build_input(request, workload, knowledge=knowledge, energy_kwh=energy_kwh)
    try:
        decision = decide(policy_input)
    except DecisionError as error:
        log.warning("admitting %s unchanged: %s", _describe(request), error)
        reason = "deadline" if isinstance(error, DeadlinePassed) else "engine-error"
        return fail_open(request.uid, reason, detail=str(error), policy_input=policy_input)
    if decision is None:
        return Result(response=reviews.respond(request.uid), policy_input=policy_input)
    invalid = decisions.problems(decision)
    if invalid:
        # Checked before any patch is built: a patch the API server refuses would refuse the create.
        log.warning("admitting %s unchanged: the policy's decision cannot be applied: %s",
                    _describe(request), "; ".join(invalid[:5]))
        return fail_open(request.uid, "invalid-decision", detail="; ".join(invalid), policy_input=policy_input)
    return _enforce(request, decision, knowledge=knowledge, policy_input=policy_input)


def fail_open(uid: str, reason: str, *, detail: str = "", policy_input: Mapping[str, Any] | None = None) -> Result:
    """Allowed unchanged, with a warning that says carbongate did not decide."""
    warning = f"carbongate: admitted unchanged, no decision ({reason})"
    return Result(
        response=reviews.respond(uid, warnings=[warning]),
        fail_open=reason,
        policy_input=policy_input,
    )


def _applies(request: reviews.Request, knowledge: Knowledge) -> bool:
    """Only Pod and Job CREATE outside exempt namespaces reach the policy."""
    if (request.group, request.kind) not in DECIDED_KINDS or request.operation != "CREATE":
        return False
    if request.namespace in knowledge.exempt_namespaces or request.namespace == knowledge.own_namespace:
        return False
    return isinstance(request.object, Mapping)


# The version of the facts contract below (docs/architecture.md, "OPA input"): a field
# added is a new version, so a policy may check which facts it is given. Version 3: the
# plan holds only the regions a workload may be placed in (``_plan_for``).
FACTS_VERSION = 3


def decision_instant(now: datetime) -> datetime:
    """``now`` at the resolution the policy decides at: whole seconds, rounded down.

    Everything in the input that depends on the time (``now``, ``now_ns``, the
    plan's windows and intensities now) is computed from this instant, so two
    requests for the same workload within the same second have the same input
    bytes and share one decision (``webhook.decision_cache``). Rounding down is
    the conservative direction for deadlines: a deadline is ``now + delay``,
    so it can only come earlier than asked, by under a second, never later.
    """
    return now.replace(microsecond=0)


def build_input(
    request: reviews.Request,
    workload: workloads.Workload,
    *,
    knowledge: Knowledge,
    energy_kwh: EnergyEstimate,
) -> dict[str, Any]:
    """The OPA input: the facts of the request (see "OPA input" in docs/architecture.md).

    Only facts Python extracted, never the whole object unless the platform
    opts in (``Knowledge.object_in_input``): the engine's cost grows with its
    input, and identical workloads must give identical inputs to share a
    cached decision (the object carries names and uids that always differ).
    """
    now = decision_instant(knowledge.now)
    duration_s = workload.expected_duration_s or _default_duration(knowledge.config)
    energy, energy_error = _energy(request.object or {}, duration_s, energy_kwh)
    resources, resources_error = _resources(workload)
    # Unreadable resources are one mistake, reported once (the energy estimate reads them too).
    errors: list[str] = [error for error in (energy_error or resources_error,) if error]
    policy_input: dict[str, Any] = {
        "facts_version": FACTS_VERSION,
        "now": snapshot.format_time(now),
        "now_ns": int(now.timestamp()) * NS_PER_S,
        "operation": request.operation,
        "dry_run": request.dry_run,
        "kind": request.kind,
        "namespace": request.namespace,
        "namespace_labels": dict(knowledge.namespace_labels),
        "user": {"username": request.username},
        "own_namespace": knowledge.own_namespace,
    }
    if knowledge.object_in_input:
        obj, size_error = _object_input(request, workload)
        policy_input["object"] = obj
        errors += [size_error] if size_error else []
    if errors:
        workload = dataclasses.replace(workload, parse_errors=(*workload.parse_errors, *errors))
    policy_input["workload"] = _workload_input(workload, energy, resources)
    plan = _plan(workload, duration_s, knowledge, now)
    policy_input["plan"] = plan if knowledge.plan_every_region else _plan_for(workload, plan)
    policy_input["budget"] = _budget(workload, request, knowledge)
    return policy_input


BOOKKEEPING_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
# The engine's time grows with its input (about 50 ms per MB on a quiet core, several
# times that on a busy one), and a body may be 3 MiB: a larger object is handed to
# the policy as its metadata only, so no object can push a decision past the deadline.
MAX_OBJECT_INPUT_BYTES = 256 * 1024


def _object_input(request: reviews.Request, workload: workloads.Workload) -> tuple[Mapping[str, Any], str]:
    """``input.object``: the object, or its metadata when the request is over the limit."""
    obj = request.object or {}
    if request.body_bytes <= MAX_OBJECT_INPUT_BYTES:
        return _without_bookkeeping(obj), ""
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    summary = {
        "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
        "metadata": {**{k: metadata[k] for k in ("name", "generateName", "namespace", "uid")
                        if isinstance(metadata.get(k), str)},
                     "labels": dict(workload.labels), "annotations": dict(workload.annotations)},
    }
    return summary, (f"the request is {request.body_bytes} bytes, over {MAX_OBJECT_INPUT_BYTES}: "
                     "the policy saw the object's name, labels and carbongate.io/ annotations only")


def _without_bookkeeping(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object less ``managedFields`` and kubectl's last-applied copy.

    Both are bookkeeping no policy should read, and together they are often
    larger than the rest of the object: every byte is marshalled into the
    engine on every request.
    """
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return obj
    trimmed = {k: v for k, v in metadata.items() if k != "managedFields"}
    annotations = trimmed.get("annotations")
    if isinstance(annotations, Mapping) and BOOKKEEPING_ANNOTATION in annotations:
        trimmed["annotations"] = {k: v for k, v in annotations.items() if k != BOOKKEEPING_ANNOTATION}
    return {**obj, "metadata": trimmed}


def _energy(obj: Mapping[str, Any], duration_s: int, energy_kwh: EnergyEstimate) -> tuple[float | None, str]:
    """The workload's estimated energy; unreadable resources become a parse error."""
    try:
        return energy_kwh(obj, duration_s), ""
    except ValueError as error:
        return None, f"resources: {error}"


def _resources(workload: workloads.Workload) -> tuple[dict[str, float] | None, str]:
    """What the scheduler reserves for one pod (requests, else limits), GPUs of any vendor."""
    try:
        found = energy_model.effective_resources(workload.pod_spec)
    except ValueError as error:
        return None, f"resources: {error}"
    return {"cpu": round(found.vcpu, 6), "memory_bytes": round(found.memory_bytes), "gpus": found.gpus}, ""


def _workload_input(workload: workloads.Workload, energy: float | None,
                    resources: Mapping[str, float] | None) -> dict[str, Any]:
    return {
        "labels": dict(workload.labels),
        "annotations": dict(workload.annotations),
        "owner_kind": workload.owner_kind,
        "owner_name": workload.owner_name,
        "template_decision": workload.template_decision,
        "expected_duration_s": workload.expected_duration_s,
        "max_delay_s": workload.max_delay_s,
        "regions": list(workload.regions),
        "data_region": workload.data_region,
        "data_gb": workload.data_gb,
        "energy_kwh": None if energy is None else round(energy, 6),
        "resources": resources,
        "parse_errors": list(workload.parse_errors),
    }


def _plan(workload: workloads.Workload, duration_s: int, knowledge: Knowledge, now: datetime) -> planning.Plan | None:
    if knowledge.grid is None:
        return None
    longest = _longest_delay(knowledge.config)
    shape = planning.WorkloadShape(
        duration_s=duration_s,
        max_start_s=min(workload.max_delay_s, longest) if workload.max_delay_s is not None else longest,
        data_gb=workload.data_gb,
    )
    rules = planning.PlanningRules(
        home_region=knowledge.home_region,
        step_s=knowledge.plan_step_s,
        horizon_s=knowledge.horizon_s,
        network_kwh_per_gb=float(knowledge.config.get("network_kwh_per_gb", 0.0)),
        stale_grace_s=knowledge.stale_grace_s,
    )
    key = (now, shape, rules)
    known = knowledge.plans.get(key, _NOT_PLANNED) if knowledge.plans is not None else _NOT_PLANNED
    if known is not _NOT_PLANNED:
        return known  # type: ignore[return-value]
    made = planning.plan_workload(knowledge.grid["regions"], shape, now=now, rules=rules,
                                  parsed=knowledge.grid_series)
    if knowledge.plans is not None:
        if len(knowledge.plans) >= MAX_PLANS_KEPT:
            knowledge.plans.clear()
        knowledge.plans[key] = made
    return made


MAX_PLANS_KEPT = 256
_NOT_PLANNED = object()


def _plan_for(workload: workloads.Workload, plan: planning.Plan | None) -> planning.Plan | None:
    """The plan with only the home region and the regions the workload asked for.

    A workload runs at home unless its ``carbongate.io/regions`` names others
    (docs/policies.md, "Regions"), so the other regions' windows could never be
    chosen, yet the engine converted every one of them on every request (about
    1.5 microseconds per JSON node; two of the demo grid's three regions).
    The plan made per instant and shape is shared by all workloads
    (``Knowledge.plans``); this view of it is a shallow copy.
    """
    if plan is None:
        return None
    home, regions = plan["home_region"], plan["regions"]
    wanted = [name for name in regions if name == home or name in workload.regions]
    if len(wanted) == len(regions):
        return plan
    return planning.Plan(home_region=home, duration_s=plan["duration_s"],
                         regions={name: regions[name] for name in wanted})


PERIOD_FIELDS = ("period", "period_start_ns", "period_end_ns")


def _budget(workload: workloads.Workload, request: reviews.Request, knowledge: Knowledge) -> Any:
    """The team's budget entry with its period, for convenience; the policy may read the full document."""
    team = workload.labels.get(workloads.TEAM) or knowledge.namespace_labels.get(workloads.TEAM)
    budgets = knowledge.budgets or {}
    teams = budgets.get("teams")
    if not team or not isinstance(teams, Mapping) or not isinstance(teams.get(team), Mapping):
        return None
    period = {key: budgets[key] for key in PERIOD_FIELDS if key in budgets}
    return {"team": team, **teams[team], **period}


def _default_duration(config: Mapping[str, Any]) -> int:
    value = config.get("default_duration_s", DEFAULT_DURATION_S)
    return int(value) if isinstance(value, (int, float)) and value > 0 else DEFAULT_DURATION_S


def _longest_delay(config: Mapping[str, Any]) -> int:
    """The largest delay any tier allows: how far ahead candidates need to go."""
    tiers = config.get("tiers")
    delays = [t.get("max_delay_s", 0) for t in tiers.values()] if isinstance(tiers, Mapping) else []
    return int(max([d for d in delays if isinstance(d, (int, float))], default=0))


def _enforce(
    request: reviews.Request,
    decision: Mapping[str, Any],
    *,
    knowledge: Knowledge,
    policy_input: Mapping[str, Any],
) -> Result:
    mode = decision.get("mode", "enforce")
    warnings: list[str] = decision.get("warnings") or []
    if mode != "enforce":
        shown = warnings if mode == "warn" else []
        return Result(response=reviews.respond(request.uid, warnings=shown), decision=decision,
                      policy_input=policy_input)
    if decision["action"] == "deny":
        message = decision.get("message") or "denied by carbongate policy"
        return Result(response=reviews.respond(request.uid, allowed=False, warnings=warnings, message=message),
                      decision=decision, policy_input=policy_input)
    assert request.object is not None
    if not mutations.changes(decision):
        return Result(response=reviews.respond(request.uid, warnings=warnings), decision=decision,
                      policy_input=policy_input)
    outcome = mutations.apply(request.kind, request.object, decision, policy_version=knowledge.policy_version)
    patch = patches.json_patch(request.object, outcome.obj)
    response = reviews.respond(request.uid, patch=patch, warnings=[*warnings, *outcome.notes])
    return Result(response=response, decision=decision, patch=patch, policy_input=policy_input)


def _describe(request: reviews.Request) -> str:
    return f"{request.kind} {request.namespace}/{request.name or '(generated)'} uid={request.uid}"
