"""The decision cache: same input bytes under the same versions, same decision, one evaluation.

Mechanism tests use a counting function as the evaluation; the last test uses
the real embedded engine over a copy of the shipped policies, edited between
two decisions, to show that a new policy version is never answered from the
old cache. The whole case suite and the Hypothesis fuzzing compare cached and
fresh decisions in ``tests/cases`` and ``tests/reliability/test_fuzz_policy.py``.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from carbongate import settings as settings_mod
from policy_engine import embedded
from policy_engine import engine as engine_mod
from tests.webhook import builders
from webhook import decision_cache

GRID = {"regions": {"GB": {}}}
VERSIONS = ("policies-1", GRID, None, {}, None, None)


class Counting:
    """An evaluation that answers from its input and counts how often it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, policy_input: Mapping[str, Any]) -> Any:
        self.calls += 1
        return {"action": "admit", "seen": policy_input["n"], "call": self.calls}


def lookups(result: str) -> float:
    return decision_cache.LOOKUPS.labels(result=result)._value.get()


def test_the_same_input_bytes_are_evaluated_once_and_counted() -> None:
    cache, evaluate = decision_cache.DecisionCache(max_entries=8), Counting()
    hits, misses = lookups("hit"), lookups("miss")
    first = cache.decide(VERSIONS, {"n": 1, "a": [1, 2]}, evaluate)
    again = cache.decide(VERSIONS, {"a": [1, 2], "n": 1}, evaluate)  # the same facts in another key order
    assert again == first and evaluate.calls == 1
    assert cache.decide(VERSIONS, {"n": 1, "a": [2, 1]}, evaluate)["call"] == 2
    assert (lookups("hit") - hits, lookups("miss") - misses) == (1, 2)


def test_a_hit_is_a_private_copy() -> None:
    cache, evaluate = decision_cache.DecisionCache(max_entries=8), Counting()
    cache.decide(VERSIONS, {"n": 1}, evaluate)["action"] = "deny"
    cache.decide(VERSIONS, {"n": 1}, evaluate)["action"] = "deny"
    assert cache.decide(VERSIONS, {"n": 1}, evaluate)["action"] == "admit"


@pytest.mark.parametrize("changed", [
    ("policies-2", GRID, None, {}, None, None),
    ("policies-1", {"regions": {"GB": {}}}, None, {}, None, None),  # an equal grid, but a new document
    ("policies-1", GRID, {"teams": {}}, {}, None, None),
    ("policies-1", GRID, None, {"tiers": {}}, None, None),
    ("policies-1", GRID, None, {}, ("grid pushed", 1.0), None),
    ("policies-1", GRID, None, {}, None, ("budgets pushed", 1.0)),
])
def test_any_new_version_empties_the_cache(changed: tuple[Any, ...]) -> None:
    cache, evaluate = decision_cache.DecisionCache(max_entries=8), Counting()
    cache.decide(VERSIONS, {"n": 1}, evaluate)
    assert cache.decide(changed, {"n": 1}, evaluate)["call"] == 2
    assert cache.decide(changed, {"n": 1}, evaluate)["call"] == 2
    assert len(cache) == 1


def test_the_cache_is_bounded_and_forgets_the_least_recently_used() -> None:
    cache, evaluate = decision_cache.DecisionCache(max_entries=3), Counting()
    for n in (1, 2, 3):
        cache.decide(VERSIONS, {"n": n}, evaluate)
    cache.decide(VERSIONS, {"n": 1}, evaluate)  # used again: 2 is now the oldest
    cache.decide(VERSIONS, {"n": 4}, evaluate)
    assert len(cache) == 3
    calls = evaluate.calls
    cache.decide(VERSIONS, {"n": 1}, evaluate)
    assert evaluate.calls == calls
    cache.decide(VERSIONS, {"n": 2}, evaluate)
    assert evaluate.calls == calls + 1


def test_failures_are_not_cached_and_zero_entries_is_off() -> None:
    cache = decision_cache.DecisionCache(max_entries=8)

    def failing(policy_input: Mapping[str, Any]) -> Any:
        raise RuntimeError("engine down")

    with pytest.raises(RuntimeError):
        cache.decide(VERSIONS, {"n": 1}, failing)
    evaluate = Counting()
    assert cache.decide(VERSIONS, {"n": 1}, evaluate)["call"] == 1
    off = decision_cache.DecisionCache(max_entries=0)
    off.decide(VERSIONS, {"n": 1}, evaluate)
    off.decide(VERSIONS, {"n": 1}, evaluate)
    assert evaluate.calls == 3 and len(off) == 0


