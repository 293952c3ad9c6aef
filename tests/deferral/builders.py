"""Deferred Pods and Jobs as the webhook leaves them, built on captured objects.

The base Pod is the real gated Pod a v1.28 API server stored
(``tests/fixtures/deferral/15_create-pod_gated-batch.json``) and the base Job
the real suspended Job (``10_create-job_deferred-etl.json``); the builders
add the annotations carbongate writes at admission.
"""

from __future__ import annotations

import copy
import functools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from deferral import workloads

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "deferral"
GATE = workloads.GATE


@functools.cache
def _review(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def captured_gated_pod() -> dict[str, Any]:
    return copy.deepcopy(_review("15_create-pod_gated-batch.json")["request"]["object"])


def captured_gate_removal() -> tuple[dict[str, Any], dict[str, Any]]:
    """(object before, object after) of the real gate-removal UPDATE."""
    request = _review("16_update-pod_gated-batch.json")["request"]
    return copy.deepcopy(request["oldObject"]), copy.deepcopy(request["object"])


def captured_suspended_job() -> dict[str, Any]:
    return copy.deepcopy(_review("10_create-job_deferred-etl.json")["request"]["object"])


def _fresh(obj: dict[str, Any], name: str, namespace: str) -> dict[str, Any]:
    metadata = obj["metadata"]
    for server_set in ("uid", "resourceVersion", "creationTimestamp", "managedFields",
                       "generation"):
        metadata.pop(server_set, None)
    metadata.pop("generateName", None)
    metadata.update(name=name, namespace=namespace)
    obj.pop("status", None)
    return obj


def annotations(*, not_before: datetime | None, deadline: datetime | None,
                duration: str = "2h", region: str = "GB", intensity: str = "275",
                extra: dict[str, str] | None = None) -> dict[str, str]:
    notes = {workloads.DECISION: "defer", workloads.REASON: "cleaner-window",
             workloads.EXPECTED_DURATION: duration, workloads.REGION: region,
             workloads.INTENSITY: intensity}
    if not_before is not None:
        notes[workloads.NOT_BEFORE] = workloads.format_time(not_before)
    if deadline is not None:
        notes[workloads.DEADLINE] = workloads.format_time(deadline)
    notes.update(extra or {})
    return notes


def gated_pod(name: str, *, not_before: datetime | None, deadline: datetime | None,
              namespace: str = "ml-team", gates: tuple[str, ...] = (GATE,),
              tier: str = "3", **notes: Any) -> dict[str, Any]:
    pod = _fresh(captured_gated_pod(), name, namespace)
    pod["metadata"]["labels"] = {workloads.TIER: tier}
    pod["metadata"]["annotations"] = annotations(not_before=not_before, deadline=deadline,
                                                 **notes)
    pod["spec"]["schedulingGates"] = [{"name": g} for g in gates]
    return pod


def suspended_job(name: str, *, not_before: datetime | None, deadline: datetime | None,
                  namespace: str = "ml-team", tier: str = "3", **notes: Any) -> dict[str, Any]:
    job = _fresh(captured_suspended_job(), name, namespace)
    job["metadata"]["labels"] = {workloads.TIER: tier}
    job["metadata"]["annotations"] = annotations(not_before=not_before, deadline=deadline,
                                                 **notes)
    job["spec"]["suspend"] = True
    job["spec"].pop("selector", None)
    template_labels = job["spec"]["template"]["metadata"].get("labels", {})
    for key in list(template_labels):
        if "controller-uid" in key or "job-name" in key:
            del template_labels[key]
    return job


def kueue_job(name: str, *, not_before: datetime | None, deadline: datetime | None,
              gated_by: str = GATE, queue: str = "user-queue", **notes: Any) -> dict[str, Any]:
    """A Job in a Kueue queue as the webhook leaves it: Kueue suspended it, carbongate gated its admission."""
    job = suspended_job(name, not_before=not_before, deadline=deadline, **notes)
    job["metadata"]["labels"][workloads.KUEUE_QUEUE_NAME] = queue
    job["metadata"]["annotations"][workloads.KUEUE_ADMISSION_GATED_BY] = gated_by
    return job
