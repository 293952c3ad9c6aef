"""Builders for AdmissionReviews, Pods and Jobs, so tests read as sentences."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "admission"
LOOPBACK = FIXTURES / "k8s-v1.28-loopback"


def pod(
    *,
    name: str = "train",
    namespace: str = "ml-team",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    gates: list[str] | None = None,
    affinity: dict[str, Any] | None = None,
    owner_kind: str | None = None,
    cpu: str = "2",
    memory: str = "4Gi",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "python:3.11-slim",
                        "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
        "restartPolicy": "Never",
    }
    if gates is not None:
        spec["schedulingGates"] = [{"name": g} for g in gates]
    if affinity is not None:
        spec["affinity"] = affinity
    metadata: dict[str, Any] = {"name": name, "namespace": namespace,
                                "labels": labels or {}, "annotations": annotations or {}}
    if owner_kind:
        metadata["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": owner_kind, "name": name,
                                        "uid": "0000", "controller": True, "blockOwnerDeletion": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def job(*, name: str = "nightly", namespace: str = "ml-team", labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None, suspend: bool | None = None) -> dict[str, Any]:
    template = pod(name=name, namespace=namespace, labels=labels)
    del template["metadata"]["name"], template["metadata"]["namespace"]
    spec: dict[str, Any] = {"template": {"metadata": template["metadata"], "spec": template["spec"]},
                            "backoffLimit": 2}
    if suspend is not None:
        spec["suspend"] = suspend
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": spec}


def review(obj: dict[str, Any] | None = None, *, operation: str = "CREATE", uid: str = "uid-1",
           dry_run: bool = False, namespace: str | None = None) -> dict[str, Any]:
    obj = obj if obj is not None else pod()
    kind = obj.get("kind", "Pod")
    group = "batch" if kind == "Job" else ""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": kind.lower() + "s"},
            "namespace": namespace or obj.get("metadata", {}).get("namespace", "default"),
            "name": obj.get("metadata", {}).get("name", ""),
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin"},
            "object": obj,
            "oldObject": None,
            "dryRun": dry_run,
        },
    }


def body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def loopback(name: str) -> dict[str, Any]:
    """A review captured from a real Kubernetes v1.28 API server."""
    return copy.deepcopy(json.loads((LOOPBACK / name).read_text()))


def grid(now: str, hourly: dict[str, list[float]], *, stale: tuple[str, ...] = ()) -> dict[str, Any]:
    """A grid snapshot whose hourly forecast for each region starts at ``now``."""
    from datetime import datetime, timedelta, timezone

    start = datetime.fromisoformat(now.replace("Z", "+00:00")).astimezone(timezone.utc)
    regions = {}
    for name, values in hourly.items():
        regions[name] = {
            "region": name, "g_per_kwh": values[0], "signal": "average", "source": "test",
            "observed_at": now, "stale": name in stale, "forecast_step_s": 3600,
            "forecast": [{"start": (start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), "g_per_kwh": v}
                         for i, v in enumerate(values)],
            "best_windows": {},
        }
    return {"schema": 1, "generated_at": now, "regions": regions}
