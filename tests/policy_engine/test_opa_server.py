"""The OPA server engine against the REST double: decisions, data, readiness."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_engine import engine as contract
from policy_engine import errors, opa_server
from tests.policy_engine.conftest import DECISION, TOKEN, decide, grid, metric
from tests.support import opa_rest_double


def test_decision_is_posted_to_the_data_api_with_the_input(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    server_engine.put_data("grid", grid(GB=412.0, FR=56.0))

    decision = server_engine.evaluate(DECISION, {"kind": "Pod"})

    assert decision == {"action": "defer", "region": "GB", "g_per_kwh": 412.0,
                        "known_regions": ["FR", "GB"]}
    assert opa.seen[-1].method == "POST"
    assert opa.seen[-1].path == "/v1/data/carbongate/admission/decision"


def test_a_reply_without_result_is_undefined(server_engine: opa_server.OpaServerEngine) -> None:
    server_engine.put_data("grid", grid(GB=412.0))

    assert server_engine.evaluate(DECISION, {"kind": "Secret"}) is None


def test_put_data_replaces_the_document_on_the_server(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    server_engine.put_data("grid", grid(GB=412.0, FR=56.0))
    server_engine.put_data("grid", grid(GB=90.0))

    assert decide(server_engine, {"kind": "Pod"})["known_regions"] == ["GB"]
    assert opa.seen[-2].method == "PUT"
    assert opa.seen[-2].path == "/v1/data/carbongate/grid"


def test_config_from_the_directory_is_written_to_its_data_path(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    assert opa.data()["carbongate"]["config"] == {"home_region": "GB", "threshold_g_per_kwh": 300}


def test_data_that_is_not_json_never_reaches_the_server(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    requests_before = len(opa.seen)

    with pytest.raises(errors.PolicyDataError):
        server_engine.put_data("grid", {"when": object()})

    assert len(opa.seen) == requests_before


def test_input_that_is_not_json_is_an_evaluation_error_and_never_sent(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    requests_before = len(opa.seen)

    with pytest.raises(errors.PolicyEvaluationError):
        server_engine.evaluate(DECISION, {"kind": {"a", "set"}})

    assert len(opa.seen) == requests_before


def test_ready_needs_a_reachable_server_with_grid_data(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    assert not server_engine.ready

    server_engine.put_data("grid", grid(GB=100.0))
    assert server_engine.ready

    opa.stop()
    assert not server_engine.ready


def test_ready_is_false_when_the_server_lost_our_policies(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    """An OPA restart forgets pushed modules; readiness must notice."""
    server_engine.put_data("grid", grid(GB=100.0))
    for policy_id in opa.policy_ids():
        opa.handle("DELETE", f"/v1/policies/{policy_id}", {}, b"")

    assert not server_engine.ready


def test_evaluations_are_timed_under_the_opa_label(
        server_engine: opa_server.OpaServerEngine) -> None:
    before = metric("carbongate_policy_eval_seconds_count", engine="opa")

    server_engine.evaluate(DECISION, {"kind": "Pod"})

    assert metric("carbongate_policy_eval_seconds_count", engine="opa") == before + 1


def test_the_engine_satisfies_the_protocol(server_engine: opa_server.OpaServerEngine) -> None:
    assert isinstance(server_engine, contract.PolicyEngine)


def test_the_bearer_token_is_sent_on_every_request(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    server_engine.put_data("grid", grid(GB=100.0))
    server_engine.evaluate(DECISION, {"kind": "Pod"})

    assert opa.seen
    assert {request.authorization for request in opa.seen} == {f"Bearer {TOKEN}"}


def test_without_a_token_no_authorization_header_is_sent(
        opa: opa_rest_double.OpaRestDouble, policy_dir: Path) -> None:
    anonymous = opa_server.OpaServerEngine(url=opa.url, policy_dir=policy_dir)
    anonymous.evaluate(DECISION, {"kind": "Pod"})
    anonymous.close()

    assert opa.seen[-1].authorization is None


@pytest.mark.parametrize(("url", "message"), [
    ("127.0.0.1:8181", "must look like http://host:port"),
    ("ftp://opa:8181", "must look like http://host:port"),
    ("http://user:secret@opa:8181", "must not hold credentials"),
    ("http://opa:8181/v1", "only scheme, host and port"),
    ("http://opa:99999", "out of range"),
])
def test_an_unusable_url_is_a_configuration_error(url: str, message: str,
                                                  policy_dir: Path) -> None:
    with pytest.raises(errors.EngineConfigError, match=message):
        opa_server.OpaServerEngine(url=url, policy_dir=policy_dir)


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:8181", "http://127.0.0.1:8181"),
    ("https://opa.carbongate.svc", "https://opa.carbongate.svc:443"),
    ("http://[::1]:8181/", "http://[::1]:8181"),
])
def test_urls_are_parsed_to_scheme_host_and_port(url: str, expected: str) -> None:
    assert opa_server.parse_address(url).url == expected
