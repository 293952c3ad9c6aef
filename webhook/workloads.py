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

# What a workload's own fields may cost (docs/webhook.md, "Caps"): whatever the object
# carries, the policy is handed a bounded amount of it, so a decision stays well inside
# the deadline. Each cap that bites becomes a parse error, which the policy shows as a
# warning; nothing past a cap is silently half-used.
MAX_LABELS = 64               # labels considered; past it, only carbongate.io/ ones
MAX_ANNOTATIONS = 32          # carbongate.io/ annotations considered
MAX_VALUE_CHARS = 1024        # characters of one carbongate.io/ annotation value
MAX_REGIONS = 16              # regions considered from carbongate.io/regions
MAX_REGION_CHARS = 63         # characters of one region name (a label value's limit)

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
    errors: list[str] = []
    annotations = _considered(metadata.get("annotations"), errors)
    owner_kind, owner_name = _controller_owner(metadata)
    return Workload(
        kind=kind,
        labels=_labels(_strings(metadata.get("labels")), errors),
        annotations=annotations,
        pod_spec=pod_spec(kind, obj),
        owner_kind=owner_kind,
        owner_name=owner_name,
        template_decision=_template_decision(kind, obj),
        expected_duration_s=_duration(annotations, EXPECTED_DURATION, errors),
        max_delay_s=_duration(annotations, MAX_DELAY, errors),
        regions=_regions(annotations.get(REGIONS, ""), errors),
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
        value = _str_or_none(_mapping(metadata.get("annotations")).get(DECISION))
        return value if value and _controller_owner(metadata)[0] == "Job" else None
    template = _mapping(_mapping(obj.get("spec")).get("template"))
    return _str_or_none(_mapping(_mapping(template.get("metadata")).get("annotations")).get(DECISION))


def _duration(annotations: Mapping[str, str], key: str, errors: list[str]) -> int | None:
    if key not in annotations:
        return None
    try:
        return timefmt.parse_duration(annotations[key])
    except timefmt.DurationError as error:
        errors.append(f"{key}: {error}")
        return None


def _labels(labels: dict[str, str], errors: list[str]) -> dict[str, str]:
    """All labels, or past ``MAX_LABELS`` only carbongate's (the ones the policy classifies by)."""
    if len(labels) <= MAX_LABELS:
        return labels
    errors.append(f"{len(labels)} labels, over {MAX_LABELS}: only the {PREFIX} ones are considered")
    return {k: v for k, v in labels.items() if k.startswith(PREFIX)}


def _considered(annotations: Any, errors: list[str]) -> dict[str, str]:
    """The ``carbongate.io/`` annotations, at most ``MAX_ANNOTATIONS`` of them, none too long.

    The policy reads no other annotation from here (the whole object is in its
    input for a policy that wants more), and a value over ``MAX_VALUE_CHARS``
    is ignored whole: a duration or a region list that long is no mistake.
    """
    considered: dict[str, str] = {}
    for key, value in annotations.items() if isinstance(annotations, dict) else ():
        if not (isinstance(key, str) and key.startswith(PREFIX) and isinstance(value, str)):
            continue
        if len(considered) == MAX_ANNOTATIONS:
            errors.append(f"more than {MAX_ANNOTATIONS} {PREFIX} annotations; only the first "
                          f"{MAX_ANNOTATIONS} are considered")
            break
        if len(value) > MAX_VALUE_CHARS:
            errors.append(f"{key[:100]}: {len(value)} characters, over the limit of {MAX_VALUE_CHARS}; ignored")
            continue
        considered[key] = value
    return considered


def _regions(text: str, errors: list[str]) -> tuple[str, ...]:
    """Distinct region names, at most ``MAX_REGIONS``, each at most ``MAX_REGION_CHARS``."""
    regions: dict[str, None] = {}
    too_long = 0
    for part in text.split(","):
        name = part.strip()
        if not name or name in regions:
            continue
        if len(name) > MAX_REGION_CHARS:
            too_long += 1
        elif len(regions) == MAX_REGIONS:
            errors.append(f"{REGIONS}: more than {MAX_REGIONS} regions; only the first {MAX_REGIONS} "
                          "are considered")
            break
        else:
            regions[name] = None
    if too_long:
        errors.append(f"{REGIONS}: {too_long} region name(s) over {MAX_REGION_CHARS} characters ignored")
    return tuple(regions)


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
