"""The budgets a webhook worker relays into its OPA sidecar (engine kind ``opa``).

In a cluster, governance publishes the budgets as a ConfigMap every webhook
pod mounts; each worker reads the file and PUTs it into its own OPA, which
keeps data only in memory. The OPA side is the REST double of tests/support
(OPA's published API on OPA's own Go engine; no OPA binary can be installed
here), driven by the real OPA server engine. Time for the periodic re-put is
the service's injectable monotonic clock, moved by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import REGISTRY

from carbongate import settings as settings_mod
from policy_engine import errors, opa_server
from tests.support import opa_rest_double
from webhook import datasync, service, state

DOC = {"period": "2026-11", "generated_at": "2026-11-22T12:00:00Z",
       "teams": {"ml": {"limit_g": 800.0, "used_g": 700.0, "percent": 87.5, "state": "warn"}}}
GRID = {"schema": 1, "generated_at": "2026-11-22T12:00:00Z", "regions": {}}


class Monotonic:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def opa() -> Iterator[opa_rest_double.OpaRestDouble]:
    with opa_rest_double.OpaRestDouble() as double:
        yield double


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
def budgets_path(tmp_path: Path) -> Path:
    return tmp_path / "budgets" / "budgets.json"


@pytest.fixture
def worker(opa: opa_rest_double.OpaRestDouble, monotonic: Monotonic, budgets_path: Path,
           tmp_path: Path) -> Iterator[service.AdmissionService]:
    """One worker's service with an OPA sidecar engine; nothing synced yet."""
    settings = settings_mod.load(environ={}, overrides={
        "engine": {"kind": "opa", "opa_url": opa.url},
        "grid": {"snapshot_path": tmp_path / "grid-snapshot.json"},
        "governance": {"budgets_snapshot_path": budgets_path},
    })
    engine = opa_server.OpaServerEngine(url=opa.url, policy_dir=settings.engine.policy_dir,
                                        timeout_s=2.0)
    built = service.AdmissionService(
        settings=settings, engine=engine,
        namespace_labels=state.NamespaceLabels(reader=lambda namespace: {}, ttl_s=30),
        energy_kwh=lambda obj, replicas: 0.0, monotonic=monotonic)
    yield built
    built.close()
    engine.close()


