"""How much power a pod draws, from what it asks for, by Cloud Carbon Footprint's method.

We cannot meter a pod's electricity, so we estimate it the way Cloud Carbon
Footprint (CCF) estimates cloud compute (its methodology, Appendix I and III):

    average watts per vCPU = min + utilisation × (max − min)      (50 % when unknown)
    watts = PUE × (vCPU × average watts per vCPU
                   + memory GB × 0.392
                   + GPUs × (GPU min + GPU utilisation × (GPU max − GPU min)))

The vCPUs, memory and GPUs are the pod's *effective* requests, computed as the
scheduler does: per container its requests (its limits when it requests
nothing, which is what the API server defaults requests to), init containers
as ``max(largest init container, sum of app containers)`` with restartable
(sidecar) init containers counted alongside the app, plus ``spec.overhead``.
Requests are what a pod reserves on a node, so they are what it is charged for.

Coefficients differ per cloud and per node pool (an ARM pool, a GPU pool), so
the model is a default pool plus named pools read from a YAML/JSON file
(``GovernanceSettings.energy_model_file``). The webhook uses this module at
admission (``workload.energy_kwh``) and governance uses it at completion.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml

from planner import quantities

Cloud = Literal["aws", "gcp", "azure"]
GIB = Decimal(2**30)


class EnergyModelError(ValueError):
    """An energy model file that cannot be used; the message names the field."""


class PodSpecError(ValueError):
    """A pod spec whose resources cannot be read; the message names the container."""


@dataclass(frozen=True)
class CloudCoefficients:
    """CCF's published coefficients for one cloud (methodology, Appendix I)."""

    min_watts_per_vcpu: float
    max_watts_per_vcpu: float
    pue: float


# Appendix I (min/max watts per vCPU, AWS and Azure averages, GCP medians) and the
# "Power Usage Effectiveness" section for PUE. CCF's Appendix I lists 1.125 for
# Azure but its PUE section (Microsoft's fleet-wide trailing 12-month figure,
# which the application uses) says 1.185; we follow the latter.
CCF_CLOUDS: Mapping[str, CloudCoefficients] = types.MappingProxyType({
    "aws": CloudCoefficients(min_watts_per_vcpu=0.74, max_watts_per_vcpu=3.5, pue=1.135),
    "gcp": CloudCoefficients(min_watts_per_vcpu=0.71, max_watts_per_vcpu=4.26, pue=1.1),
    "azure": CloudCoefficients(min_watts_per_vcpu=0.78, max_watts_per_vcpu=3.76, pue=1.185),
})
# CCF: 0.000392 kWh per GB-hour, the mean of Crucial's and Micron's DDR4 figures.
CCF_MEMORY_WATTS_PER_GB = 0.392
CCF_AVERAGE_UTILISATION = 0.5
# CCF Appendix III: idle and full-load watts per GPU.
CCF_GPUS: Mapping[str, tuple[float, float]] = types.MappingProxyType({
    "tesla-m60": (35.0, 306.0), "t4": (8.0, 71.0), "tesla-k80": (35.0, 306.0),
    "tesla-v100": (35.0, 306.0), "tesla-a100": (46.0, 407.0), "k520": (26.0, 229.0),
    "a10g": (18.0, 153.0), "tesla-p4": (9.0, 76.5), "tesla-p100": (36.0, 306.0),
    "tesla-p40": (30.0, 255.0), "radeon-pro-v520": (26.0, 229.0), "alveo-u250": (27.0, 229.5),
})
DEFAULT_CLOUD: Cloud = "aws"
DEFAULT_GPU_MODEL = "tesla-v100"


