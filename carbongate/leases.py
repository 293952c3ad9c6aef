"""Leader election on a ``coordination.k8s.io/v1`` Lease, the way client-go does it.

Several replicas of a component may run; only the one holding its Lease does
the work that must happen once per cluster: the deferral controller releases
workloads (a gate is never removed twice), governance collects runs and
publishes budgets, the carbon feed polls the grid providers. A replica that
lost the API server stops acting before another takes over.

:class:`Elector` is the election. The holder renews ``spec.renewTime`` every
``renew_interval_s`` with an update guarded by ``metadata.resourceVersion``
(a 409 Conflict means someone else wrote first). A candidate takes the Lease
over only after it has seen the same record unchanged for
``leaseDurationSeconds`` of its *own* clock, which makes takeover independent
of clock skew between replicas (client-go's ``observedTime``). A leader that
has not renewed for ``renew_deadline_s`` (two thirds of the duration) stops
acting even before anyone else takes over. So a follower takes over at most
``lease_duration_s + renew_interval_s`` after the leader's last renewal, and
at once when the leader gives the Lease up on shutdown (:meth:`Elector.release`).

:class:`Leadership` runs a component's work on a thread of its own while this
replica leads (a *term*) and stops it when it no longer does.

This module is a foundation: it imports no component, so what each pod
needs RBAC for stays derived from the modules it imports (tests/deploy/kube_calls.py).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import urllib3.exceptions

from carbongate import clock as clock_mod
from carbongate import kube
from carbongate import settings as settings_mod

log = logging.getLogger(__name__)

# No answer at all from the API server.
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (OSError, urllib3.exceptions.HTTPError)
_API_ERRORS: tuple[type[BaseException], ...] = (kube.ApiException,
                                               *_TRANSPORT_ERRORS)


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    lease_duration_s: int = 15
    renew_interval_s: float = 2.0

    @property
    def renew_deadline_s(self) -> float:
        return self.lease_duration_s * 2 / 3


def lease_config(*, section: str, namespace: str, name: str, identity: str,
                 lease_duration_s: int, lease_renew_s: float) -> LeaseConfig:
    """A component's Lease from its settings section (named in errors).

    The identity defaults to hostname and process id; a renew interval that
    could let the Lease lapse between two renewals is refused.
    """
    config = LeaseConfig(namespace=namespace, name=name,
                         identity=identity or f"{socket.gethostname()}-{os.getpid()}",
                         lease_duration_s=lease_duration_s, renew_interval_s=lease_renew_s)
    if not 0 < config.renew_interval_s < config.renew_deadline_s:
        raise settings_mod.SettingsError(
            f"{section}.lease_renew_s ({lease_renew_s}) must be positive and shorter than two "
            f"thirds of {section}.lease_duration_s ({lease_duration_s}), or the leader would "
            "lose the Lease between two renewals")
    return config


class Elector:
    """Acquires, renews and gives up the Lease; asks nothing of anyone else."""

    def __init__(self, *, api: kube.CoordinationV1Api, config: LeaseConfig) -> None:
        # Leases travel as the API's JSON (dicts), which the client serialises
        # as they are; its typed signatures only know the generated models.
        self._api: Any = api
        self._config = config
        self._renewed_at: datetime | None = None
        self._observed: tuple[Any, ...] | None = None
        self._observed_at: datetime | None = None
        self._last_try: datetime | None = None

    @property
    def identity(self) -> str:
        return self._config.identity

    def is_leader(self, now: datetime) -> bool:
        """Held, and renewed recently enough to be sure nobody else has it."""
        return self._renewed_at is not None and now < self._renewed_at + timedelta(
            seconds=self._config.renew_deadline_s)

    def next_attempt(self, now: datetime) -> datetime:
        if self._last_try is None:
            return now
        return self._last_try + timedelta(seconds=self._config.renew_interval_s)

    def tick(self, now: datetime) -> bool:
        """Try to acquire or renew when due; returns whether this replica leads."""
        if self._last_try is not None and now < self.next_attempt(now):
            return self.is_leader(now)
        self._last_try = now
        try:
            self._try(now)
        except kube.ApiException as error:
            log.warning("lease %s: %s %s", self._config.name, error.status, error.reason)
        except _TRANSPORT_ERRORS + (ValueError,) as error:  # ValueError: client-side checks
            log.warning("lease %s: %s", self._config.name, error)
        return self.is_leader(now)

    def release(self) -> None:
        """Give the Lease up on shutdown so a standby takes over at once."""
        if self._renewed_at is None:
            return
        try:
            lease = self._read()
            if lease is not None and lease["spec"].get("holderIdentity") == self.identity:
                lease["spec"].update(holderIdentity=None, leaseDurationSeconds=1)
                self._api.replace_namespaced_lease(self._config.name, self._config.namespace,
                                                   lease, _preload_content=False)
        except _API_ERRORS as error:
            log.warning("lease %s not released: %s", self._config.name, error)
        self._renewed_at = None

    def _try(self, now: datetime) -> None:
        lease = self._read()
        if lease is None:
            self._create(now)
            return
        spec = lease.setdefault("spec", {})
        holder = spec.get("holderIdentity")
        if holder != self.identity:
            self._renewed_at = None
            if not self._expired(lease, now):
                return
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec["acquireTime"] = _micro(now)
            log.info("lease %s: taking over from %r", self._config.name, holder)
        spec.update(holderIdentity=self.identity, renewTime=_micro(now),
                    leaseDurationSeconds=self._config.lease_duration_s)
        try:
            self._api.replace_namespaced_lease(self._config.name, self._config.namespace, lease,
                                               _preload_content=False)
        except kube.ApiException as error:
            if error.status == 409:
                self._renewed_at = None
                return
            raise
        self._renewed_at = now

    def _expired(self, lease: dict[str, Any], now: datetime) -> bool:
        """Unchanged for a whole lease duration on our clock (or never held)."""
        spec = lease["spec"]
        if not spec.get("holderIdentity"):
            return True
        record = (spec.get("holderIdentity"), spec.get("renewTime"),
                  lease["metadata"].get("resourceVersion"))
        if record != self._observed:
            self._observed, self._observed_at = record, now
            return False
        duration = int(spec.get("leaseDurationSeconds") or self._config.lease_duration_s)
        assert self._observed_at is not None
        return now >= self._observed_at + timedelta(seconds=duration)

    def _create(self, now: datetime) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self._config.name, "namespace": self._config.namespace},
            "spec": {"holderIdentity": self.identity,
                     "leaseDurationSeconds": self._config.lease_duration_s,
                     "acquireTime": _micro(now), "renewTime": _micro(now),
                     "leaseTransitions": 0},
        }
        try:
            self._api.create_namespaced_lease(self._config.namespace, body,
                                              _preload_content=False)
        except kube.ApiException as error:
            if error.status == 409:  # another replica created it first
                return
            raise
        self._renewed_at = now

    def _read(self) -> dict[str, Any] | None:
        try:
            response = self._api.read_namespaced_lease(
                self._config.name, self._config.namespace, _preload_content=False)
        except kube.ApiException as error:
            if error.status == 404:
                return None
            raise
        try:
            lease: dict[str, Any] = json.loads(response.data)
        finally:
            response.release_conn()
        return lease


def _micro(value: datetime) -> str:
    """A ``MicroTime``: RFC 3339 with microseconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# One term's work: runs until the event is set.
