"""The case suite: AdmissionReview in, expected decision and patched resource out.

Like ``kyverno test`` with ``patchedResource`` (which Gatekeeper's gator
lacks): each ``cases/*.yaml`` names a real AdmissionReview from
``tests/fixtures/admission`` (most captured from a Kubernetes v1.28 API
server), the instant, the grid the decision sees and the namespace labels,
and states the expected decision and the resource after the patch. Every case
runs through the real embedded OPA engine with the shipped policies and the
same ``admission.review`` the webhook runs; the patch must also apply cleanly
and the result validate against the Kubernetes 1.30 schema.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from carbongate import settings as settings_mod
from planner import energy
from planner import plan as planning
from policy_engine import embedded
from tests.webhook import builders
from webhook import admission, patches, reviews

CASES = Path(__file__).resolve().parent / "cases"
EXPECTED = Path(__file__).resolve().parent / "expected"
MODEL = energy.EnergyModel.default()


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    return [(path.stem, yaml.safe_load(path.read_text())) for path in sorted(CASES.glob("*.yaml"))]


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    # One engine in the pool: cases evaluate one at a time, and each data put builds a generation.
    built = embedded.EmbeddedEngine(policy_dir=settings_mod.DEFAULT_POLICY_DIR, pool_size=1)
    yield built
    built.close()


def decide_case(engine: Any, case: dict[str, Any]) -> tuple[dict[str, Any], admission.Result]:
    """Run one case through the real engine and the webhook's decision path."""
    document = builders.loopback(case["review"]) if "/" not in case["review"] else \
        json.loads((builders.FIXTURES / case["review"]).read_text())
    for key, value in case.get("object_changes", {}).items():
        _set(document["request"]["object"], key, value)
    hourly = {region: expand(values) for region, values in case["grid"].items()}
    grid = builders.grid(case["now"], hourly, stale=tuple(case.get("stale", ())))
    engine.put_data("grid", grid)
    engine.put_data("budgets", case.get("budgets") or {"period": "", "teams": {}})
    config = json.loads((settings_mod.DEFAULT_POLICY_DIR / "carbongate/config/data.json").read_text())
    knowledge = admission.Knowledge(
        now=datetime.fromisoformat(case["now"].replace("Z", "+00:00")), grid=grid,
        budgets=case.get("budgets"), config=config, namespace_labels=case.get("namespace_labels", {}),
        home_region=case.get("home_region", "GB"), own_namespace="carbongate",
        exempt_namespaces=frozenset({"kube-system", "kube-public", "kube-node-lease"}),
        policy_version="case", grid_series=planning.parse_regions(grid["regions"]),
    )
    result = admission.review(
        reviews.parse(json.dumps(document).encode()), knowledge=knowledge,
        decide=lambda doc: engine.evaluate("carbongate/admission/decision", doc),
        energy_kwh=lambda obj, seconds: MODEL.energy_kwh(obj, seconds),
    )
    return document, result


def expand(values: str | list[float]) -> list[float]:
    """``"412*4, 96*2, 300*42"`` -> 48 hourly values (lists pass through)."""
    if isinstance(values, list):
        return [float(v) for v in values]
    expanded: list[float] = []
    for part in values.split(","):
        value, _, count = part.strip().partition("*")
        expanded += [float(value)] * int(count or 1)
    return expanded


def _set(obj: dict[str, Any], dotted: str, value: Any) -> None:
    """Assign ``metadata.labels.carbongate\\.io/tier`` style paths (``\\.`` is a literal dot)."""
    keys = [k.replace("\0", ".") for k in dotted.replace("\\.", "\0").split(".")]
    for key in keys[:-1]:
        if not isinstance(obj.get(key), dict):
            obj[key] = {}
        obj = obj[key]
    obj[keys[-1]] = value


@pytest.mark.parametrize(("name", "case"), load_cases(), ids=[n for n, _ in load_cases()])
def test_case(engine: Any, name: str, case: dict[str, Any]) -> None:
    document, result = decide_case(engine, case)
    expect = case["expect"]
    response = result.response["response"]
    assert response["uid"] == document["request"]["uid"]
    assert response["allowed"] is expect.get("allowed", True)
    decision = result.decision or {}
    assert decision.get("action") == expect.get("action"), decision
    if "reason" in expect:
        assert decision.get("reason") == expect["reason"], decision
    assert response.get("warnings", []) == expect.get("warnings", []), response.get("warnings")
    original = document["request"]["object"]
    patched = patches.apply_patch(original, reviews.decoded_patch(result.response))
    expected_path = EXPECTED / f"{name}.patched.json"
    if expect.get("unchanged"):
        assert patched == original
    else:
        assert patched == json.loads(expected_path.read_text()), f"differs from {expected_path.name}"
    _validate(patched)


def _validate(obj: dict[str, Any]) -> None:
    """The patched object must still be a valid Pod or Job for Kubernetes 1.30."""
    candidate = copy.deepcopy(obj)
    candidate.setdefault("apiVersion", "batch/v1" if candidate.get("kind") == "Job" else "v1")
    kubernetes_validate.validate(candidate, "1.30", strict=False)
