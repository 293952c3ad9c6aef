"""An in-process test double of the Kubernetes API server's REST interface.

No kube-apiserver (nor etcd) can be installed where these tests run, so this
module serves, on 127.0.0.1, the subset of the *published* Kubernetes API that
carbongate calls, with the same paths, verbs, JSON bodies and error ``Status``
objects, so that the real ``kubernetes`` Python client can be pointed at it
unchanged. It follows these sections of the Kubernetes API reference
(https://kubernetes.io/docs/reference/):

* "API Concepts" (using-api/api-concepts): resource URIs
  ``/api/v1/namespaces/{ns}/{resource}/{name}`` and
  ``/apis/{group}/{version}/...``; list with ``labelSelector`` /
  ``fieldSelector``; efficient detection of changes: ``watch=true`` streams
  newline-delimited ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR,
  "object": ...}`` from a ``resourceVersion``, ``allowWatchBookmarks``,
  ``timeoutSeconds``, and "410 Gone" (an ``ERROR`` event carrying a Status
  with code 410, reason ``Expired``) when the version is too old; resource
  versions are opaque, monotonic across the store here as in etcd.
* "Cluster Resources": Namespace v1 (``namespaces``, cluster-scoped: list,
  watch, get, create, patch; no finalizers or phases).
* "Workload Resources": Pod v1 (``pods``, ``pods/status``), Job batch/v1
  (``jobs``, ``jobs/status``).
* "Cluster Resources": Lease coordination.k8s.io/v1 (optimistic concurrency:
  an update whose ``metadata.resourceVersion`` is not the current one gets
  409 ``Conflict``), Event v1 and events.k8s.io/v1.
* "Config and Storage Resources": ConfigMap v1 (``configmaps``; the same
  optimistic concurrency; keys of ``data`` and ``binaryData`` must match
  ``[-._a-zA-Z0-9]+``, the two together at most 1 MiB, and a ConfigMap with
  ``immutable: true`` may not change them: 422 ``Invalid`` otherwise).
* "Common Definitions" / Status: every error is a ``Status`` (``kind:
  Status``, ``status: Failure``, ``reason``, ``message``, ``details``,
  ``code``), as ``kubectl`` and client libraries expect.
* PATCH (api-concepts "Patch operations"): ``application/json-patch+json``
  (RFC 6902, including ``test`` ops; a failed ``test`` is 422 Invalid as the
  API server answers), ``application/merge-patch+json`` (RFC 7386) and
  ``application/strategic-merge-patch+json`` for maps and whole-list
  replacement only (no merge-key list merging; carbongate never relies on it).
* Pod scheduling readiness (KEP-3521) and mutable scheduling directives of
  gated pods (KEP-3838), the "Pod Scheduling Readiness" concept page: on
  update, scheduling gates may only be removed; while a pod is
  gated its ``nodeSelector`` may only gain keys and its required node
  affinity may only be narrowed (terms keep their existing requirements and
  may gain more); outside those fields a pod spec is immutable except images,
  ``activeDeadlineSeconds`` and added tolerations. A Job's pod template may
  change its scheduling directives only while the Job is suspended (KEP-2926).
* Kueue's validation of ``kueue.x-k8s.io/admission-gated-by`` on Jobs
  (Kueue KEP-6915, normally a webhook of Kueue's): a comma-separated list of
  controller names that cannot be added after creation and may afterwards
  only lose names, or the whole annotation.
* Job suspension, as the Job concept page documents it ("Suspending a Job",
  KEP-2232) and the Job controller implements it: the double plays the Job
  controller's part synchronously, as a separate status write (its own
  resourceVersion and MODIFIED event) right after the write that changed
  ``spec.suspend``. A Job that runs (created unsuspended, or resumed) gets
  ``status.startTime`` set to now (reset on every resume, which is what
  restarts the ``activeDeadlineSeconds`` timer), ``status.active`` =
  ``parallelism`` less finished work, and a ``Suspended`` condition turned
  ``False`` (reason ``JobResumed``) if it had one; suspending terminates the
  active pods (``status.active`` 0) and sets the ``Suspended`` condition
  ``True`` (reason ``JobSuspended``) while keeping ``succeeded`` and, for
  ``completionMode: Indexed``, ``completedIndexes``: finished indexes are not
  run again. ``finish_job`` and ``complete_indexes`` stand for pods
  succeeding; ``enforce_active_deadlines`` fails a running Job whose
  ``activeDeadlineSeconds`` has passed since ``startTime`` (condition
  ``Failed``, reason ``DeadlineExceeded``), as the Job controller does.

It is a double, not an emulator: no admission chain, no defaulting beyond
uid / creationTimestamp / resourceVersion / generation, no garbage
collection, no authentication. Tests drive failure with knobs: ``fail_next``
(answer the next N requests with 500), ``latency_s``, ``drop_watches_after``
(close each watch after N events), ``compact`` (forget history so old
resource versions are Gone), ``mutate`` (another writer changes an object) and
``on_request`` (run such a change just before a given request is served).
Every request is recorded in ``requests`` for assertions.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import itertools
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import jsonpatch
import jsonpointer
import kubernetes.client

JsonObject = dict[str, Any]
WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]


@dataclasses.dataclass(frozen=True)
class Resource:
    """One REST resource served: where it lives and what its objects are called."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    cluster_scoped: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``pods`` or ``leases.coordination.k8s.io``, as Status messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = (
    Resource("", "v1", "namespaces", "Namespace", cluster_scoped=True),
    Resource("", "v1", "pods", "Pod"),
    Resource("", "v1", "events", "Event"),
    Resource("", "v1", "configmaps", "ConfigMap"),
    Resource("batch", "v1", "jobs", "Job"),
    Resource("events.k8s.io", "v1", "events", "Event"),
    Resource("coordination.k8s.io", "v1", "leases", "Lease"),
)


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """A request as the double received it."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any


@dataclasses.dataclass(frozen=True)
class _Change:
    rv: int
    resource: Resource
    type: WatchEventType
    obj: JsonObject


class ApiError(Exception):
    """An error the double answers with a Kubernetes ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str, details: JsonObject | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> JsonObject:
        body: JsonObject = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource.qualified} "{name}" not found',
                    {"name": name, "group": resource.group, "kind": resource.plural})


