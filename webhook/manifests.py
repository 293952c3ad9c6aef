"""Plain manifests and AdmissionReviews, read alike for ``review`` and ``carbongate test``.

A platform engineer has ``nightly-train.yaml`` (a Namespace and a Job, as
``kubectl apply -f`` takes them), not the AdmissionReview the API server would
send for it. This module reads YAML or JSON, one or many documents (``---``
separated, or a ``kind: List``), and turns every workload into the
AdmissionReview request a CREATE of it would make, so the offline decision runs
the webhook's own parser (:func:`webhook.reviews.parse`) on it. An
AdmissionReview among the documents is taken as it is. A Namespace supplies the
namespace labels the decision reads (``carbongate.io/tier``, ``/enforcement``,
...) to the workloads in it, as the API server's informer would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from webhook import reviews

# kubectl's namespace when a manifest names none and no -n is given.
DEFAULT_NAMESPACE = "default"
REVIEW_USER = "carbongate-review"


class ManifestError(ValueError):
    """A file that is not manifests or AdmissionReviews; the message names the file and document."""


@dataclass(frozen=True)
class Manifests:
    """What a set of files holds: the requests to decide and the labels of namespaces they define."""

    requests: list[reviews.Request] = field(default_factory=list)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # Where each request came from, for messages: "nightly-train.yaml#2".
    sources: dict[str, str] = field(default_factory=dict)


def read(paths: list[Path], *, namespace: str | None = None) -> Manifests:
    """Every document of ``paths``: workloads become CREATE requests, Namespaces give labels.

    ``namespace`` is kubectl's ``-n``: the namespace of a manifest that names none.
    """
    found = Manifests()
    for path in paths:
        for index, document in enumerate(_documents(path), start=1):
            where = f"{path}#{index}" if index > 1 else str(path)
            _add(found, document, where=where, namespace=namespace)
    return found


def _add(found: Manifests, document: Any, *, where: str, namespace: str | None) -> None:
    if document is None:  # an empty document between two `---`
        return
    if not isinstance(document, dict):
        raise ManifestError(f"{where}: a document must be a mapping (a Kubernetes object), "
                            f"got {type(document).__name__}")
    kind = document.get("kind")
    if kind == reviews.KIND:
        request = _parse(json.dumps(document).encode(), where=where)
    elif kind == "List" or (isinstance(kind, str) and kind.endswith("List") and "items" in document):
        for item in document.get("items") or []:
            _add(found, item, where=where, namespace=namespace)
        return
    elif kind == "Namespace":
        metadata = _metadata(document, where)
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise ManifestError(f"{where}: a Namespace needs metadata.name")
        labels = metadata.get("labels") or {}
        found.namespace_labels[name] = {str(k): str(v) for k, v in labels.items()}
        return
    else:
        request = _parse(json.dumps(admission_review(document, where=where, namespace=namespace)).encode(),
                         where=where)
    found.requests.append(request)
    found.sources[request.uid] = where


def admission_review(obj: Mapping[str, Any], *, where: str = "", namespace: str | None = None) -> dict[str, Any]:
    """The AdmissionReview v1 an API server sends for a CREATE of ``obj``.

    The uid is derived from the object, so the same manifest gives the same
    review (and the same output) every time.
    """
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if not isinstance(kind, str) or not kind or not isinstance(api_version, str) or not api_version:
        raise ManifestError(f"{where}: not a Kubernetes object: needs apiVersion and kind")
    metadata = dict(_metadata(obj, where))
    group, _, version = api_version.rpartition("/")
    ns = str(metadata.get("namespace") or namespace or DEFAULT_NAMESPACE)
    metadata["namespace"] = ns
    name = str(metadata.get("name") or "")
    if not name and not metadata.get("generateName"):
        raise ManifestError(f"{where}: {kind} needs metadata.name or metadata.generateName")
    created = {**obj, "metadata": metadata}
    uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"carbongate-review:{api_version}/{kind}/{ns}/{name}"))
    return {
        "apiVersion": reviews.API_VERSION,
        "kind": reviews.KIND,
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
            "namespace": ns,
            "name": name,
            "operation": "CREATE",
            "userInfo": {"username": REVIEW_USER},
            "object": created,
            "oldObject": None,
            "dryRun": False,
        },
    }


def _documents(path: Path) -> Iterator[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"cannot read {path}: {error}") from error
    if path.suffix == ".json" or text.lstrip().startswith(("{", "[")):
        try:
            document = json.loads(text)
        except ValueError as error:
            raise ManifestError(f"{path}: not JSON: {error}") from error
        yield from document if isinstance(document, list) else [document]
        return
    try:
        yield from list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise ManifestError(f"{path}: not YAML: {_one_line(str(error))}") from error


def _parse(body: bytes, *, where: str) -> reviews.Request:
    try:
        return reviews.parse(body)
    except reviews.BadReview as error:
        raise ManifestError(f"{where}: {error}") from error


def _metadata(obj: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ManifestError(f"{where}: metadata must be a mapping")
    return metadata


def _one_line(text: str) -> str:
    return " ".join(text.split())
