"""A burst against a slow policy, then the policy fixed: how soon are reviews decided again?

Issue 15: after a burst against a slow policy, restoring the policy made
``/readyz`` ready at once, yet reviews kept failing open for 20-23 s while the
abandoned evaluations drained one engine at a time: every decision thread was
waiting in line for an engine of the old (slow) generation, and new reviews
queued behind them. Now a waiting evaluation leaves the line at its request's
deadline, so only the evaluations already running on an engine (``pool_size``
of them, which the Go engine cannot interrupt) outlive their requests.

The app is the real one with the real embedded engine, driven from as many
threads as gunicorn's gthread worker has; the slow policy is an extra rule of
``decision`` whose body takes about a second and then fails (so the shipped
decision is unchanged, only slow).
"""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbongate import settings as settings_mod
from tests.reliability import checks, fuzz_target, strategies
from webhook import reviews

pytestmark = pytest.mark.xdist_group("reliability")

SLOW_RULE = """package carbongate.admission

import rego.v1

# Slow on purpose (tests/reliability/test_faults_slow_policy.py): its body never holds.
decision := {"action": "admit"} if {
	every i in numbers.range(1, %d) {
		every j in numbers.range(1, 1000) {
			i + j > 0
		}
	}
	count(object.keys(input)) < 0
}
"""
BURST = 40


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    copied = tmp_path / "rego"
    shutil.copytree(settings_mod.load(environ={}).engine.policy_dir, copied)
    return copied


@pytest.fixture
def target(tmp_path: Path, policy_dir: Path) -> Iterator[fuzz_target.FuzzTarget]:
    with fuzz_target.fuzz_target(tmp_path / "app", policy_dir=policy_dir) as running:
        yield running


def review_body(uid: str, namespace: str = "batch-enforce") -> bytes:
    pod = strategies.fixture(strategies.POD_FIXTURES[-1])["request"]["object"]
    pod["metadata"]["ownerReferences"] = []
    pod["metadata"]["annotations"] = {"carbongate.io/max-delay": "24h"}
    return json.dumps(strategies.review_of(pod, namespace=namespace, uid=uid, dry_run=False)).encode()


def fail_open_reason(target: fuzz_target.FuzzTarget, uid: str, namespace: str = "batch-enforce") -> str | None:
    status, document = target.app.extensions["carbongate"].handle(review_body(uid, namespace))
    assert status == 200
    return checks.fail_open_reason(document)


def test_abandoned_evaluations_leave_the_line_and_decisions_resume_once_the_policy_is_fixed(
        target: fuzz_target.FuzzTarget, policy_dir: Path) -> None:
    service = target.app.extensions["carbongate"]
    engine = service.engine
    slow_file = policy_dir / "carbongate" / "admission" / "slow_on_purpose.rego"
    slow_file.write_text(SLOW_RULE % 400)
    engine.reload_policies()
    started = time.monotonic()
    decided = service._review(reviews.parse(review_body("timed")), None)  # no deadline: as long as it takes
    slow_s = time.monotonic() - started
    assert decided.fail_open is None and decided.decision is not None
    assert slow_s > 0.5, f"the slow policy is not slow enough to test anything ({slow_s:.2f} s)"

    threads = service.settings.webhook.threads
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as clients:
        reasons = list(clients.map(lambda i: fail_open_reason(target, f"burst-{i}"), range(BURST)))
    assert set(reasons) == {"deadline"}, reasons

    # The burst's evaluations that never got an engine gave up with their requests: the
    # decision threads are free again while the policy is still slow, so a review that
    # needs no policy (kube-system is exempt) is answered. Before, every thread waited in
    # line for the one engine, (threads - 1) x slow_s, and this too failed open.
    time.sleep(service.settings.webhook.decision_deadline_ms / 1000)
    assert fail_open_reason(target, "exempt", namespace="kube-system") is None

    slow_file.unlink()
    fixed = time.monotonic()
    engine.reload_policies()
    reload_s = time.monotonic() - fixed
    while fail_open_reason(target, "after") is not None:
        assert time.monotonic() - fixed < 60, "decisions never resumed"
    recovered_s = time.monotonic() - fixed
    print(f"one slow evaluation {slow_s:.2f} s; fixed policy loaded in {reload_s:.2f} s; "
          f"decisions again {recovered_s:.2f} s after the fix")
    # At most the one evaluation running on the old engine when the fix came still holds a thread.
    assert recovered_s < reload_s + 1.0, (recovered_s, reload_s, slow_s)
