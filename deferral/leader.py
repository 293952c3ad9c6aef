"""Leader election on a ``coordination.k8s.io/v1`` Lease, the way client-go does it.

Several replicas may run; only the one holding the Lease releases workloads,
so a gate is never removed twice and a replica that lost the API server stops
acting before another takes over. The holder renews ``spec.renewTime`` every
few seconds with an update guarded by ``metadata.resourceVersion`` (a 409
Conflict means someone else wrote first). A candidate takes the Lease over
only after it has seen the same record unchanged for ``leaseDurationSeconds``
of its *own* clock, which makes takeover independent of clock skew between
replicas (client-go's ``observedTime``). A leader that has not renewed for
``renew_deadline_s`` stops acting even before anyone else takes over.

Governance elects its leader with the same code, so this module imports
nothing of the controller but its clock: what a replica needs RBAC for is
derived from the modules it imports (tests/deploy/kube_calls.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes.client
import urllib3.exceptions

from deferral import clock as clock_mod

log = logging.getLogger(__name__)

# No answer at all from the API server (as deferral.kube defines them).
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (OSError, urllib3.exceptions.HTTPError)
_API_ERRORS: tuple[type[BaseException], ...] = (kubernetes.client.ApiException,
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


class Elector:
    """Acquires, renews and gives up the Lease; asks nothing of anyone else."""

    def __init__(self, *, api: kubernetes.client.CoordinationV1Api, config: LeaseConfig,
                 clock: clock_mod.Clock) -> None:
        # Leases travel as the API's JSON (dicts), which the client serialises
        # as they are; its typed signatures only know the generated models.
        self._api: Any = api
        self._config = config
        self._clock = clock
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
        except kubernetes.client.ApiException as error:
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
        except kubernetes.client.ApiException as error:
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
        except kubernetes.client.ApiException as error:
            if error.status == 409:  # another replica created it first
                return
            raise
        self._renewed_at = now

    def _read(self) -> dict[str, Any] | None:
        try:
            response = self._api.read_namespaced_lease(
                self._config.name, self._config.namespace, _preload_content=False)
        except kubernetes.client.ApiException as error:
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
