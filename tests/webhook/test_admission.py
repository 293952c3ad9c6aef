"""The decision path around the policy engine: input, modes, failures, patches.

The policy engine is replaced here by plain functions returning decisions
(``decide=``), so these tests pin the webhook's mechanism alone; the real
Rego policies are exercised on the real engine in ``tests/cases``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timezone
from typing import Any

import pytest

from carbongate import platform, timefmt
from carbongate import settings as settings_mod
from tests.webhook import builders
from webhook import admission, decision_cache, reviews

NOW = "2026-11-22T10:00:00Z"
START = datetime(2026, 11, 22, 10, tzinfo=timezone.utc)
CONFIG = {"default_duration_s": 3600, "network_kwh_per_gb": 0.06,
          "tiers": {"1": {"max_delay_s": 0}, "2": {"max_delay_s": 7200}, "3": {"max_delay_s": 86400}}}
DEFER = {"action": "defer", "mode": "enforce", "tier": "3", "reason": "cleaner-window",
         "warnings": ["carbongate: deferred until 2026-11-22T13:00Z"],
         "annotations": {"carbongate.io/decision": "defer"}, "node_affinity": None}


def knowledge(**changes: Any) -> admission.Knowledge:
    values: dict[str, Any] = dict(
        now=datetime(2026, 11, 22, 10, tzinfo=timezone.utc),
        grid=builders.grid(NOW, {"GB": [412, 400, 300, 96, 120] + [300] * 5 + [10, 10] + [300] * 36,
                                 "NO": [30] * 48}),
        budgets={"period": "2026-11", "teams": {"ml": {"limit_g": 800000, "used_g": 650000, "state": "warn"}}},
        config=CONFIG, namespace_labels={}, home_region="GB", own_namespace="carbongate",
        exempt_namespaces=frozenset({"kube-system"}), policy_version="v1",
    )
    values.update(changes)
    return admission.Knowledge(**values)


def run(document: dict[str, Any], decide: Any, **changes: Any) -> admission.Result:
    return admission.review(reviews.parse(builders.body(document)), knowledge=knowledge(**changes),
                            decide=decide, energy_kwh=lambda obj, seconds: 0.25)


def always(decision: Any) -> Any:
    seen: list[Any] = []

    def decide(document: Any) -> Any:
        seen.append(document)
        return decision

    decide.seen = seen  # type: ignore[attr-defined]
    return decide


def test_the_input_carries_workload_plan_and_budget() -> None:
    decide = always(None)
    obj = builders.pod(labels={"carbongate.io/team": "ml"}, annotations={"carbongate.io/max-delay": "6h",
                                                                         "carbongate.io/expected-duration": "2h"})
    run(builders.review(obj), decide)
    document = decide.seen[0]
    assert document["now"] == NOW and document["now_ns"] == 1795341600 * 10**9
    assert document["workload"]["max_delay_s"] == 21600 and document["workload"]["energy_kwh"] == 0.25
    assert document["budget"] == {"team": "ml", "limit_g": 800000, "used_g": 650000, "state": "warn",
                                  "period": "2026-11"}
    windows = document["plan"]["regions"]["GB"]["windows"]
    # Only windows cleaner than every earlier one, and none past the 6 h the workload allows
    # (the 10 g/kWh hours at 20:00 lie beyond it).
    assert [(timefmt.format_time(datetime.fromtimestamp(w["start_ns"] / 1e9, UTC))[11:16], w["mean_g_per_kwh"])
            for w in windows] == [
        ("10:00", 406.0), ("11:00", 350.0), ("12:00", 198.0), ("13:00", 108.0)]
    # A workload that names no regions runs at home: the plan carries home alone.
    assert list(document["plan"]["regions"]) == ["GB"]


def test_with_plan_regions_all_the_plan_carries_every_region_of_the_grid() -> None:
    """For a policy edited to place workloads in regions they did not name (webhook.plan_regions)."""
    decide = always(None)
    run(builders.review(builders.pod()), decide, plan_every_region=True)
    assert sorted(decide.seen[0]["plan"]["regions"]) == ["GB", "NO"]


def test_the_plan_regions_setting_reaches_the_knowledge() -> None:
    for choice, every in (("asked", False), ("all", True)):
        settings = settings_mod.load(overrides={"webhook": {"plan_regions": choice}}, environ={})
        built = admission.knowledge(settings=settings, platform=platform.PlatformConfig.of(CONFIG),
                                    now=datetime(2026, 11, 22, 10, tzinfo=UTC), grid=None,
                                    namespace_labels={}, policy_version="v1")
        assert built.plan_every_region is every


def test_the_plan_carries_home_and_the_regions_the_workload_asked_for() -> None:
    decide = always(None)
    obj = builders.pod(annotations={"carbongate.io/regions": "NO, XX"})
    run(builders.review(obj), decide)
    regions = decide.seen[0]["plan"]["regions"]
    assert sorted(regions) == ["GB", "NO"] and regions["NO"]["now_g_per_kwh"] == 30


def test_a_deferral_in_enforce_mode_gates_the_pod_and_warns() -> None:
    result = run(builders.review(), always(DEFER))
    response = result.response["response"]
    assert response["allowed"] is True
    assert response["warnings"] == ["carbongate: deferred until 2026-11-22T13:00Z"]
    ops = reviews.decoded_patch(result.response)
    assert {"op": "add", "path": "/spec/schedulingGates", "value": [{"name": "carbongate.io/clean-window"}]} in ops


def test_warn_mode_returns_warnings_and_no_patch() -> None:
    result = run(builders.review(), always({**DEFER, "mode": "warn"}))
    assert "patch" not in result.response["response"]
    assert result.response["response"]["warnings"]


def test_dryrun_mode_decides_but_changes_and_says_nothing() -> None:
    result = run(builders.review(), always({**DEFER, "mode": "dryrun"}))
    assert result.response["response"] == {"uid": "uid-1", "allowed": True}
    assert result.decision is not None and result.decision["action"] == "defer"


def test_a_denial_in_enforce_mode_refuses_with_the_policys_message() -> None:
    decision = {"action": "deny", "mode": "enforce", "message": "team ml has used 812 of 800 kgCO2e this month",
                "warnings": []}
    response = run(builders.review(), always(decision)).response["response"]
    assert response["allowed"] is False
    assert response["status"]["message"] == "team ml has used 812 of 800 kgCO2e this month"


def test_an_undefined_decision_admits_unchanged_without_a_warning() -> None:
    result = run(builders.review(), always(None))
    assert result.response["response"] == {"uid": "uid-1", "allowed": True}
    assert result.fail_open is None


def test_an_engine_error_admits_unchanged_with_a_warning_and_a_reason() -> None:
    def broken(document: Any) -> Any:
        raise admission.DecisionError("connection refused")

    result = run(builders.review(), broken)
    assert result.fail_open == "engine-error"
    assert result.response["response"]["allowed"] is True and "patch" not in result.response["response"]
    assert "no decision" in result.response["response"]["warnings"][0]


def test_something_that_is_not_a_decision_fails_open() -> None:
    result = run(builders.review(), always({"action": "explode"}))
    assert result.fail_open == "invalid-decision"


SHIFT = {**DEFER, "action": "shift", "node_affinity": {"key": "topology.kubernetes.io/region", "values": ["NO"]}}


@pytest.mark.parametrize("decision", [
    # Issue 15: each of these became a patch (or a response) the API server refuses or garbles.
    {**DEFER, "annotations": {"carbongate.io/bad key!": "v"}},
    {**DEFER, "annotations": {"carbongate.io/decision": {"a": 1}}},
    {**DEFER, "annotations": {"carbongate.io/decision": 3}},
    {**DEFER, "annotations": {"example.com/not-ours": "v"}},
    {**DEFER, "annotations": {"carbongate.io/" + "x" * 64: "v"}},
    {**DEFER, "annotations": ["carbongate.io/decision"]},
    {**SHIFT, "node_affinity": {"key": "not a valid key!!", "values": ["NO"]}},
    {**SHIFT, "node_affinity": {"key": "topology.kubernetes.io/region", "values": ["no spaces"]}},
    {**SHIFT, "node_affinity": {"key": "topology.kubernetes.io/region", "values": ["x" * 64]}},
    {**SHIFT, "node_affinity": {"key": "topology.kubernetes.io/region", "values": []}},
    {**SHIFT, "node_affinity": {"key": "topology.kubernetes.io/region", "values": "NO"}},
    {**SHIFT, "node_affinity": "NO"},
    {**DEFER, "warnings": "abc"},
    {**DEFER, "warnings": ["fine", {"not": "a string"}]},
    {**DEFER, "mode": "enforcing"},
    {"action": "deny", "mode": "enforce", "message": {"team": "ml"}, "warnings": []},
    ["admit"],
    "admit",
], ids=lambda d: repr(d)[-60:])
def test_a_decision_carbongate_cannot_apply_admits_unchanged_as_invalid_decision(decision: Any) -> None:
    result = run(builders.review(), always(decision))
    assert result.fail_open == "invalid-decision"
    response = result.response["response"]
    assert response["allowed"] is True and "patch" not in response
    assert response["warnings"] == ["carbongate: admitted unchanged, no decision (invalid-decision)"]


def test_a_valid_shift_still_patches() -> None:
    result = run(builders.review(), always(SHIFT))
    assert result.fail_open is None and result.patch


def test_many_warnings_are_cut_to_what_the_api_server_keeps_with_the_last_kept() -> None:
    warnings = [f"carbongate: note {i}" for i in range(1001)]
    response = run(builders.review(), always({**DEFER, "warnings": warnings})).response["response"]
    assert len(response["warnings"]) == reviews.MAX_WARNINGS
    assert sum(len(w) for w in response["warnings"]) <= 4096
    assert response["warnings"][-1] == "carbongate: note 1000"
    assert f"{1001 - reviews.MAX_WARNINGS + 1} more warnings not shown" in response["warnings"][-2]


def test_updates_deletes_and_other_kinds_never_reach_the_policy() -> None:
    decide = always(DEFER)
    for document in (
        builders.loopback("16_update-pod_gated-batch.json"),
        builders.loopback("04_create-deployment_ci-runner.json"),
        builders.loopback("05_create-cronjob_log-archive.json"),
        builders.review(operation="DELETE"),
    ):
        result = run(document, decide)
        assert result.response["response"] == {"uid": document["request"]["uid"], "allowed": True}
    assert decide.seen == []


def test_kube_system_and_carbongates_own_namespace_are_never_touched() -> None:
    decide = always(DEFER)
    for namespace in ("kube-system", "carbongate"):
        result = run(builders.review(builders.pod(namespace=namespace)), decide)
        assert "patch" not in result.response["response"]
    assert decide.seen == []


def test_without_grid_data_the_plan_is_null_and_the_policy_still_decides() -> None:
    decide = always(None)
    run(builders.review(), decide, grid=None)
    assert decide.seen[0]["plan"] is None


def test_unreadable_resources_become_a_parse_error_not_a_crash() -> None:
    decide = always(None)

    def bad_energy(obj: Any, seconds: int) -> float:
        raise ValueError("cpu: 'lots' is not a quantity")

    admission.review(reviews.parse(builders.body(builders.review())), knowledge=knowledge(), decide=decide,
                     energy_kwh=bad_energy)
    assert decide.seen[0]["workload"]["energy_kwh"] is None
    assert "resources: cpu" in decide.seen[0]["workload"]["parse_errors"][0]


def test_the_policy_gets_facts_not_the_object_by_default() -> None:
    decide = always(None)
    run(builders.loopback("01_create-job_nightly-train.json"), decide)
    document = decide.seen[0]
    assert "object" not in document
    assert document["facts_version"] == admission.FACTS_VERSION
    assert document["workload"]["annotations"]["carbongate.io/max-delay"] == "12h"
    assert document["workload"]["resources"]["cpu"] > 0


def test_gpus_of_any_vendor_are_a_fact() -> None:
    decide = always(None)
    review = builders.review()
    container = review["request"]["object"]["spec"]["containers"][0]
    container["resources"] = {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"nvidia.com/gpu": "2"}}
    run(review, decide)
    assert decide.seen[0]["workload"]["resources"] == {"cpu": 2.0, "memory_bytes": 1024 ** 3, "gpus": 2.0}


def test_identical_workloads_within_a_second_give_identical_input_bytes() -> None:
    """What makes a fan-out share one cached decision: names and uids are not facts."""
    first, second = builders.review(), builders.review()
    second["request"]["uid"] = "another-uid"
    second["request"]["object"]["metadata"]["name"] = "another-name"
    second["request"]["object"]["metadata"]["uid"] = "another-object-uid"
    decide = always(None)
    run(first, decide, now=START.replace(microsecond=1000))
    run(second, decide, now=START.replace(microsecond=999_000))
    assert decision_cache.canonical(decide.seen[0]) == decision_cache.canonical(decide.seen[1])


def test_now_is_rounded_down_to_the_second_so_deadlines_only_come_earlier() -> None:
    decide = always(None)
    run(builders.review(), decide, now=START.replace(microsecond=999_999))
    assert decide.seen[0]["now_ns"] == int(START.timestamp()) * 1_000_000_000
    assert decide.seen[0]["now"] == NOW


def test_the_opted_in_input_object_leaves_out_api_server_and_kubectl_bookkeeping() -> None:
    decide = always(None)
    run(builders.loopback("01_create-job_nightly-train.json"), decide, object_in_input=True)
    document = decide.seen[0]
    assert "managedFields" not in document["object"]["metadata"]
    assert "kubectl.kubernetes.io/last-applied-configuration" not in document["object"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/last-applied-configuration" not in document["workload"]["annotations"]
    assert document["object"]["metadata"]["annotations"]["carbongate.io/max-delay"] == "12h"


def test_an_opted_in_object_over_the_limit_is_handed_over_as_its_metadata_with_a_warning() -> None:
    decide = always(None)
    review = builders.review(builders.pod(annotations={"example.com/blob": "x" * (admission.MAX_OBJECT_INPUT_BYTES + 1),
                                                       "carbongate.io/max-delay": "2h"}))
    run(review, decide, object_in_input=True)
    document = decide.seen[0]
    assert "spec" not in document["object"]
    assert document["object"]["metadata"]["annotations"] == {"carbongate.io/max-delay": "2h"}
    assert any("over 262144" in error for error in document["workload"]["parse_errors"])
    run(review, decide)
    assert "object" not in decide.seen[1] and decide.seen[1]["workload"]["parse_errors"] == []
