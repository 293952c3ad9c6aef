"""Evaluating documents on the embedded engine: results, undefined, errors, metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from policy_engine import embedded, errors
from policy_engine import engine as contract
from tests.policy_engine.conftest import DECISION, grid, metric, write


def test_decision_reads_config_from_the_directory_and_grid_from_put_data(
        engine: embedded.EmbeddedEngine) -> None:
    engine.put_data("grid", grid(GB=412.0, FR=56.0))

    decision = engine.evaluate(DECISION, {"kind": "Pod"})

    assert decision == {"action": "defer", "region": "GB", "g_per_kwh": 412.0,
                        "known_regions": ["FR", "GB"]}


def test_dotted_and_slashed_paths_name_the_same_document(
        engine: embedded.EmbeddedEngine) -> None:
    engine.put_data("grid", grid(GB=100.0))

    assert engine.evaluate("carbongate.admission.decision", {"kind": "Job"}) == \
        engine.evaluate("/carbongate/admission/decision", {"kind": "Job"})


def test_undefined_decision_is_none(engine: embedded.EmbeddedEngine) -> None:
    engine.put_data("grid", grid(GB=100.0))

    assert engine.evaluate(DECISION, {"kind": "ConfigMap"}) is None


def test_decision_without_grid_data_is_undefined_not_an_error(
        engine: embedded.EmbeddedEngine) -> None:
    assert engine.evaluate(DECISION, {"kind": "Pod"}) is None


def test_release_entry_point_answers(engine: embedded.EmbeddedEngine) -> None:
    released = engine.evaluate(contract.RELEASE_DECISION,
                               {"now_ns": 20, "workload": {"not_before_ns": 10}})

    assert released == {"release": True, "reason": "window-open"}


def test_rules_of_test_files_are_not_in_the_production_engine(
        engine: embedded.EmbeddedEngine) -> None:
    assert engine.evaluate("carbongate/admission_test/only_in_tests", {}) is None


def test_a_runtime_error_in_a_policy_is_an_evaluation_error(tmp_path: Path) -> None:
    write(tmp_path / "carbongate/admission/decision.rego",
          "package carbongate.admission\n\ndecision := 100 / input.divisor\n")
    built = embedded.EmbeddedEngine(policy_dir=tmp_path)
    errors_before = metric("carbongate_policy_eval_errors_total", engine="embedded")

    with pytest.raises(errors.PolicyEvaluationError, match="decision.rego:3.*divide by zero"):
        built.evaluate(DECISION, {"divisor": 0})

    assert built.evaluate(DECISION, {"divisor": 4}) == 25
    assert metric("carbongate_policy_eval_errors_total", engine="embedded") == errors_before + 1
    built.close()


def test_input_that_is_not_json_is_an_evaluation_error(engine: embedded.EmbeddedEngine) -> None:
    with pytest.raises(errors.PolicyEvaluationError, match="input is not JSON"):
        engine.evaluate(DECISION, {"kind": {"a", "set"}})


def test_nan_in_input_is_rejected_before_reaching_go(engine: embedded.EmbeddedEngine) -> None:
    engine.put_data("grid", grid(GB=100.0))

    with pytest.raises(errors.PolicyEvaluationError):
        engine.evaluate(DECISION, {"kind": "Pod", "energy_kwh": math.nan})


def test_a_path_that_is_not_made_of_identifiers_is_refused(
        engine: embedded.EmbeddedEngine) -> None:
    with pytest.raises(ValueError, match="not a Rego identifier"):
        engine.evaluate("carbongate/admission/decision with input as {}", {})


def test_every_evaluation_is_timed(engine: embedded.EmbeddedEngine) -> None:
    before = metric("carbongate_policy_eval_seconds_count", engine="embedded")

    engine.evaluate(DECISION, {"kind": "Pod"})
    engine.evaluate(DECISION, {"kind": "Pod"})

    assert metric("carbongate_policy_eval_seconds_count", engine="embedded") == before + 2


def test_closed_engine_refuses_to_evaluate(policy_dir: Path) -> None:
    built = embedded.EmbeddedEngine(policy_dir=policy_dir)
    built.close()

    with pytest.raises(errors.PolicyEvaluationError, match="closed"):
        built.evaluate(DECISION, {"kind": "Pod"})
    assert built.open_engines == 0


def test_pool_size_below_one_is_a_configuration_error(policy_dir: Path) -> None:
    with pytest.raises(errors.EngineConfigError, match="at least 1"):
        embedded.EmbeddedEngine(policy_dir=policy_dir, pool_size=0)


def test_the_engine_satisfies_the_protocol(engine: embedded.EmbeddedEngine) -> None:
    assert isinstance(engine, contract.PolicyEngine)