def _conflict(resource: Resource, name: str) -> ApiError:
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        {"name": name, "group": resource.group, "kind": resource.plural})


def _invalid(resource: Resource, name: str, causes: list[str]) -> ApiError:
    return ApiError(
        422, "Invalid", f'{resource.kind} "{name}" is invalid: ' + ", ".join(causes),
        {"name": name, "group": resource.group, "kind": resource.kind,
         "causes": [{"reason": "FieldValueInvalid", "message": c} for c in causes]})


class FakeKubeApi:
    """The store, its history for watches, and the knobs tests turn."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self._lock = threading.Condition()
        self._objects: dict[tuple[Resource, str, str], JsonObject] = {}
        self._history: list[_Change] = []
        self._rv = itertools.count(1000)
        self._current_rv = 999
        self._compacted_rv = 0
        self._clock = clock or (lambda: datetime.now(UTC))
        self._close_generation = 0
        self.requests: list[RecordedRequest] = []
        self.latency_s = 0.0
        self.drop_watches_after: int | None = None
        self.bookmark_interval_s: float | None = None
        # Called with each request before it is served: a test's "concurrent writer".
        self.on_request: Callable[[RecordedRequest], None] | None = None
        self._fail_next = 0
        self._fail_code = 500
        self._fail_matching: list[tuple[str, str, int]] = []

    # -- knobs ---------------------------------------------------------------

    def fail_next(self, count: int, *, code: int = 500) -> None:
        """Answer the next ``count`` requests with an error Status of ``code``."""
        with self._lock:
            self._fail_next, self._fail_code = count, code

    def fail_matching(self, method: str, path_suffix: str, count: int = 1, *,
                      code: int = 500) -> None:
        """Answer the next ``count`` ``method`` requests whose path ends so with ``code``."""
        with self._lock:
            self._fail_matching += [(method, path_suffix, code)] * count

    def compact(self) -> None:
        """Forget history up to now: watches from an older version get 410 Gone."""
        with self._lock:
            self._compacted_rv = self._current_rv
            self._history.clear()

    def close_watches(self) -> None:
        """End every open watch stream (as an API server restart would)."""
        with self._lock:
            self._close_generation += 1
            self._lock.notify_all()

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._current_rv

    # -- direct store access for tests (another writer) ----------------------

    def seed(self, obj: JsonObject) -> JsonObject:
        """Create an object as another client would; returns the stored copy."""
        resource = self._resource_for(obj)
        namespace = "" if resource.cluster_scoped else obj.get("metadata", {}).get("namespace",
                                                                                    "default")
        return self.create(resource, namespace, obj)

    def get(self, kind: str, namespace: str, name: str) -> JsonObject | None:
        resource = self._resource_by_kind(kind)
        with self._lock:
            found = self._objects.get((resource, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def objects(self, kind: str) -> list[JsonObject]:
        resource = self._resource_by_kind(kind)
        with self._lock:
            return [copy.deepcopy(o) for (r, _, _), o in self._objects.items() if r == resource]

    def mutate(self, kind: str, namespace: str, name: str,
               change: Callable[[JsonObject], None]) -> JsonObject:
        """Change a stored object in place, bump its version, tell the watchers."""
        resource = self._resource_by_kind(kind)
        with self._lock:
            current = self._require(resource, namespace, name)
            updated = copy.deepcopy(current)
            change(updated)
            return self._store(resource, namespace, name, updated, "MODIFIED")

    def remove(self, kind: str, namespace: str, name: str) -> None:
        self.delete(self._resource_by_kind(kind), namespace, name)

    # -- the Job controller's part (see the module docstring) -----------------

    def finish_job(self, namespace: str, name: str) -> JsonObject:
        """Every pod succeeded: ``Complete``, ``completionTime``, no active pods."""
        def done(job: JsonObject) -> None:
            status = job.setdefault("status", {})
            spec = job.get("spec", {})
            completions = int(spec.get("completions") or 1)
            status.update(active=0, succeeded=completions, completionTime=self._now_text())
            if spec.get("completionMode") == "Indexed":
                status["completedIndexes"] = f"0-{completions - 1}" if completions > 1 else "0"
            status["conditions"] = [c for c in status.get("conditions", [])
                                    if c.get("type") != "Suspended"] + [
                self._condition("Complete", "True", "CompletionsReached",
                                "Reached expected number of succeeded pods")]
        return self.mutate("Job", namespace, name, done)

    def complete_indexes(self, namespace: str, name: str, indexes: list[int]) -> JsonObject:
        """The pods of these indexes of an Indexed Job succeeded."""
        def done(job: JsonObject) -> None:
            status = job.setdefault("status", {})
            finished = sorted(set(_indexes(status.get("completedIndexes", ""))) | set(indexes))
            status["completedIndexes"] = _index_text(finished)
            status["succeeded"] = len(finished)
            if not job["spec"].get("suspend"):
                status["active"] = self._active(job)
        return self.mutate("Job", namespace, name, done)

    def enforce_active_deadlines(self) -> list[str]:
        """Fail running Jobs past ``activeDeadlineSeconds`` since ``startTime``; their names."""
        failed = []
        for job in self.objects("Job"):
            limit, status = job["spec"].get("activeDeadlineSeconds"), job.get("status", {})
            if (limit is None or job["spec"].get("suspend") or not status.get("startTime")
                    or _finished(job)):
                continue
            started = datetime.fromisoformat(status["startTime"].replace("Z", "+00:00"))
            if (self._clock() - started).total_seconds() >= limit:
                def fail(obj: JsonObject) -> None:
                    obj["status"].update(active=0)
                    obj["status"]["conditions"] = obj["status"].get("conditions", []) + [
                        self._condition("Failed", "True", "DeadlineExceeded",
                                        "Job was active longer than specified deadline")]
                meta = job["metadata"]
                self.mutate("Job", meta["namespace"], meta["name"], fail)
                failed.append(meta["name"])
        return failed

    def _job_controller(self, resource: Resource, before: JsonObject | None,
                        after: JsonObject) -> None:
        """React to a Job's suspension changing, as the Job controller would (lock held)."""
        if resource.plural != "jobs" or _finished(after):
            return
        was = None if before is None else bool(before.get("spec", {}).get("suspend"))
        now = bool(after.get("spec", {}).get("suspend"))
        if was == now:
            return
        job = copy.deepcopy(after)
        status = job.setdefault("status", {})
        conditions = [c for c in status.get("conditions", []) if c.get("type") != "Suspended"]
        if now:
            status["active"] = 0
            conditions.append(self._condition("Suspended", "True", "JobSuspended",
                                              "Job suspended"))
        else:
            status["startTime"] = self._now_text()
            status["active"] = self._active(job)
            if was is not None:
                conditions.append(self._condition("Suspended", "False", "JobResumed",
                                                  "Job resumed"))
        status["conditions"] = conditions
        meta = job["metadata"]
        self._store(resource, meta["namespace"], meta["name"], job, "MODIFIED")

    @staticmethod
    def _active(job: JsonObject) -> int:
        spec, status = job.get("spec", {}), job.get("status", {})
        left = int(spec.get("completions") or 1) - int(status.get("succeeded") or 0)
        return max(min(int(spec.get("parallelism") or 1), left), 0)

    def _condition(self, type_: str, status: str, reason: str, message: str) -> JsonObject:
        stamp = self._now_text()
        return {"type": type_, "status": status, "reason": reason, "message": message,
                "lastProbeTime": stamp, "lastTransitionTime": stamp}

    # -- verbs ----------------------------------------------------------------

    def create(self, resource: Resource, namespace: str, body: JsonObject) -> JsonObject:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace", namespace) != namespace:
            raise ApiError(400, "BadRequest",
                           "the namespace of the provided object does not match the namespace "
                           "sent on the request")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        name = meta.get("name")
        if not name:
            cause = "metadata.name: Required value: name or generateName is required"
            raise _invalid(resource, "", [cause])
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=self._now_text())
        if not resource.cluster_scoped:
            meta["namespace"] = namespace
        if resource.plural == "jobs":
            meta["generation"] = 1
        if resource.plural == "pods":
            obj.setdefault("status", {"phase": "Pending"})
        errors = _validate_create(resource, obj)
        if errors:
            raise _invalid(resource, name, errors)
        with self._lock:
            if (resource, namespace, name) in self._objects:
                raise ApiError(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists',
                               {"name": name, "group": resource.group, "kind": resource.plural})
            stored = self._store(resource, namespace, name, obj, "ADDED")
            self._job_controller(resource, None, stored)
            return stored

    def read(self, resource: Resource, namespace: str, name: str) -> JsonObject:
        with self._lock:
            return copy.deepcopy(self._require(resource, namespace, name))

    def replace(self, resource: Resource, namespace: str, name: str, body: JsonObject,
                *, subresource: str = "") -> JsonObject:
        with self._lock:
            current = self._require(resource, namespace, name)
            return self._update(resource, current, copy.deepcopy(body), subresource)

    def patch(self, resource: Resource, namespace: str, name: str, content_type: str,
              patch: Any, *, subresource: str = "") -> JsonObject:
        with self._lock:
            current = self._require(resource, namespace, name)
            patched = _apply_patch(resource, name, content_type, copy.deepcopy(current), patch)
            return self._update(resource, current, patched, subresource)

    def delete(self, resource: Resource, namespace: str, name: str) -> JsonObject:
        with self._lock:
            current = self._require(resource, namespace, name)
            del self._objects[(resource, namespace, name)]
            gone = copy.deepcopy(current)
            gone["metadata"]["deletionTimestamp"] = self._now_text()
            self._record(resource, "DELETED", gone)
            return copy.deepcopy(gone)

    def list(self, resource: Resource, namespace: str | None,
             query: dict[str, str]) -> JsonObject:
        match = _selector(query)
        with self._lock:
            items = [copy.deepcopy(o) for (r, ns, _), o in sorted(
                self._objects.items(), key=lambda kv: (kv[0][1], kv[0][2]))
                if r == resource and (namespace is None or ns == namespace) and match(o)]
            rv = self._current_rv
        return {"kind": resource.kind + "List", "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(rv)}, "items": items}

    def watch(self, resource: Resource, namespace: str | None,
              query: dict[str, str]) -> Iterator[JsonObject]:
        """Yield watch events from ``resourceVersion`` until timeout, drop or close."""
        match = _selector(query)
        timeout = float(query.get("timeoutSeconds", "0") or 0) or None
        deadline = time.monotonic() + timeout if timeout else None
        bookmarks = query.get("allowWatchBookmarks") == "true"
        limit = self.drop_watches_after
        with self._lock:
            start = query.get("resourceVersion", "")
            if start not in ("", "0") and int(start) < self._compacted_rv:
                yield {"type": "ERROR", "object": ApiError(
                    410, "Expired",
                    f"too old resource version: {start} ({self._compacted_rv})").status()}
                return
            generation = self._close_generation
            if start in ("", "0"):  # "get state and start at most recent"
                pending = [_Change(self._current_rv, resource, "ADDED", copy.deepcopy(o))
                           for (r, _, _), o in self._objects.items() if r == resource]
                cursor = self._current_rv
            else:
                pending, cursor = [], int(start)
        sent, last_bookmark = 0, time.monotonic()
        while True:
            for change in pending:
                cursor = max(cursor, change.rv)
                if (change.resource == resource and _in_namespace(change.obj, namespace)
                        and match(change.obj)):
                    if limit is not None and sent >= limit:
                        return
                    yield {"type": change.type, "object": change.obj}
                    sent += 1
            with self._lock:
                pending = [c for c in self._history if c.rv > cursor]
                if not pending:
                    remaining = deadline - time.monotonic() if deadline else 0.25
                    if remaining <= 0 or generation != self._close_generation:
                        return
                    self._lock.wait(timeout=min(remaining, 0.25))
                    pending = [c for c in self._history if c.rv > cursor]
                now_rv = self._current_rv
            if (bookmarks and self.bookmark_interval_s is not None and not pending
                    and time.monotonic() - last_bookmark >= self.bookmark_interval_s):
                last_bookmark, cursor = time.monotonic(), max(cursor, now_rv)
                yield {"type": "BOOKMARK", "object": {
                    "kind": resource.kind, "apiVersion": resource.api_version,
                    "metadata": {"resourceVersion": str(now_rv)}}}

    # -- internals -------------------------------------------------------------

    def _update(self, resource: Resource, current: JsonObject, new: JsonObject,
                subresource: str) -> JsonObject:
        meta, name = current["metadata"], current["metadata"]["name"]
        given_rv = new.get("metadata", {}).get("resourceVersion")
        if given_rv not in (None, "") and given_rv != meta["resourceVersion"]:
            raise _conflict(resource, name)
        new_meta = new.setdefault("metadata", {})
        if new_meta.get("name", name) != name or new_meta.get("uid", meta["uid"]) != meta["uid"]:
            raise _invalid(resource, name, ["metadata.name: Invalid value: field is immutable"])
        if subresource == "status":
            merged = copy.deepcopy(current)
            merged["status"] = new.get("status", {})
            new = merged
        else:
            new.pop("status", None)
            if "status" in current:  # the main resource never writes status
                new["status"] = copy.deepcopy(current["status"])
            for field in ("uid", "creationTimestamp", "namespace", "generation"):
                if field in meta:
                    new_meta[field] = meta[field]
            errors = _validate_update(resource, current, new)
            if errors:
                raise _invalid(resource, name, errors)
            if resource.plural == "jobs" and new.get("spec") != current.get("spec"):
                new_meta["generation"] = meta.get("generation", 1) + 1
        new["apiVersion"], new["kind"] = resource.api_version, resource.kind
        before = copy.deepcopy(current)
        stored = self._store(resource, meta.get("namespace", ""), name, new, "MODIFIED")
        if subresource != "status":
            self._job_controller(resource, before, stored)
        return stored

    def _store(self, resource: Resource, namespace: str, name: str, obj: JsonObject,
               kind: WatchEventType) -> JsonObject:
        rv = next(self._rv)
        self._current_rv = rv
        obj["metadata"]["resourceVersion"] = str(rv)
        self._objects[(resource, namespace, name)] = obj
        self._history.append(_Change(rv, resource, kind, copy.deepcopy(obj)))
        self._lock.notify_all()
        return copy.deepcopy(obj)

    def _record(self, resource: Resource, kind: WatchEventType, obj: JsonObject) -> None:
        rv = next(self._rv)
        self._current_rv = rv
        obj["metadata"]["resourceVersion"] = str(rv)
        self._history.append(_Change(rv, resource, kind, copy.deepcopy(obj)))
        self._lock.notify_all()

    def _require(self, resource: Resource, namespace: str, name: str) -> JsonObject:
        found = self._objects.get((resource, namespace, name))
        if found is None:
            raise _not_found(resource, name)
        return found

    def _now_text(self) -> str:
        return self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def _resource_by_kind(kind: str) -> Resource:
        for resource in RESOURCES:
            if resource.kind == kind or resource.qualified == kind:
                return resource
        raise KeyError(kind)

    @staticmethod
    def _resource_for(obj: JsonObject) -> Resource:
        for resource in RESOURCES:
            if resource.kind == obj.get("kind") and resource.api_version == obj.get("apiVersion"):
                return resource
        raise KeyError(f"{obj.get('apiVersion')}/{obj.get('kind')}")

    def take_failure(self, method: str = "", path: str = "") -> ApiError | None:
        with self._lock:
            for index, (wanted, suffix, code) in enumerate(self._fail_matching):
                if method == wanted and path.endswith(suffix):
                    del self._fail_matching[index]
                    return ApiError(code, "InternalError",
                                    "Internal error occurred: injected by the test double")
            if self._fail_next <= 0:
                return None
            self._fail_next -= 1
            return ApiError(self._fail_code, "InternalError",
                            "Internal error occurred: injected by the test double")

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


# --------------------------------------------------------------------------------
# patches and validation


def _finished(job: JsonObject) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in job.get("status", {}).get("conditions", []))


