"""Reading a finished Pod (as the API server serves it, JSON) into :class:`runs.RunFacts`.

Everything governance charges comes from the pod's own record: who (the
``carbongate.io/team`` label, else its namespace's), what carbongate decided
(the annotations the webhook wrote, copied from a Job's template onto its
pods), where it ran (``carbongate.io/region``, else the home region) and when:

* start: the earliest ``startedAt`` of a terminated container (init
  containers included: they draw power too), else ``status.startTime``;
* end: the latest ``finishedAt``, else the latest condition transition
  (a pod evicted before its containers reported), else when we saw it;
* admission: the Job's ``creationTimestamp`` for a Job's pod (a deferred
  Job creates its pods only when released), else the pod's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from governance import runs

FINISHED_PHASES = frozenset({"Succeeded", "Failed"})
PREFIX = "carbongate.io/"
# Node labels naming a node pool on GKE, EKS, AKS and Karpenter, in that order.
NODE_POOL_LABELS = ("cloud.google.com/gke-nodepool", "eks.amazonaws.com/nodegroup",
                    "kubernetes.azure.com/agentpool", "karpenter.sh/nodepool")


class PodError(ValueError):
    """A pod object without the fields accounting needs (uid, name, times)."""


@dataclass(frozen=True)
class Defaults:
    """What applies when a pod and its namespace say nothing."""

    home_region: str
    default_tier: str = "2"


def is_finished(pod: Mapping[str, Any]) -> bool:
    """Succeeded or Failed: the pod will not run again and its energy is known."""
    return (pod.get("status") or {}).get("phase") in FINISHED_PHASES


def owner_job(pod: Mapping[str, Any]) -> str | None:
    """The name of the Job that owns the pod, if a Job does."""
    owner = _owner_job_reference(pod.get("metadata") or {})
    return None if owner is None else str(owner.get("name"))


def facts(
    pod: Mapping[str, Any], *, defaults: Defaults, observed_at: datetime,
    job: Mapping[str, Any] | None = None, namespace_labels: Mapping[str, str] | None = None,
    node_pool: str | None = None,
) -> runs.RunFacts:
    """The run a finished pod describes (raises :class:`PodError` on a malformed pod)."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    labels: Mapping[str, str] = metadata.get("labels") or {}
    annotations: Mapping[str, str] = metadata.get("annotations") or {}
    namespace_labels = namespace_labels or {}
    if not metadata.get("uid") or not metadata.get("name"):
        raise PodError("pod without metadata.uid or metadata.name")
    start, end = run_span(status, observed_at=observed_at)
    return runs.RunFacts(
        uid=str(metadata["uid"]), namespace=str(metadata.get("namespace") or "default"),
        pod=str(metadata["name"]), workload=owner_job(pod) or "",
        team=_label("team", labels, namespace_labels) or runs.UNASSIGNED_TEAM,
        tier=_label("tier", labels, namespace_labels) or defaults.default_tier,
        decision=annotations.get(PREFIX + "decision", "none"),
        region=annotations.get(PREFIX + "region") or defaults.home_region,
        home_region=defaults.home_region, phase=str(status.get("phase")),
        admitted_at=min(_admitted(metadata, job), start), start=start, end=end,
        pod_spec=spec, node_pool=node_pool or pool_from_selector(spec),
        admission_g_per_kwh=_float(annotations.get(PREFIX + "intensity")),
    )


TIER_REFUSED = PREFIX + "tier-refused"
RELEASE_NOW = PREFIX + "release-now"


def mandate_events(pod: Mapping[str, Any], found: runs.RunFacts, *,
                   job: Mapping[str, Any] | None = None) -> list[runs.MandateEvent]:
    """The refusal and the break-glass a finished pod (or its Job) carries, per workload.

    A Job's pods carry the webhook's annotations from its template, and
    break-glass is written on the Job itself: both are the Job's, under its UID.
    """
    metadata = pod.get("metadata") or {}
    annotations = dict(metadata.get("annotations") or {})
    uid, kind, name = str(metadata.get("uid") or ""), "Pod", str(metadata.get("name") or "")
    owner = _owner_job_reference(metadata)
    if owner is not None:
        annotations.update(((job or {}).get("metadata") or {}).get("annotations") or {})
        uid, kind, name = str(owner.get("uid") or ""), "Job", str(owner.get("name") or "")
    if not uid:
        return []
    common = {"uid": uid, "team": found.team, "namespace": found.namespace,
              "workload_kind": kind, "workload": name}
    events: list[runs.MandateEvent] = []
    if annotations.get(TIER_REFUSED):
        events.append(runs.MandateEvent(event="tier-refused", detail=str(annotations[TIER_REFUSED]),
                                        at=found.admitted_at, **common))
    if str(annotations.get(RELEASE_NOW, "")).lower() == "true":
        events.append(runs.MandateEvent(event="break-glass", detail="", at=found.start, **common))
    return events


def _owner_job_reference(metadata: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for owner in metadata.get("ownerReferences") or []:
        if owner.get("kind") == "Job" and owner.get("controller", True):
            return dict(owner)
    return None


def run_span(status: Mapping[str, Any], *, observed_at: datetime) -> tuple[datetime, datetime]:
    """(start, end) of a finished pod from its container states."""
    terminated = [
        (s.get("state") or {}).get("terminated") or {}
        for key in ("initContainerStatuses", "containerStatuses")
        for s in status.get(key) or []
    ]
    starts = [_time(t["startedAt"]) for t in terminated if t.get("startedAt")]
    ends = [_time(t["finishedAt"]) for t in terminated if t.get("finishedAt")]
    if not ends:
        ends = [_time(c["lastTransitionTime"]) for c in status.get("conditions") or []
                if c.get("lastTransitionTime")]
    end = max(ends) if ends else observed_at
    if starts:
        start = min(starts)
    elif status.get("startTime"):
        start = _time(status["startTime"])
    else:
        start = end  # never started (e.g. failed to schedule): no energy to charge
    return min(start, end), end


def pool_from_selector(spec: Mapping[str, Any]) -> str | None:
    """The node pool a pod asked for by node selector, if it named one."""
    selector = spec.get("nodeSelector") or {}
    for label in NODE_POOL_LABELS:
        if selector.get(label):
            return str(selector[label])
    return None


def pool_from_node_labels(labels: Mapping[str, str]) -> str | None:
    """The node pool a node belongs to, from its provider's label."""
    for label in NODE_POOL_LABELS:
        if labels.get(label):
            return labels[label]
    return None


def _label(name: str, labels: Mapping[str, str], namespace_labels: Mapping[str, str]) -> str:
    return labels.get(PREFIX + name) or namespace_labels.get(PREFIX + name) or ""


def _admitted(metadata: Mapping[str, Any], job: Mapping[str, Any] | None) -> datetime:
    job_created = ((job or {}).get("metadata") or {}).get("creationTimestamp")
    created = job_created or metadata.get("creationTimestamp")
    if not created:
        raise PodError(f"pod {metadata.get('name')!r} has no creationTimestamp")
    return _time(created)


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return runs.utc(value)
    try:
        return runs.parse_time(str(value))
    except ValueError as error:
        raise PodError(f"not an RFC 3339 time: {value!r}") from error


def _float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None
