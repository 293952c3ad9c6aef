"""What carbongate reads from a Pod or Job: labels, annotations, owner, pod spec.

Parsing annotations is mechanism: a ``max-delay`` of ``1h30m`` becomes 5400
seconds here, and a value that cannot be read becomes a parse error the policy
turns into a warning, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carbongate import timefmt

PREFIX = "carbongate.io/"
GATE = PREFIX + "clean-window"
DECISION = PREFIX + "decision"
MAX_DELAY = PREFIX + "max-delay"
EXPECTED_DURATION = PREFIX + "expected-duration"
REGIONS = PREFIX + "regions"
DATA_REGION = PREFIX + "data-region"
DATA_GB = PREFIX + "data-gb"
TEAM = PREFIX + "team"
# Kueue owns spec.suspend of the Jobs it queues (this label); carbongate holds those
# through Kueue's admission gates instead (KEP-6915), never through suspend.
KUEUE_QUEUE_NAME = "kueue.x-k8s.io/queue-name"
KUEUE_ADMISSION_GATED_BY = "kueue.x-k8s.io/admission-gated-by"

@dataclass(frozen=True)
class Workload:
    """The facts of a Pod or Job that the policy and the planner use."""

    kind: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    pod_spec: Mapping[str, Any]
    owner_kind: str | None
    owner_name: str | None
    template_decision: str | None
    expected_duration_s: int | None
    max_delay_s: int | None
    regions: tuple[str, ...]
    data_region: str | None
    data_gb: float
    parse_errors: tuple[str, ...]


def read(kind: str, obj: Mapping[str, Any]) -> Workload:
    """Extract a ``Workload`` from a Pod or Job object, tolerating any shape."""
    metadata = _mapping(obj.get("metadata"))
    annotations = _strings(metadata.get("annotations"))
    errors: list[str] = []
    owner_kind, owner_name = _controller_owner(metadata)
    return Workload(
        kind=kind,
        labels=_strings(metadata.get("labels")),
        annotations=annotations,
        pod_spec=pod_spec(kind, obj),
        owner_kind=owner_kind,
        owner_name=owner_name,
        template_decision=_template_decision(kind, obj),
        expected_duration_s=_duration(annotations, EXPECTED_DURATION, errors),
        max_delay_s=_duration(annotations, MAX_DELAY, errors),
        regions=_regions(annotations.get(REGIONS, "")),
        data_region=annotations.get(DATA_REGION) or None,
        data_gb=_data_gb(annotations, errors),
        parse_errors=tuple(errors),
    )


def kueue_managed(kind: str, obj: Mapping[str, Any]) -> bool:
    """A Job queued by Kueue: its ``spec.suspend`` is Kueue's, not ours to set."""
    labels = _strings(_mapping(obj.get("metadata")).get("labels"))
    return kind == "Job" and bool(labels.get(KUEUE_QUEUE_NAME))


def pod_spec(kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec: a Pod's own, or a Job's template's."""
    spec = _mapping(obj.get("spec"))
    if kind == "Job":
        return _mapping(_mapping(spec.get("template")).get("spec"))
    return spec


def _controller_owner(metadata: Mapping[str, Any]) -> tuple[str | None, str | None]:
    owners = metadata.get("ownerReferences")
    if not isinstance(owners, list):
        return None, None
    for owner in owners:
        if isinstance(owner, dict) and owner.get("controller") is True:
            return _str_or_none(owner.get("kind")), _str_or_none(owner.get("name"))
    return None, None


def _template_decision(kind: str, obj: Mapping[str, Any]) -> str | None:
    """For a Pod, the decision its Job already carried into the pod template.

    A Job that carbongate decided on copies ``carbongate.io/decision`` into its
    template, so the pods it creates arrive carrying it: they are not gated
    again. For a Job, the template's own value (a re-submitted manifest).
    """
    metadata = _mapping(obj.get("metadata"))
    if kind == "Pod":
        value = _strings(metadata.get("annotations")).get(DECISION)
        return value if value and _controller_owner(metadata)[0] == "Job" else None
    template = _mapping(_mapping(obj.get("spec")).get("template"))
    return _strings(_mapping(template.get("metadata")).get("annotations")).get(DECISION)


def _duration(annotations: Mapping[str, str], key: str, errors: list[str]) -> int | None:
    if key not in annotations:
        return None
    try:
        return timefmt.parse_duration(annotations[key])
    except timefmt.DurationError as error:
        errors.append(f"{key}: {error}")
        return None


def _regions(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def _data_gb(annotations: Mapping[str, str], errors: list[str]) -> float:
    raw = annotations.get(DATA_GB)
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        errors.append(f"{DATA_GB}: {raw!r} is not a number of gigabytes")
        return 0.0
    if not 0 <= value < 1e9:
        errors.append(f"{DATA_GB}: {raw!r} is out of range")
        return 0.0
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> dict[str, str]:
    """Labels or annotations, keeping only string values (the API allows no others)."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
