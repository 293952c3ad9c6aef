"""Fuzzing the Rego decision directly: any input yields a decision or a clean fail-open.

The real embedded engine with the shipped policies, platform config, a grid
snapshot and budgets evaluates ``carbongate/admission/decision`` on:

- inputs the webhook builds (``admission.build_input``) from valid reviews:
  these must always get a well-formed decision;
- the same inputs with parts deleted or replaced by junk, and arbitrary JSON
  objects: these get a well-formed decision, no decision (undefined) or a
  ``PolicyEvaluationError``, which the webhook turns into an admission
  unchanged (fail-open); nothing else may escape, and nothing may hang.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from carbongate import files
from carbongate import settings as settings_mod
from policy_engine import engine as engine_mod
from policy_engine import errors, factory
from tests.reliability import checks, fuzz_target, grid, strategies
from tests.reliability.profiles import examples
from webhook import admission, decision_cache, reviews, workloads
from webhook import decisions as webhook_decisions

ACTIONS = {"admit", "defer", "shift", "deny"}
MODES = {"enforce", "warn", "dryrun", "off"}
# Far beyond the webhook's 250 ms deadline: an evaluation this slow means the policy hangs.
HANG_S = 10.0  # a hang, not a slow evaluation on a loaded 2-core machine (2 s was exceeded at load 11)


class Policy:
    """The engine and what the webhook would know at ``now``."""

    def __init__(self, engine: engine_mod.PolicyEngine, knowledge: admission.Knowledge) -> None:
        self.engine = engine
        self.knowledge = knowledge

    def input_for(self, review: Mapping[str, Any]) -> dict[str, Any]:
        request = reviews.parse(json.dumps(review).encode())
        assert request.object is not None
        labels = fuzz_target.NAMESPACE_LABELS.get(request.namespace, {})
        knowledge = dataclasses.replace(self.knowledge, namespace_labels=labels)
        return admission.build_input(request, workloads.read(request.kind, request.object),
                                     knowledge=knowledge, energy_kwh=lambda obj, seconds: 0.4)

    def evaluate(self, policy_input: Any) -> tuple[Any, float]:
        started = time.perf_counter()
        try:
            return self.engine.evaluate(engine_mod.ADMISSION_DECISION, policy_input), time.perf_counter() - started
        finally:
            assert time.perf_counter() - started < HANG_S, "the policy hung"


@pytest.fixture(scope="module")
def policy() -> Iterator[Policy]:
    now = fuzz_target.dirty_now()
    snapshot = grid.build(now)
    settings = settings_mod.load(environ={})
    engine = factory.build(settings.engine)
    engine.put_data("grid", snapshot)
    engine.put_data("budgets", fuzz_target.budgets(now))
    config = files.load_json(settings.engine.policy_dir / "carbongate" / "config" / "data.json")
    knowledge = admission.Knowledge(
        now=now, grid=snapshot, budgets=fuzz_target.budgets(now), config=config,  # type: ignore[arg-type]
        # Opted in, every tier allowed: the fuzzed decisions reach the patch builder.
        namespace_labels={"carbongate.io/enforcement": "enforce", "carbongate.io/allowed-tiers": "1,2,3"},
        home_region="GB", own_namespace="carbongate",
        exempt_namespaces=frozenset({"kube-system"}), policy_version=engine.version, plan_step_s=900)
    try:
        yield Policy(engine, knowledge)
    finally:
        engine.close()


def decision_problems(decision: Any) -> list[str]:
    """What the webhook requires of a decision (docs/architecture.md, "Decision")."""
    if not isinstance(decision, dict):
        return [f"decision is {type(decision).__name__}"]
    problems = []
    if decision.get("action") not in ACTIONS:
        problems.append(f"action {decision.get('action')!r}")
    if decision.get("mode") not in MODES:
        problems.append(f"mode {decision.get('mode')!r}")
    warnings = decision.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        problems.append(f"warnings {warnings!r:.100}")
    annotations = decision.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and k.startswith(checks.PREFIX) and isinstance(v, str)
            for k, v in annotations.items()):
        problems.append(f"annotations {annotations!r:.100}")
    affinity = decision.get("node_affinity")
    if affinity is not None and not (isinstance(affinity, dict) and isinstance(affinity.get("key"), str)
                                     and isinstance(affinity.get("values"), list)):
        problems.append(f"node_affinity {affinity!r:.100}")
    return problems


@examples(100)
@given(review=strategies.valid_reviews())
def test_inputs_the_webhook_builds_always_get_a_well_formed_decision(policy: Policy, review: dict[str, Any]) -> None:
    decision, _ = policy.evaluate(policy.input_for(review))
    assert decision_problems(decision) == []
    event(f"{decision['mode']} {decision['action']}")


@st.composite
def broken_inputs(draw: st.DrawFn, policy: Policy) -> Any:
    built = policy.input_for(draw(strategies.valid_reviews()))
    return draw(strategies.corrupted(built, edits=4))


@examples(200)
@given(data=st.data())
def test_broken_inputs_get_a_decision_or_a_clean_engine_error(policy: Policy, data: st.DataObject) -> None:
    policy_input = data.draw(st.one_of(
        broken_inputs(policy),
        st.dictionaries(st.text(max_size=12), strategies.odd_values, max_size=6),
        st.fixed_dictionaries({}, optional={key: strategies.odd_values for key in (
            "now", "now_ns", "operation", "dry_run", "kind", "namespace", "namespace_labels", "object",
            "user", "own_namespace", "workload", "plan", "budget")}),
    ))
    try:
        decision, _ = policy.evaluate(policy_input)
    except errors.PolicyEvaluationError as error:
        event("engine error (fail-open)")
        assert str(error)
        return
    event("undefined" if decision is None else f"action {decision.get('action')}")
    if decision is not None:
        assert decision_problems(decision) == []


@examples(100)
@given(review=strategies.valid_reviews(), extra=st.dictionaries(st.text(max_size=8), strategies.odd_values,
                                                                 max_size=3))
def test_the_webhook_path_over_any_decision_input_answers_well_formed(
        policy: Policy, review: dict[str, Any], extra: dict[str, Any]) -> None:
    """``admission.review`` with the engine as ``decide``: whatever the engine says, a valid response."""
    request = reviews.parse(json.dumps(review).encode())

    def decide(document: Mapping[str, Any]) -> Any:
        try:
            return policy.engine.evaluate(engine_mod.ADMISSION_DECISION, {**document, **extra})
        except errors.PolicyEngineError as error:
            raise admission.DecisionError(str(error)) from error

    result = admission.review(request, knowledge=policy.knowledge, decide=decide,
                              energy_kwh=lambda obj, seconds: 0.4)
    assert checks.response_problems(dict(result.response), request.uid) == []
    if result.patch:
        checks.apply(request.object or {}, result.patch)


# --- issue 15: whatever the policy answers, never a patch the API server refuses ----------

_ANNOTATION_KEYS = st.one_of(
    strategies.name_part.map(lambda name: "carbongate.io/" + name),  # valid
    st.sampled_from(["carbongate.io/decision", "carbongate.io/region", "carbongate.io/bad key!",
                     "carbongate.io/", "carbongate.io/" + "x" * 64, "example.com/x", "", "carbongate.io/a/b"]),
    st.text(max_size=20),
)
_AFFINITY = st.one_of(
    st.none(),
    st.fixed_dictionaries({
        "key": st.one_of(strategies.qualified_name, st.sampled_from(["not a valid key!!", "", "a/b/c"]),
                         strategies.odd_values),
        "values": st.one_of(st.lists(strategies.label_value, min_size=1, max_size=3),
                            st.lists(st.one_of(st.text(max_size=70), strategies.odd_values), max_size=3),
                            strategies.odd_values),
    }),
    strategies.odd_values,
)
policy_decisions = st.fixed_dictionaries(
    {"action": st.one_of(st.sampled_from(sorted(ACTIONS)), strategies.odd_values)},
    optional={
        "mode": st.one_of(st.just("enforce"), st.sampled_from(sorted(MODES)), strategies.odd_values),
        "warnings": st.one_of(st.lists(st.text(max_size=300), max_size=30), st.text(max_size=5),
                              st.lists(strategies.odd_values, max_size=3)),
        "message": st.one_of(st.text(max_size=100), strategies.odd_values),
        "annotations": st.one_of(
            st.dictionaries(_ANNOTATION_KEYS, st.one_of(st.text(max_size=50), strategies.odd_values), max_size=6),
            strategies.odd_values),
        "node_affinity": _AFFINITY,
    },
)


@examples(300)
@given(review=strategies.valid_reviews(), decision=st.deferred(
    lambda: st.one_of(policy_decisions, applicable_decisions, strategies.odd_values)))
def test_any_decision_a_policy_returns_gives_a_patch_the_api_server_accepts_or_none(
        policy: Policy, review: dict[str, Any], decision: Any) -> None:
    """Random policy output through the patch builder: a broken decision admits unchanged
    (``invalid-decision``); an applicable one patches into an object that passes the
    Kubernetes 1.30 schema and the API server's key and value syntax rules."""
    request = reviews.parse(json.dumps(review).encode())
    result = admission.review(request, knowledge=policy.knowledge, decide=lambda document: decision,
                              energy_kwh=lambda obj, seconds: 0.4)
    response = dict(result.response)
    assert checks.response_problems(response, request.uid) == []
    event(f"fail-open: {result.fail_open}" if result.fail_open else "patched" if result.patch else "no patch")
    if result.fail_open:
        assert result.fail_open == "invalid-decision" and not result.patch
        assert response["response"]["allowed"] is True
        return
    if not result.patch:
        return
    original = request.object or {}
    patched = checks.apply(original, result.patch)
    assert checks.schema_problems(patched) == []
    assert checks.api_problems(patched) == []
    assert checks.ownership_problems(original, patched) == []