@dataclass(frozen=True)
class PoolCoefficients:
    """The coefficients of one node pool: what one vCPU, GB and GPU draw there."""

    cloud: str = DEFAULT_CLOUD
    min_watts_per_vcpu: float = CCF_CLOUDS[DEFAULT_CLOUD].min_watts_per_vcpu
    max_watts_per_vcpu: float = CCF_CLOUDS[DEFAULT_CLOUD].max_watts_per_vcpu
    utilisation: float = CCF_AVERAGE_UTILISATION
    memory_watts_per_gb: float = CCF_MEMORY_WATTS_PER_GB
    pue: float = CCF_CLOUDS[DEFAULT_CLOUD].pue
    gpu_min_watts: float = CCF_GPUS[DEFAULT_GPU_MODEL][0]
    gpu_max_watts: float = CCF_GPUS[DEFAULT_GPU_MODEL][1]
    gpu_utilisation: float = CCF_AVERAGE_UTILISATION

    @property
    def watts_per_vcpu(self) -> float:
        """CCF's average watts: min + utilisation × (max − min)."""
        return _between(self.min_watts_per_vcpu, self.max_watts_per_vcpu, self.utilisation)

    @property
    def watts_per_gpu(self) -> float:
        """The same interpolation for a GPU, between its idle and full-load watts."""
        return _between(self.gpu_min_watts, self.gpu_max_watts, self.gpu_utilisation)


@dataclass(frozen=True)
class Resources:
    """A pod's effective requests: vCPUs, memory in bytes, whole GPUs."""

    vcpu: float = 0.0
    memory_bytes: float = 0.0
    gpus: float = 0.0

    @property
    def memory_gb(self) -> float:
        """Memory in GB as cloud catalogues count it for instances (GiB, 2^30 bytes)."""
        return float(Decimal(self.memory_bytes) / GIB)


@dataclass(frozen=True)
class EnergyModel:
    """Power and energy of pods, per node pool, from CCF's coefficients."""

    default_pool: PoolCoefficients = field(default_factory=PoolCoefficients)
    pools: Mapping[str, PoolCoefficients] = field(
        default_factory=lambda: types.MappingProxyType({})
    )

    @classmethod
    def default(cls) -> EnergyModel:
        """CCF's AWS coefficients at 50 % utilisation, no named pools."""
        return cls()

    def pool(self, node_pool: str | None) -> PoolCoefficients:
        """The coefficients of a pool; a pool the file does not name uses the default."""
        if node_pool is None:
            return self.default_pool
        return self.pools.get(node_pool, self.default_pool)

    def power_w(self, pod_spec: Mapping[str, Any], *, node_pool: str | None = None) -> float:
        """Average watts drawn by a pod (or each of a Job's parallel pods, summed).

        Accepts a pod spec, a Pod, a pod template or a Job: the webhook holds
        whole objects and the collector holds Pods, and both should get the
        same figure for the same workload.
        """
        spec, copies = _pod_spec_of(pod_spec)
        return copies * watts(self.pool(node_pool), effective_resources(spec))

    def energy_kwh(
        self, pod_spec: Mapping[str, Any], duration_s: float, *, node_pool: str | None = None
    ) -> float:
        """Energy in kWh over ``duration_s`` seconds at :meth:`power_w`."""
        if duration_s < 0:
            raise ValueError(f"duration_s must not be negative, got {duration_s}")
        return self.power_w(pod_spec, node_pool=node_pool) * duration_s / 3600.0 / 1000.0


def watts(pool: PoolCoefficients, resources: Resources) -> float:
    """CCF's formula for one pod's resources on one pool, PUE included."""
    it_watts = (
        resources.vcpu * pool.watts_per_vcpu
        + resources.memory_gb * pool.memory_watts_per_gb
        + resources.gpus * pool.watts_per_gpu
    )
    return it_watts * pool.pue


def effective_resources(spec: Mapping[str, Any]) -> Resources:
    """What the scheduler reserves for a pod (Kubernetes' PodRequests, requests or limits).

    App containers add up; an init container runs alone (beside the sidecars
    started before it), so the pod needs the larger of the two; a restartable
    init container (``restartPolicy: Always``, a sidecar) keeps running and
    adds to the app sum. ``spec.overhead`` (RuntimeClass) comes on top.
    """
    app = _containers(spec, "containers")
    sums = {name: sum(_amount(c, name) for c in app) for name in _RESOURCES}
    sidecars = dict.fromkeys(_RESOURCES, Decimal(0))
    init_peak = dict.fromkeys(_RESOURCES, Decimal(0))
    for container in _containers(spec, "initContainers"):
        is_sidecar = container.get("restartPolicy") == "Always"
        for name in _RESOURCES:
            amount = _amount(container, name)
            if is_sidecar:
                sidecars[name] += amount
                init_peak[name] = max(init_peak[name], sidecars[name])
            else:
                init_peak[name] = max(init_peak[name], sidecars[name] + amount)
    overhead = _overhead(spec)
    total = {
        name: max(sums[name] + sidecars[name], init_peak[name]) + overhead[name]
        for name in _RESOURCES
    }
    return Resources(
        vcpu=float(total["cpu"]), memory_bytes=float(total["memory"]), gpus=float(total["gpu"])
    )