def test_a_decision_made_while_the_versions_changed_is_not_stored() -> None:
    """Evaluated under the old data, finished after a new grid arrived: never served under the new one."""
    cache = decision_cache.DecisionCache(max_entries=8)
    started, release = threading.Event(), threading.Event()

    def slow(policy_input: Mapping[str, Any]) -> Any:
        started.set()
        release.wait(5)
        return {"action": "defer"}

    worker = threading.Thread(target=cache.decide, args=(VERSIONS, {"n": 1}, slow))
    worker.start()
    started.wait(5)
    newer = ("policies-1", {"regions": {}}, None, {}, None, None)
    assert cache.decide(newer, {"n": 2}, Counting())["call"] == 1
    release.set()
    worker.join(5)
    assert cache.decide(newer, {"n": 1}, Counting())["call"] == 1


def test_an_input_that_is_not_json_is_evaluated_not_cached() -> None:
    cache, evaluate = decision_cache.DecisionCache(max_entries=8), Counting()
    cache.decide(VERSIONS, {"n": float("nan")}, evaluate)
    cache.decide(VERSIONS, {"n": float("nan")}, evaluate)
    assert evaluate.calls == 2 and len(cache) == 0


def test_a_new_policy_version_is_never_answered_from_the_old_cache(tmp_path: Path) -> None:
    """The real engine: the same input bytes, a threshold edited in the platform config."""
    policy_dir = tmp_path / "policies"
    shutil.copytree(settings_mod.DEFAULT_POLICY_DIR, policy_dir)
    engine = embedded.EmbeddedEngine(policy_dir=policy_dir, pool_size=1)
    try:
        engine.put_data("grid", builders.grid("2026-11-22T10:00:00Z", {"GB": [150] * 48}))
        engine.put_data("budgets", {"period": "", "teams": {}})
        policy_input = {
            "facts_version": 2, "now": "2026-11-22T10:00:00Z", "now_ns": 1795341600 * 10 ** 9,
            "operation": "CREATE", "dry_run": False, "kind": "Pod", "namespace": "ml",
            "namespace_labels": {"carbongate.io/enforcement": "enforce"}, "own_namespace": "carbongate",
            "user": {"username": "u"}, "budget": None,
            "workload": {"labels": {"carbongate.io/tier": "2"}, "annotations": {}, "owner_kind": None,
                         "regions": [], "parse_errors": [], "energy_kwh": 0.5},
            "plan": {"home_region": "GB", "regions": {"GB": {
                "now_g_per_kwh": 150.0, "stale": False, "observed_at": "2026-11-22T10:00:00Z",
                "fresh_until_ns": 1795345200 * 10 ** 9,
                "windows": [{"start_ns": 1795341600 * 10 ** 9, "mean_g_per_kwh": 150.0}]}}},
        }
        cache = decision_cache.DecisionCache(max_entries=8)

        def decide() -> Any:
            return cache.decide((engine.version, None, None, None, None, None), policy_input,
                                lambda doc: engine.evaluate(engine_mod.ADMISSION_DECISION, doc))

        before = decide()
        assert before["reason"] == "clean-now"
        config_file = policy_dir / "carbongate" / "config" / "data.json"
        config = json.loads(config_file.read_text())
        config["tiers"]["2"]["threshold_g_per_kwh"] = 100
        config_file.write_text(json.dumps(config))
        engine.reload_policies()
        after = decide()
        assert after["reason"] != "clean-now"
        assert after == engine.evaluate(engine_mod.ADMISSION_DECISION, policy_input)
    finally:
        engine.close()


def test_requests_arriving_together_with_the_same_input_share_one_evaluation() -> None:
    cache = decision_cache.DecisionCache(max_entries=8)
    release = threading.Event()
    calls: list[int] = []

    def slow(policy_input: Mapping[str, Any]) -> Any:
        calls.append(1)
        release.wait(5)
        return {"action": "defer"}

    answers: list[Any] = []
    threads = [threading.Thread(target=lambda: answers.append(cache.decide(VERSIONS, {"n": 1}, slow)))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    release.set()
    for thread in threads:
        thread.join(5)
    assert answers == [{"action": "defer"}] * 6
    assert len(calls) == 1
