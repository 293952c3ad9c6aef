"""One key of a ConfigMap in carbongate's namespace, read and written safely.

Components publish documents to the cluster this way: governance its budgets
(which every webhook pod mounts), the carbon feed's leader the readings its
followers serve. Writes use the API server's optimistic concurrency: a
replace carries the ``resourceVersion`` just read, and a 409 (someone wrote
in between, or created it first) means read again and retry, a few times.
A text the caller deems the same as the stored one (``same``) is not written
again: each write wakes every watcher and kubelet mount for nothing.

Objects travel as the API's JSON (``_preload_content=False``), so this module
imports no component and the calls stay visible to the RBAC derivation
(tests/deploy/kube_calls.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from carbongate import kube

log = logging.getLogger(__name__)


class ConfigMapApi(Protocol):
    """The calls of ``kubernetes.client.CoreV1Api`` used here (raw JSON)."""

    @property
    def read_namespaced_config_map(self) -> Callable[..., Any]: ...

    @property
    def create_namespaced_config_map(self) -> Callable[..., Any]: ...

    @property
    def replace_namespaced_config_map(self) -> Callable[..., Any]: ...


class ConfigMapConflict(RuntimeError):
    """Another writer kept changing the ConfigMap between our read and our write."""


def _never_same(_stored: str | None) -> bool:
    return False


@dataclass(frozen=True)
class ConfigMapKey:
    """``key`` of ConfigMap ``namespace/name``; created with ``labels`` when missing."""

    api: ConfigMapApi
    namespace: str
    name: str
    key: str
    labels: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0
    attempts: int = 3

    def read(self) -> str | None:
        """The key's text; None when the ConfigMap or the key does not exist."""
        current = self._read()
        if current is None:
            return None
        value = (current.get("data") or {}).get(self.key)
        return value if isinstance(value, str) else None

    def write(self, text: str, *, same: Callable[[str | None], bool] = _never_same) -> bool:
        """Store ``text`` unless ``same(stored)``; True when written. Raises the API's
        errors, and :class:`ConfigMapConflict` after ``attempts`` lost races."""
        for _ in range(self.attempts):
            current = self._read()
            try:
                if current is None:
                    self._create(text)
                    return True
                if same((current.get("data") or {}).get(self.key)):
                    return False
                current["data"] = {**(current.get("data") or {}), self.key: text}
                self._replace(current)
                return True
            except kube.ApiException as error:
                if error.status != 409:
                    raise
                log.debug("ConfigMap %s/%s changed under us; reading it again",
                          self.namespace, self.name)
        raise ConfigMapConflict(f"ConfigMap {self.namespace}/{self.name} still conflicted "
                                f"after {self.attempts} attempts")

    def _read(self) -> dict[str, Any] | None:
        try:
            response = self.api.read_namespaced_config_map(
                self.name, self.namespace, _preload_content=False,
                _request_timeout=self.timeout_s)
        except kube.ApiException as error:
            if error.status == 404:
                return None
            raise
        found: dict[str, Any] = json.loads(_body(response))
        return found

    def _create(self, text: str) -> None:
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": self.name, "namespace": self.namespace,
                             "labels": dict(self.labels)},
                "data": {self.key: text}}
        _body(self.api.create_namespaced_config_map(
            self.namespace, body, _preload_content=False, _request_timeout=self.timeout_s))

    def _replace(self, current: dict[str, Any]) -> None:
        _body(self.api.replace_namespaced_config_map(
            self.name, self.namespace, current, _preload_content=False,
            _request_timeout=self.timeout_s))


def _body(response: Any) -> bytes:
    """A raw (``_preload_content=False``) response's body; its connection back to the pool."""
    try:
        data: bytes = response.data
        return data
    finally:
        response.release_conn()
