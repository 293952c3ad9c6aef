"""What the KEDA external scaler answers: active or not, and a metric the HPA can scale on.

Pure functions over the published grid snapshot (the very document the
webhook and the controller read), so KEDA, admission and release never
disagree about the grid. A ScaledObject trigger's ``metadata`` is read here:

* ``location`` (required): a region id of the snapshot (``GB``, ``DE`` ...);
* ``targetValue`` (required): gCO2eq/kWh; the workload is *active* while the
  intensity is at or under it;
* ``forecastWindow`` (optional, ``1h``, ``90m``): judge by the forecast's
  time-weighted mean from now over that window instead of the value now
  (the current value when the forecast does not cover the whole window);
* ``metricType`` (optional): ``carbonIntensity``, the only one;
* ``activeReplicas`` (optional, default 1): replicas wanted on a clean grid;
* ``whenStale`` (optional): ``active`` or ``inactive``, overriding the
  feed's ``keda_when_stale`` for this trigger.

The metric is ``activeReplicas x min(1, targetValue / intensity)`` against
a target of 1 per replica: with KEDA's default ``AverageValue`` metric the HPA
asks for ``ceil(metric)`` replicas, so ``activeReplicas`` on a clean grid and
proportionally fewer as it gets dirtier (when ``minReplicaCount`` > 0 keeps
the workload running). Inactive with ``minReplicaCount: 0`` is scale to zero.

Stale or missing data (the snapshot says ``stale``, now is past the region's
``fresh_until``: its provider's cadence plus ``grid.stale_grace_s``; the
region is not in the snapshot, or its signal is an index without g/kWh) follows the stale rule: ``active`` by default,
like the admission policy, which admits unchanged on stale data (fail-open:
a broken feed must not scale a platform's batch work to zero); ``inactive``
for teams that would rather stop than run on unknown carbon.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from carbongate import timefmt
from planner import snapshot as contract
from planner import windows

StaleRule = Literal["active", "inactive"]
METRIC_TYPE = "carbonIntensity"
KNOWN_KEYS = frozenset({"location", "targetValue", "forecastWindow", "metricType", "activeReplicas",
                        "whenStale", "scalerAddress"})


class TriggerError(ValueError):
    """The trigger's metadata cannot be used; the message says which key and why."""


@dataclass(frozen=True)
class Trigger:
    """One ScaledObject trigger's metadata, checked."""

    location: str
    target_g_per_kwh: float
    forecast_window_s: int
    active_replicas: int
    when_stale: StaleRule | None

    @property
    def metric_name(self) -> str:
        """``carbon-intensity-<location>``, in the characters a metric name may use."""
        return "carbon-intensity-" + re.sub(r"[^a-z0-9-]+", "-", self.location.lower()).strip("-")


@dataclass(frozen=True)
class Verdict:
    """The scaler's answer for one trigger at one instant."""

    active: bool
    metric_value: float
    g_per_kwh: float | None
    stale: bool
    reason: str


def parse_trigger(metadata: Mapping[str, str]) -> Trigger:
    """Check a trigger's metadata; :class:`TriggerError` names what is wrong."""
    unknown = sorted(set(metadata) - KNOWN_KEYS)
    if unknown:
        raise TriggerError(f"unknown metadata {unknown}; known: {sorted(KNOWN_KEYS)}")
    location = metadata.get("location", "").strip()
    if not location:
        raise TriggerError("metadata.location is required (a region id of the grid snapshot, like GB)")
    if metadata.get("metricType", METRIC_TYPE) != METRIC_TYPE:
        raise TriggerError(f"metadata.metricType must be {METRIC_TYPE!r}, not {metadata['metricType']!r}")
    when_stale = metadata.get("whenStale")
    if when_stale not in (None, "active", "inactive"):
        raise TriggerError(f"metadata.whenStale must be 'active' or 'inactive', not {when_stale!r}")
    return Trigger(location=location, target_g_per_kwh=_target(metadata.get("targetValue")),
                   forecast_window_s=_window(metadata.get("forecastWindow")),
                   active_replicas=_replicas(metadata.get("activeReplicas", "1")),
                   when_stale=when_stale)  # type: ignore[arg-type]


def evaluate(grid: contract.GridSnapshot | None, trigger: Trigger, *, now: datetime, grace_s: int,
             when_stale: StaleRule) -> Verdict:
    """Active or not, and the metric, for ``trigger`` on the grid ``grid`` at ``now``."""
    region = None if grid is None else grid["regions"].get(trigger.location)
    problem = _stale_problem(region, now=now, grace_s=grace_s)
    if problem is not None:
        rule = trigger.when_stale or when_stale
        active = rule == "active"
        return Verdict(active=active, metric_value=float(trigger.active_replicas) if active else 0.0,
                       g_per_kwh=None, stale=True, reason=f"{problem}: {rule} by the stale rule")
    assert region is not None and region["g_per_kwh"] is not None
    intensity, how = _judged_intensity(region, trigger, now=now)
    active = intensity <= trigger.target_g_per_kwh
    share = 1.0 if intensity <= 0 else min(1.0, trigger.target_g_per_kwh / intensity)
    return Verdict(active=active, metric_value=trigger.active_replicas * share, g_per_kwh=intensity,
                   stale=False, reason=f"{how} {intensity:.0f} g/kWh "
                                       f"{'<=' if active else '>'} {trigger.target_g_per_kwh:g}")


def _judged_intensity(region: contract.RegionDoc, trigger: Trigger, *, now: datetime) -> tuple[float, str]:
    current = float(region["g_per_kwh"] or 0.0)
    if trigger.forecast_window_s == 0:
        return current, "now"
    series = contract.region_series(region)
    mean = None if series is None else windows.mean_intensity(series, now, trigger.forecast_window_s)
    if mean is None:
        return current, "now (the forecast does not cover the window)"
    return mean, f"mean over the next {trigger.forecast_window_s}s"


def _stale_problem(region: contract.RegionDoc | None, *, now: datetime, grace_s: int) -> str | None:
    if region is None:
        return "no data for the location"
    if region["g_per_kwh"] is None:
        return f"signal {region['signal']!r} has no g/kWh"
    if region["stale"]:
        return "the snapshot marks the data stale"
    if now >= contract.region_fresh_until(region, grace_s):
        age = now - timefmt.parse_time(region["observed_at"])
        return f"the data is {int(age.total_seconds())}s old, past its provider's cadence and grid.stale_grace_s"
    return None


def _target(raw: str | None) -> float:
    try:
        value = float(raw) if raw is not None else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise TriggerError(f"metadata.targetValue must be a positive number of gCO2eq/kWh, not {raw!r}")
    return value


def _window(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    try:
        return timefmt.parse_duration(raw)
    except ValueError as error:
        raise TriggerError(f"metadata.forecastWindow: {error}") from error


def _replicas(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise TriggerError(f"metadata.activeReplicas must be a whole number >= 1, not {raw!r}")
    return int(raw)


def verdict_text(verdict: Verdict) -> str:
    """One line for logs."""
    return f"{'active' if verdict.active else 'inactive'}, metric {verdict.metric_value:.2f}: {verdict.reason}"