def _indexes(text: str) -> list[int]:
    """``status.completedIndexes`` ("1,3-5") as a list of indexes."""
    found: list[int] = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        found += range(int(first), int(last or first) + 1)
    return found


def _index_text(indexes: list[int]) -> str:
    runs: list[list[int]] = []
    for index in indexes:
        if runs and runs[-1][1] == index - 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def _apply_patch(resource: Resource, name: str, content_type: str, current: JsonObject,
                 patch: Any) -> JsonObject:
    if content_type == "application/json-patch+json":
        if not isinstance(patch, list):
            raise ApiError(400, "BadRequest", "json patch must be an array of operations")
        try:
            result: JsonObject = jsonpatch.JsonPatch(patch).apply(current)
        except jsonpatch.JsonPatchTestFailed as error:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in "
                           f"our request: {error}") from error
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in "
                           f"our request: {error}") from error
        return result
    if content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "merge patch must be a JSON object")
        merged = _merge_patch(current, patch)
        assert isinstance(merged, dict)
        return merged
    raise ApiError(415, "UnsupportedMediaType",
                   f"the body of the request was in an unknown format - accepted media types "
                   f"include: application/json-patch+json, application/merge-patch+json, "
                   f"application/strategic-merge-patch+json (got {content_type!r})")


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


