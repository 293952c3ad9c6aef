"""Turn a policy decision into a mutated copy of the object.

Every change is made on a deep copy; the JSON patch is the diff between the
original and the copy (see :mod:`webhook.patches`), so no JSON pointer is ever
written by hand. Each function is idempotent: applying a decision twice
changes nothing the second time, which is what lets the webhook configuration
use ``reinvocationPolicy: IfNeeded`` safely.
"""

from __future__ import annotations

import copy
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
    """Apply an ``enforce``-mode decision to a copy of a Pod or Job."""
    mutated: dict[str, Any] = copy.deepcopy(dict(obj))
    notes: list[str] = []
    action = decision.get("action")
    if action == "defer":
        _defer(kind, mutated)
    affinity = decision.get("node_affinity")
    if action in ("defer", "shift") and isinstance(affinity, Mapping):
        notes.extend(_steer(workloads.pod_spec(kind, mutated), affinity))
    annotations = _annotation_values(decision.get("annotations"))
    if annotations:
        annotations[POLICY_VERSION] = policy_version
        _annotate(kind, mutated, annotations)
    return Outcome(obj=mutated, notes=tuple(notes))


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
    spec = obj.setdefault("spec", {})
    if kind == "Job":
        spec["suspend"] = True
        return
    gates = spec.get("schedulingGates")
    if not isinstance(gates, list):
        gates = []
    if not any(isinstance(g, dict) and g.get("name") == workloads.GATE for g in gates):
        gates.append({"name": workloads.GATE})
    spec["schedulingGates"] = gates


def _add_kueue_gate(obj: dict[str, Any]) -> None:
    annotations = _annotations_of(obj)
    present = str(annotations.get(workloads.KUEUE_ADMISSION_GATED_BY) or "")
    gates = [g.strip() for g in present.split(",") if g.strip()]
    if workloads.GATE not in gates:
        gates.append(workloads.GATE)
    annotations[workloads.KUEUE_ADMISSION_GATED_BY] = ",".join(gates)


def _steer(pod_spec: Mapping[str, Any], affinity: Mapping[str, Any]) -> list[str]:
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
    node_affinity = _node_affinity(pod_spec)
    if affinity.get("required") is False:
        _prefer(node_affinity, requirement)
        return []
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = required.get("nodeSelectorTerms") if isinstance(required, dict) else None
    if isinstance(terms, list) and terms:
        if any(_pins_elsewhere(term, requirement) for term in terms):
            return [f"carbongate: kept your node affinity on {key}; not steered to {','.join(requirement['values'])}"]
        for term in terms:
            _narrow(term, requirement)
    _prefer(node_affinity, requirement)
    return []


def _node_affinity(pod_spec: Mapping[str, Any]) -> dict[str, Any]:
    spec = pod_spec if isinstance(pod_spec, dict) else {}
    affinity = spec.setdefault("affinity", {})
    if not isinstance(affinity, dict):
        affinity = spec["affinity"] = {}
    node = affinity.setdefault("nodeAffinity", {})
    if not isinstance(node, dict):
        node = affinity["nodeAffinity"] = {}
    return node


def _pins_elsewhere(term: Any, requirement: Mapping[str, Any]) -> bool:
    expressions = term.get("matchExpressions") if isinstance(term, dict) else None
    for expression in expressions if isinstance(expressions, list) else []:
        if not isinstance(expression, dict) or expression.get("key") != requirement["key"]:
            continue
        allowed = expression.get("values") if expression.get("operator") == "In" else None
        if not isinstance(allowed, list) or not set(requirement["values"]) & set(allowed):
            return True
    return False


def _narrow(term: Any, requirement: Mapping[str, Any]) -> None:
    if not isinstance(term, dict):
        return
    expressions = term.get("matchExpressions")
    if not isinstance(expressions, list):
        expressions = term["matchExpressions"] = []
    if dict(requirement) not in expressions:
        expressions.append(dict(requirement))


def _prefer(node_affinity: dict[str, Any], requirement: Mapping[str, Any]) -> None:
    preferred = node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(preferred, list):
        preferred = node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = []
    term = {"weight": 100, "preference": {"matchExpressions": [dict(requirement)]}}
    if term not in preferred:
        preferred.append(term)


def _annotate(kind: str, obj: dict[str, Any], annotations: Mapping[str, str]) -> None:
    """Annotate the object; a Job's pod template too, so its pods are not decided again."""
    _merge_annotations(obj, annotations)
    if kind == "Job":
        template = obj.setdefault("spec", {}).setdefault("template", {})
        if isinstance(template, dict):
            _merge_annotations(template, annotations)


def _merge_annotations(holder: dict[str, Any], annotations: Mapping[str, str]) -> None:
    _annotations_of(holder).update(annotations)


def _annotations_of(holder: dict[str, Any]) -> dict[str, Any]:
    """The holder's ``metadata.annotations`` map, created when absent or not a map."""
    metadata = holder.get("metadata")
    if not isinstance(metadata, dict):
        metadata = holder["metadata"] = {}
    existing = metadata.get("annotations")
    if not isinstance(existing, dict):
        existing = metadata["annotations"] = {}
    return existing


def _annotation_values(raw: Any) -> dict[str, str]:
    """Only ``carbongate.io/`` keys with string values reach the object."""
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(k): str(v)
        for k, v in raw.items()
        if isinstance(k, str) and k.startswith(workloads.PREFIX) and v is not None
    }
