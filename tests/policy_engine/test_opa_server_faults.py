"""The OPA server engine when the server misbehaves, and what it never writes to logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from policy_engine import errors, opa_server
from tests.policy_engine.conftest import DECISION, TOKEN, decide, grid, metric
from tests.support import opa_rest_double


def test_a_stopped_server_is_an_evaluation_error(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    opa.stop()

    with pytest.raises(errors.PolicyEvaluationError, match="Connection refused"):
        server_engine.evaluate(DECISION, {"kind": "Pod"})


def test_a_slow_server_times_out_within_the_configured_timeout(
        opa: opa_rest_double.OpaRestDouble, policy_dir: Path) -> None:
    impatient = opa_server.OpaServerEngine(url=opa.url, policy_dir=policy_dir, timeout_s=0.1)
    opa.delay_ms = 800
    started = time.monotonic()

    with pytest.raises(errors.PolicyEvaluationError, match=r"did not answer within 0.1s"):
        impatient.evaluate(DECISION, {"kind": "Pod"})

    assert time.monotonic() - started < 0.6
    impatient.close()


def test_a_body_that_is_not_json_is_an_evaluation_error(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    opa.fault = "garbage"

    with pytest.raises(errors.PolicyEvaluationError, match="not JSON"):
        server_engine.evaluate(DECISION, {"kind": "Pod"})


def test_a_server_error_fails_at_once_without_retries(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    opa.fault = "error500"
    requests_before = len(opa.seen)
    failures = metric("carbongate_policy_eval_errors_total", engine="opa")

    with pytest.raises(errors.PolicyEvaluationError, match="500 Server Error"):
        server_engine.evaluate(DECISION, {"kind": "Pod"})

    assert len(opa.seen) == requests_before  # the fault answers before routing: nothing seen
    assert metric("carbongate_policy_eval_errors_total", engine="opa") == failures + 1


def test_the_server_answers_again_after_a_fault(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    server_engine.put_data("grid", grid(GB=412.0))
    opa.fault = "error500"
    with pytest.raises(errors.PolicyEvaluationError):
        server_engine.evaluate(DECISION, {"kind": "Pod"})

    opa.fault = "none"

    assert decide(server_engine, {"kind": "Pod"})["action"] == "defer"


def test_put_data_to_a_failing_server_is_an_unavailable_error_and_counted(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    failures = metric("carbongate_policy_data_updates_total", engine="opa", root="grid",
                      result="error")
    opa.fault = "error500"

    with pytest.raises(errors.EngineUnavailableError, match="internal_error"):
        server_engine.put_data("grid", grid(GB=100.0))

    assert metric("carbongate_policy_data_updates_total", engine="opa", root="grid",
                  result="error") == failures + 1


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything every logger says, urllib3's connection chatter included."""
    with caplog.at_level(logging.DEBUG):
        yield caplog


def test_the_token_is_never_logged_nor_shown_in_errors(
        opa: opa_rest_double.OpaRestDouble, policy_dir: Path,
        debug_logs: pytest.LogCaptureFixture) -> None:
    shown: list[str] = []
    secretive = opa_server.OpaServerEngine(url=opa.url, policy_dir=policy_dir, token=TOKEN)
    secretive.reload_policies()
    secretive.put_data("grid", grid(GB=100.0))
    secretive.evaluate(DECISION, {"kind": "Pod"})
    for fault in ("error500", "garbage"):
        opa.fault = fault
        with pytest.raises(errors.PolicyEngineError) as raised:
            secretive.evaluate(DECISION, {"kind": "Pod"})
        shown.append(str(raised.value))
    opa.stop()
    with pytest.raises(errors.PolicyEngineError) as stopped:
        secretive.reload_policies()
    shown += [str(stopped.value), repr(secretive)]
    secretive.close()

    assert any("urllib3" in record.name for record in debug_logs.records)  # it did log
    assert TOKEN not in debug_logs.text
    assert all(TOKEN not in text for text in shown)


AUTHZ = """
package system.authz

default allow := false

allow if input.path == ["health"]

# Only the feed writes grid data.
allow if {
	input.identity == "feed-token"
	input.method == "PUT"
	input.path == ["v1", "data", "carbongate", "grid"]
}

# The webhook manages its policies and config and asks for decisions.
allow if {
	input.identity == "webhook-token"
	input.path[1] == "policies"
}

allow if {
	input.identity == "webhook-token"
	input.path[1] == "data"
	input.method in {"GET", "POST"}
}

allow if {
	input.identity == "webhook-token"
	input.method == "PUT"
	input.path == ["v1", "data", "carbongate", "config"]
}
"""


@pytest.fixture
def guarded() -> Iterator[opa_rest_double.OpaRestDouble]:
    with opa_rest_double.OpaRestDouble(authorization_policy=AUTHZ) as double:
        yield double


def engine_with(token: str | None, url: str, policy_dir: Path) -> opa_server.OpaServerEngine:
    return opa_server.OpaServerEngine(url=url, policy_dir=policy_dir, token=token)


def test_with_authorization_only_the_feed_may_write_grid_data(
        guarded: opa_rest_double.OpaRestDouble, policy_dir: Path) -> None:
    webhook = engine_with("webhook-token", guarded.url, policy_dir)
    feed = engine_with("feed-token", guarded.url, policy_dir)
    webhook.reload_policies()

    with pytest.raises(errors.EngineUnavailableError, match="unauthorized"):
        webhook.put_data("grid", grid(GB=1.0))
    feed.put_data("grid", grid(GB=412.0))

    assert decide(webhook, {"kind": "Pod"})["action"] == "defer"
    assert "system/authz.rego" in guarded.policy_ids()  # never touched by our pushes
    webhook.close()
    feed.close()


def test_with_authorization_an_anonymous_caller_gets_no_decision(
        guarded: opa_rest_double.OpaRestDouble, policy_dir: Path) -> None:
    anonymous = engine_with(None, guarded.url, policy_dir)

    with pytest.raises(errors.PolicyEvaluationError, match="401"):
        anonymous.evaluate(DECISION, {"kind": "Pod"})
    with pytest.raises(errors.EngineUnavailableError):
        anonymous.reload_policies()
    anonymous.close()