_RESOURCES = ("cpu", "memory", "gpu")


def _containers(spec: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = spec.get(key) or []
    if not isinstance(items, list) or not all(isinstance(c, Mapping) for c in items):
        raise PodSpecError(f"spec.{key} must be a list of containers")
    return items


def _amount(container: Mapping[str, Any], name: str) -> Decimal:
    """One container's requests of a resource, its limits when it requests none."""
    resources = container.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise PodSpecError(f"container {container.get('name')!r}: resources must be a mapping")
    for kind in ("requests", "limits"):
        values = resources.get(kind) or {}
        if not isinstance(values, Mapping):
            raise PodSpecError(f"container {container.get('name')!r}: {kind} must be a mapping")
        amount = _read(values, name, where=f"container {container.get('name')!r} {kind}")
        if amount is not None:
            return amount
    return Decimal(0)


def _read(values: Mapping[str, Any], name: str, *, where: str) -> Decimal | None:
    """A resource from a requests/limits map; GPUs are any ``<vendor>/gpu`` resource."""
    keys = [k for k in values if k == name or (name == "gpu" and str(k).endswith("/gpu"))]
    if not keys:
        return None
    try:
        return sum((quantities.parse_quantity(values[k]) for k in keys), Decimal(0))
    except quantities.QuantityError as error:
        raise PodSpecError(f"{where}: {error}") from error


def _overhead(spec: Mapping[str, Any]) -> dict[str, Decimal]:
    values = spec.get("overhead") or {}
    if not isinstance(values, Mapping):
        raise PodSpecError("spec.overhead must be a mapping")
    return {name: _read(values, name, where="spec.overhead") or Decimal(0) for name in _RESOURCES}


def _pod_spec_of(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], int]:
    """The pod spec inside a spec, Pod, template or Job, and how many run at once."""
    if not isinstance(obj, Mapping):
        raise PodSpecError(f"expected a pod spec mapping, got {type(obj).__name__}")
    if "containers" in obj:
        return obj, 1
    spec = obj.get("spec")
    if isinstance(spec, Mapping) and "containers" in spec:
        return spec, 1
    template = (spec or {}).get("template") if isinstance(spec, Mapping) else obj.get("template")
    if isinstance(template, Mapping):
        inner, _ = _pod_spec_of(template)
        parallelism = spec.get("parallelism", 1) if isinstance(spec, Mapping) else 1
        return inner, _copies(parallelism)
    raise PodSpecError("no pod spec found (expected spec.containers or spec.template)")


def _copies(parallelism: Any) -> int:
    if parallelism is None:
        return 1
    if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 0:
        raise PodSpecError(f"spec.parallelism must be a non-negative integer, not {parallelism!r}")
    return parallelism


def _between(low: float, high: float, fraction: float) -> float:
    return low + fraction * (high - low)


# --- the model file -------------------------------------------------------------------

# Keys that name CCF figures rather than give numbers.
_NAMED = ("cloud", "gpu_model")
_POOL_FIELDS = {f.name for f in fields(PoolCoefficients)} | set(_NAMED)