_POD_MUTABLE = ("schedulingGates", "nodeSelector", "affinity", "tolerations",
                "activeDeadlineSeconds", "terminationGracePeriodSeconds")
_JOB_TEMPLATE_MUTABLE_WHILE_SUSPENDED = ("nodeSelector", "affinity", "tolerations",
                                         "schedulingGates")


def _validate_create(resource: Resource, new: JsonObject) -> list[str]:
    if resource.plural == "configmaps":
        return _config_map_errors(new)
    return []


def _validate_update(resource: Resource, old: JsonObject, new: JsonObject) -> list[str]:
    if resource.plural == "pods":
        return _validate_pod_update(old.get("spec", {}), new.get("spec", {}))
    if resource.plural == "jobs":
        return (_validate_job_update(old.get("spec", {}), new.get("spec", {}))
                + _kueue_admission_gate_errors(old, new))
    if resource.plural == "configmaps":
        return _validate_config_map_update(old, new)
    return []


_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_CONFIG_MAP_BYTES = 1024 * 1024  # core.MaxSecretSize, the limit for ConfigMaps too


def _config_map_errors(config_map: JsonObject) -> list[str]:
    """ValidateConfigMap: key syntax, keys unique across data and binaryData, total size."""
    errors: list[str] = []
    data, binary = config_map.get("data") or {}, config_map.get("binaryData") or {}
    for field, values in (("data", data), ("binaryData", binary)):
        for key in values:
            if not _CONFIG_KEY.match(key) or key in (".", ".."):
                errors.append(f"{field}[{key}]: Invalid value: {key!r}: a valid config key must "
                              "consist of alphanumeric characters, '-', '_' or '.' (regex used "
                              "for validation is '[-._a-zA-Z0-9]+')")
    for key in set(data) & set(binary):
        errors.append(f"data[{key}]: Invalid value: {key!r}: duplicate of key present in "
                      "binaryData")
    size = (sum(len(k) + len(str(v).encode()) for k, v in data.items())
            + sum(len(k) + len(base64.b64decode(str(v))) for k, v in binary.items()))
    if size > MAX_CONFIG_MAP_BYTES:
        errors.append(f"[]: Too long: may not be more than {MAX_CONFIG_MAP_BYTES} bytes")
    return errors


