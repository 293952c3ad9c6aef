"""Turning decisions into patches: gates, suspension, affinity, annotations."""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.webhook import builders
from webhook import mutations, patches

AFFINITY = {"key": "topology.kubernetes.io/region", "values": ["europe-north1"]}
DEFER = {"action": "defer", "region": "GB", "node_affinity": None,
         "annotations": {"carbongate.io/decision": "defer", "carbongate.io/not-before": "2026-11-22T03:00:00Z"}}


def mutate(kind: str, obj: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    return mutations.apply(kind, obj, decision, policy_version="abc123").obj


def test_a_deferred_pod_gets_the_clean_window_gate_and_keeps_other_gates() -> None:
    obj = builders.pod(gates=["kueue.x-k8s.io/admission"])
    gates = mutate("Pod", obj, DEFER)["spec"]["schedulingGates"]
    assert gates == [{"name": "kueue.x-k8s.io/admission"}, {"name": "carbongate.io/clean-window"}]


def test_the_gate_is_never_added_twice() -> None:
    obj = builders.pod(gates=["carbongate.io/clean-window"])
    assert mutate("Pod", obj, DEFER)["spec"]["schedulingGates"] == [{"name": "carbongate.io/clean-window"}]


def test_a_deferred_job_is_suspended_and_its_template_carries_the_decision() -> None:
    mutated = mutate("Job", builders.job(suspend=False), DEFER)
    assert mutated["spec"]["suspend"] is True
    assert "schedulingGates" not in mutated["spec"]["template"]["spec"]
    assert mutated["spec"]["template"]["metadata"]["annotations"]["carbongate.io/decision"] == "defer"
    assert mutated["metadata"]["annotations"]["carbongate.io/policy-version"] == "abc123"


def test_mutating_does_not_touch_the_original() -> None:
    obj = builders.pod()
    mutate("Pod", obj, DEFER)
    assert "schedulingGates" not in obj["spec"]


def test_a_shift_adds_a_preferred_term_for_the_region() -> None:
    mutated = mutate("Pod", builders.pod(), {"action": "shift", "node_affinity": AFFINITY, "annotations": {}})
    preferred = mutated["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred == [{"weight": 100, "preference": {"matchExpressions": [
        {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["europe-north1"]}]}}]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in mutated["spec"]["affinity"]["nodeAffinity"]


def test_required_terms_are_narrowed_by_adding_the_requirement_to_each() -> None:
    required = {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disktype", "operator": "In", "values": ["ssd"]}]},
        {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},
    ]}
    obj = builders.pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}})
    mutated = mutate("Pod", obj, {"action": "shift", "node_affinity": AFFINITY, "annotations": {}})
    terms = mutated["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    for term in terms["nodeSelectorTerms"]:
        assert term["matchExpressions"][0]["key"] in ("disktype", "gpu")
        assert term["matchExpressions"][-1] == {"key": "topology.kubernetes.io/region", "operator": "In",
                                                "values": ["europe-north1"]}


def test_a_users_region_pin_is_respected_and_explained() -> None:
    required = {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["europe-west2"]}]}]}
    obj = builders.pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}})
    outcome = mutations.apply("Pod", obj, {"action": "shift", "node_affinity": AFFINITY, "annotations": {}},
                              policy_version="v")
    assert outcome.obj == obj
    assert "kept your node affinity" in outcome.notes[0]


def test_applying_a_decision_twice_changes_nothing_more() -> None:
    decision = {**DEFER, "node_affinity": AFFINITY}
    once = mutate("Pod", builders.pod(), decision)
    twice = mutate("Pod", once, decision)
    assert patches.json_patch(once, twice) == []


def test_only_carbongate_annotations_reach_the_object() -> None:
    decision = {"action": "admit", "annotations": {"carbongate.io/decision": "admit", "evil.io/x": "y",
                                                    "carbongate.io/intensity": 96}}
    annotations = mutate("Pod", builders.pod(), decision)["metadata"]["annotations"]
    assert annotations == {"carbongate.io/decision": "admit", "carbongate.io/intensity": "96",
                           "carbongate.io/policy-version": "abc123"}


def test_the_patch_applies_to_the_original_and_yields_the_mutated_copy() -> None:
    request = builders.loopback("01_create-job_nightly-train.json")["request"]
    mutated = mutate("Job", request["object"], DEFER)
    ops = patches.json_patch(request["object"], mutated)
    assert patches.apply_patch(request["object"], ops) == mutated
    assert {"op": "replace", "path": "/spec/suspend", "value": True} in ops


# --- issue 14: the patch built from touched paths is the whole diff -----------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, width=16),
                     st.text(max_size=3))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)), max_leaves=12)


@st.composite
def _edited(draw: st.DrawFn) -> tuple[Any, Any]:
    """A document and a copy-on-write edit of it: values replaced, keys added and removed, arrays grown."""
    def edit(value: Any) -> Any:
        choice = draw(st.integers(0, 3))
        if choice == 0:
            return value  # shared, as mutations.apply leaves what it does not touch
        if isinstance(value, dict) and choice < 3:
            copy = dict(value)
            for key in list(copy)[:draw(st.integers(0, len(copy)))]:
                copy[key] = edit(copy[key])
            if draw(st.booleans()) and copy:
                del copy[draw(st.sampled_from(sorted(copy)))]
            if draw(st.booleans()):
                copy[draw(st.text(max_size=3))] = draw(_json)
            return copy
        if isinstance(value, list) and choice < 3:
            return [edit(item) for item in value] + draw(st.lists(_json, max_size=2))
        return draw(_json)

    before = draw(st.dictionaries(st.text(max_size=3), _json, max_size=4))
    return before, edit(before)


@settings(max_examples=300, deadline=None)
@given(pair=_edited())
def test_the_patch_of_touched_paths_turns_the_original_into_the_copy_as_a_full_diff_does(
        pair: tuple[Any, Any]) -> None:
    before, after = pair
    snapshot = json.dumps(before, sort_keys=True)
    ours = patches.json_patch(before, after)
    assert patches.apply_patch(before, ours) == jsonpatch.make_patch(before, after).apply(before) == after
    assert json.dumps(before, sort_keys=True) == snapshot  # the original is never changed
