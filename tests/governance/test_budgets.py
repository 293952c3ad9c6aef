"""Budgets: the settings file, the states, the published document and where it goes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from carbongate import settings
from governance import budgets, periods
from policy_engine import embedded
from tests.governance.conftest import at
from tests.support import opa_rest_double

NOVEMBER = periods.parse("2026-11")
NOW = at("2026-11-21T12:00")


@pytest.mark.parametrize(("percent", "state"), [
    (0.0, "ok"), (79.9, "ok"), (80.0, "warn"), (99.99, "warn"), (100.0, "exhausted"),
    (250.0, "exhausted"),
])
def test_states_follow_the_share_used(percent: float, state: str) -> None:
    assert budgets.state_of(percent) == state


def test_the_warning_level_is_configurable() -> None:
    assert budgets.state_of(70.0, warn_percent=60.0) == "warn"
    assert budgets.state_of(70.0, warn_percent=75.0) == "ok"


def test_the_document_has_the_published_shape() -> None:
    config = budgets.BudgetConfig(limits_g={"ml": 800_000.0, "web": 200_000.0})
    doc = budgets.document(config, {"ml": 652_000.0, "batch": 5.0}, period=NOVEMBER, now=NOW)
    # docs/architecture.md, "Budgets — data.carbongate.budgets"
    assert doc == {"period": "2026-11", "generated_at": "2026-11-21T12:00:00Z",
                   "period_start": "2026-11-01T00:00:00Z", "period_end": "2026-12-01T00:00:00Z",
                   "period_start_ns": 1_793_491_200 * 10**9, "period_end_ns": 1_796_083_200 * 10**9, "teams": {
        "ml": {"limit_g": 800000.0, "used_g": 652000.0, "percent": 81.5, "state": "warn"},
        "web": {"limit_g": 200000.0, "used_g": 0.0, "percent": 0.0, "state": "ok"}}}


def test_a_zero_limit_is_exhausted_by_any_use() -> None:
    assert budgets.team_budget(0.0, 1.0, warn_percent=80)["state"] == "exhausted"
    assert budgets.team_budget(0.0, 0.0, warn_percent=80)["state"] == "ok"


def test_the_settings_file_takes_grams_or_kilograms(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("period: weekly\nwarn_percent: 75\nteams:\n"
                    "  ml: {limit_kg: 800}\n  web: {limit_g: 1500.5}\n", encoding="utf-8")
    config = budgets.load_config(path)
    assert config == budgets.BudgetConfig(limits_g={"ml": 800_000.0, "web": 1500.5},
                                          period="weekly", warn_percent=75.0)


def test_no_settings_file_means_no_budgets() -> None:
    assert budgets.load_config(None).limits_g == {}


@pytest.mark.parametrize(("document", "message"), [
    ({"teams": {"ml": {"limit_kg": -1}}}, "teams.ml.limit_kg must be a non-negative number"),
    ({"teams": {"ml": {"limit_kg": 1, "limit_g": 1000}}}, "exactly one of limit_g or limit_kg"),
    ({"teams": {"ml": 800}}, "teams.ml needs exactly one"),
    ({"teams": {"ml": {"limit_kg": "lots"}}}, "non-negative number"),
    ({"period": "yearly"}, "period must be monthly or weekly"),
    ({"warn_percent": 120}, "warn_percent must be a number in"),
    ({"limits": {}}, "unknown key"),
    ({"teams": ["ml"]}, "teams must map"),
])
def test_a_bad_settings_file_is_refused_with_the_key_named(document: Any, message: str) -> None:
    with pytest.raises(budgets.BudgetError, match=message):
        budgets.config_from_document(document)


def test_an_unparseable_settings_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("teams: {ml: [", encoding="utf-8")
    with pytest.raises(budgets.BudgetError, match="cannot read budgets file"):
        budgets.load_config(path)


# --- periods ------------------------------------------------------------------------------

def test_a_month_runs_from_its_first_instant_to_the_next_months() -> None:
    december = periods.parse("2026-12")
    assert (december.start, december.end) == (at("2026-12-01T00:00"), at("2027-01-01T00:00"))
    assert periods.containing(at("2026-12-31T23:59")) == december


def test_an_iso_week_is_a_period_too() -> None:
    week = periods.parse("2026-W47")
    assert (week.start, week.end) == (at("2026-11-16T00:00"), at("2026-11-23T00:00"))
    assert periods.containing(NOW, "weekly") == week


@pytest.mark.parametrize("text", ["2026-13", "November", "2026-W54", "26-11"])
def test_a_bad_period_is_refused(text: str) -> None:
    with pytest.raises(periods.PeriodError):
        periods.parse(text)


# --- publishing ---------------------------------------------------------------------------

DOC: budgets.BudgetsDocument = {
    "period": "2026-11", "generated_at": "2026-11-21T12:00:00Z",
    "teams": {"ml": {"limit_g": 800000.0, "used_g": 652000.0, "percent": 81.5, "state": "warn"}}}


def test_the_snapshot_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "state" / "budgets.json"
    sink = budgets.FileSink(path)
    sink.publish({**DOC, "teams": {}})
    sink.publish(DOC)
    assert json.loads(path.read_text(encoding="utf-8")) == DOC
    assert [p.name for p in path.parent.iterdir()] == ["budgets.json"]  # no temp files left


@pytest.fixture
def opa() -> Iterator[opa_rest_double.OpaRestDouble]:
    policy = ("package system.authz\nimport rego.v1\ndefault allow := false\n"
              'allow if input.identity == "s3cret"\n')
    with opa_rest_double.OpaRestDouble(authorization_policy=policy) as double:
        yield double


def test_an_opa_server_gets_the_document_by_put(opa: opa_rest_double.OpaRestDouble) -> None:
    budgets.OpaSink(url=opa.url, token="s3cret").publish(DOC)
    answer = requests.get(f"{opa.url}/v1/data/carbongate/budgets",
                          headers={"Authorization": "Bearer s3cret"}, timeout=5).json()
    assert answer["result"] == DOC


def test_an_opa_server_refusing_the_token_is_a_failure(opa: opa_rest_double.OpaRestDouble) -> None:
    with pytest.raises(RuntimeError, match="401"):
        budgets.OpaSink(url=opa.url, token="wrong").publish(DOC)


def test_one_sink_down_does_not_keep_the_others_from_the_news(
        opa: opa_rest_double.OpaRestDouble, tmp_path: Path) -> None:
    opa.stop()
    failures: list[str] = []
    path = tmp_path / "budgets.json"
    failed = budgets.publish(DOC, [budgets.OpaSink(url=opa.url, token="s3cret", timeout_s=0.5),
                                   budgets.FileSink(path)], on_failure=failures.append)
    assert failed == failures == ["opa"]
    assert json.loads(path.read_text(encoding="utf-8")) == DOC


def test_an_embedded_engine_holds_the_document_as_data_carbongate_budgets() -> None:
    engine = embedded.EmbeddedEngine(policy_dir=settings.DEFAULT_POLICY_DIR, pool_size=1)
    try:
        budgets.EngineSink(engine).publish(DOC)
        assert engine.evaluate("carbongate/budgets", {}) == DOC
    finally:
        engine.close()
