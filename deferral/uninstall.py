"""``carbongate release --all``: let go of everything carbongate holds, before it goes.

Removing carbongate (``kubectl delete -k``) removes the controller that
releases deferred work; whatever is still gated or suspended then waits for
nobody. This is the step before: every Pod with carbongate's scheduling gate
loses that gate (and only it: other controllers' gates stay), every Job
carbongate suspended (``carbongate.io/decision: defer``) is unsuspended. A
Job suspended by someone else is left alone.

Each release is the controller's own patch (:mod:`deferral.patches`), with a
``test`` of what it relies on, so a concurrent change (another controller
removing its gate, the running deferral controller releasing the same pod)
is never clobbered: on 409/422 the object is read again and the patch
rebuilt; an object deleted meanwhile is simply gone. A ``Released`` event
tells the owner why. The pass lists again at the end and reports what is
still held (a webhook still admitting would gate new pods: delete the
MutatingWebhookConfiguration first, docs/deploy.md "Uninstall").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deferral import events, kube, patches, workloads

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
DETAIL = "carbongate is being uninstalled (carbongate release --all)"


@dataclass
class Outcome:
    """What one pass did: released, already gone, failed (with why), still held at the end."""

    released: list[workloads.Key] = field(default_factory=list)
    gone: list[workloads.Key] = field(default_factory=list)
    failed: dict[workloads.Key, str] = field(default_factory=dict)
    still_held: list[workloads.Key] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.still_held


def release_all(gateway: kube.Gateway, *, recorder: events.Recorder | None,
                now: Callable[[], datetime], default_duration_s: int) -> Outcome:
    """Release every held Pod and Job in the cluster; see the module docstring."""
    outcome = Outcome()
    for kind in workloads.KINDS:
        for obj in gateway.list(kind).items:
            if workloads.is_waiting(kind, obj):
                _release(gateway, kind, obj, outcome, recorder=recorder, now=now,
                         default_duration_s=default_duration_s)
    outcome.still_held = held(gateway)
    return outcome


def held(gateway: kube.Gateway) -> list[workloads.Key]:
    """Every Pod and Job carbongate holds now."""
    return [workloads.key_of(kind, obj) for kind in workloads.KINDS
            for obj in gateway.list(kind).items if workloads.is_waiting(kind, obj)]


def _release(gateway: kube.Gateway, kind: workloads.Kind, obj: dict[str, Any], outcome: Outcome,
             *, recorder: events.Recorder | None, now: Callable[[], datetime],
             default_duration_s: int) -> None:
    key = workloads.key_of(kind, obj)
    deferred = workloads.read(kind, obj, default_duration_s=default_duration_s, seen_at=now())
    for _ in range(MAX_ATTEMPTS):
        operations = patches.gate_removal(obj) if kind == "Pod" else patches.unsuspend(obj)
        if operations is None:  # released by someone else meanwhile
            return
        try:
            gateway.json_patch(key, operations)
            break
        except kube.API_ERRORS as error:
            if not kube.is_status(error, 404, 409, 422):
                outcome.failed[key] = str(error)
                log.error("%s: not released: %s", key, error)
                return
            if kube.is_status(error, 404):
                outcome.gone.append(key)
                return
        try:  # changed under the patch: read it again and rebuild
            obj = gateway.read(key)
        except kube.API_ERRORS as error:
            if kube.is_status(error, 404):
                outcome.gone.append(key)
            else:
                outcome.failed[key] = str(error)
            return
    else:
        outcome.failed[key] = f"still conflicting after {MAX_ATTEMPTS} attempts"
        return
    outcome.released.append(key)
    log.info("%s released: %s", key, DETAIL)
    if recorder is not None and deferred is not None:
        recorder.record(events.event(
            deferred, reason="Released", now=now(), instance=recorder.instance,
            message=f"released (uninstall): {DETAIL}; it was held until "
                    f"{workloads.format_time(deferred.release_by)} at the latest"))


def summary(outcome: Outcome) -> str:
    """Lines for the terminal: counts, then each failure and each workload still held."""
    lines = [f"released {len(outcome.released)}, already gone {len(outcome.gone)}, "
             f"failed {len(outcome.failed)}, still held {len(outcome.still_held)}"]
    lines += [f"failed: {key}: {why}" for key, why in sorted(outcome.failed.items())]
    lines += [f"still held: {key}" for key in outcome.still_held]
    return "\n".join(lines)
