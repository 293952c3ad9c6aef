"""Turn a policy decision into a mutated copy of the object.

Every change is made on a copy; the JSON patch is the diff between the
original and the copy (see :mod:`webhook.patches`), so no JSON pointer is ever
written by hand. Each function is idempotent: applying a decision twice
changes nothing the second time, which is what lets the webhook configuration
use ``reinvocationPolicy: IfNeeded`` safely.

The copy is made on write: only the objects and arrays on the way to a field
carbongate changes are copied (``_own``), everything else is shared with the
original. A deep copy of a 3 MiB pod took longer than the decision deadline,
and recursed once per nesting level; this copies a handful of small
containers whatever the object holds, and ``patches.json_patch`` skips the
shared parts by identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook import workloads

POLICY_VERSION = workloads.PREFIX + "policy-version"


@dataclass(frozen=True)
class Outcome:
    """The mutated object and any notes the person applying it should see."""

    obj: dict[str, Any]
    notes: tuple[str, ...] = ()


def changes(decision: Mapping[str, Any]) -> bool:
    """Whether ``apply`` could change anything: a deferral, a shift, or annotations.

    An admit without annotations (tier 1, exemptions) skips the deep copy and
    the diff, a third of a millisecond per request for a large pod.
    """
    return decision.get("action") in ("defer", "shift") or bool(_annotation_values(decision.get("annotations")))


def apply(kind: str, obj: Mapping[str, Any], decision: Mapping[str, Any], *, policy_version: str) -> Outcome:
    """Apply an ``enforce``-mode decision to a copy of a Pod or Job (the original is never changed)."""
    mutated: dict[str, Any] = dict(obj)
    notes: list[str] = []
    action = decision.get("action")
    if action == "defer":
        _defer(kind, mutated)
    affinity = decision.get("node_affinity")
    if action in ("defer", "shift") and isinstance(affinity, Mapping):
        notes.extend(_steer(_own_pod_spec(kind, mutated), affinity))
    annotations = _annotation_values(decision.get("annotations"))
    if annotations:
        annotations[POLICY_VERSION] = policy_version
        _annotate(kind, mutated, annotations)
    return Outcome(obj=mutated, notes=tuple(notes))


def _own(holder: dict[str, Any], key: str) -> dict[str, Any]:
    """``holder[key]`` as this copy's own object: a shallow copy of it, or a new one if it is none."""
    value = holder.get(key)
    owned = dict(value) if isinstance(value, dict) else {}
    holder[key] = owned
    return owned


def _own_pod_spec(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec (a Pod's own, a Job's template's), owned by the copy along the way."""
    spec = _own(obj, "spec")
    return _own(_own(spec, "template"), "spec") if kind == "Job" else spec


def _defer(kind: str, obj: dict[str, Any]) -> None:
    """Pods wait behind carbongate's scheduling gate; Jobs are suspended, Kueue's Jobs admission-gated.

    A Job in a Kueue queue is suspended by Kueue until Kueue admits it under
    its quotas; were carbongate to unsuspend it, it would run unadmitted. So
    such a Job gets carbongate's entry in ``kueue.x-k8s.io/admission-gated-by``
    (KEP-6915: a comma-separated list, settable only at creation, from which
    each controller later removes its own entry) and its ``spec.suspend`` is
    left to Kueue.
    """
    if workloads.kueue_managed(kind, obj):
        _add_kueue_gate(obj)
        return
    spec = _own(obj, "spec")
    if kind == "Job":
        spec["suspend"] = True
        return
    gates = spec.get("schedulingGates")
    gates = list(gates) if isinstance(gates, list) else []
    if not any(isinstance(g, dict) and g.get("name") == workloads.GATE for g in gates):
        gates.append({"name": workloads.GATE})
    spec["schedulingGates"] = gates


def _add_kueue_gate(obj: dict[str, Any]) -> None:
    annotations = _own(_own(obj, "metadata"), "annotations")
    present = str(annotations.get(workloads.KUEUE_ADMISSION_GATED_BY) or "")
    gates = [g.strip() for g in present.split(",") if g.strip()]
    if workloads.GATE not in gates:
        gates.append(workloads.GATE)
    annotations[workloads.KUEUE_ADMISSION_GATED_BY] = ",".join(gates)


def _steer(pod_spec: dict[str, Any], affinity: Mapping[str, Any]) -> list[str]:
    """Prefer the chosen region; narrow (never widen or replace) required terms.

    A required term the user wrote that pins the same node label to other
    values is respected: carbongate then leaves the affinity alone and says so,
    because narrowing it would make the pod unschedulable. A decision with
    ``required: false`` (a service's pod) only adds the preference: its
    required terms are never narrowed.
    """
    key, values = affinity.get("key"), affinity.get("values")
    if not isinstance(key, str) or not isinstance(values, list) or not values:
        return []
    requirement = {"key": key, "operator": "In", "values": [str(v) for v in values]}
    node_affinity = _own(_own(pod_spec, "affinity"), "nodeAffinity")
    if affinity.get("required") is False:
        _prefer(node_affinity, requirement)
        return []
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = required.get("nodeSelectorTerms") if isinstance(required, dict) else None
    if isinstance(terms, list) and terms:
        if any(_pins_elsewhere(term, requirement) for term in terms):
            return [f"carbongate: kept your node affinity on {key}; not steered to {','.join(requirement['values'])}"]
        _own(node_affinity, "requiredDuringSchedulingIgnoredDuringExecution")["nodeSelectorTerms"] = [
            _narrowed(term, requirement) for term in terms]
    _prefer(node_affinity, requirement)
    return []


def _pins_elsewhere(term: Any, requirement: Mapping[str, Any]) -> bool:
    expressions = term.get("matchExpressions") if isinstance(term, dict) else None
    for expression in expressions if isinstance(expressions, list) else []:
        if not isinstance(expression, dict) or expression.get("key") != requirement["key"]:
            continue
        allowed = expression.get("values") if expression.get("operator") == "In" else None
        if not isinstance(allowed, list) or not set(requirement["values"]) & set(allowed):
            return True
    return False


def _narrowed(term: Any, requirement: Mapping[str, Any]) -> Any:
    """The term with the requirement added to its expressions (a copy; junk left as it is)."""
    if not isinstance(term, dict):
        return term
    expressions = term.get("matchExpressions")
    expressions = list(expressions) if isinstance(expressions, list) else []
    if dict(requirement) not in expressions:
        expressions.append(dict(requirement))
    return {**term, "matchExpressions": expressions}


def _prefer(node_affinity: dict[str, Any], requirement: Mapping[str, Any]) -> None:
    preferred = node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution")
    preferred = list(preferred) if isinstance(preferred, list) else []
    term = {"weight": 100, "preference": {"matchExpressions": [dict(requirement)]}}
    if term not in preferred:
        preferred.append(term)
    node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = preferred


def _annotate(kind: str, obj: dict[str, Any], annotations: Mapping[str, str]) -> None:
    """Annotate the object; a Job's pod template too, so its pods are not decided again."""
    _merge_annotations(obj, annotations)
    if kind == "Job":
        _merge_annotations(_own(_own(obj, "spec"), "template"), annotations)


def _merge_annotations(holder: dict[str, Any], annotations: Mapping[str, str]) -> None:
    _own(_own(holder, "metadata"), "annotations").update(annotations)


def _annotation_values(raw: Any) -> dict[str, str]:
    """Only ``carbongate.io/`` keys with string values reach the object."""
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(k): str(v)
        for k, v in raw.items()
        if isinstance(k, str) and k.startswith(workloads.PREFIX) and v is not None
    }
