"""Reading a held workload: what carbongate holds, and release_by from annotations alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deferral import workloads
from tests.deferral import builders

NOW = datetime(2023, 11, 22, 12, tzinfo=UTC)


def _read(obj, kind="Pod"):
    return workloads.read(kind, obj, default_duration_s=3600, seen_at=NOW)


def test_release_by_is_the_deadline_minus_the_expected_duration() -> None:
    pod = builders.gated_pod("p", not_before=NOW + timedelta(hours=3),
                             deadline=NOW + timedelta(hours=10), duration="1h30m")
    deferred = _read(pod)
    assert deferred is not None
    assert deferred.release_by == NOW + timedelta(hours=8, minutes=30)
    assert deferred.expected_duration_s == 5400
    assert deferred.tier == "3"
    assert deferred.problems == ()


def test_missing_expected_duration_uses_the_default() -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=NOW + timedelta(hours=10))
    del pod["metadata"]["annotations"][workloads.EXPECTED_DURATION]
    assert _read(pod).release_by == NOW + timedelta(hours=9)


def test_unreadable_duration_is_a_problem_and_uses_the_default() -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=NOW + timedelta(hours=10),
                             duration="two hours")
    deferred = _read(pod)
    assert deferred.release_by == NOW + timedelta(hours=9)
    assert "assumed 3600s" in deferred.problems[0]


def test_missing_or_unreadable_deadline_means_release_at_once() -> None:
    pod = builders.gated_pod("p", not_before=NOW + timedelta(hours=2), deadline=None,
                             extra={workloads.DEADLINE: "tomorrow"})
    deferred = _read(pod)
    assert deferred.release_by == NOW
    assert any("is not an RFC 3339 time" in p for p in deferred.problems)


def test_a_pod_without_our_gate_is_not_held() -> None:
    assert _read(builders.gated_pod("p", not_before=None, deadline=None,
                                    gates=("kueue.x-k8s.io/admission",))) is None


def test_a_suspended_job_is_held_only_when_carbongate_decided_defer() -> None:
    job = builders.suspended_job("j", not_before=None, deadline=NOW)
    assert _read(job, "Job") is not None
    job["metadata"]["annotations"][workloads.DECISION] = "admit"
    assert _read(job, "Job") is None


def test_an_unsuspended_job_is_not_held() -> None:
    job = builders.suspended_job("j", not_before=None, deadline=NOW)
    job["spec"]["suspend"] = False
    assert _read(job, "Job") is None


def test_break_glass_needs_the_value_true() -> None:
    pod = builders.gated_pod("p", not_before=None, deadline=NOW,
                             extra={workloads.RELEASE_NOW: "true"})
    assert _read(pod).break_glass
    pod["metadata"]["annotations"][workloads.RELEASE_NOW] = "True "
    assert not _read(pod).break_glass


@pytest.mark.parametrize("shape", [None, "text", {"spec": "nope"}, {"metadata": []}])
def test_malformed_objects_are_simply_not_held(shape) -> None:
    obj = shape if isinstance(shape, dict) else {"metadata": shape}
    assert _read(obj) is None


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), ("2h", 7200), ("1h30m", 5400),
                                               ("2d", 172800), ("45s", 45), ("1.5h", 5400)])
def test_durations_read_like_the_annotations_people_write(text, seconds) -> None:
    assert workloads.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "2 hours", "-1h", "1h2x"])
def test_bad_durations_are_refused(text) -> None:
    with pytest.raises(ValueError):
        workloads.parse_duration(text)