Work = Callable[[threading.Event], None]
MIN_WAIT_S = 0.05


class Candidate(Protocol):
    """What of :class:`Elector` the loop uses."""

    def tick(self, now: datetime) -> bool:
        """Acquire or renew when due; whether this replica leads."""
        ...

    def next_attempt(self, now: datetime) -> datetime:
        """When ``tick`` will next talk to the API server."""
        ...

    def release(self) -> None:
        """Give the Lease up (on shutdown), so a standby takes over at once."""
        ...


@dataclass
class _Term:
    stop: threading.Event
    thread: threading.Thread


class Leadership:
    """Runs ``work`` while this replica holds the Lease, and stops it when it no longer does.

    Without a candidate (no Lease configured) it simply leads. Without a
    ``clock`` it runs on the wall clock. ``name`` says
    whose work it is, in logs and the term thread's name.
    ``on_change(leading)`` is called on every change, after a term has ended.
    """

    def __init__(self, *, candidate: Candidate | None, work: Work, name: str,
                 clock: clock_mod.Clock | None = None,
                 on_change: Callable[[bool], None] = lambda leading: None,
                 stop_timeout_s: float = 10.0) -> None:
        self._candidate = candidate
        self._work = work
        self._clock = clock or clock_mod.SystemClock()
        self._name = name
        self._on_change = on_change
        self._stop_timeout_s = stop_timeout_s
        self._leading = False
        self.release_on_exit = True

    @property
    def leading(self) -> bool:
        """Whether a term is running now."""
        return self._leading

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: tick the election, start and end terms (blocks)."""
        if self._candidate is None:
            self._set_leading(True)
            try:
                self._work(stop)
            finally:
                self._set_leading(False)
            return
        term: _Term | None = None
        try:
            while not stop.is_set():
                now = self._clock.now()
                term = self._follow(self._candidate.tick(now), term)
                wait_s = max((self._candidate.next_attempt(now) - now).total_seconds(),
                             MIN_WAIT_S)
                self._clock.wait(stop, wait_s)
        finally:
            if term is not None:
                self._end(term)
            if self.release_on_exit:
                self._candidate.release()

    def _follow(self, leading: bool, term: _Term | None) -> _Term | None:
        """Start a term on winning, end it on losing; restart work that died."""
        if term is not None and not term.thread.is_alive():
            log.error("%s: work ended on its own while leading; starting it again", self._name)
            self._end(term)
            term = None
        if leading and term is None:
            log.info("%s: leading", self._name)
            return self._begin()
        if not leading and term is not None:
            log.warning("%s: no longer leading: its work stopped", self._name)
            self._end(term)
            return None
        return term

    def _begin(self) -> _Term:
        stop = threading.Event()
        thread = threading.Thread(target=self._work, args=(stop,), name=f"{self._name}-term",
                                  daemon=True)
        thread.start()
        self._set_leading(True)
        return _Term(stop=stop, thread=thread)

    def _end(self, term: _Term) -> None:
        term.stop.set()
        term.thread.join(self._stop_timeout_s)
        if term.thread.is_alive():
            log.error("%s: the last term's work did not stop within %.0fs", self._name,
                      self._stop_timeout_s)
        self._set_leading(False)

    def _set_leading(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            self._on_change(leading)