def _validate_config_map_update(old: JsonObject, new: JsonObject) -> list[str]:
    """ValidateConfigMapUpdate: an immutable ConfigMap keeps its data and stays immutable."""
    errors = _config_map_errors(new)
    if old.get("immutable"):
        if not new.get("immutable"):
            errors.append("immutable: Forbidden: field is immutable when `immutable` is set")
        for field in ("data", "binaryData"):
            if (old.get(field) or {}) != (new.get(field) or {}):
                errors.append(f"{field}: Forbidden: field is immutable when `immutable` is set")
    return errors


def _validate_pod_update(old: JsonObject, new: JsonObject) -> list[str]:
    errors: list[str] = []
    old_gates = [g.get("name") for g in old.get("schedulingGates") or []]
    for gate in new.get("schedulingGates") or []:
        if gate.get("name") not in old_gates:
            errors.append("spec.schedulingGates: Forbidden: only deletion is allowed, but found "
                          f"new scheduling gate '{gate.get('name')}'")
    if _strip(old, _POD_MUTABLE, images=True) != _strip(new, _POD_MUTABLE, images=True):
        errors.append("spec: Forbidden: pod updates may not change fields other than "
                      "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                      "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to "
                      "existing tolerations), `spec.terminationGracePeriodSeconds`")
    if old_gates:
        errors += _narrowing_errors(old, new)
    elif (old.get("nodeSelector"), old.get("affinity")) != (new.get("nodeSelector"),
                                                            new.get("affinity")):
        errors.append("spec: Forbidden: pod updates may not change nodeSelector or affinity "
                      "once the pod has no scheduling gates")
    return errors


