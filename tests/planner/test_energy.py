"""The energy model against worked examples computed by hand from CCF's coefficients.

Every expected figure below is written out as the arithmetic a reader can
redo from Cloud Carbon Footprint's methodology (Appendix I: min/max watts per
vCPU, 0.392 W/GB, PUE per cloud; Appendix III: GPU idle/full-load watts).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from planner import energy, quantities

FIXTURES = Path(__file__).parent.parent / "fixtures" / "governance"


def container(name: str = "main", *, requests: dict[str, Any] | None = None,
              limits: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests is not None:
        resources["requests"] = requests
    if limits is not None:
        resources["limits"] = limits
    return {"name": name, "image": "busybox", "resources": resources, **extra}


def pod_spec(*containers: dict[str, Any], init: tuple[dict[str, Any], ...] = (),
             **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": list(containers), **extra}
    if init:
        spec["initContainers"] = list(init)
    return spec


# --- worked examples --------------------------------------------------------------------

def test_default_model_is_ccf_aws_at_half_utilisation() -> None:
    # 2 vCPU: 0.74 + 0.5 × (3.5 − 0.74) = 2.12 W each -> 4.24 W
    # 4 GiB: 4 × 0.392 = 1.568 W;  (4.24 + 1.568) × PUE 1.135 = 6.59208 W
    spec = pod_spec(container(requests={"cpu": "2", "memory": "4Gi"}))
    assert energy.EnergyModel.default().power_w(spec) == pytest.approx(6.59208)


def test_energy_is_power_times_duration_in_kwh() -> None:
    # 6.59208 W × 2 h = 13.18416 Wh = 0.01318416 kWh
    spec = pod_spec(container(requests={"cpu": "2", "memory": "4Gi"}))
    assert energy.EnergyModel.default().energy_kwh(spec, 7200) == pytest.approx(0.01318416)


def test_gcp_pool_from_file_uses_gcp_medians_and_pue() -> None:
    # 0.5 vCPU: 0.5 × (0.71 + 0.5 × (4.26 − 0.71)) = 0.5 × 2.485 = 1.2425 W
    # 512M = 512e6 B = 0.476837158203125 GiB × 0.392 = 0.186920166015625 W
    # (1.2425 + 0.186920166015625) × PUE 1.1 = 1.5723621826171875 W
    model = energy.load(FIXTURES / "energy-model.yaml")
    spec = pod_spec(container(requests={"cpu": "500m", "memory": "512M"}))
    assert model.power_w(spec) == pytest.approx(1.5723621826171875)


def test_gpu_pool_counts_gpus_at_ccf_a100_watts() -> None:
    # 4 vCPU on Azure: 4 × (0.78 + 0.5 × 2.98) = 4 × 2.27 = 9.08 W
    # 16 GiB: 6.272 W;  1 A100: 46 + 0.5 × (407 − 46) = 226.5 W
    # (9.08 + 6.272 + 226.5) × PUE 1.185 = 241.852 × 1.185 = 286.59462 W
    model = energy.load(FIXTURES / "energy-model.yaml")
    spec = pod_spec(container(requests={"cpu": "4", "memory": "16Gi"},
                              limits={"nvidia.com/gpu": "1"}))
    assert model.power_w(spec, node_pool="gpu-a100") == pytest.approx(286.59462)


def test_pool_with_own_watts_and_utilisation() -> None:
    # 2 vCPU: 0.47 + 0.25 × (1.69 − 0.47) = 0.775 W each -> 1.55 W; 1 GiB: 0.392 W
    # (1.55 + 0.392) × AWS PUE 1.135 = 2.20417 W
    model = energy.load(FIXTURES / "energy-model.yaml")
    spec = pod_spec(container(requests={"cpu": 2, "memory": "1Gi"}))
    assert model.power_w(spec, node_pool="arm") == pytest.approx(2.20417)


def test_unknown_node_pool_uses_the_default_pool() -> None:
    model = energy.load(FIXTURES / "energy-model.yaml")
    spec = pod_spec(container(requests={"cpu": "1"}))
    # 1 vCPU on GCP: 2.485 W × 1.1 = 2.7335 W
    assert model.power_w(spec, node_pool="never-heard-of") == pytest.approx(2.7335)


# --- what a pod asks for ----------------------------------------------------------------

def test_limits_count_when_a_container_requests_nothing() -> None:
    # limits 1 vCPU, 2 GiB: (2.12 + 0.784) × 1.135 = 3.29604 W
    spec = pod_spec(container(limits={"cpu": "1", "memory": "2Gi"}))
    assert energy.EnergyModel.default().power_w(spec) == pytest.approx(3.29604)


def test_requests_win_over_limits() -> None:
    spec = pod_spec(container(requests={"cpu": "250m"}, limits={"cpu": "4"}))
    assert energy.effective_resources(spec).vcpu == pytest.approx(0.25)


def test_app_containers_add_up() -> None:
    spec = pod_spec(container("a", requests={"cpu": "1", "memory": "1Gi"}),
                    container("b", requests={"cpu": "500m", "memory": "1Gi"}))
    resources = energy.effective_resources(spec)
    assert resources.vcpu == pytest.approx(1.5)
    assert resources.memory_gb == pytest.approx(2.0)


def test_a_larger_init_container_sets_the_pod_request() -> None:
    # max(init 2, app 1 + 0.5) = 2 vCPU; memory max(512Mi, 2Gi) = 2 GiB
    spec = pod_spec(container("a", requests={"cpu": "1", "memory": "1Gi"}),
                    container("b", requests={"cpu": "500m", "memory": "1Gi"}),
                    init=(container("setup", requests={"cpu": "2", "memory": "512Mi"}),))
    resources = energy.effective_resources(spec)
    assert resources.vcpu == pytest.approx(2.0)
    assert resources.memory_gb == pytest.approx(2.0)


def test_sidecar_init_containers_add_to_the_app_and_to_later_inits() -> None:
    # sidecar 0.25 runs throughout: app 0.5 + 0.25 = 0.75; init after it: 0.25 + 1 = 1.25
    spec = pod_spec(container(requests={"cpu": "500m"}),
                    init=(container("proxy", requests={"cpu": "250m"}, restartPolicy="Always"),
                          container("migrate", requests={"cpu": "1"})))
    assert energy.effective_resources(spec).vcpu == pytest.approx(1.25)


def test_pod_overhead_comes_on_top() -> None:
    spec = pod_spec(container(requests={"cpu": "1"}), overhead={"cpu": "250m"})
    assert energy.effective_resources(spec).vcpu == pytest.approx(1.25)


def test_a_container_asking_nothing_counts_zero() -> None:
    assert energy.EnergyModel.default().power_w(pod_spec(container())) == 0.0


def test_a_whole_pod_object_gives_the_same_power_as_its_spec() -> None:
    spec = pod_spec(container(requests={"cpu": "2", "memory": "4Gi"}))
    model = energy.EnergyModel.default()
    assert model.power_w({"kind": "Pod", "spec": spec}) == model.power_w(spec)


def test_a_job_counts_its_parallel_pods() -> None:
    spec = pod_spec(container(requests={"cpu": "2", "memory": "4Gi"}))
    job = {"kind": "Job", "spec": {"parallelism": 3, "template": {"spec": spec}}}
    assert energy.EnergyModel.default().power_w(job) == pytest.approx(3 * 6.59208)


def test_a_malformed_quantity_names_the_container() -> None:
    spec = pod_spec(container("trainer", requests={"cpu": "two"}))
    with pytest.raises(energy.PodSpecError, match="trainer.*'two'"):
        energy.EnergyModel.default().power_w(spec)


def test_something_without_a_pod_spec_is_refused_clearly() -> None:
    with pytest.raises(energy.PodSpecError, match="no pod spec"):
        energy.EnergyModel.default().power_w({"kind": "ConfigMap", "data": {}})


def test_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="duration_s"):
        energy.EnergyModel.default().energy_kwh(pod_spec(container()), -1)


# --- quantities -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("2", Decimal(2)), ("4Gi", Decimal(4 * 2**30)),
    ("512M", Decimal(512_000_000)), ("1e3", Decimal(1000)), ("1.5", Decimal("1.5")),
    ("100Ki", Decimal(102400)), ("2E-2", Decimal("0.02")), (".5", Decimal("0.5")),
    ("250u", Decimal("0.00025")), (3, Decimal(3)), (0.5, Decimal("0.5")), ("1k", Decimal(1000)),
])
def test_kubernetes_quantities_parse_exactly(text: object, value: Decimal) -> None:
    assert quantities.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "two", "4GB", "1.2.3", "Gi", "-1", "1 Gi", True, None, [1]])
def test_malformed_quantities_are_refused_with_the_value_named(text: object) -> None:
    with pytest.raises(quantities.QuantityError, match="quantit|negative"):
        quantities.parse_quantity(text)


# --- the model file ---------------------------------------------------------------------

@pytest.mark.parametrize(("document", "message"), [
    ({"default": {"cloud": "ibm"}}, "cloud must be one of"),
    ({"default": {"utilisation": 1.5}}, "utilisation must be between 0 and 1"),
    ({"pools": {"x": {"gpu_model": "h100"}}}, "pools.x.gpu_model"),
    ({"pools": {"x": {"min_watts_per_vcpu": 5, "max_watts_per_vcpu": 1}}}, "min .* max"),
    ({"pools": {"x": {"pue": 0.9}}}, "pue must be at least 1"),
    ({"pools": {"x": {"watts": 3}}}, "unknown key"),
    ({"pools": {"x": {"pue": "high"}}}, "must be a number"),
    ({"nodes": {}}, "unknown key"),
    (["default"], "top level must be a mapping"),
])
def test_a_bad_model_file_gets_an_error_naming_the_field(document: Any, message: str) -> None:
    with pytest.raises(energy.EnergyModelError, match=message):
        energy.from_document(document)


def test_an_unreadable_model_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text("default: {cloud: [unclosed", encoding="utf-8")
    with pytest.raises(energy.EnergyModelError, match="cannot read energy model"):
        energy.load(path)


def test_a_json_model_file_is_read_as_well(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text('{"default": {"cloud": "azure"}}', encoding="utf-8")
    # 1 vCPU on Azure: 2.27 × 1.185 = 2.68995 W
    spec = pod_spec(container(requests={"cpu": "1"}))
    assert energy.load(path).power_w(spec) == pytest.approx(2.68995)


def test_no_model_file_gives_the_default_model() -> None:
    assert energy.load(None) == energy.EnergyModel.default()
