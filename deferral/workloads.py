"""What the controller reads from a gated Pod or a suspended Job.

A deferred workload carries, in annotations written at admission, when its
planned window opens (``not-before``), when it must be finished (``deadline``)
and how long it runs (``expected-duration``). From those the controller
derives ``release_by`` = deadline - expected duration: the latest instant a
release still lets it finish on time. That instant must be computable from
the object alone, with no policy engine and no grid data, because it is the
one promise carbongate makes whatever else is down.

Values that cannot be read never raise: they become ``problems`` and the
safest reading (release sooner, never later).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

# Re-exported for the controller's modules, which read workloads through here.
from carbongate.timefmt import format_time as format_time
from carbongate.timefmt import parse_duration as parse_duration
from carbongate.timefmt import parse_time as parse_time

PREFIX = "carbongate.io/"
GATE = PREFIX + "clean-window"
TIER = PREFIX + "tier"
DECISION = PREFIX + "decision"
REASON = PREFIX + "reason"
NOT_BEFORE = PREFIX + "not-before"
DEADLINE = PREFIX + "deadline"
EXPECTED_DURATION = PREFIX + "expected-duration"
REGION = PREFIX + "region"
INTENSITY = PREFIX + "intensity"
RELEASE_NOW = PREFIX + "release-now"
DATA_GB = PREFIX + "data-gb"
# Kueue's Jobs are held by carbongate's entry in Kueue's admission gates (KEP-6915), never suspended.
KUEUE_QUEUE_NAME = "kueue.x-k8s.io/queue-name"
KUEUE_ADMISSION_GATED_BY = "kueue.x-k8s.io/admission-gated-by"
INTERRUPTIBLE = PREFIX + "interruptible"

Kind = Literal["Pod", "Job"]
KINDS: tuple[Kind, ...] = ("Pod", "Job")

@dataclass(frozen=True, order=True)
class Key:
    """Which object: kind, namespace, name."""

    kind: Kind
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Deferred:
    """A workload carbongate holds back, and the instants that bound its wait."""

    key: Key
    uid: str
    resource_version: str
    tier: str | None
    annotations: Mapping[str, str]
    created: datetime | None
    not_before: datetime | None
    deadline: datetime | None
    expected_duration_s: int
    release_by: datetime
    problems: tuple[str, ...]

    @property
    def break_glass(self) -> bool:
        return self.annotations.get(RELEASE_NOW) == "true"


def key_of(kind: Kind, obj: Mapping[str, Any]) -> Key:
    metadata = _mapping(obj.get("metadata"))
    return Key(kind, str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def gates(pod: Mapping[str, Any]) -> list[str]:
    """Names of a pod's scheduling gates, in order."""
    listed = _mapping(pod.get("spec")).get("schedulingGates") or []
    return [str(g.get("name")) for g in listed if isinstance(g, Mapping)]


def kueue_managed(obj: Mapping[str, Any]) -> bool:
    """A Job in a Kueue queue: Kueue owns its ``spec.suspend``."""
    return bool(_strings(_mapping(obj.get("metadata")).get("labels")).get(KUEUE_QUEUE_NAME))


def admission_gates(job: Mapping[str, Any]) -> list[str]:
    """The controller names in ``kueue.x-k8s.io/admission-gated-by``, in order (comma-separated)."""
    text = _strings(_mapping(job.get("metadata")).get("annotations")).get(KUEUE_ADMISSION_GATED_BY, "")
    return [name.strip() for name in text.split(",") if name.strip()]


def is_waiting(kind: Kind, obj: Mapping[str, Any]) -> bool:
    """Whether carbongate holds this object: our gate on a Pod, our suspension of a Job,
    or, for a Job Kueue queues, our entry in its admission gates (its suspension is Kueue's).

    Interruptible Jobs are not: ``deferral.interrupt`` and ``deferral.pausing``
    decide their every start, the first one included.
    """
    if kind == "Pod":
        return GATE in gates(obj)
    if kueue_managed(obj):
        return GATE in admission_gates(obj)
    annotations = _strings(_mapping(obj.get("metadata")).get("annotations"))
    return (bool(_mapping(obj.get("spec")).get("suspend")) and annotations.get(DECISION) == "defer"
            and annotations.get(INTERRUPTIBLE) != "true")


def read(kind: Kind, obj: Mapping[str, Any], *, default_duration_s: int,
         seen_at: datetime) -> Deferred | None:
    """The deferred workload in ``obj``, or None when carbongate does not hold it.

    ``seen_at`` stands in for a missing deadline (release at once): a gate with
    no readable deadline has no promise to keep, and holding it is the failure
    this controller exists to prevent.
    """
    if not is_waiting(kind, obj):
        return None
    metadata = _mapping(obj.get("metadata"))
    annotations = _strings(metadata.get("annotations"))
    problems: list[str] = []
    not_before = _instant(annotations, NOT_BEFORE, problems)
    deadline = _instant(annotations, DEADLINE, problems)
    duration = expected_duration(annotations, problems, default_duration_s)
    if deadline is not None:
        release_by = deadline - timedelta(seconds=duration)
    else:
        problems.append(f"{DEADLINE} missing: released at once")
        release_by = seen_at
    return Deferred(
        key=key_of(kind, obj),
        uid=str(metadata.get("uid") or ""),
        resource_version=str(metadata.get("resourceVersion") or ""),
        tier=_strings(metadata.get("labels")).get(TIER),
        annotations=annotations,
        created=_created(metadata),
        not_before=not_before,
        deadline=deadline,
        expected_duration_s=duration,
        release_by=release_by,
        problems=tuple(problems),
    )


def _instant(annotations: Mapping[str, str], key: str, problems: list[str]) -> datetime | None:
    text = annotations.get(key)
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        problems.append(f"{key}: {text!r} is not an RFC 3339 time")
        return None


def expected_duration(annotations: Mapping[str, str], problems: list[str], default_s: int) -> int:
    """The expected-duration annotation in seconds; the default (and a problem) when unreadable."""
    text = annotations.get(EXPECTED_DURATION)
    if text is None:
        return default_s
    try:
        return parse_duration(text)
    except ValueError as error:
        problems.append(f"{EXPECTED_DURATION}: {error}; assumed {default_s}s")
        return default_s


def _created(metadata: Mapping[str, Any]) -> datetime | None:
    try:
        return parse_time(str(metadata["creationTimestamp"]))
    except (KeyError, ValueError):
        return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}