def _narrowing_errors(old: JsonObject, new: JsonObject) -> list[str]:
    """KEP-3838: a gated pod's scheduling constraints may be narrowed, never widened."""
    errors: list[str] = []
    old_sel, new_sel = old.get("nodeSelector") or {}, new.get("nodeSelector") or {}
    if any(new_sel.get(k) != v for k, v in old_sel.items()):
        errors.append("spec.nodeSelector: Invalid value: only additions to spec.nodeSelector are "
                      "allowed (no mutations or deletions)")
    old_aff, new_aff = old.get("affinity") or {}, new.get("affinity") or {}
    if {k: v for k, v in old_aff.items() if k != "nodeAffinity"} != {
            k: v for k, v in new_aff.items() if k != "nodeAffinity"}:
        errors.append("spec.affinity: Forbidden: only nodeAffinity may change on a gated pod")
    required = "requiredDuringSchedulingIgnoredDuringExecution"
    old_req = (old_aff.get("nodeAffinity") or {}).get(required)
    new_req = (new_aff.get("nodeAffinity") or {}).get(required)
    if old_req is None:
        return errors
    old_terms, new_terms = old_req.get("nodeSelectorTerms", []), (new_req or {}).get(
        "nodeSelectorTerms", [])
    path = f"spec.affinity.nodeAffinity.{required}.nodeSelectorTerms"
    if len(old_terms) != len(new_terms):
        return errors + [f"{path}: Invalid value: the number of terms may not change"]
    for index, (before, after) in enumerate(zip(old_terms, new_terms, strict=True)):
        for field in ("matchExpressions", "matchFields"):
            was, now = before.get(field) or [], after.get(field) or []
            if now[:len(was)] != was:
                errors.append(f"{path}[{index}].{field}: Invalid value: only additions to the "
                              "NodeSelectorRequirements are allowed")
    return errors


