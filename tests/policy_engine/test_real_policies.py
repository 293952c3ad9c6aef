"""The shipped policies (policies/rego) on both engines: they load, compile, answer the
contract's inputs, and the embedded engine and the OPA server agree on every answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policy_engine import embedded, loader, opa_server
from policy_engine import engine as contract
from tests.policy_engine.conftest import REAL_POLICIES
from tests.support import opa_rest_double

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ACTIONS = {"admit", "defer", "shift", "deny"}


def rfc3339(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def ns(instant: datetime) -> int:
    return int(instant.timestamp()) * 1_000_000_000


def region_plan(now_g: float, clean_hour: int | None, *, stale: bool = False) -> dict[str, Any]:
    """Hourly candidate windows for a 1 h job; one clean hour if asked."""
    windows = []
    for hour in range(24):
        start = NOW + timedelta(hours=hour)
        windows.append({"start": rfc3339(start), "start_ns": ns(start),
                        "end": rfc3339(start + timedelta(hours=1)),
                        "mean_g_per_kwh": 96.0 if hour == clean_hour else now_g})
    return {"now_g_per_kwh": now_g, "signal": "average", "stale": stale, "source": "trace",
            "observed_at": rfc3339(NOW), "move_g": 0.0, "windows": windows}


def admission_input(*, kind: str = "Job", tier: str = "3", now_g: float = 412.0,
                    clean_hour: int | None = 3, stale: bool = False) -> dict[str, Any]:
    """The "OPA input" of docs/architecture.md for one workload in GB."""
    labels = {"carbongate.io/tier": tier, "carbongate.io/team": "ml"}
    return {
        "now": rfc3339(NOW), "now_ns": ns(NOW), "operation": "CREATE", "dry_run": False,
        "kind": kind, "namespace": "ml-team", "namespace_labels": {},
        "object": {"kind": kind, "metadata": {"name": "nightly-train", "labels": labels}},
        "user": {"username": "alice"}, "own_namespace": "carbongate",
        "workload": {"labels": labels, "annotations": {}, "owner_kind": None, "owner_name": None,
                     "template_decision": None, "expected_duration_s": 3600,
                     "max_delay_s": 43200, "regions": ["GB"], "data_region": None,
                     "data_gb": None, "energy_kwh": 0.56, "parse_errors": []},
        "plan": {"home_region": "GB", "regions": {"GB": region_plan(now_g, clean_hour,
                                                                    stale=stale)}},
        "budget": None,
    }


def grid_document() -> dict[str, Any]:
    return {"schema": 1, "generated_at": rfc3339(NOW), "regions": {"GB": {
        "region": "GB", "g_per_kwh": 412.0, "signal": "average", "source": "trace",
        "fallback_used": False, "observed_at": rfc3339(NOW), "fetched_at": rfc3339(NOW),
        "stale": False, "forecast_step_s": 3600,
        "forecast": [{"start": rfc3339(NOW), "g_per_kwh": 412.0}], "best_windows": {}}}}


INPUTS = {
    "tier-3 job, dirty now, clean later": admission_input(),
    "tier-3 job, clean now": admission_input(now_g=80.0, clean_hour=None),
    "tier-1 pod": admission_input(kind="Pod", tier="1"),
    "stale grid data": admission_input(stale=True),
    "a configmap": admission_input(kind="ConfigMap"),
}


@pytest.fixture(scope="module")
def real_embedded() -> Iterator[embedded.EmbeddedEngine]:
    built = embedded.EmbeddedEngine(policy_dir=REAL_POLICIES)
    built.put_data("grid", grid_document())
    built.put_data("budgets", {"period": "2026-11", "teams": {}})
    yield built
    built.close()


@pytest.fixture(scope="module")
def real_server() -> Iterator[opa_server.OpaServerEngine]:
    with opa_rest_double.OpaRestDouble() as double:
        built = opa_server.OpaServerEngine(url=double.url, policy_dir=REAL_POLICIES,
                                           timeout_s=5.0)
        built.reload_policies()
        built.put_data("grid", grid_document())
        built.put_data("budgets", {"period": "2026-11", "teams": {}})
        yield built
        built.close()


def test_the_shipped_policies_compile_and_their_version_is_the_directory_digest(
        real_embedded: embedded.EmbeddedEngine) -> None:
    assert real_embedded.ready
    assert real_embedded.version == loader.load(REAL_POLICIES).version


@pytest.mark.parametrize("name", INPUTS)
def test_every_contract_input_gets_a_decision_of_the_contract_shape(
        real_embedded: embedded.EmbeddedEngine, name: str) -> None:
    decision = real_embedded.evaluate(contract.ADMISSION_DECISION, INPUTS[name])

    assert isinstance(decision, dict)
    assert decision["action"] in ACTIONS
    assert isinstance(decision["annotations"], dict)


@pytest.mark.parametrize("name", INPUTS)
def test_embedded_engine_and_opa_server_give_the_same_decision(
        real_embedded: embedded.EmbeddedEngine, real_server: opa_server.OpaServerEngine,
        name: str) -> None:
    assert real_server.evaluate(contract.ADMISSION_DECISION, INPUTS[name]) == \
        real_embedded.evaluate(contract.ADMISSION_DECISION, INPUTS[name])


def test_the_release_entry_point_answers_on_both_engines(
        real_embedded: embedded.EmbeddedEngine,
        real_server: opa_server.OpaServerEngine) -> None:
    not_before = NOW - timedelta(minutes=5)
    deadline = NOW + timedelta(hours=6)
    release_input = {
        "now": rfc3339(NOW), "now_ns": ns(NOW),
        "workload": {"kind": "Job", "namespace": "ml-team", "name": "nightly-train",
                     "tier": "3", "annotations": {},
                     "not_before": rfc3339(not_before), "not_before_ns": ns(not_before),
                     "deadline": rfc3339(deadline), "deadline_ns": ns(deadline),
                     "expected_duration_s": 3600,
                     "release_by_ns": ns(deadline - timedelta(hours=1))},
        "plan": {"home_region": "GB", "regions": {"GB": region_plan(412.0, None)}},
    }

    released = real_embedded.evaluate(contract.RELEASE_DECISION, release_input)

    assert isinstance(released, dict)
    assert isinstance(released["release"], bool)
    assert real_server.evaluate(contract.RELEASE_DECISION, release_input) == released


def test_the_shipped_tests_are_not_loaded_in_production(
        real_embedded: embedded.EmbeddedEngine) -> None:
    test_packages = {module.path for module in loader.load(REAL_POLICIES, include_tests=True)
                     .modules if module.is_test}

    assert test_packages, "policies/rego ships _test.rego files"
    assert all(not module.is_test for module in loader.load(REAL_POLICIES).modules)
