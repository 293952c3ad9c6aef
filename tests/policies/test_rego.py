"""The shipped Rego policies pass their own tests on the embedded engine.

Every ``test_*`` rule under ``policies/rego`` runs through the Rego test runner
on the same engine that decides in production; any failing or uncompilable
test, or a policy without a ``_test.rego`` beside it, fails this suite, and the
coverage the engine reports is printed (and held to 90 % for the admission
policies, their libraries and the config check).
"""

from __future__ import annotations

import pytest

from carbongate import settings
from policy_engine import rego_tests

POLICY_DIR = settings.DEFAULT_POLICY_DIR
MIN_COVERAGE_PCT = 90.0
# Policies of this part of the project; carbongate/release has its own owner and threshold.
HELD_TO_COVERAGE = ("carbongate/admission/", "carbongate/lib/", "carbongate/configcheck/")


@pytest.fixture(scope="module")
def shipped() -> rego_tests.TestRun:
    """One run over the real policy directory, shared by the assertions below."""
    return rego_tests.run(POLICY_DIR, coverage=True)


def describe(run: rego_tests.TestRun) -> str:
    lines = [f"{o.case.name} ({o.case.file}:{o.case.line}): {o.detail}" for o in run.outcomes if o.status == "fail"]
    lines += [str(p) for p in run.problems]
    return "\n".join(lines)


def test_every_shipped_rego_test_passes(shipped: rego_tests.TestRun, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\nRego: {shipped.passed} passed, {shipped.failed} failed, coverage {shipped.total_coverage():.1f}%")
        for name, entry in shipped.policy_coverage().items():
            print(f"  {name:<52} {entry.percent:6.1f}%")
    assert shipped.failed == 0, describe(shipped)
    assert shipped.passed >= 100  # the suite is really there, not silently skipped


def test_the_admission_policies_are_tested_at_every_entry_point(shipped: rego_tests.TestRun) -> None:
    packages = {o.case.package for o in shipped.outcomes}
    assert {
        "carbongate.admission_test", "carbongate.admission.classify_test", "carbongate.admission.modes_test",
        "carbongate.admission.exemptions_test", "carbongate.admission.freshness_test",
        "carbongate.admission.delays_test", "carbongate.admission.windows_test",
        "carbongate.admission.budgets_test", "carbongate.lib.durations_test", "carbongate.lib.units_test",
        "carbongate.configcheck_test",
    } <= packages


def test_admission_policies_are_at_least_90_percent_covered(shipped: rego_tests.TestRun) -> None:
    held = {name: entry for name, entry in shipped.policy_coverage().items() if name.startswith(HELD_TO_COVERAGE)}
    assert len(held) >= 10
    low = {name: round(entry.percent, 1) for name, entry in held.items() if entry.percent < MIN_COVERAGE_PCT}
    assert not low, f"below {MIN_COVERAGE_PCT}% coverage: {low}"


def test_every_shipped_policy_has_a_test_file_beside_it(shipped: rego_tests.TestRun) -> None:
    assert [p for p in shipped.problems if p.kind == "untested"] == []
