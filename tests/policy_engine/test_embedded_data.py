"""put_data on the embedded engine: whole-document replacement through fresh engines."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from policy_engine import embedded, errors
from tests.policy_engine.conftest import decide, grid, metric, write


def test_put_data_replaces_the_document_and_old_keys_are_gone(
        engine: embedded.EmbeddedEngine) -> None:
    engine.put_data("grid", grid(GB=412.0, FR=56.0, DE=300.0))
    engine.put_data("grid", grid(GB=90.0))

    decision = decide(engine, {"kind": "Pod"})

    assert decision["known_regions"] == ["GB"]
    assert decision["action"] == "admit"


def test_each_data_version_swaps_in_a_fresh_engine_and_closes_the_old(
        engine: embedded.EmbeddedEngine) -> None:
    swaps = metric("carbongate_policy_engine_swaps_total")

    for intensity in (100.0, 200.0, 300.0):
        engine.put_data("grid", grid(GB=intensity))

    assert metric("carbongate_policy_engine_swaps_total") == swaps + 3
    assert engine.open_engines == 2  # only the current pool: nothing leaked


def test_other_roots_survive_a_grid_update(engine: embedded.EmbeddedEngine) -> None:
    engine.put_data("budgets", {"period": "2026-11", "teams": {"ml": {"state": "warn"}}})
    engine.put_data("grid", grid(GB=100.0))

    assert engine.evaluate("carbongate/budgets/teams/ml/state", {}) == "warn"


def test_ready_only_once_grid_data_is_present(engine: embedded.EmbeddedEngine) -> None:
    assert not engine.ready
    engine.put_data("budgets", {"teams": {}})
    assert not engine.ready

    engine.put_data("grid", grid(GB=100.0))

    assert engine.ready


def test_data_is_copied_so_later_mutation_by_the_caller_does_not_leak_in(
        engine: embedded.EmbeddedEngine) -> None:
    document = grid(GB=100.0)
    engine.put_data("grid", document)

    document["regions"]["GB"]["g_per_kwh"] = 999.0

    assert decide(engine, {"kind": "Pod"})["g_per_kwh"] == 100.0


def test_data_that_is_not_json_is_refused_and_the_old_data_stays(
        engine: embedded.EmbeddedEngine) -> None:
    engine.put_data("grid", grid(GB=100.0))
    failures = metric("carbongate_policy_data_updates_total",
                      engine="embedded", root="grid", result="error")

    with pytest.raises(errors.PolicyDataError, match="not JSON"):
        engine.put_data("grid", grid(GB=math.inf))

    assert decide(engine, {"kind": "Pod"})["g_per_kwh"] == 100.0
    assert metric("carbongate_policy_data_updates_total",
                  engine="embedded", root="grid", result="error") == failures + 1


def test_a_root_must_be_a_single_identifier(engine: embedded.EmbeddedEngine) -> None:
    with pytest.raises(ValueError, match="single identifier"):
        engine.put_data("config.home_region", {"x": 1})


def test_a_root_owned_by_a_data_json_is_refused(engine: embedded.EmbeddedEngine) -> None:
    with pytest.raises(errors.PolicyDataError, match="must not overlap"):
        engine.put_data("config", {"home_region": "FR"})

    assert engine.evaluate("carbongate/config/home_region", {}) == "GB"


def test_a_new_data_json_colliding_with_run_time_data_is_a_rejected_reload(
        engine: embedded.EmbeddedEngine, policy_dir: Path) -> None:
    engine.put_data("grid", grid(GB=100.0))
    version = engine.version
    write(policy_dir / "carbongate/grid/data.json", '{"regions": {}}')

    with pytest.raises(errors.PolicyCompileError, match="must not overlap"):
        engine.reload_policies()

    assert engine.version == version
    assert decide(engine, {"kind": "Pod"})["known_regions"] == ["GB"]


def test_data_not_an_object_is_refused(engine: embedded.EmbeddedEngine) -> None:
    with pytest.raises(errors.PolicyDataError, match="JSON object"):
        engine.put_data("grid", [1, 2])  # type: ignore[arg-type]
