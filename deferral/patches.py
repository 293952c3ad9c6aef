"""The JSON patches (RFC 6902) that release a workload, built from the object as read.

Every patch starts with ``test`` operations on exactly what it relies on, so
the API server applies it only to the object the controller looked at: if
someone else changed the gate list (another controller removed its own gate,
a user added a toleration), the ``test`` fails with 422, nothing is written,
and the controller re-reads and rebuilds. Nothing concurrent is clobbered.

Only carbongate's own gate is removed, by index, with the whole list tested
first: that is the patch a real v1.28 API server received in the captured
gate-removal UPDATE (tests/fixtures/deferral).

Narrowing node affinity follows KEP-3838 (mutable scheduling directives of
gated pods) and KEP-2926 (of suspended Jobs): on a gated pod, and in the
template of a suspended Job, scheduling constraints may
only be added to, never relaxed. A requirement is therefore appended to
every existing required term (or a first term is created) and never replaces
one; when the workload already constrains the same key, it is left alone,
since a second, different value would make it unschedulable.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from deferral import workloads

REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


class Operation(TypedDict, total=False):
    op: Literal["test", "remove", "add", "replace"]
    path: str
    value: Any


class Requirement(TypedDict):
    key: str
    operator: Literal["In"]
    values: list[str]


def requirement(key: str, values: list[str]) -> Requirement:
    return {"key": key, "operator": "In", "values": list(values)}


def gate_removal(pod: Mapping[str, Any], *, gate: str = workloads.GATE) -> list[Operation] | None:
    """``test`` the gate list as read, ``remove`` our gate; None when it is not there."""
    listed = (pod.get("spec") or {}).get("schedulingGates") or []
    names = [g.get("name") if isinstance(g, Mapping) else None for g in listed]
    if gate not in names:
        return None
    return [
        {"op": "test", "path": "/spec/schedulingGates", "value": copy.deepcopy(listed)},
        {"op": "remove", "path": f"/spec/schedulingGates/{names.index(gate)}"},
    ]


def unsuspend(job: Mapping[str, Any]) -> list[Operation] | None:
    """``test`` that the Job is still suspended, then set ``suspend: false``."""
    if not (job.get("spec") or {}).get("suspend"):
        return None
    return [
        {"op": "test", "path": "/spec/suspend", "value": True},
        {"op": "replace", "path": "/spec/suspend", "value": False},
    ]


def admission_gate_removal(job: Mapping[str, Any], *, gate: str = workloads.GATE) -> list[Operation] | None:
    """Take only our entry out of Kueue's ``admission-gated-by`` list; None when it is not there.

    KEP-6915: after creation the annotation may only lose entries, or be
    removed whole; Kueue admits once it is gone. The value as read is tested
    first, so an entry another controller removed meanwhile is not put back.
    ``spec.suspend`` stays Kueue's.
    """
    listed = workloads.admission_gates(job)
    if gate not in listed:
        return None
    path = "/metadata/annotations/" + _escape(workloads.KUEUE_ADMISSION_GATED_BY)
    current = ((job.get("metadata") or {}).get("annotations") or {})[workloads.KUEUE_ADMISSION_GATED_BY]
    rest = [name for name in listed if name != gate]
    test: Operation = {"op": "test", "path": path, "value": current}
    if not rest:
        return [test, {"op": "remove", "path": path}]
    return [test, {"op": "replace", "path": path, "value": ",".join(rest)}]


def release(kind: workloads.Kind, obj: Mapping[str, Any]) -> list[Operation] | None:
    """The operations that let a held workload go: gate, Kueue admission gate, or suspension."""
    if kind == "Pod":
        return gate_removal(obj)
    if workloads.kueue_managed(obj):
        return admission_gate_removal(obj)
    return unsuspend(obj)


def narrowing(obj: Mapping[str, Any], spec_path: str, wanted: Requirement) -> list[Operation]:
    """Operations adding ``wanted`` to the required node affinity at ``spec_path``.

    Empty when the spec already constrains ``wanted['key']``. The operations
    begin with a ``test`` of ``metadata.resourceVersion``: ``add`` on a JSON
    object member replaces it, so the structure they were computed from must
    be exactly the one they land on.
    """
    spec = _at(obj, spec_path)
    affinity = spec.get("affinity") or {}
    node = affinity.get("nodeAffinity") or {}
    terms = (node.get(REQUIRED) or {}).get("nodeSelectorTerms") or []
    if any(e.get("key") == wanted["key"] for t in terms for e in t.get("matchExpressions") or []):
        return []
    guard: list[Operation] = [{"op": "test", "path": "/metadata/resourceVersion",
                               "value": (obj.get("metadata") or {}).get("resourceVersion")}]
    fresh = {"nodeSelectorTerms": [{"matchExpressions": [dict(wanted)]}]}
    if "affinity" not in spec or spec["affinity"] is None:
        return guard + [{"op": "add", "path": f"{spec_path}/affinity",
                         "value": {"nodeAffinity": {REQUIRED: fresh}}}]
    if not node:
        return guard + [{"op": "add", "path": f"{spec_path}/affinity/nodeAffinity",
                         "value": {REQUIRED: fresh}}]
    if not terms:
        return guard + [{"op": "add", "path": f"{spec_path}/affinity/nodeAffinity/{REQUIRED}",
                         "value": fresh}]
    base = f"{spec_path}/affinity/nodeAffinity/{REQUIRED}/nodeSelectorTerms"
    ops = list(guard)
    for index, term in enumerate(terms):
        if term.get("matchExpressions"):
            ops.append({"op": "add", "path": f"{base}/{index}/matchExpressions/-",
                        "value": dict(wanted)})
        else:
            ops.append({"op": "add", "path": f"{base}/{index}/matchExpressions",
                        "value": [dict(wanted)]})
    return ops


def annotation_update(obj: Mapping[str, Any], values: Mapping[str, str]) -> list[Operation]:
    """Set annotations (a re-planned ``not-before``), guarded by the resource version."""
    ops: list[Operation] = [{"op": "test", "path": "/metadata/resourceVersion",
                             "value": (obj.get("metadata") or {}).get("resourceVersion")}]
    if not (obj.get("metadata") or {}).get("annotations"):
        return ops + [{"op": "add", "path": "/metadata/annotations", "value": dict(values)}]
    for key, value in values.items():
        ops.append({"op": "add", "path": f"/metadata/annotations/{_escape(key)}", "value": value})
    return ops


def _at(obj: Mapping[str, Any], pointer: str) -> Mapping[str, Any]:
    node: Any = obj
    for part in pointer.strip("/").split("/"):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _escape(key: str) -> str:
    """A JSON pointer segment (RFC 6901): ``~`` -> ``~0``, ``/`` -> ``~1``."""
    return key.replace("~", "~0").replace("/", "~1")
