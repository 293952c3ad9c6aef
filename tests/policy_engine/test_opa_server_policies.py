"""Pushing the policy directory to an OPA server: all of it, or nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from policy_engine import errors, loader, opa_server
from tests.policy_engine.conftest import DECISION, decide, grid, metric, write
from tests.support import opa_rest_double

ADMISSION_ID = "carbongate-policy/carbongate/admission/decision.rego"
RELEASE_ID = "carbongate-policy/carbongate/release/decision.rego"


def raw(opa: opa_rest_double.OpaRestDouble, policy_id: str) -> str:
    _, body = opa.handle("GET", f"/v1/policies/{policy_id}", {}, b"")
    return str(body["result"]["raw"])


@pytest.fixture
def serving(server_engine: opa_server.OpaServerEngine) -> opa_server.OpaServerEngine:
    server_engine.put_data("grid", grid(GB=412.0))
    assert decide(server_engine, {"kind": "Pod"})["action"] == "defer"
    return server_engine


def test_each_production_file_is_pushed_under_the_carbongate_prefix(
        server_engine: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble,
        policy_dir: Path) -> None:
    assert opa.policy_ids() == [ADMISSION_ID, RELEASE_ID]
    assert raw(opa, ADMISSION_ID) == (policy_dir / "carbongate/admission/decision.rego").read_text()
    assert server_engine.version == loader.load(policy_dir).version


@pytest.mark.parametrize(("rego", "line", "kind"), [
    pytest.param("decision := {\n\t\"action\": \n}\n", 5, "rego_parse_error", id="parse-error"),
    pytest.param("decision := {\"action\": x} if {\n\tx > 1\n}\n", 4, "rego_unsafe_var_error",
                 id="unsafe-variable"),
])
def test_a_refused_module_is_a_compile_error_and_the_server_keeps_the_old_one(
        serving: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble,
        policy_dir: Path, rego: str, line: int, kind: str) -> None:
    old_source = raw(opa, ADMISSION_ID)
    version = serving.version
    write(policy_dir / "carbongate/admission/decision.rego",
          "package carbongate.admission\n\n" + rego)

    with pytest.raises(errors.PolicyCompileError) as raised:
        serving.reload_policies()

    assert f"carbongate/admission/decision.rego:{line}: {kind}" in str(raised.value)
    assert raw(opa, ADMISSION_ID) == old_source
    assert serving.version == version
    assert decide(serving, {"kind": "Pod"})["action"] == "defer"


def test_files_pushed_before_the_refused_one_are_rolled_back(
        serving: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble,
        policy_dir: Path) -> None:
    old_release = raw(opa, RELEASE_ID)
    write(policy_dir / "carbongate/release/decision.rego",
          'package carbongate.release\n\ndecision := {"release": true, "reason": "edited"}\n')
    write(policy_dir / "carbongate/admission/decision.rego",
          "package carbongate.admission\n\ndecision := y\n")
    write(policy_dir / "carbongate/config/data.json", '{"home_region": "FR"}')
    failures = metric("carbongate_policy_reloads_total", result="error")

    with pytest.raises(errors.PolicyCompileError, match="var y is unsafe"):
        serving.reload_policies()

    assert raw(opa, RELEASE_ID) == old_release
    assert opa.data()["carbongate"]["config"]["home_region"] == "GB"
    assert decide(serving, {"kind": "Pod"})["action"] == "defer"
    assert metric("carbongate_policy_reloads_total", result="error") == failures + 1


def test_a_module_using_a_function_from_a_new_file_is_accepted_in_any_order(
        serving: opa_server.OpaServerEngine, policy_dir: Path) -> None:
    """OPA compiles on every PUT: decision.rego sorts first but needs lib/verdicts.rego."""
    write(policy_dir / "carbongate/lib/verdicts.rego",
          'package carbongate.lib.verdicts\n\nnamed(intensity) := "dirty" if intensity > 300\n')
    write(policy_dir / "carbongate/admission/decision.rego",
          "package carbongate.admission\n\nimport data.carbongate.lib.verdicts\n\n"
          "decision := {\"action\": verdicts.named(data.carbongate.grid.regions.GB.g_per_kwh)}\n")

    serving.reload_policies()

    assert serving.evaluate(DECISION, {"kind": "Pod"}) == {"action": "dirty"}


def test_a_deleted_file_is_deleted_on_the_server_and_other_owners_are_left_alone(
        serving: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble,
        policy_dir: Path) -> None:
    opa.handle("PUT", "/v1/policies/team/other.rego", {}, b"package team.other\n\nx := 1\n")
    (policy_dir / "carbongate/release/decision.rego").unlink()

    serving.reload_policies()

    assert opa.policy_ids() == [ADMISSION_ID, "team/other.rego"]


def test_an_unchanged_module_is_not_pushed_again(
        serving: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    pushed_before = len([r for r in opa.seen if r.method == "PUT" and "/policies/" in r.path])

    serving.reload_policies()

    assert len([r for r in opa.seen if r.method == "PUT" and "/policies/" in r.path]) == \
        pushed_before


def test_an_unreachable_server_is_not_reported_as_a_compile_error(
        serving: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    compile_errors = metric("carbongate_policy_compile_errors_total")
    opa.stop()

    with pytest.raises(errors.EngineUnavailableError, match="cannot list policies"):
        serving.reload_policies()

    assert metric("carbongate_policy_compile_errors_total") == compile_errors


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_the_watcher_pushes_an_edit(serving: opa_server.OpaServerEngine,
                                    policy_dir: Path) -> None:
    serving.start_watching(0.05)
    write(policy_dir / "carbongate/config/data.json",
          '{"home_region": "GB", "threshold_g_per_kwh": 500}')

    assert wait_for(lambda: decide(serving, {"kind": "Pod"})["action"] == "admit")


def test_the_watcher_pushes_again_after_the_server_forgot_the_policies(
        serving: opa_server.OpaServerEngine, opa: opa_rest_double.OpaRestDouble) -> None:
    """What an OPA sidecar restart looks like from here: our modules are gone."""
    serving.start_watching(0.05)
    for policy_id in (ADMISSION_ID, RELEASE_ID):
        opa.handle("DELETE", f"/v1/policies/{policy_id}", {}, b"")

    assert wait_for(lambda: opa.policy_ids() == [ADMISSION_ID, RELEASE_ID])
    assert decide(serving, {"kind": "Pod"})["action"] == "defer"
