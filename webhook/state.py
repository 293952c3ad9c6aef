"""What a worker knows between requests: grid, budgets, platform config, namespaces.

Each is read from a file or the API and swapped in whole, so a request sees one
consistent version. A file that fails to parse never replaces the last good
one: the failure is logged and counted, and the policy sees data age and the
stale flag instead of a half-written document.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

NamespaceReader = Callable[[str], Mapping[str, str]]


class NamespaceLabels:
    """Namespace labels with a short cache: the review does not carry them.

    ``reader`` fetches one namespace's labels (from the API server in a
    cluster); errors propagate so the caller fails open and counts it.
    """

    def __init__(self, *, reader: NamespaceReader, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._reader = reader
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, Mapping[str, str]]] = {}
        self._lock = threading.Lock()

    def labels(self, namespace: str) -> Mapping[str, str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(namespace)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        labels = dict(self._reader(namespace))
        with self._lock:
            self._cache[namespace] = (now, labels)
        return labels


def no_namespace_labels(namespace: str) -> Mapping[str, str]:
    """Outside a cluster (``make run``, ``carbongate review``) namespaces carry no labels."""
    return {}


def file_namespace_reader(path: Path) -> NamespaceReader:
    """Namespace labels from a file of Namespace manifests (multi-document YAML or JSON).

    For a webhook that cannot read the API (``make run``, a demo, a cluster
    where it has no RBAC for namespaces): the same manifests the platform
    applies. Read on each cache miss, so an edit shows within the cache TTL;
    an unreadable file raises, and the review fails open and is counted.
    """
    import yaml

    def read(namespace: str) -> Mapping[str, str]:
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as error:
            raise NamespaceFileError(f"cannot read namespace labels from {path}: {error}") from error
        for document in documents:
            metadata = document.get("metadata") if isinstance(document, Mapping) else None
            if document.get("kind") == "Namespace" and isinstance(metadata, Mapping) \
                    and metadata.get("name") == namespace:
                labels = metadata.get("labels")
                return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
        return {}

    return read


class NamespaceFileError(RuntimeError):
    """The namespace labels file cannot be read."""


def kubernetes_namespace_reader(*, api_client: Any, timeout_s: float) -> NamespaceReader:
    """Read namespace labels through ``api_client`` (RBAC: namespaces get).

    The client comes from :func:`carbongate.kube.api_client`: in-cluster in a
    pod, the kubeconfig (and context) on a laptop.
    """
    from carbongate import kube

    api = kube.CoreV1Api(api_client)

    def read(namespace: str) -> Mapping[str, str]:
        found = api.read_namespace(namespace, _request_timeout=timeout_s)
        metadata = found.metadata
        return dict(metadata.labels or {}) if metadata is not None else {}

    return read
