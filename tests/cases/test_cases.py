"""The case suite: ``tests/cases/carbongate-test.yaml``, run as ``carbongate test`` runs it.

Like ``kyverno test`` with ``patchedResource`` (which Gatekeeper's gator
lacks): each test names a real AdmissionReview from ``tests/fixtures/admission``
(most captured from a Kubernetes v1.28 API server) or a variant of one in
``resources/``, the instant, the grid the decision sees and the namespace
labels, and states the expected decision and the resource after the patch.
Every test runs through the real embedded OPA engine with the shipped policies
and the same ``admission.review`` the webhook runs; here each patched resource
must also validate against the Kubernetes 1.30 schema.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from carbongate import settings as settings_mod
from webhook import decision_cache, offline, suite

SUITE = Path(__file__).resolve().parent / suite.SUITE_FILE
SETTINGS = settings_mod.load(environ={})
TESTS = list(suite.load(SUITE))


@pytest.fixture(scope="module")
def reviewer() -> Iterator[offline.Reviewer]:
    built = offline.Reviewer(SETTINGS, policy_version=suite.POLICY_VERSION)
    yield built
    built.close()


@pytest.mark.parametrize("test", TESTS, ids=[t.name for t in TESTS])
def test_case(reviewer: offline.Reviewer, test: suite.Test) -> None:
    checks = suite.run_test(test, reviewer=reviewer, settings=SETTINGS)
    assert checks, "a test without results checks nothing"
    failed = [f"{c.resource}: {c.error or chr(10).join(c.problems)}" for c in checks if c.status != "pass"]
    assert not failed, "\n".join(failed)
    for check in checks:
        assert check.patched is not None
        _validate(check.patched)


class CachedEngine:
    """The reviewer's engine with every admission decision asked through a decision cache.

    The versions are the engine's policy version and the grid and budgets
    documents the reviewer last put (each test puts its own), as the webhook
    keys its cache by the documents its worker holds.
    """

    def __init__(self, reviewer: offline.Reviewer, cache: decision_cache.DecisionCache) -> None:
        self._reviewer, self._engine, self._cache = reviewer, reviewer.engine, cache

    def evaluate(self, path: str, document: Any) -> Any:
        held = self._reviewer._held
        versions = (self._engine.version, held.get("grid"), held.get("budgets"), self._reviewer.config)
        return self._cache.decide(versions, document, lambda doc: self._engine.evaluate(path, doc))

    def put_data(self, name: str, document: Any) -> None:
        self._engine.put_data(name, document)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def test_a_cached_decision_equals_a_fresh_one_on_every_case() -> None:
    """Every case decided through one shared cache twice (a miss, then a hit), against its expectations.

    The expectations are the fresh decisions; each case puts its own grid and
    budgets, so the cache also turns its epoch between cases: a case is never
    answered with the previous case's decision.
    """
    reviewer = offline.Reviewer(SETTINGS, policy_version=suite.POLICY_VERSION)
    try:
        reviewer.engine = CachedEngine(reviewer, decision_cache.DecisionCache(max_entries=64))
        hits = decision_cache.LOOKUPS.labels(result="hit")._value.get()
        for test in TESTS:
            for _ in range(2):
                checks = suite.run_test(test, reviewer=reviewer, settings=SETTINGS)
                failed = [f"{c.resource}: {c.error or chr(10).join(c.problems)}" for c in checks if c.status != "pass"]
                assert not failed, (test.name, failed)
        assert decision_cache.LOOKUPS.labels(result="hit")._value.get() - hits > 20
    finally:
        reviewer.engine = reviewer.engine._engine if isinstance(reviewer.engine, CachedEngine) else reviewer.engine
        reviewer.close()


def _validate(obj: dict[str, Any]) -> None:
    """The patched object must still be a valid Pod or Job for Kubernetes 1.30."""
    candidate = copy.deepcopy(obj)
    candidate.setdefault("apiVersion", "batch/v1" if candidate.get("kind") == "Job" else "v1")
    kubernetes_validate.validate(candidate, "1.30", strict=False)
