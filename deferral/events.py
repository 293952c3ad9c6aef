"""Kubernetes Events that tell a workload's owner what carbongate did and why.

``kubectl describe pod`` shows them next to the scheduler's. One ``Deferred``
event when the controller first sees a held workload and one ``Released``
event when it lets it go, each with the reason and the intensities, plus
``Replanned`` when a new forecast moves the window. Deferred and Released
have names derived from the object's uid, so a restarted or newly elected
controller that sees the same workload again gets 409 AlreadyExists instead
of writing a duplicate.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from carbongate import kube as k8s
from deferral import kube, workloads

log = logging.getLogger(__name__)

COMPONENT = "carbongate-deferral"
Reason = Literal["Deferred", "Released", "Replanned", "DeadlineMissed", "Paused", "Resumed",
                 "Finished"]

_API_VERSION = {"Pod": "v1", "Job": "batch/v1"}


class Subject(Protocol):
    """What an event names: a deferred workload or an interruptible Job."""

    @property
    def key(self) -> workloads.Key: ...

    @property
    def uid(self) -> str: ...

    @property
    def resource_version(self) -> str: ...


def event(
    deferred: Subject,
    *,
    reason: Reason,
    message: str,
    now: datetime,
    instance: str,
    warning: bool = False,
    unique: bool = True,
) -> dict[str, Any]:
    """A core/v1 Event about ``deferred``; ``unique`` names it once per object and reason."""
    suffix = reason.lower() if unique else f"{reason.lower()}-{secrets.token_hex(4)}"
    name = f"{deferred.key.name[:200]}.{deferred.uid[:8] or 'nouid'}.{suffix}"
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    micro = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": deferred.key.namespace},
        "involvedObject": {
            "apiVersion": _API_VERSION[deferred.key.kind], "kind": deferred.key.kind,
            "namespace": deferred.key.namespace, "name": deferred.key.name,
            "uid": deferred.uid, "resourceVersion": deferred.resource_version,
        },
        "reason": reason, "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": "carbongate.io/deferral", "reportingInstance": instance,
        "action": {"Deferred": "Defer", "Released": "Release", "Replanned": "Replan",
                   "DeadlineMissed": "Release", "Paused": "Pause", "Resumed": "Resume",
                   "Finished": "Finish"}[reason],
        "firstTimestamp": stamp, "lastTimestamp": stamp, "eventTime": micro, "count": 1,
    }


def deferred_message(deferred: workloads.Deferred) -> str:
    """Why it waits and until when, with the intensity admission saw."""
    notes = deferred.annotations
    parts = [f"waiting for a clean window from {_text(deferred.not_before)}",
             f"release by {workloads.format_time(deferred.release_by)}",
             f"deadline {_text(deferred.deadline)}"]
    if notes.get(workloads.INTENSITY):
        parts.append(f"{notes.get(workloads.REGION, 'home')} at "
                     f"{notes[workloads.INTENSITY]} gCO2/kWh at admission")
    if notes.get(workloads.REASON):
        parts.append(f"reason {notes[workloads.REASON]}")
    if deferred.problems:
        parts.append("problems: " + "; ".join(deferred.problems))
    return ", ".join(parts)


def released_message(deferred: workloads.Deferred, *, reason: str, detail: str,
                     g_per_kwh: float | None, lag_s: float) -> str:
    """The reason, the intensity now against the one at admission, and the lag."""
    parts = [f"released ({reason}): {detail}"]
    admitted = deferred.annotations.get(workloads.INTENSITY)
    now_text = "unknown" if g_per_kwh is None else f"{round(g_per_kwh)}"
    parts.append(f"intensity {now_text} gCO2/kWh now, {admitted or 'unknown'} at admission")
    parts.append(f"{lag_s:.1f}s after due")
    return "; ".join(parts)


class Recorder:
    """Writes events; a failure to record never stops a release."""

    def __init__(self, *, gateway: kube.Gateway, instance: str) -> None:
        self._gateway = gateway
        self.instance = instance

    def record(self, body: Mapping[str, Any]) -> bool:
        """Create the event; False when it exists already or could not be written."""
        try:
            self._gateway.create_event(body["metadata"]["namespace"], body)
        except k8s.ApiException as error:
            if error.status != 409:
                log.warning("event %s not recorded: %s", body["metadata"]["name"], error.status)
            return False
        except kube.TRANSPORT_ERRORS as error:
            log.warning("event %s not recorded: %s", body["metadata"]["name"], error)
            return False
        return True


def _text(value: datetime | None) -> str:
    return "unknown" if value is None else workloads.format_time(value)
