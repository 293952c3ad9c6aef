"""The controller's calls to the Kubernetes API, through the ``kubernetes`` client.

Objects travel as the API's own JSON (camelCase dicts), not as the client's
generated models: the release patches address JSON pointers such as
``/spec/schedulingGates/0`` and must be computed from exactly the document the
API server holds. Every call is bounded by a request timeout; errors surface
as ``k8s.ApiException`` (``status`` 0 for a transport failure
that the client wraps, ``urllib3`` errors for the rest).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3.exceptions

from carbongate import kube as k8s
from deferral import workloads

JsonObject = dict[str, Any]

FIELD_MANAGER = "carbongate-deferral"

# What a call raises when the API server is unreachable or the stream breaks.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (OSError, urllib3.exceptions.HTTPError)
# Any failure of an API call: an error Status from the server, or no answer at all.
API_ERRORS: tuple[type[BaseException], ...] = (k8s.ApiException, *TRANSPORT_ERRORS)


class Response(Protocol):
    """The streaming HTTP response of a watch (a ``urllib3`` response)."""

    status: int

    def stream(self, amt: int | None = ..., decode_content: bool | None = ...) -> Any:
        ...

    def close(self) -> None:
        ...

    def release_conn(self) -> None:
        ...


@dataclass(frozen=True)
class Listing:
    items: list[JsonObject]
    resource_version: str


class Gateway:
    """Pods, Jobs and Events of the whole cluster, as JSON."""

    def __init__(self, *, api_client: k8s.ApiClient,
                 request_timeout_s: float = 10.0, namespace: str | None = None) -> None:
        """``namespace`` narrows :meth:`list` to one namespace (``carbongate deferred -n``)."""
        self._core = k8s.CoreV1Api(api_client)
        self._batch = k8s.BatchV1Api(api_client)
        self._timeout = request_timeout_s
        self._namespace = namespace

    def list(self, kind: workloads.Kind) -> Listing:
        """Every Pod or Job in the cluster (or the namespace), and the resource version to watch from."""
        if self._namespace is not None:
            namespaced = (self._core.list_namespaced_pod if kind == "Pod" else self._batch.list_namespaced_job)
            document = _json(namespaced(self._namespace, _preload_content=False, _request_timeout=self._timeout))
        else:
            call = (self._core.list_pod_for_all_namespaces if kind == "Pod"
                    else self._batch.list_job_for_all_namespaces)
            document = _json(call(_preload_content=False, _request_timeout=self._timeout))
        return Listing(items=list(document.get("items") or []),
                       resource_version=str(document["metadata"]["resourceVersion"]))

    def watch(self, kind: workloads.Kind, *, resource_version: str, timeout_s: int) -> Response:
        """Open a watch stream of newline-delimited events after ``resource_version``."""
        call = (self._core.list_pod_for_all_namespaces if kind == "Pod"
                else self._batch.list_job_for_all_namespaces)
        response: Response = call(  # type: ignore[assignment]  # raw with _preload_content=False
            watch=True, resource_version=resource_version, allow_watch_bookmarks=True,
            timeout_seconds=timeout_s, _preload_content=False,
            _request_timeout=(self._timeout, timeout_s + self._timeout))
        return response

    def read(self, key: workloads.Key) -> JsonObject:
        call = (self._core.read_namespaced_pod if key.kind == "Pod"
                else self._batch.read_namespaced_job)
        return _json(call(key.name, key.namespace, _preload_content=False,
                          _request_timeout=self._timeout))

    def json_patch(self, key: workloads.Key, operations: Sequence[Mapping[str, Any]]) -> JsonObject:
        """Apply an RFC 6902 patch; 422 when a ``test`` fails, 404 when gone."""
        call = (self._core.patch_namespaced_pod if key.kind == "Pod"
                else self._batch.patch_namespaced_job)
        return _json(call(key.name, key.namespace, [dict(op) for op in operations],
                          field_manager=FIELD_MANAGER,
                          _content_type="application/json-patch+json",
                          _preload_content=False, _request_timeout=self._timeout))

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        """Create a core/v1 Event (what ``kubectl describe`` and ``get events`` show)."""
        body: Any = dict(event)  # the API's JSON; the client serialises dicts as they are
        self._core.create_namespaced_event(namespace, body, _preload_content=False,
                                           _request_timeout=self._timeout)

    def lease_api(self) -> k8s.CoordinationV1Api:
        return k8s.CoordinationV1Api(self._core.api_client)


def is_status(error: BaseException, *codes: int) -> bool:
    """Whether ``error`` is an API error with one of these HTTP codes."""
    return isinstance(error, k8s.ApiException) and error.status in codes


def _json(response: Any) -> JsonObject:
    try:
        document: JsonObject = json.loads(response.data)
    finally:
        response.release_conn()
    return document

