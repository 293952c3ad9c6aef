"""Reading tiers, annotations and owners from Pods and Jobs."""

from __future__ import annotations

from tests.webhook import builders
from webhook import workloads


def test_annotations_become_workload_facts() -> None:
    obj = builders.pod(annotations={
        "carbongate.io/max-delay": "6h", "carbongate.io/expected-duration": "2h",
        "carbongate.io/regions": "GB, DE,GB", "carbongate.io/data-region": "GB", "carbongate.io/data-gb": "12.5",
    })
    workload = workloads.read("Pod", obj)
    assert (workload.max_delay_s, workload.expected_duration_s) == (21600, 7200)
    assert workload.regions == ("GB", "DE")
    assert (workload.data_region, workload.data_gb) == ("GB", 12.5)
    assert workload.parse_errors == ()


def test_bad_annotations_are_parse_errors_not_exceptions() -> None:
    obj = builders.pod(annotations={"carbongate.io/max-delay": "soon", "carbongate.io/data-gb": "lots"})
    workload = workloads.read("Pod", obj)
    assert workload.max_delay_s is None and workload.data_gb == 0.0
    assert len(workload.parse_errors) == 2
    assert "carbongate.io/max-delay" in workload.parse_errors[0]


def test_any_shape_of_object_is_tolerated() -> None:
    workload = workloads.read("Pod", {"metadata": {"labels": {"a": 1, "b": "x"}, "annotations": "nope"},
                                      "spec": "nope"})
    assert workload.labels == {"b": "x"}
    assert workload.annotations == {} and workload.pod_spec == {}


def test_a_job_controller_pod_names_its_owner() -> None:
    request = builders.loopback("03_create-pod_nightly-train.json")["request"]
    workload = workloads.read("Pod", request["object"])
    assert (workload.owner_kind, workload.owner_name) == ("Job", "nightly-train")
    assert workload.template_decision is None


def test_a_pod_of_a_decided_job_carries_the_jobs_decision() -> None:
    obj = builders.pod(owner_kind="Job", annotations={"carbongate.io/decision": "defer"})
    assert workloads.read("Pod", obj).template_decision == "defer"


def test_a_bare_pod_with_a_decision_annotation_is_not_taken_for_a_job_pod() -> None:
    obj = builders.pod(annotations={"carbongate.io/decision": "defer"})
    assert workloads.read("Pod", obj).template_decision is None


def test_a_jobs_pod_spec_is_its_template_spec() -> None:
    request = builders.loopback("01_create-job_nightly-train.json")["request"]
    workload = workloads.read("Job", request["object"])
    assert workload.pod_spec["containers"][0]["name"] == "train"
    assert workload.max_delay_s == 12 * 3600 and workload.expected_duration_s == 2 * 3600
