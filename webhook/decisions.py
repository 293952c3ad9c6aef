"""Whether a policy's decision is one carbongate can apply.

The policy is configuration a platform team edits, so its output is checked
like any input before a patch is built from it. A decision carbongate would
turn into a patch the API server then refuses (an annotation key with a
space, an affinity value no label may hold) would make the user's create
fail, against the promise that a broken policy admits unchanged. So: the
decision's shape, and every string that reaches the object, are checked
against the Kubernetes validation rules the API server applies to them
(apimachinery ``IsQualifiedName`` for annotation and label keys,
``IsValidLabelValue`` for node selector values, ``ValidateAnnotations`` for
the total size). Anything else is reported as problems; the webhook then
admits unchanged with ``reason="invalid-decision"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from webhook import workloads

ACTIONS = frozenset({"admit", "defer", "shift", "deny"})
MODES = frozenset({"enforce", "warn", "dryrun", "off"})
# The API server's limit on all of an object's annotations together.
ANNOTATIONS_MAX_BYTES = 256 * 1024
QUALIFIED_NAME_MAX = 63
SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
# More node selector values than this is no region choice.
AFFINITY_VALUES_MAX = 32

_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def problems(decision: Any) -> list[str]:
    """Why ``decision`` cannot be applied; empty when it can."""
    if not isinstance(decision, Mapping):
        return [f"the decision is a {type(decision).__name__}, not an object"]
    found: list[str] = []
    if not _one_of(decision.get("action"), ACTIONS):
        found.append(f"action {_show(decision.get('action'))} is not one of {sorted(ACTIONS)}")
    if not _one_of(decision.get("mode", "enforce"), MODES):
        found.append(f"mode {_show(decision.get('mode'))} is not one of {sorted(MODES)}")
    found += _string_list("warnings", decision.get("warnings"))
    if decision.get("message") is not None and not isinstance(decision.get("message"), str):
        found.append(f"message {_show(decision.get('message'))} is not a string")
    found += _annotation_problems(decision.get("annotations"))
    found += _affinity_problems(decision.get("node_affinity"))
    return found


def _one_of(value: Any, allowed: frozenset[str]) -> bool:
    """``value in allowed`` for any JSON value (an object or array is unhashable)."""
    return isinstance(value, str) and value in allowed


def qualified_name(text: Any) -> bool:
    """A Kubernetes qualified name (annotation and label keys): ``[prefix/]name``."""
    if not isinstance(text, str):
        return False
    prefix, slash, name = text.rpartition("/")
    if slash and not (0 < len(prefix) <= SUBDOMAIN_MAX and _SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= QUALIFIED_NAME_MAX and _NAME.fullmatch(name) is not None


def label_value(text: Any) -> bool:
    """A Kubernetes label value (and node selector value): at most 63, may be empty."""
    return isinstance(text, str) and len(text) <= LABEL_VALUE_MAX and _LABEL_VALUE.fullmatch(text) is not None


def _string_list(field: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [f"{field} {_show(value)} is not a list of strings"]
    wrong = [item for item in value if not isinstance(item, str)]
    return [f"{field} holds {_show(wrong[0])}, not a string"] if wrong else []


def _annotation_problems(annotations: Any) -> list[str]:
    """Keys carbongate's own qualified names; values strings (null: not written)."""
    if annotations is None:
        return []
    if not isinstance(annotations, Mapping):
        return [f"annotations {_show(annotations)} is not an object"]
    found: list[str] = []
    size = 0
    for key, value in annotations.items():
        if not (isinstance(key, str) and key.startswith(workloads.PREFIX) and qualified_name(key)):
            found.append(f"annotation key {_show(key)} is not a qualified name under {workloads.PREFIX}")
        if value is not None and not isinstance(value, str):
            found.append(f"annotation {_show(key)} has the value {_show(value)}, not a string")
        size += len(str(key).encode()) + len(value.encode() if isinstance(value, str) else b"")
    if size > ANNOTATIONS_MAX_BYTES:
        found.append(f"annotations are {size} bytes, over the API server's {ANNOTATIONS_MAX_BYTES}")
    return found


def _affinity_problems(affinity: Any) -> list[str]:
    """``{"key": label key, "values": [label values]}``: a node selector requirement ``In``."""
    if affinity is None:
        return []
    if not isinstance(affinity, Mapping):
        return [f"node_affinity {_show(affinity)} is not an object"]
    found: list[str] = []
    if not qualified_name(affinity.get("key")):
        found.append(f"node_affinity key {_show(affinity.get('key'))} is not a label key")
    values = affinity.get("values")
    if not isinstance(values, list) or not 0 < len(values) <= AFFINITY_VALUES_MAX:
        found.append(f"node_affinity values {_show(values)} is not a list of 1 to {AFFINITY_VALUES_MAX} values")
    else:
        found += [f"node_affinity value {_show(v)} is not a label value" for v in values if not label_value(v)]
    return found


def _show(value: Any) -> str:
    """A short, printable rendering of a value for a log line or a warning."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
