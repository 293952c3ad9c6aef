"""What a correct answer to an AdmissionReview looks like, as reusable checks.

``kubernetes-validate`` checks an object against the OpenAPI schema of a
Kubernetes version (types, required fields, unknown fields in strict mode),
but the API server also validates names and values that the schema leaves as
plain strings. ``api_problems`` adds those rules for the fields carbongate
writes (annotations, scheduling gates, node affinity, Job suspension), from
the apimachinery validation the API server runs (``IsQualifiedName``,
``IsValidLabelValue``, ``ValidateAnnotations``, ``ValidateNodeSelectorRequirement``,
``validatePodSchedulingGates``).

``ownership_problems`` says whether a patch touched anything that belongs to the
user rather than to carbongate: a webhook that may not block must not corrupt
either.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

import jsonpatch
import kubernetes_validate

KUBERNETES_VERSION = "1.30"
PREFIX = "carbongate.io/"
GATE = "carbongate.io/clean-window"
INPUT_ANNOTATIONS = frozenset({"carbongate.io/max-delay", "carbongate.io/expected-duration",
                               "carbongate.io/regions", "carbongate.io/data-region",
                               "carbongate.io/data-gb", "carbongate.io/release-now"})
ANNOTATIONS_MAX_BYTES = 256 * 1024
WARNING_MAX = 256

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_INTEGER = re.compile(r"^-?[0-9]+$")


# --- the response --------------------------------------------------------------------

def response_problems(document: Any, uid: Any) -> list[str]:
    """Problems with an AdmissionReview v1 response for a request with ``uid``."""
    if not isinstance(document, dict):
        return [f"response body is {type(document).__name__}, not an object"]
    problems = []
    if document.get("apiVersion") != "admission.k8s.io/v1" or document.get("kind") != "AdmissionReview":
        problems.append(f"apiVersion/kind are {document.get('apiVersion')!r}/{document.get('kind')!r}")
    response = document.get("response")
    if not isinstance(response, dict):
        return [*problems, "no response object"]
    if response.get("uid") != uid:
        problems.append(f"uid {response.get('uid')!r} does not echo {uid!r}")
    if not isinstance(response.get("allowed"), bool):
        problems.append("allowed is not a boolean")
    if ("patch" in response) != ("patchType" in response):
        problems.append("patch and patchType must come together")
    if "patchType" in response and response["patchType"] != "JSONPatch":
        problems.append(f"patchType {response['patchType']!r}")
    if response.get("allowed") is False and not isinstance(response.get("status"), dict):
        problems.append("a refusal carries no status")
    for warning in response.get("warnings", []):
        if not isinstance(warning, str) or len(warning) > WARNING_MAX or not warning.isprintable():
            problems.append(f"warning the API server would refuse: {warning!r:.80}")
    return problems


def decoded_patch(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    encoded = document["response"].get("patch")
    return [] if encoded is None else list(json.loads(base64.b64decode(encoded, validate=True)))


def apply(obj: Mapping[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply a JSON patch as the API server does: every operation must succeed."""
    result: dict[str, Any] = jsonpatch.JsonPatch(operations).apply(dict(obj), in_place=False)
    return result


def fail_open_reason(document: Mapping[str, Any]) -> str | None:
    """The reason in carbongate's fail-open warning, if the response is one."""
    for warning in document.get("response", {}).get("warnings", []):
        match = re.match(r"^carbongate: admitted unchanged, no decision \((.+)\)$", warning)
        if match:
            return match.group(1)
    return None


# --- the object -----------------------------------------------------------------------

def schema_problems(obj: Mapping[str, Any]) -> list[str]:
    """The object against the Kubernetes 1.30 OpenAPI schema, strict (no unknown fields)."""
    try:
        kubernetes_validate.validate(dict(obj), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"schema: {str(error).splitlines()[0]} at {list(error.path)}"]
    return []