applicable_decisions = st.fixed_dictionaries({
    "action": st.sampled_from(["defer", "shift"]),
    "mode": st.just("enforce"),
    "warnings": st.lists(st.text(max_size=300), max_size=30),
    "annotations": st.dictionaries(strategies.name_part.map(lambda name: "carbongate.io/" + name),
                                   st.one_of(st.text(max_size=50), st.none()), max_size=6),
    "node_affinity": st.one_of(st.none(), st.fixed_dictionaries({
        "key": strategies.qualified_name,
        "values": st.lists(strategies.label_value, min_size=1, max_size=3)})),
})


@examples(100)
@given(review=strategies.valid_reviews(), decision=applicable_decisions)
def test_an_applicable_decision_is_applied_not_refused(
        policy: Policy, review: dict[str, Any], decision: dict[str, Any]) -> None:
    """The other half: the checks refuse only what cannot be applied."""
    assert webhook_decisions.problems(decision) == []
    request = reviews.parse(json.dumps(review).encode())
    result = admission.review(request, knowledge=policy.knowledge, decide=lambda document: decision,
                              energy_kwh=lambda obj, seconds: 0.4)
    assert result.fail_open != "invalid-decision"
    if result.patch:
        patched = checks.apply(request.object or {}, result.patch)
        assert checks.schema_problems(patched) == [] and checks.api_problems(patched) == []


# --- issue 14: a cached decision is the decision ---------------------------------------------

_SHARED_CACHE = decision_cache.DecisionCache(max_entries=64)


@examples(150)
@given(reviews=st.lists(strategies.valid_reviews(), min_size=1, max_size=3))
def test_a_decision_from_the_cache_equals_a_fresh_evaluation(policy: Policy, reviews: list[dict[str, Any]]) -> None:
    """One cache shared by every example (bounded, so entries also age out): whatever it held
    before, each input is answered with exactly what the engine says for it now."""
    versions = (policy.engine.version, policy.knowledge.grid, policy.knowledge.budgets)
    for review in reviews:
        policy_input = policy.input_for(review)
        fresh, _ = policy.evaluate(policy_input)
        for _ in range(2):
            cached = _SHARED_CACHE.decide(versions, policy_input,
                                          lambda doc: policy.engine.evaluate(engine_mod.ADMISSION_DECISION, doc))
            assert cached == fresh