def write(path: Path, document: Any) -> None:
    """Replace the file as the kubelet does, with a new size so the change is seen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")


def in_opa(opa: opa_rest_double.OpaRestDouble) -> Any:
    return opa.data().get("carbongate", {}).get("budgets")


def budget_puts(opa: opa_rest_double.OpaRestDouble) -> int:
    return sum(1 for r in opa.seen if (r.method, r.path) == ("PUT", "/v1/data/carbongate/budgets"))


def push_errors() -> float:
    labels = {"document": "budgets", "result": "error"}
    return REGISTRY.get_sample_value("carbongate_webhook_data_reloads_total", labels) or 0.0


def test_the_mounted_budgets_are_put_into_opa_but_the_grid_is_left_to_the_feed(
        worker: service.AdmissionService, opa: opa_rest_double.OpaRestDouble,
        budgets_path: Path, tmp_path: Path) -> None:
    write(budgets_path, DOC)
    write(tmp_path / "grid-snapshot.json", GRID)
    worker.sync_data()
    assert in_opa(opa) == DOC
    assert worker.grid.value is not None  # read for the request input ...
    assert "grid" not in opa.data().get("carbongate", {})  # ... but OPA's grid is the feed's
    assert not [r for r in opa.seen if r.path.startswith("/v1/data/carbongate/grid")]


def test_a_new_version_of_the_file_replaces_the_document_in_opa(
        worker: service.AdmissionService, opa: opa_rest_double.OpaRestDouble,
        budgets_path: Path) -> None:
    write(budgets_path, DOC)
    worker.sync_data()
    exhausted = {**DOC, "teams": {"ml": {"limit_g": 800.0, "used_g": 900.0, "percent": 112.5,
                                         "state": "exhausted"}}}
    write(budgets_path, exhausted)
    worker.sync_data()
    assert in_opa(opa) == exhausted
    worker.sync_data()  # unchanged file, not yet due: nothing more sent
    assert budget_puts(opa) == 2


def test_a_push_that_failed_is_tried_again_on_the_next_sync(
        worker: service.AdmissionService, opa: opa_rest_double.OpaRestDouble,
        budgets_path: Path) -> None:
    write(budgets_path, DOC)
    errors_before = push_errors()
    opa.fault = "error500"  # the sidecar is not serving yet
    worker.sync_data()
    assert push_errors() == errors_before + 1
    opa.fault = "none"
    assert in_opa(opa) is None
    worker.sync_data()  # the file has not changed, and no re-put is due: only the retry sends it
    assert in_opa(opa) == DOC
    worker.sync_data()
    assert budget_puts(opa) == 1  # delivered once it got through, not again


def test_a_sidecar_that_lost_its_data_gets_the_budgets_again_after_a_minute(
        worker: service.AdmissionService, opa: opa_rest_double.OpaRestDouble,
        budgets_path: Path, monotonic: Monotonic) -> None:
    write(budgets_path, DOC)
    worker.sync_data()
    # What a restarted OPA looks like from here: the document is gone.
    requests.delete(f"{opa.url}/v1/data/carbongate/budgets", timeout=5).raise_for_status()
    monotonic.now += datasync.OPA_REPUT_S - 1
    worker.sync_data()
    assert in_opa(opa) is None
    monotonic.now += 1
    worker.sync_data()
    assert in_opa(opa) == DOC
    assert budget_puts(opa) == 2
    monotonic.now += datasync.OPA_REPUT_S - 1  # the minute counts from the last put
    worker.sync_data()
    assert budget_puts(opa) == 2


def test_a_document_opa_cannot_hold_is_not_tried_again(
        worker: service.AdmissionService, opa: opa_rest_double.OpaRestDouble,
        budgets_path: Path, monotonic: Monotonic) -> None:
    write(budgets_path, DOC)
    worker.sync_data()
    # NaN parses in Python but is no JSON: put_data refuses it with PolicyDataError.
    budgets_path.write_text('{"period": "2026-11", "teams": {"ml": {"percent": NaN}}}',
                            encoding="utf-8")
    errors_before = push_errors()
    worker.sync_data()
    assert worker.budgets.value is not None and math.isnan(worker.budgets.value["teams"]["ml"]["percent"])
    assert push_errors() == errors_before + 1
    for _ in range(3):
        worker.sync_data()
    assert push_errors() == errors_before + 1
    # The re-put repeats what OPA last accepted, never the refused version.
    requests.delete(f"{opa.url}/v1/data/carbongate/budgets", timeout=5).raise_for_status()
    monotonic.now += datasync.OPA_REPUT_S
    worker.sync_data()
    assert in_opa(opa) == DOC
    assert push_errors() == errors_before + 1


class FailingEngine:
    """An in-process engine whose every data update fails (only ``put_data`` is used here)."""

    ready = True
    version = "test"

    def __init__(self) -> None:
        self.puts: list[str] = []

    def put_data(self, root: str, value: Any) -> None:
        self.puts.append(root)
        raise errors.PolicyEngineError("the new generation did not build")


def test_an_embedded_engine_that_failed_is_not_asked_again_until_the_file_changes(
        budgets_path: Path, tmp_path: Path) -> None:
    """Only a sidecar's failure passes (it starts, restarts); rebuilding in-process each
    second would only burn a core."""
    settings = settings_mod.load(environ={}, overrides={
        "grid": {"snapshot_path": tmp_path / "grid-snapshot.json"},
        "governance": {"budgets_snapshot_path": budgets_path},
    })
    engine = FailingEngine()
    built = service.AdmissionService(
        settings=settings, engine=engine,  # type: ignore[arg-type]
        namespace_labels=state.NamespaceLabels(reader=lambda namespace: {}, ttl_s=30),
        energy_kwh=lambda obj, replicas: 0.0, monotonic=Monotonic())
    try:
        write(budgets_path, DOC)
        for _ in range(3):
            built.sync_data()
        assert engine.puts == ["budgets"]
        write(budgets_path, {**DOC, "teams": {}})
        built.sync_data()
        assert engine.puts == ["budgets", "budgets"]
    finally:
        built.close()