def _validate_job_update(old: JsonObject, new: JsonObject) -> list[str]:
    errors = []
    if old.get("selector") != new.get("selector"):
        errors.append("spec.selector: Invalid value: field is immutable")
    old_t, new_t = old.get("template", {}), new.get("template", {})
    strip = _JOB_TEMPLATE_MUTABLE_WHILE_SUSPENDED if old.get("suspend") else ()
    old_cmp = {**old_t, "spec": _strip(old_t.get("spec", {}), strip)}
    new_cmp = {**new_t, "spec": _strip(new_t.get("spec", {}), strip)}
    if old.get("suspend"):
        old_cmp.pop("metadata", None)
        new_cmp.pop("metadata", None)
    if old_cmp != new_cmp:
        errors.append("spec.template: Invalid value: field is immutable")
    return errors


KUEUE_GATED_BY = "kueue.x-k8s.io/admission-gated-by"


def _kueue_admission_gate_errors(old: JsonObject, new: JsonObject) -> list[str]:
    """KEP-6915 (Kueue's validating webhook): the annotation cannot be added after creation,
    and afterwards it may only lose controller names or be removed whole."""
    def names(obj: JsonObject) -> list[str] | None:
        value = ((obj.get("metadata") or {}).get("annotations") or {}).get(KUEUE_GATED_BY)
        return None if value is None else [n.strip() for n in str(value).split(",") if n.strip()]

    before, after = names(old), names(new)
    if after is None or before == after:
        return []
    path = f"metadata.annotations[{KUEUE_GATED_BY}]"
    if before is None:
        return [f"{path}: Forbidden: the annotation can only be set at creation"]
    added = [n for n in after if n not in before]
    if added:
        return [f"{path}: Invalid value: only removals of controller names are allowed, "
                f"found new {', '.join(added)}"]
    return []


def _strip(spec: JsonObject, fields: tuple[str, ...], *, images: bool = False) -> JsonObject:
    result = {k: v for k, v in spec.items() if k not in fields}
    if images:
        for key in ("containers", "initContainers"):
            if key in result:
                result[key] = [{k: v for k, v in c.items() if k != "image"} for c in result[key]]
    return result


# --------------------------------------------------------------------------------
# selectors


def _selector(query: dict[str, str]) -> Callable[[JsonObject], bool]:
    labels = _label_requirements(query.get("labelSelector", ""))
    fields = _field_requirements(query.get("fieldSelector", ""))

    def match(obj: JsonObject) -> bool:
        have = obj.get("metadata", {}).get("labels") or {}
        return all(test(have) for test in labels) and all(test(obj) for test in fields)

    return match


_SET_EXPR = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


