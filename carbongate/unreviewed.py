"""Workloads the webhook never saw: counted by the components that already watch pods.

When the API server cannot reach the webhook (a wrong ``caBundle``, an expired
certificate, a NetworkPolicy) it admits everything unchanged
(``failurePolicy: Ignore``), and nothing carbongate counts about its own
requests moves. The deferral controller and the governance collector see every
Pod (and the controller every Job) anyway, so they count the ones that should
carry the webhook's ``carbongate.io/decision`` annotation and do not:
``carbongate_unreviewed_workloads_total{namespace, kind}``.

Should carry it: a Pod or Job in a namespace the webhook *enforces* (it
patches nothing in ``warn`` or ``dryrun`` mode, so only there is a missing
annotation proof that it was not asked):

* the namespace is labelled ``carbongate.io/enforcement: enforce``, or carries
  ``carbongate.io/tier`` and no enforcement label (enforce is the platform's
  default mode for a namespace it labelled);
* it is neither carbongate's own namespace nor an exempt one
  (``webhook.own_namespace``, the platform config's ``exempt_namespaces``);
* it is not a DaemonSet's pod (never touched). A pod created by a Job that
  carbongate decided carries the annotation from the Job's template.

Counting: once per workload UID and process, however many watch events and
relists show it (a bounded memory of counted UIDs). Namespace labels come from
a namespace list every ``refresh_s``; a workload seen before its namespace is
known waits for the next list. A namespace that is switched to enforce while
it already runs workloads is not an outage: workloads created before this
process saw the switch are not counted. After a restart the workloads still
present are counted again, in the new process's first scrape, which PromQL's
``increase()`` does not count as an increase.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import prometheus_client

from carbongate import clock as clock_mod
from carbongate import kube, platform, timefmt
from carbongate import settings as settings_mod

log = logging.getLogger(__name__)

PREFIX = "carbongate.io/"
DECISION = PREFIX + "decision"
TIER = PREFIX + "tier"
ENFORCEMENT = PREFIX + "enforcement"
REMEMBERED = 100_000
PAGE_SIZE = 500

JsonObject = Mapping[str, Any]


@dataclass(frozen=True)
class Scope:
    """Namespaces the webhook never touches, whatever their labels say."""

    own_namespace: str
    exempt: frozenset[str]

    @classmethod
    def of(cls, settings: settings_mod.Settings) -> Scope:
        """carbongate's own namespace from the settings; the exempt ones from the platform config."""
        return cls(own_namespace=settings.webhook.own_namespace,
                   exempt=platform.read(settings.engine.policy_dir).exempt_namespaces)

    def enforced(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether the webhook annotates every Pod and Job it decides in this namespace."""
        if namespace == self.own_namespace or namespace in self.exempt:
            return False
        mode = labels.get(ENFORCEMENT)
        if mode is None:
            return TIER in labels
        return mode == "enforce"


def lacks_decision(kind: str, obj: JsonObject) -> bool:
    """A Pod or Job without the decision annotation that the webhook would have written."""
    metadata = obj.get("metadata") or {}
    if DECISION in (metadata.get("annotations") or {}):
        return False
    owners = metadata.get("ownerReferences") or []
    return not (kind == "Pod" and any(o.get("kind") == "DaemonSet" for o in owners))


@dataclass(frozen=True)
class _Seen:
    namespace: str
    name: str
    kind: str
    created: datetime | None


@dataclass(frozen=True)
class _Namespace:
    enforced: bool
    # Workloads created before this were there when the namespace was opted in.
    since: datetime | None


def metrics(registry: prometheus_client.CollectorRegistry) -> tuple[prometheus_client.Counter,
                                                                      prometheus_client.Counter]:
    """The unreviewed counter and the namespace-list error counter, on ``registry``."""
    unreviewed = prometheus_client.Counter(
        "carbongate_unreviewed_workloads_total",
        "Pods and Jobs in enforced namespaces without carbongate's decision annotation "
        "(the webhook never saw them), once per workload UID", ["namespace", "kind"],
        registry=registry)
    errors = prometheus_client.Counter(
        "carbongate_namespace_list_errors_total",
        "Namespace lists that failed (unreviewed workloads wait for the next one)",
        registry=registry)
    return unreviewed, errors


class Unreviewed:
    """Counts unreviewed workloads; ``observe`` from any thread, ``run`` on its own."""

    def __init__(self, *, api_client: kube.ApiClient, scope: Scope,
                 registry: prometheus_client.CollectorRegistry,
                 clock: clock_mod.Now = clock_mod.utc_now, refresh_s: float = 30.0,
                 request_timeout_s: float = 10.0) -> None:
        self._core = kube.CoreV1Api(api_client)
        self._scope, self._clock = scope, clock
        self._refresh_s, self._timeout_s = refresh_s, request_timeout_s
        self.registry = registry
        self.counter, self.list_errors = metrics(registry)
        self._lock = threading.Lock()
        self._namespaces: dict[str, _Namespace] | None = None
        self._pending: collections.OrderedDict[str, _Seen] = collections.OrderedDict()
        self._counted: collections.OrderedDict[str, None] = collections.OrderedDict()

    def observe(self, kind: str, obj: JsonObject) -> None:
        """Look at a Pod or Job from a list or a watch event; count it if unreviewed."""
        metadata = obj.get("metadata") or {}
        uid = str(metadata.get("uid") or "")
        if not uid or not lacks_decision(kind, obj):
            return
        seen = _Seen(namespace=str(metadata.get("namespace") or ""),
                     name=str(metadata.get("name") or ""), kind=kind,
                     created=_created(metadata))
        with self._lock:
            if uid in self._counted:
                return
            known = None if self._namespaces is None else self._namespaces.get(seen.namespace)
            if known is None:
                self._pending[uid] = seen
                while len(self._pending) > REMEMBERED:
                    self._pending.popitem(last=False)
                return
            self._judge(uid, seen, known)

    def run(self, stop: threading.Event) -> None:
        """List namespaces every ``refresh_s`` until ``stop`` is set."""
        while not stop.is_set():
            self.refresh()
            stop.wait(self._refresh_s)

    def refresh(self) -> bool:
        """List the namespaces, then judge the workloads that waited for them."""
        try:
            listed = self._list()
        except (kube.ApiException, OSError, ValueError) as error:
            self.list_errors.inc()
            log.warning("namespace list failed, unreviewed workloads wait: %s", error)
            return False
        now = self._clock()
        with self._lock:
            self._namespaces = self._updated(listed, now)
            pending, self._pending = self._pending, collections.OrderedDict()
            for uid, seen in pending.items():
                known = self._namespaces.get(seen.namespace)
                if known is not None:  # else the namespace is gone: so is the workload
                    self._judge(uid, seen, known)
        return True

    def _updated(self, listed: Mapping[str, Mapping[str, str]], now: datetime
                 ) -> dict[str, _Namespace]:
        before = self._namespaces
        updated: dict[str, _Namespace] = {}
        for name, labels in listed.items():
            enforced = self._scope.enforced(name, labels)
            previous = None if before is None else before.get(name)
            if previous is not None and previous.enforced == enforced:
                updated[name] = previous
            elif previous is not None and enforced:
                updated[name] = _Namespace(enforced=True, since=now)  # switched on just now
            else:
                updated[name] = _Namespace(enforced=enforced, since=None)
        return updated

    def _judge(self, uid: str, seen: _Seen, namespace: _Namespace) -> None:
        if not namespace.enforced:
            return
        if namespace.since is not None and (seen.created is None or seen.created < namespace.since):
            return
        self._counted[uid] = None
        while len(self._counted) > REMEMBERED:
            self._counted.popitem(last=False)
        self.counter.labels(namespace=seen.namespace, kind=seen.kind).inc()
        log.warning("%s %s/%s has no %s: the webhook did not review it", seen.kind,
                    seen.namespace, seen.name, DECISION)

    def _list(self) -> dict[str, dict[str, str]]:
        """Every namespace's labels, page by page."""
        found: dict[str, dict[str, str]] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_preload_content": False,
                                      "_request_timeout": self._timeout_s}
            if token:
                kwargs["_continue"] = token
            response: Any = self._core.list_namespace(**kwargs)  # raw: _preload_content=False
            page = json.loads(response.data)
            for item in page.get("items") or []:
                metadata = item.get("metadata") or {}
                found[str(metadata.get("name"))] = dict(metadata.get("labels") or {})
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return found


def _created(metadata: JsonObject) -> datetime | None:
    try:
        return timefmt.parse_time(str(metadata["creationTimestamp"]))
    except (KeyError, ValueError):
        return None