def qualified_name(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    prefix, slash, name = text.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(_NAME.match(name))


def api_problems(obj: Mapping[str, Any]) -> list[str]:
    """API-server validation of the fields carbongate writes, beyond the schema."""
    problems: list[str] = []
    metadata = obj.get("metadata") or {}
    problems += _annotation_problems(metadata.get("annotations") or {}, "metadata")
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Job":
        if "suspend" in spec and not isinstance(spec["suspend"], bool):
            problems.append("spec.suspend is not a boolean")
        template = spec.get("template") or {}
        problems += _annotation_problems((template.get("metadata") or {}).get("annotations") or {},
                                         "spec.template.metadata")
        pod_spec = template.get("spec") or {}
    else:
        pod_spec = spec
    gates = [gate.get("name") for gate in pod_spec.get("schedulingGates") or []]
    if len(gates) != len(set(map(str, gates))):
        problems.append(f"duplicate scheduling gates {gates}")
    problems += [f"scheduling gate {g!r} is not a qualified name" for g in gates if not qualified_name(g)]
    problems += _affinity_problems(((pod_spec.get("affinity") or {}).get("nodeAffinity")) or {})
    return problems


def _annotation_problems(annotations: Mapping[str, Any], where: str) -> list[str]:
    problems = [f"{where} annotation key {key!r} is not a qualified name"
                for key in annotations if not qualified_name(key.lower())]
    size = sum(len(key) + len(str(value)) for key, value in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        problems.append(f"{where} annotations are {size} bytes, over 256 KiB")
    return problems


def _affinity_problems(node_affinity: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    if required and not terms:
        problems.append("required node affinity with no terms")
    for term in terms:
        for requirement in term.get("matchExpressions") or []:
            problems += _requirement_problems(requirement)
    for preferred in node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        if not 1 <= preferred.get("weight", 0) <= 100:
            problems.append(f"preferred term weight {preferred.get('weight')!r} outside 1..100")
        for requirement in (preferred.get("preference") or {}).get("matchExpressions") or []:
            problems += _requirement_problems(requirement)
    return problems


def _requirement_problems(requirement: Mapping[str, Any]) -> list[str]:
    operator, values = requirement.get("operator"), requirement.get("values") or []
    problems = [] if qualified_name(requirement.get("key")) else [f"node selector key {requirement.get('key')!r}"]
    if operator in ("In", "NotIn") and not values:
        problems.append(f"{operator} with no values")
    elif operator in ("Exists", "DoesNotExist") and values:
        problems.append(f"{operator} with values {values}")
    elif operator in ("Gt", "Lt") and (len(values) != 1 or not _INTEGER.match(str(values[0]))):
        problems.append(f"{operator} needs one integer value, has {values}")
    elif operator not in ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"):
        problems.append(f"unknown operator {operator!r}")
    return problems


# --- what belongs to whom -------------------------------------------------------------

def ownership_problems(original: Mapping[str, Any], patched: Mapping[str, Any]) -> list[str]:
    """Changes a patch made to anything carbongate does not own.

    carbongate owns: its decision annotations (``carbongate.io/`` keys other
    than the user's inputs), its scheduling gate, a Job's ``suspend`` (only
    ever set to true) and *additions* to node affinity (a preferred term, a
    narrowing expression in each required term). Everything else must come
    back byte-for-byte identical.
    """
    problems: list[str] = []
    kind = original.get("kind")
    problems += _annotations_kept(original.get("metadata") or {}, patched.get("metadata") or {}, "metadata")
    original_spec, patched_spec = original.get("spec") or {}, patched.get("spec") or {}
    if kind == "Job":
        if patched_spec.get("suspend") != original_spec.get("suspend") and patched_spec.get("suspend") is not True:
            problems.append(f"suspend changed to {patched_spec.get('suspend')!r}")
        original_template = original_spec.get("template") or {}
        patched_template = patched_spec.get("template") or {}
        problems += _annotations_kept(original_template.get("metadata") or {},
                                      patched_template.get("metadata") or {}, "spec.template.metadata")
        problems += _pod_spec_kept(original_template.get("spec") or {}, patched_template.get("spec") or {})
        problems += _rest_kept(original, patched, drop=(("metadata", "annotations"), ("spec", "suspend"),
                                                       ("spec", "template", "metadata", "annotations"),
                                                       ("spec", "template", "spec", "affinity"),
                                                       ("spec", "template", "spec", "schedulingGates")))
    else:
        problems += _pod_spec_kept(original_spec, patched_spec)
        problems += _rest_kept(original, patched, drop=(("metadata", "annotations"), ("spec", "affinity"),
                                                       ("spec", "schedulingGates")))
    return problems


def _annotations_kept(original: Mapping[str, Any], patched: Mapping[str, Any], where: str) -> list[str]:
    before, after = original.get("annotations") or {}, patched.get("annotations") or {}
    problems = []
    for key in set(before) | set(after):
        if before.get(key) == after.get(key):
            continue
        if not key.startswith(PREFIX) or key in INPUT_ANNOTATIONS:
            problems.append(f"{where} annotation {key!r} changed: {before.get(key)!r:.60} -> {after.get(key)!r:.60}")
        elif key not in after:
            problems.append(f"{where} annotation {key!r} removed")
        elif not isinstance(after[key], str):
            problems.append(f"{where} annotation {key!r} is not a string")
    return problems


def _pod_spec_kept(original: Mapping[str, Any], patched: Mapping[str, Any]) -> list[str]:
    problems = []
    before = [g.get("name") for g in original.get("schedulingGates") or []]
    after = [g.get("name") for g in patched.get("schedulingGates") or []]
    if [g for g in after if g != GATE] != [g for g in before if g != GATE] or (GATE in before and GATE not in after):
        problems.append(f"scheduling gates {before} became {after}")
    original_affinity, patched_affinity = original.get("affinity") or {}, patched.get("affinity") or {}
    for key in set(original_affinity) | set(patched_affinity):
        if key != "nodeAffinity" and original_affinity.get(key) != patched_affinity.get(key):
            problems.append(f"affinity.{key} changed")
    problems += _node_affinity_only_added(original_affinity.get("nodeAffinity") or {},
                                          patched_affinity.get("nodeAffinity") or {})
    return problems


def _node_affinity_only_added(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    required_key = "requiredDuringSchedulingIgnoredDuringExecution"
    preferred_key = "preferredDuringSchedulingIgnoredDuringExecution"
    problems = []
    terms_before = (before.get(required_key) or {}).get("nodeSelectorTerms") or []
    terms_after = (after.get(required_key) or {}).get("nodeSelectorTerms") or []
    if len(terms_before) != len(terms_after):
        problems.append(f"required node affinity went from {len(terms_before)} to {len(terms_after)} terms")
    for old, new in zip(terms_before, terms_after, strict=False):
        old_expressions, new_expressions = old.get("matchExpressions") or [], new.get("matchExpressions") or []
        if new_expressions[:len(old_expressions)] != old_expressions:
            problems.append("a required node affinity term was changed, not narrowed")
        if old.get("matchFields") != new.get("matchFields"):
            problems.append("matchFields of a required term changed")
    preferred_before = before.get(preferred_key) or []
    preferred_after = after.get(preferred_key) or []
    if preferred_after[:len(preferred_before)] != preferred_before:
        problems.append("preferred node affinity terms were changed, not appended to")
    for key in set(before) | set(after):
        if key not in (required_key, preferred_key) and before.get(key) != after.get(key):
            problems.append(f"nodeAffinity.{key} changed")
    return problems


def _rest_kept(original: Mapping[str, Any], patched: Mapping[str, Any],
               *, drop: tuple[tuple[str, ...], ...]) -> list[str]:
    """Everything but the owned paths, compared as whole documents."""
    def without(document: Mapping[str, Any]) -> Any:
        copied = json.loads(json.dumps(document))
        for path in drop:
            holder = copied
            for key in path[:-1]:
                holder = holder.get(key) if isinstance(holder, dict) else None
            if isinstance(holder, dict):
                holder.pop(path[-1], None)
        return copied

    return [] if without(original) == without(patched) else ["fields carbongate does not own changed"]
