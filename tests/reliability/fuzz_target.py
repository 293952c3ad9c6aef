"""The webhook app as the fuzz tests drive it: real engine, real policies, in-process.

``create_app`` is given the real embedded OPA engine over the shipped Rego
policies and platform config, the governance energy model, a grid snapshot
cut from the real traces at an hour when a cleaner window lies ahead (so
tier-3 work is deferred and patched), a budgets document with a team in each
state, and a namespace reader that knows one namespace per enforcement mode
plus one whose read fails. Only the HTTP socket is missing: requests go
through Flask's test client, which runs the same WSGI stack gunicorn does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from carbongate import settings as settings_mod
from policy_engine import factory
from tests.reliability import grid
from webhook import app as webhook_app

ENFORCEMENT = "carbongate.io/enforcement"
TIER = "carbongate.io/tier"
NAMESPACE_LABELS: Mapping[str, Mapping[str, str]] = {
    "ml-team": {},
    "batch-enforce": {ENFORCEMENT: "enforce", TIER: "3"},
    "batch-warn": {ENFORCEMENT: "warn", TIER: "3"},
    "batch-dryrun": {ENFORCEMENT: "dryrun", TIER: "3"},
    "batch-off": {ENFORCEMENT: "off"},
    "mode-typo": {ENFORCEMENT: "enforcing", TIER: "3"},
    "tier1-prod": {TIER: "1"},
}
UNREADABLE = "unreadable"


def namespace_labels(namespace: str) -> Mapping[str, str]:
    """The test cluster's namespaces; reading ``unreadable`` fails as a forbidden read would."""
    if namespace == UNREADABLE:
        raise PermissionError(f'namespaces "{namespace}" is forbidden: cannot get resource "namespaces"')
    return NAMESPACE_LABELS.get(namespace, {})


def budgets(now: datetime) -> dict[str, Any]:
    return {
        "period": now.strftime("%Y-%m"), "generated_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "teams": {
            "ml": {"limit_g": 800000.0, "used_g": 650000.0, "percent": 81.25, "state": "warn"},
            "web": {"limit_g": 100000.0, "used_g": 150000.0, "percent": 150.0, "state": "exhausted"},
            "data": {"limit_g": 900000.0, "used_g": 1000.0, "percent": 0.1, "state": "ok"},
        },
    }


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


class FuzzTarget:
    """POST /mutate through the app; every answer timed."""

    def __init__(self, app: Any, now: datetime) -> None:
        self.app = app
        self.now = now
        self._client = app.test_client()

    def post(self, body: bytes, content_type: str = "application/json") -> Answer:
        started = time.perf_counter()
        response = self._client.post("/mutate", data=body, content_type=content_type)
        return Answer(response.status_code, response.get_data(), time.perf_counter() - started)

    def review(self, document: Mapping[str, Any]) -> Answer:
        return self.post(json.dumps(document).encode())


def dirty_now() -> datetime:
    """An hour in late November when GB is dirty and a cleaner window follows within a day."""
    return grid.dirty_hour_in("GB", after=datetime(2026, 11, 20, tzinfo=timezone.utc))


@contextmanager
def fuzz_target(directory: Path, *, now: datetime | None = None,
                engine_kind: str = "embedded", opa_url: str = "",
                policy_dir: Path | None = None) -> Iterator[FuzzTarget]:
    now = now or dirty_now()
    grid.write(directory / "grid.json", grid.build(now))
    (directory / "budgets.json").write_text(json.dumps(budgets(now)))
    engine_section: dict[str, Any] = {"kind": engine_kind}
    if opa_url:
        engine_section["opa_url"] = opa_url
    if policy_dir is not None:
        engine_section["policy_dir"] = str(policy_dir)
    settings = settings_mod.load(environ={}, overrides={
        "engine": engine_section,
        "grid": {"snapshot_path": str(directory / "grid.json")},
        "governance": {"budgets_snapshot_path": str(directory / "budgets.json")},
        "webhook": {"metrics_dir": str(directory / "metrics")},
    })
    engine = factory.build(settings.engine)
    app = webhook_app.create_app(settings, engine=engine, namespace_reader=namespace_labels,
                                 clock=lambda: now, start_background=False)
    try:
        yield FuzzTarget(app, now)
    finally:
        app.extensions["carbongate"].close()
        engine.close()
