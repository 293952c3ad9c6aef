"""Reading a finished Pod into the facts accounting needs: who, what was decided, where, when."""

from __future__ import annotations

from typing import Any

import pytest

from governance import collector, pods
from tests.governance.conftest import at, finished_pod

DEFAULTS = pods.Defaults(home_region="GB", default_tier="2")
SEEN = at("2026-11-03T16:00")


def facts(pod: dict[str, Any], **kwargs: Any) -> Any:
    return pods.facts(pod, defaults=DEFAULTS, observed_at=SEEN, **kwargs)


def test_times_come_from_the_containers_that_ran() -> None:
    pod = finished_pod("p", uid="u", started="2026-11-03T13:05:00Z",
                       finished="2026-11-03T14:35:00Z")
    found = facts(pod)
    assert (found.start, found.end, found.duration_s) == (
        at("2026-11-03T13:05"), at("2026-11-03T14:35"), 90 * 60)


def test_init_containers_count_from_when_they_started() -> None:
    pod = finished_pod("p", uid="u")
    pod["status"]["initContainerStatuses"] = [{"name": "setup", "state": {"terminated": {
        "startedAt": "2026-11-03T12:50:00Z", "finishedAt": "2026-11-03T13:00:00Z"}}}]
    assert facts(pod).start == at("2026-11-03T12:50")


def test_a_pod_without_container_times_uses_its_start_time_and_conditions() -> None:
    pod = finished_pod("evicted", uid="u", phase="Failed")
    pod["status"] = {"phase": "Failed", "startTime": "2026-11-03T13:00:00Z", "conditions": [
        {"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-03T13:40:00Z"}]}
    found = facts(pod)
    assert (found.start, found.end) == (at("2026-11-03T13:00"), at("2026-11-03T13:40"))


def test_a_pod_that_never_started_charges_nothing() -> None:
    pod = finished_pod("p", uid="u", phase="Failed")
    pod["status"] = {"phase": "Failed"}
    found = facts(pod)
    assert found.duration_s == 0 and found.end == SEEN


def test_carbongates_annotations_say_what_was_decided_and_where() -> None:
    pod = finished_pod("p", uid="u", decision="shift", region="NO")
    pod["metadata"]["annotations"]["carbongate.io/intensity"] = "412"
    found = facts(pod)
    assert (found.decision, found.region, found.home_region) == ("shift", "NO", "GB")
    assert found.admission_g_per_kwh == 412.0 and found.changed


def test_a_pod_carbongate_never_saw_is_unchanged_and_runs_at_home() -> None:
    found = facts(finished_pod("p", uid="u", decision=None))
    assert (found.decision, found.region, found.changed) == ("none", "GB", False)


def test_the_namespace_gives_team_and_tier_when_the_pod_does_not() -> None:
    pod = finished_pod("p", uid="u", team=None)
    del pod["metadata"]["labels"]["carbongate.io/tier"]
    found = facts(pod, namespace_labels={"carbongate.io/team": "platform",
                                         "carbongate.io/tier": "1"})
    assert (found.team, found.tier, found.changed) == ("platform", "1", False)


def test_without_labels_anywhere_the_default_tier_applies() -> None:
    pod = finished_pod("p", uid="u", team=None)
    del pod["metadata"]["labels"]["carbongate.io/tier"]
    assert (facts(pod).team, facts(pod).tier) == ("(unassigned)", "2")


def test_the_node_pool_comes_from_a_node_selector() -> None:
    pod = finished_pod("p", uid="u")
    pod["spec"]["nodeSelector"] = {"cloud.google.com/gke-nodepool": "gpu-a100"}
    assert facts(pod).node_pool == "gpu-a100"
    assert pods.pool_from_node_labels({"eks.amazonaws.com/nodegroup": "arm"}) == "arm"


def test_admission_never_comes_after_the_start() -> None:
    pod = finished_pod("p", uid="u", created="2026-11-03T13:30:00Z")  # clocks disagree
    assert facts(pod).admitted_at == at("2026-11-03T13:00")


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p["metadata"].pop("uid"), "uid"),
    (lambda p: p["metadata"].pop("creationTimestamp"), "creationTimestamp"),
    (lambda p: p["status"]["containerStatuses"][0]["state"]["terminated"].update(
        finishedAt="yesterday"), "not an RFC 3339 time"),
])
def test_a_malformed_pod_is_refused_clearly(change: Any, message: str) -> None:
    pod = finished_pod("p", uid="u")
    change(pod)
    with pytest.raises(pods.PodError, match=message):
        facts(pod)


def test_only_succeeded_and_failed_pods_are_finished() -> None:
    assert pods.is_finished(finished_pod("p"))
    assert not pods.is_finished({"status": {"phase": "Running"}})
    assert not pods.is_finished({})


def test_lookups_are_cached_for_a_while_then_asked_again() -> None:
    now = [0.0]
    calls: list[str] = []
    cache = collector.TtlCache(ttl_s=300, size=2, clock=lambda: now[0])

    def load(key: str) -> str:
        calls.append(key)
        return key.upper()

    assert cache.get("ml", lambda: load("ml")) == "ML"
    assert cache.get("ml", lambda: load("ml")) == "ML"
    now[0] = 301
    cache.get("ml", lambda: load("ml"))
    cache.get("web", lambda: load("web"))
    cache.get("etl", lambda: load("etl"))  # evicts the least recently used: ml
    cache.get("ml", lambda: load("ml"))
    assert calls == ["ml", "ml", "web", "etl", "ml"]