def load(path: Path | None) -> EnergyModel:
    """The model from a YAML or JSON file; ``None`` gives :meth:`EnergyModel.default`.

    File shape (every key optional; a pool inherits the default pool, and
    naming a ``cloud`` or ``gpu_model`` first takes CCF's figures for it)::

        default: {cloud: gcp, utilisation: 0.5}
        pools:
          gpu-a100: {gpu_model: tesla-a100, gpu_utilisation: 0.8}
          arm: {cloud: aws, min_watts_per_vcpu: 0.47, max_watts_per_vcpu: 1.69}
    """
    if path is None:
        return EnergyModel.default()
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise EnergyModelError(f"cannot read energy model {path}: {error}") from error
    return from_document(document or {}, where=str(path))


def from_document(document: Any, *, where: str = "energy model") -> EnergyModel:
    """Build the model from the parsed file (see :func:`load` for its shape)."""
    if not isinstance(document, Mapping):
        raise EnergyModelError(f"{where}: the top level must be a mapping")
    unknown = set(document) - {"default", "pools"}
    if unknown:
        raise EnergyModelError(f"{where}: unknown key(s) {sorted(unknown)}")
    default_pool = _pool(PoolCoefficients(), document.get("default") or {}, f"{where}: default")
    pools_doc = document.get("pools") or {}
    if not isinstance(pools_doc, Mapping):
        raise EnergyModelError(f"{where}: pools must be a mapping of pool name to coefficients")
    pools = {
        str(name): _pool(default_pool, values or {}, f"{where}: pools.{name}")
        for name, values in pools_doc.items()
    }
    return EnergyModel(default_pool=default_pool, pools=types.MappingProxyType(pools))


def _pool(base: PoolCoefficients, values: Any, where: str) -> PoolCoefficients:
    if not isinstance(values, Mapping):
        raise EnergyModelError(f"{where} must be a mapping")
    unknown = set(values) - _POOL_FIELDS
    if unknown:
        raise EnergyModelError(f"{where}: unknown key(s) {sorted(unknown)}")
    pool = _with_cloud(base, values.get("cloud"), where)
    pool = _with_gpu_model(pool, values.get("gpu_model"), where)
    numbers: dict[str, Any] = {
        k: _number(v, f"{where}.{k}") for k, v in values.items() if k not in _NAMED
    }
    pool = replace(pool, **numbers)
    _check(pool, where)
    return pool



def _with_cloud(pool: PoolCoefficients, cloud: Any, where: str) -> PoolCoefficients:
    if cloud is None:
        return pool
    key = str(cloud).lower()
    if key not in CCF_CLOUDS:
        raise EnergyModelError(f"{where}.cloud must be one of {sorted(CCF_CLOUDS)}, not {cloud!r}")
    ccf = CCF_CLOUDS[key]
    return replace(pool, cloud=key, min_watts_per_vcpu=ccf.min_watts_per_vcpu,
                   max_watts_per_vcpu=ccf.max_watts_per_vcpu, pue=ccf.pue)


def _with_gpu_model(pool: PoolCoefficients, model: Any, where: str) -> PoolCoefficients:
    if model is None:
        return pool
    key = str(model).lower()
    if key not in CCF_GPUS:
        raise EnergyModelError(f"{where}.gpu_model must be one of {sorted(CCF_GPUS)}, not {model!r}")
    low, high = CCF_GPUS[key]
    return replace(pool, gpu_min_watts=low, gpu_max_watts=high)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EnergyModelError(f"{where} must be a number, not {value!r}")
    return float(value)


def _check(pool: PoolCoefficients, where: str) -> None:
    for name in ("utilisation", "gpu_utilisation"):
        if not 0.0 <= getattr(pool, name) <= 1.0:
            raise EnergyModelError(f"{where}.{name} must be between 0 and 1")
    if pool.pue < 1.0:
        raise EnergyModelError(f"{where}.pue must be at least 1")
    _ordered(pool.min_watts_per_vcpu, pool.max_watts_per_vcpu, f"{where}: vCPU watts")
    _ordered(pool.gpu_min_watts, pool.gpu_max_watts, f"{where}: GPU watts")
    if pool.memory_watts_per_gb < 0:
        raise EnergyModelError(f"{where}.memory_watts_per_gb must not be negative")


def _ordered(low: float, high: float, where: str) -> None:
    if low < 0 or high < low:
        raise EnergyModelError(f"{where}: need 0 <= min ({low}) <= max ({high})")
