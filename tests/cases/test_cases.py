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
from webhook import offline, suite

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


def _validate(obj: dict[str, Any]) -> None:
    """The patched object must still be a valid Pod or Job for Kubernetes 1.30."""
    candidate = copy.deepcopy(obj)
    candidate.setdefault("apiVersion", "batch/v1" if candidate.get("kind") == "Job" else "v1")
    kubernetes_validate.validate(candidate, "1.30", strict=False)
