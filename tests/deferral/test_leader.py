"""Lease election: one holder, renewals, conflicts, takeover only after expiry."""

from __future__ import annotations

import kubernetes.client
import pytest

from carbongate import clock as clock_mod
from carbongate import leases
from tests.deferral.conftest import START
from tests.support import kube_api

NAME, NAMESPACE = "carbongate-deferral", "carbongate"


@pytest.fixture
def served():
    with kube_api.serve() as running:
        yield running


def _elector(served, clock, identity: str, duration: int = 15) -> leases.Elector:
    return leases.Elector(
        api=kubernetes.client.CoordinationV1Api(served.api_client()),
        config=leases.LeaseConfig(namespace=NAMESPACE, name=NAME, identity=identity,
                                  lease_duration_s=duration, renew_interval_s=2))


def test_the_first_candidate_creates_the_lease_and_leads(served) -> None:
    clock = clock_mod.ManualClock(START)
    first = _elector(served, clock, "a")
    assert first.tick(clock.now())
    lease = served.api.get("Lease", NAMESPACE, NAME)
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseDurationSeconds"] == 15
    assert lease["spec"]["renewTime"].startswith("2023-11-22T12:00:00")


def test_a_second_candidate_waits_while_the_holder_renews(served) -> None:
    clock = clock_mod.ManualClock(START)
    first, second = _elector(served, clock, "a"), _elector(served, clock, "b")
    assert first.tick(clock.now())
    for _ in range(20):  # 40 s of renewals: far beyond one lease duration
        assert not second.tick(clock.now())
        clock.advance(2)
        assert first.tick(clock.now())
    assert served.api.get("Lease", NAMESPACE, NAME)["spec"]["holderIdentity"] == "a"


def test_a_standby_takes_over_a_lease_unrenewed_for_its_duration(served) -> None:
    clock = clock_mod.ManualClock(START)
    first, second = _elector(served, clock, "a"), _elector(served, clock, "b")
    assert first.tick(clock.now())
    assert not second.tick(clock.now())
    clock.advance(14)
    assert not second.tick(clock.now())
    assert not first.is_leader(clock.now())  # renew deadline (10 s) passed: a stops acting
    clock.advance(2)
    assert second.tick(clock.now())
    lease = served.api.get("Lease", NAMESPACE, NAME)
    assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == ("b", 1)
    assert not first.tick(clock.now())  # the old holder sees it lost


def test_a_conflicting_write_loses_the_election(served) -> None:
    clock = clock_mod.ManualClock(START)
    first = _elector(served, clock, "a")
    assert first.tick(clock.now())
    served.api.mutate("Lease", NAMESPACE, NAME,
                      lambda o: o["spec"].update(holderIdentity="intruder"))
    clock.advance(2)
    assert not first.tick(clock.now())


def test_releasing_the_lease_hands_it_over_at_once(served) -> None:
    clock = clock_mod.ManualClock(START)
    first, second = _elector(served, clock, "a"), _elector(served, clock, "b")
    assert first.tick(clock.now())
    first.release()
    assert second.tick(clock.now())


def test_an_unreachable_api_server_keeps_the_leader_only_until_its_renew_deadline(served) -> None:
    clock = clock_mod.ManualClock(START)
    first = _elector(served, clock, "a")
    assert first.tick(clock.now())
    served.api.fail_next(100)
    clock.advance(8)
    assert first.tick(clock.now())  # renewal failed, but 8 s < 10 s renew deadline
    clock.advance(3)
    assert not first.tick(clock.now())
