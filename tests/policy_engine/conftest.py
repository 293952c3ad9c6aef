"""Fixtures for the policy engine tests: policy directories, grids, engines, the OPA double."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from carbongate import settings
from policy_engine import embedded, opa_server
from policy_engine import engine as contract
from tests.support import opa_rest_double

FIXTURE_POLICIES = Path(__file__).resolve().parent.parent / "fixtures" / "policy_engine" / "rego"
REAL_POLICIES = settings.DEFAULT_POLICY_DIR
DECISION = "carbongate/admission/decision"
TOKEN = "tok-7f3a9c-never-log-me"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A private, editable copy of the small fixture policy directory."""
    target = tmp_path / "rego"
    shutil.copytree(FIXTURE_POLICIES, target)
    return target


@pytest.fixture
def engine(policy_dir: Path) -> Iterator[embedded.EmbeddedEngine]:
    built = embedded.EmbeddedEngine(policy_dir=policy_dir)
    yield built
    built.close()


@pytest.fixture
def opa() -> Iterator[opa_rest_double.OpaRestDouble]:
    with opa_rest_double.OpaRestDouble() as double:
        yield double


@pytest.fixture
def server_engine(opa: opa_rest_double.OpaRestDouble,
                  policy_dir: Path) -> Iterator[opa_server.OpaServerEngine]:
    """An OPA server engine talking to the double, policies pushed."""
    built = opa_server.OpaServerEngine(url=opa.url, policy_dir=policy_dir, token=TOKEN,
                                       timeout_s=0.5)
    built.reload_policies()
    yield built
    built.close()


def grid(**regions: float) -> dict[str, Any]:
    """A grid document in the snapshot's shape with only what the fixture policy reads."""
    return {"schema": 1, "generated_at": "2026-11-21T12:00:05Z",
            "regions": {name: {"region": name, "g_per_kwh": value}
                        for name, value in regions.items()}}


def decide(engine: contract.PolicyEngine, input: Mapping[str, Any]) -> dict[str, Any]:
    """The admission decision, which the calling test expects to be defined."""
    decision = engine.evaluate(DECISION, input)
    assert isinstance(decision, dict), f"decision undefined or not an object: {decision!r}"
    return decision


def metric(name: str, **labels: str) -> float:
    """Current value of a sample in the default registry (0 when never set)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