@dataclasses.dataclass(frozen=True)
class _LabelRequirement:
    """One requirement of a label selector (``k=v``, ``k!=v``, ``k in (..)``, ``k``, ``!k``)."""

    key: str
    op: Literal["=", "!=", "in", "notin", "exists", "!exists"]
    values: frozenset[str] = frozenset()

    def __call__(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return value in self.values
        if self.op in ("!=", "notin"):
            return value not in self.values
        return (self.key in labels) == (self.op == "exists")


@dataclasses.dataclass(frozen=True)
class _FieldRequirement:
    """One requirement of a field selector (``metadata.name=x``, ``status.phase!=Running``)."""

    path: str
    value: str
    negate: bool

    def __call__(self, obj: JsonObject) -> bool:
        return (_dotted(obj, self.path) == self.value) != self.negate


def _label_requirements(text: str) -> list[_LabelRequirement]:
    tests: list[_LabelRequirement] = []
    for part in _split_selector(text):
        set_expr = _SET_EXPR.match(part)
        if set_expr:
            values = frozenset(v.strip() for v in set_expr.group(3).split(",") if v.strip())
            op: Literal["in", "notin"] = "in" if set_expr.group(2) == "in" else "notin"
            tests.append(_LabelRequirement(set_expr.group(1), op, values))
        elif "!=" in part:
            key, value = (s.strip() for s in part.split("!=", 1))
            tests.append(_LabelRequirement(key, "!=", frozenset({value})))
        elif "=" in part:
            key, value = (s.strip() for s in part.replace("==", "=").split("=", 1))
            tests.append(_LabelRequirement(key, "=", frozenset({value})))
        elif part.startswith("!"):
            tests.append(_LabelRequirement(part[1:].strip(), "!exists"))
        else:
            tests.append(_LabelRequirement(part, "exists"))
    return tests


def _field_requirements(text: str) -> list[_FieldRequirement]:
    tests: list[_FieldRequirement] = []
    for part in _split_selector(text):
        negate = "!=" in part
        path, value = (s.strip() for s in part.replace("==", "=").replace("!=", "=").split("=", 1))
        tests.append(_FieldRequirement(path, value, negate))
    return tests


def _dotted(obj: JsonObject, path: str) -> str:
    node: Any = obj
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def _in_namespace(obj: JsonObject, namespace: str | None) -> bool:
    return namespace is None or obj.get("metadata", {}).get("namespace") == namespace


# --------------------------------------------------------------------------------
# HTTP


_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?$")


def _route(path: str) -> tuple[Resource, str | None, str | None, str]:
    found = _PATH.match(path)
    if not found:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    group = found.group("group") or ""
    version = found.group("core") or found.group("version")
    for resource in RESOURCES:
        if (resource.group, resource.version, resource.plural) == (
                group, version, found.group("plural")):
            return resource, found.group("ns"), found.group("name"), found.group("sub") or ""
    raise ApiError(404, "NotFound", "the server could not find the requested resource")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read ``requests``, not stderr."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        body = self._body()
        request = RecordedRequest(method, url.path, query, content_type, body)
        api.record(request)
        if api.on_request is not None:
            api.on_request(request)
        if api.latency_s:
            time.sleep(api.latency_s)
        try:
            failure = api.take_failure(method, url.path)
            if failure is not None:
                raise failure
            resource, namespace, name, sub = _route(url.path)
            if method == "GET" and name is None and query.get("watch") in ("true", "1"):
                self._stream(api.watch(resource, namespace, query))
                return
            status, answer = self._dispatch(api, method, resource, namespace, name, sub,
                                            content_type, body, query)
        except ApiError as error:
            status, answer = error.code, error.status()
        self._send(status, answer)

    @staticmethod
    def _dispatch(api: FakeKubeApi, method: str, resource: Resource, namespace: str | None,
                  name: str | None, sub: str, content_type: str, body: Any,
                  query: dict[str, str]) -> tuple[int, JsonObject]:
        if name is None:
            if method == "GET":
                return 200, api.list(resource, namespace, query)
            if method == "POST" and (namespace is not None or resource.cluster_scoped):
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "the request body must be a JSON object")
                return 201, api.create(resource, namespace or "", body)
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")
        if (namespace is None) != resource.cluster_scoped:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = namespace or ""
        if method == "GET":
            return 200, api.read(resource, namespace, name)
        if method == "PUT":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the request body must be a JSON object")
            return 200, api.replace(resource, namespace, name, body, subresource=sub)
        if method == "PATCH":
            return 200, api.patch(resource, namespace, name, content_type, body, subresource=sub)
        if method == "DELETE":
            gone = api.delete(resource, namespace, name)
            if resource.plural == "pods":
                return 200, gone
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Success", "details": {
                             "name": name, "group": resource.group, "kind": resource.plural,
                             "uid": gone["metadata"]["uid"]}}
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _send(self, status: int, answer: JsonObject) -> None:
        payload = json.dumps(answer).encode()
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, events: Iterator[JsonObject]) -> None:
        """Chunked newline-delimited watch events, as the API server streams them."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")  # a complete response: the connection stays usable
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, api: FakeKubeApi) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api


@dataclasses.dataclass
class RunningKubeApi:
    """A double serving on 127.0.0.1, with a client configured for it."""

    api: FakeKubeApi
    url: str
    server: _Server

    def write_kubeconfig(self, path: Path, *, context: str = "double",
                         current: bool = True) -> Path:
        """A kubeconfig pointing at this double: :func:`write_kubeconfig`."""
        return write_kubeconfig(path, server=self.url, context=context, current=current)

    def api_client(self) -> kubernetes.client.ApiClient:
        """A real ``kubernetes`` client talking to this double (no auth, no TLS)."""
        configuration = kubernetes.client.Configuration(host=self.url)
        configuration.retries = False  # a failure must reach the code under test
        return kubernetes.client.ApiClient(configuration)


def write_kubeconfig(path: Path, *, server: str, context: str = "double",
                     current: bool = True) -> Path:
    """A kubeconfig whose ``context`` points at ``server`` (what a laptop user has).

    With ``current=False`` the file's current-context is another one, at a
    port where nothing listens, so only ``--context`` reaches ``server``.
    """
    elsewhere = "http://127.0.0.1:9"  # the discard port: connection refused
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"current-context: {context if current else 'elsewhere'}\n"
        f"clusters: [{{name: {context}, cluster: {{server: '{server}'}}}},"
        f" {{name: elsewhere, cluster: {{server: '{elsewhere}'}}}}]\n"
        "users: [{name: test, user: {}}]\n"
        f"contexts: [{{name: {context}, context: {{cluster: {context}, user: test}}}},"
        " {name: elsewhere, context: {cluster: elsewhere, user: test}}]\n",
        encoding="utf-8")
    return path


@contextlib.contextmanager
def serve(api: FakeKubeApi | None = None) -> Iterator[RunningKubeApi]:
    """Run a double in a thread for the duration of the block."""
    api = api or FakeKubeApi()
    server = _Server(api)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="fake-kube-api", daemon=True)
    thread.start()
    port = int(server.server_address[1])
    try:
        yield RunningKubeApi(api=api, url=f"http://127.0.0.1:{port}", server=server)
    finally:
        api.close_watches()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
