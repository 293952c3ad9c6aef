"""The OPA sidecar's system.authz lets each caller do its job and nothing more.

Two layers. First the policy alone on OPA's own Go engine (the embedded
one), with the environment OPA would hand it through ``opa.runtime()``
supplied by ``with``. Then the real clients (the webhook's OPA server
engine, the feed's publisher, governance's budget sink) against the OPA REST
test double of tests/support, which authorises every request with this
policy exactly as ``opa run --authentication=token --authorization=basic``
does: whatever the code sends must pass, and each caller must be refused
outside its grant. The double's engine has no process environment, so there
``opa.runtime().env`` is replaced by the tokens as a literal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opa_bindings import OpaEngine

from carbon_feed import publisher
from governance import budgets
from policy_engine import errors as engine_errors
from policy_engine import opa_server
from tests.deploy import support
from tests.deploy.test_deploy_policies import materialize
from tests.support import opa_rest_double

AUTHZ = (support.REPO / "deploy/base/webhook/opa-authz.rego").read_text(encoding="utf-8")
TOKENS = {"webhook": "w" * 40, "feed": "f" * 40, "governance": "g" * 40}
ENVIRONMENT = {"CARBONGATE_TOKEN_WEBHOOK": TOKENS["webhook"], "CARBONGATE_TOKEN_FEED": TOKENS["feed"],
               "CARBONGATE_TOKEN_GOVERNANCE": TOKENS["governance"]}


@pytest.fixture(scope="module")
def engine() -> Iterator[OpaEngine]:
    opa = OpaEngine()
    opa.add_policy("authz.rego", AUTHZ)
    yield opa
    opa.close()


def allowed(engine: OpaEngine, caller: str | None, method: str, path: str,
            *, environment: dict[str, str] = ENVIRONMENT) -> bool:
    request: dict[str, Any] = {"method": method, "path": path.lstrip("/").split("/")}
    if caller is not None:
        request["identity"] = TOKENS.get(caller, caller)
    query = f"x := data.system.authz.allow with data.system.authz.environment as {json.dumps(environment)}"
    (binding,) = engine.eval_query(query, request)
    return binding["x"] is True


@pytest.mark.parametrize(("caller", "method", "path"), [
    (None, "GET", "/health"),
    (None, "GET", "/metrics"),
    ("feed", "PUT", "/v1/data/carbongate/grid"),
    ("governance", "PUT", "/v1/data/carbongate/budgets"),
    ("webhook", "POST", "/v1/data/carbongate/admission/decision"),
    ("webhook", "GET", "/v1/data/carbongate/grid"),
    ("webhook", "PUT", "/v1/data/carbongate/config"),
    ("webhook", "PUT", "/v1/data/carbongate/budgets"),
    ("webhook", "GET", "/v1/policies/"),
    ("webhook", "PUT", "/v1/policies/carbongate-policy/carbongate/admission/decision.rego"),
    ("webhook", "DELETE", "/v1/policies/carbongate-policy/carbongate/old.rego"),
])
def test_each_caller_may_do_its_job(engine: OpaEngine, caller: str | None, method: str, path: str) -> None:
    assert allowed(engine, caller, method, path)


@pytest.mark.parametrize(("caller", "method", "path"), [
    (None, "POST", "/v1/data/carbongate/admission/decision"),
    (None, "PUT", "/v1/data/carbongate/grid"),
    ("feed", "PUT", "/v1/data/carbongate/budgets"),
    ("feed", "PUT", "/v1/data/carbongate/config"),
    ("feed", "PUT", "/v1/policies/carbongate-policy/x.rego"),
    ("feed", "DELETE", "/v1/data/carbongate/grid"),
    ("feed", "PATCH", "/v1/data/carbongate/grid"),
    ("feed", "PUT", "/v1/data/carbongate/grid/GB"),
    ("governance", "PUT", "/v1/data/carbongate/grid"),
    ("governance", "POST", "/v1/data/carbongate/admission/decision"),
    ("webhook", "PUT", "/v1/data/carbongate/grid"),
    ("webhook", "DELETE", "/v1/data/carbongate/budgets"),
    ("webhook", "PUT", "/v1/data/carbongate/budgets/ml"),
    ("webhook", "PUT", "/v1/policies/system/authz"),
    ("webhook", "PUT", "/v1/data"),
    ("webhook", "GET", "/v1/data"),
    ("someone-else-with-a-token-of-forty-chars!", "GET", "/v1/data/carbongate/grid"),
])
def test_nothing_outside_a_grant_is_allowed(engine: OpaEngine, caller: str | None, method: str,
                                           path: str) -> None:
    assert not allowed(engine, caller, method, path)


def test_a_short_or_missing_token_in_the_environment_grants_nothing(engine: OpaEngine) -> None:
    weak = {**ENVIRONMENT, "CARBONGATE_TOKEN_FEED": "short"}
    assert not allowed(engine, "short", "PUT", "/v1/data/carbongate/grid", environment=weak)
    empty = {k: v for k, v in ENVIRONMENT.items() if k != "CARBONGATE_TOKEN_FEED"}
    assert not allowed(engine, "", "PUT", "/v1/data/carbongate/grid", environment=empty)


# --- the real clients against an OPA that enforces this policy --------------------------


@pytest.fixture
def opa() -> Iterator[opa_rest_double.OpaRestDouble]:
    literal = json.dumps(ENVIRONMENT)
    assert AUTHZ.count("opa.runtime().env") == 1
    with opa_rest_double.OpaRestDouble(
            authorization_policy=AUTHZ.replace("opa.runtime().env", literal)) as double:
        yield double


@pytest.fixture
def policy_dir(dev: list[dict[str, Any]], tmp_path: Path) -> Path:
    """The policy tree exactly as the webhook pod mounts it."""
    return materialize(dev, "carbongate-webhook", tmp_path / "policies")


def _grid() -> dict[str, Any]:
    return {"schema": 1, "generated_at": "2026-11-22T12:00:00Z", "regions": {}}


def test_the_webhook_engine_pushes_policies_decides_and_checks_readiness(
    opa: opa_rest_double.OpaRestDouble, policy_dir: Path,
) -> None:
    publisher.OpaServer(url=opa.url, token=TOKENS["feed"]).put(_grid())  # type: ignore[arg-type]
    engine = opa_server.OpaServerEngine(url=opa.url, policy_dir=policy_dir, token=TOKENS["webhook"],
                                        timeout_s=5.0)
    try:
        version = engine.reload_policies()
        assert version and engine.ready
        engine.evaluate("carbongate/admission/decision", {"now": "2026-11-22T12:00:00Z"})
    finally:
        engine.close()
    assert any(pid.startswith("carbongate-policy/") for pid in opa.policy_ids())
    assert opa.data()["carbongate"]["config"]


def test_the_feed_publishes_the_grid_and_governance_the_budgets(
    opa: opa_rest_double.OpaRestDouble,
) -> None:
    publisher.OpaServer(url=opa.url, token=TOKENS["feed"]).put(_grid())  # type: ignore[arg-type]
    document = {"period": "2026-11", "generated_at": "2026-11-22T12:00:00Z", "teams": {}}
    budgets.OpaSink(url=opa.url, token=TOKENS["governance"]).publish(document)  # type: ignore[arg-type]
    assert opa.data()["carbongate"]["grid"] == _grid()
    assert opa.data()["carbongate"]["budgets"] == document


def test_the_webhook_engine_puts_the_budgets_but_never_the_grid(
    opa: opa_rest_double.OpaRestDouble, policy_dir: Path,
) -> None:
    """The webhook relays governance's ConfigMap into its OPA; the grid stays the feed's."""
    document = {"period": "2026-11", "generated_at": "2026-11-22T12:00:00Z",
                "teams": {"ml": {"limit_g": 8.0, "used_g": 7.0, "percent": 87.5, "state": "warn"}}}
    engine = opa_server.OpaServerEngine(url=opa.url, policy_dir=policy_dir, token=TOKENS["webhook"],
                                        timeout_s=5.0)
    try:
        engine.put_data("budgets", document)
        with pytest.raises(engine_errors.PolicyEngineError):
            engine.put_data("grid", _grid())
    finally:
        engine.close()
    assert opa.data()["carbongate"] == {"budgets": document}


def test_the_feed_token_cannot_push_policies(opa: opa_rest_double.OpaRestDouble, policy_dir: Path) -> None:
    engine = opa_server.OpaServerEngine(url=opa.url, policy_dir=policy_dir, token=TOKENS["feed"],
                                        timeout_s=5.0)
    try:
        with pytest.raises(engine_errors.PolicyEngineError):
            engine.reload_policies()
    finally:
        engine.close()
    assert not [pid for pid in opa.policy_ids() if pid.startswith("carbongate-policy/")]


def test_the_feed_and_governance_cannot_write_each_others_documents(
    opa: opa_rest_double.OpaRestDouble,
) -> None:
    with pytest.raises(publisher.PublishError, match="401"):
        publisher.OpaServer(url=opa.url, token=TOKENS["governance"]).put(_grid())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="401"):
        budgets.OpaSink(url=opa.url, token=TOKENS["feed"]).publish(
            {"period": "2026-11", "generated_at": "2026-11-22T12:00:00Z", "teams": {}})
    assert "carbongate" not in opa.data()
