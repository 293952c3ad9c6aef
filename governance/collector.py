"""The collector: watch pods, and record each finished run in the ledger exactly once.

It runs beside the cluster, never in the admission path: the webhook only
annotates, and this process learns what happened afterwards from the API
server. Two threads:

* the *watcher* lists all pods, then watches from the list's
  ``resourceVersion`` (with bookmarks); when a watch ends it resumes from the
  last version seen, and when the server says that version is gone (410) it
  lists again. Every finished pod it sees (Succeeded or Failed, including in
  a DELETED event, which carries the final state) goes on a queue;
* the *recorder* takes pods off the queue, skips UIDs already recorded,
  prices the run and appends it (one transaction, unique on the UID).

Restarting loses nothing: the first list after a start sees every finished
pod still in the API, and the ledger's UID constraint drops the ones already
recorded, so nothing counts twice. A pod deleted *and* gone while the
collector was down is the one run it cannot see (docs/governance.md).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from carbongate import clock as clock_mod
from carbongate import kube as k8s
from governance import accounting, history, ledger, metrics, pods, runs
from planner import energy

log = logging.getLogger(__name__)

Pod = Mapping[str, Any]

class PodsApi(Protocol):
    """The call of ``kubernetes.client.CoreV1Api`` the collector makes (list and watch)."""

    @property
    def list_pod_for_all_namespaces(self) -> Callable[..., Any]: ...


class Lookups(Protocol):
    """Context a pod does not carry itself: its Job, its namespace's labels, its node pool."""

    def job(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def namespace_labels(self, namespace: str) -> Mapping[str, str]: ...

    def node_pool(self, node_name: str) -> str | None: ...


class TtlCache:
    """A small LRU with an age limit: namespaces get relabelled, Jobs get deleted."""

    def __init__(self, *, ttl_s: float, size: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s, self._size, self._clock = ttl_s, size, clock
        self._items: collections.OrderedDict[Any, tuple[float, Any]] = collections.OrderedDict()

    def get(self, key: Any, load: Callable[[], Any]) -> Any:
        """The cached value, or ``load()`` stored for next time."""
        now = self._clock()
        found = self._items.get(key)
        if found is not None and now - found[0] < self._ttl_s:
            self._items.move_to_end(key)
            return found[1]
        value = load()
        self._items[key] = (now, value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return value


class KubeLookups:
    """:class:`Lookups` through the API, cached; any failure means "not known"."""

    def __init__(self, *, core: Any, batch: Any, timeout_s: float = 5.0,
                 ttl_s: float = 300.0) -> None:
        self._core, self._batch, self._timeout_s = core, batch, timeout_s
        self._jobs = TtlCache(ttl_s=ttl_s)
        self._namespaces = TtlCache(ttl_s=ttl_s)
        self._nodes = TtlCache(ttl_s=ttl_s)

    def job(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        found: Mapping[str, Any] | None = self._jobs.get((namespace, name), lambda: self._read(
            lambda: self._batch.read_namespaced_job(
                name, namespace, _preload_content=False, _request_timeout=self._timeout_s)))
        return found

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        labels: Mapping[str, str] = self._namespaces.get(namespace, lambda: _labels(self._read(
            lambda: self._core.read_namespace(
                namespace, _preload_content=False, _request_timeout=self._timeout_s))))
        return labels

    def node_pool(self, node_name: str) -> str | None:
        pool: str | None = self._nodes.get(node_name, lambda: pods.pool_from_node_labels(
            _labels(self._read(lambda: self._core.read_node(
                node_name, _preload_content=False, _request_timeout=self._timeout_s)))))
        return pool

    @staticmethod
    def _read(call: Callable[[], Any]) -> dict[str, Any] | None:
        try:
            response = call()
            return dict(json.loads(response.data))
        except (k8s.ApiException, OSError, ValueError) as error:
            log.debug("lookup failed, carrying on without it: %s", error)
            return None


def _labels(obj: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


@dataclass(frozen=True)
class Recorder:
    """Turns a finished pod into a ledger row, once per UID."""

    store: ledger.Ledger
    model: energy.EnergyModel
    grid: history.IntensityHistory
    defaults: pods.Defaults
    lookups: Lookups
    meters: metrics.GovernanceMetrics
    clock: clock_mod.Now = clock_mod.utc_now

    def record(self, pod: Pod) -> bool:
        """Price and append the run; False when it was already there (or cannot be read)."""
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        if uid and self.store.contains(uid):
            return False
        try:
            job = self._job(pod)
            found = self._facts(pod, job)
            record = self._price(found, pod)
            mandate = pods.mandate_events(pod, found, job=job)
        except pods.PodError as error:
            log.warning("cannot account for a pod: %s", error)
            self.meters.skipped.labels(reason="malformed-pod").inc()
            return False
        for event in mandate:  # before the run: a crash in between is retried whole
            if self.store.record_mandate(event):
                self.meters.count_mandate(event.event, team=event.team)
        inserted = self.store.record(record)
        if inserted:  # counted only when this insert added the row: replicas never count twice
            self.meters.recorded.labels(phase=record.phase).inc()
            self.meters.count_run(team=record.team, emissions_g=record.emissions_g,
                                  saved_g=record.saved_g)
            if record.emissions_g is None:
                self.meters.skipped.labels(reason="unpriced").inc()
        return inserted

    def _job(self, pod: Pod) -> Mapping[str, Any] | None:
        job_name = pods.owner_job(pod)
        namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
        return self.lookups.job(namespace, job_name) if job_name else None

    def _facts(self, pod: Pod, job: Mapping[str, Any] | None) -> runs.RunFacts:
        metadata = pod.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "default")
        node_name = (pod.get("spec") or {}).get("nodeName")
        return pods.facts(
            pod, defaults=self.defaults, observed_at=self.clock(), job=job,
            namespace_labels=self._namespace_labels(pod, namespace),
            node_pool=(pods.pool_from_selector(pod.get("spec") or {})
                       or (self.lookups.node_pool(node_name) if node_name else None)),
        )

    def _namespace_labels(self, pod: Pod, namespace: str) -> Mapping[str, str]:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get(pods.PREFIX + "team") and labels.get(pods.PREFIX + "tier"):
            return {}  # the pod says it all; no need to ask
        return self.lookups.namespace_labels(namespace)

    def _price(self, found: runs.RunFacts, pod: Pod) -> runs.RunRecord:
        try:
            return accounting.account(found, model=self.model, grid=self.grid)
        except energy.PodSpecError as error:
            # The API server validated this spec, so this is our parser's gap: record
            # the run with no energy rather than retry it forever.
            log.warning("pod %s/%s: %s; recorded with zero energy", found.namespace,
                        found.pod, error)
            self.meters.skipped.labels(reason="pod-spec").inc()
            empty = {**found.pod_spec, "containers": [], "initContainers": [], "overhead": {}}
            return accounting.account(_with_spec(found, empty), model=self.model,
                                      grid=self.grid)


def _with_spec(found: runs.RunFacts, spec: Mapping[str, Any]) -> runs.RunFacts:
    return dataclasses.replace(found, pod_spec=spec)


class Collector:
    """Watch pods and feed finished ones to a :class:`Recorder`, on two threads."""

    def __init__(self, *, api: PodsApi, recorder: Recorder, meters: metrics.GovernanceMetrics,
                 watch_timeout_s: int = 300, retry_s: float = 5.0, page_size: int = 500,
                 on_recorded: Callable[[], None] | None = None,
                 observe: Callable[[str, Pod], None] | None = None) -> None:
        self._api, self._recorder, self._meters = api, recorder, meters
        self._observe = observe  # sees every pod (carbongate.unreviewed counts the unreviewed)
        self._watch_timeout_s, self._retry_s, self._page_size = watch_timeout_s, retry_s, page_size
        self._on_recorded = on_recorded
        self._queue: queue.Queue[Pod] = queue.Queue()
        self._recent: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._recent_lock = threading.Lock()
        self._watch: k8s.Watch | None = None
        self._failures = 0
        self.synced = threading.Event()

    # -- threads -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Watch and record until ``stop`` is set (blocks; start it on a thread)."""
        worker = threading.Thread(target=self._record_loop, args=(stop,),
                                  name="governance-recorder", daemon=True)
        worker.start()
        try:
            self._watch_loop(stop)
        finally:
            worker.join(timeout=10)

    def stop(self) -> None:
        """Interrupt a watch in progress (the caller also sets the stop event)."""
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]

    def _watch_loop(self, stop: threading.Event) -> None:
        version: str | None = None
        while not stop.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._follow(version, stop)
                self._failures = 0
            except k8s.ApiException as error:
                if error.status == 410:
                    log.info("watch version expired; listing again")
                    self._meters.relists.inc()
                    version = None
                    continue
                self._failed(error, stop)
            except Exception as error:  # the API, the network, a bad event
                self._failed(error, stop)

    def _failed(self, error: BaseException, stop: threading.Event) -> None:
        """Back off exponentially: a blip reconnects at once, an outage is not hammered."""
        self._failures += 1
        delay = min(self._retry_s, 0.1 * 2 ** (self._failures - 1))
        log.warning("pod watch failed, retrying in %.1fs: %s", delay, error)
        self._meters.watch_errors.inc()
        stop.wait(delay)

    def _list(self) -> str:
        """List every pod (in pages) and queue the finished ones; return the list version."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self._page_size, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            page = json.loads(self._api.list_pod_for_all_namespaces(**kwargs).data)
            for pod in page.get("items") or []:
                self._offer(pod)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                self.synced.set()
                return str((page.get("metadata") or {}).get("resourceVersion") or "")

    def _follow(self, version: str, stop: threading.Event) -> str:
        """Watch from ``version`` until the server ends the stream; return the last version."""
        self._watch = k8s.Watch()  # type: ignore[no-untyped-call]
        for event in self._events(version):
            if stop.is_set():
                self._watch.stop()  # type: ignore[no-untyped-call]
                break
            # raw_object: the event's object as the server sent it (camelCase JSON).
            obj = event.get("raw_object") or {}
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                self._offer(obj)
        return version

    def _events(self, version: str) -> Iterator[dict[str, Any]]:
        assert self._watch is not None
        yield from self._watch.stream(  # type: ignore[no-untyped-call]
            self._api.list_pod_for_all_namespaces, resource_version=version,
            allow_watch_bookmarks=True, timeout_seconds=self._watch_timeout_s)

    def _offer(self, pod: Pod) -> None:
        if self._observe is not None:
            self._observe("Pod", pod)
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        with self._recent_lock:
            known = uid in self._recent
        if pods.is_finished(pod) and not known:
            self._queue.put(pod)

    def _record_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                pod = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._record_with_retry(pod, stop)
            finally:
                self._queue.task_done()

    def _record_with_retry(self, pod: Pod, stop: threading.Event) -> None:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        while not stop.is_set():
            try:
                if self._recorder.record(pod) and self._on_recorded is not None:
                    self._on_recorded()
                self._remember(uid)
                return
            except (sa.exc.SQLAlchemyError, ledger.LedgerError) as error:
                log.warning("ledger write failed, retrying in %.1fs: %s", self._retry_s, error)
                self._meters.ledger_errors.inc()
                stop.wait(self._retry_s)

    def _remember(self, uid: str) -> None:
        """Keep recent UIDs so re-listed pods skip the ledger round trip."""
        with self._recent_lock:
            self._recent[uid] = None
            while len(self._recent) > 100_000:
                self._recent.popitem(last=False)

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until the first list is done and the queue drained (for tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.synced.is_set() and self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False
