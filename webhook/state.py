"""What a worker knows between requests: grid, budgets, platform config, namespaces.

Each is read from a file or the API and swapped in whole, so a request sees one
consistent version. A file that fails to parse never replaces the last good
one: the failure is logged and counted, and the policy sees data age and the
stale flag instead of a half-written document.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Loader = Callable[[Path], Mapping[str, Any]]


@dataclass(frozen=True)
class _Stamp:
    mtime_ns: int
    size: int


class WatchedDocument:
    """A JSON document read from a file and re-read when the file changes."""

    def __init__(self, *, name: str, path: Path, loader: Loader, on_error: Callable[[str], None]) -> None:
        self.name = name
        self.path = path
        self._loader = loader
        self._on_error = on_error
        self._stamp: _Stamp | None = None
        self._value: Mapping[str, Any] | None = None
        self._lock = threading.Lock()

    @property
    def value(self) -> Mapping[str, Any] | None:
        """The last document that loaded cleanly, or None."""
        return self._value

    def refresh(self) -> bool:
        """Reload if the file changed; True when a new version was taken."""
        with self._lock:
            stamp = self._current_stamp()
            if stamp is None or stamp == self._stamp:
                return False
            try:
                value = self._loader(self.path)
            except (OSError, ValueError) as error:
                self._on_error(f"{self.name}: {error}")
                log.warning("keeping the previous %s: cannot load %s: %s", self.name, self.path, error)
                return False
            self._stamp, self._value = stamp, value
            return True

    def _current_stamp(self) -> _Stamp | None:
        try:
            status = self.path.stat()
        except OSError:
            return None
        return _Stamp(mtime_ns=status.st_mtime_ns, size=status.st_size)


def load_json(path: Path) -> Mapping[str, Any]:
    """A JSON object from a file (ValueError when it is not an object)."""
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return value


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
    from kubernetes import client

    api = client.CoreV1Api(api_client)

    def read(namespace: str) -> Mapping[str, str]:
        found = api.read_namespace(namespace, _request_timeout=timeout_s)
        metadata = found.metadata
        return dict(metadata.labels or {}) if metadata is not None else {}

    return read
