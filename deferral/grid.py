"""The grid as the controller sees it: the feed's snapshot file, and plans made on it.

The controller shares only the snapshot contract with the feed. It re-reads
the file when its size or modification time changes (the feed replaces it
atomically), and a new version is what triggers re-planning of every waiting
workload. A file that is missing or does not fit the contract leaves the last
good version in place; with none at all, plans are empty and only the
deadline and the planned window can release anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from carbongate import files
from deferral import metrics as metrics_mod
from deferral import workloads
from planner import plan as planning
from planner import slices, snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanningDefaults:
    """The arithmetic's knobs (from settings and the platform config)."""

    home_region: str
    step_s: int = 900
    horizon_s: int = 48 * 3600
    network_kwh_per_gb: float = 0.0
    stale_grace_s: int = 900


class GridView:
    """The latest usable snapshot and the plans made on it."""

    def __init__(self, *, path: Path, defaults: PlanningDefaults,
                 metrics: metrics_mod.Metrics) -> None:
        self._path = path
        self._defaults = defaults
        self._metrics = metrics
        self._watch = files.FileWatch(path)
        self._snapshot: snapshot.GridSnapshot | None = None
        self._parsed: dict[str, Any] = {}
        self.version = 0

    @property
    def home_region(self) -> str:
        if self._defaults.home_region:
            return self._defaults.home_region
        if self._snapshot is None:
            return ""
        return next(iter(self._snapshot["regions"]), "")

    def refresh(self) -> bool:
        """Load the file if it changed; True when a new version is in place."""
        version = self._watch.changed()
        if version is None:
            return False
        self._watch.take(version)  # a broken version is not tried again until it changes
        try:
            loaded = snapshot.load_snapshot(self._path)
            parsed = planning.parse_regions(loaded["regions"])
        except (snapshot.SnapshotError, ValueError, KeyError, TypeError) as error:
            self._metrics.grid_errors.inc()
            log.warning("grid snapshot %s not used: %s", self._path, error)
            return False
        self._snapshot, self._parsed = loaded, parsed
        self.version += 1
        return True

    def plan(self, deferred: workloads.Deferred, now: datetime) -> Mapping[str, Any]:
        """``input.plan`` for this workload from now until its release_by."""
        empty = {"home_region": self.home_region, "duration_s": deferred.expected_duration_s,
                 "regions": {}}
        if self._snapshot is None:
            return empty
        shape = planning.WorkloadShape(
            duration_s=max(deferred.expected_duration_s, 1),
            max_start_s=max(int((deferred.release_by - now).total_seconds()), 0),
            data_gb=_data_gb(deferred.annotations),
        )
        rules = planning.PlanningRules(
            home_region=self.home_region, step_s=self._defaults.step_s,
            horizon_s=self._defaults.horizon_s,
            network_kwh_per_gb=self._defaults.network_kwh_per_gb,
            stale_grace_s=self._defaults.stale_grace_s)
        try:
            return planning.plan_workload(self._snapshot["regions"], shape, now=now, rules=rules,
                                          parsed=self._parsed)
        except (ValueError, KeyError, TypeError) as error:
            self._metrics.grid_errors.inc()
            log.warning("no plan for %s: %s", deferred.key, error)
            return empty


    def region_of(self, annotations: Mapping[str, str]) -> str:
        """Where a workload runs: the region admission annotated, else home."""
        return annotations.get(workloads.REGION) or self.home_region

    def region_facts(self, region: str) -> dict[str, Any] | None:
        """What the policies' freshness check reads of a region (an ``input.plan`` entry)."""
        doc = None if self._snapshot is None else self._snapshot["regions"].get(region)
        if doc is None:
            return None
        fresh_until_ns = planning.fresh_until_ns(doc, self._defaults.stale_grace_s)
        return {"now_g_per_kwh": doc.get("g_per_kwh"), "signal": doc.get("signal"),
                "stale": doc.get("stale"), "observed_at": doc.get("observed_at"),
                "fresh_until_ns": fresh_until_ns, "source": doc.get("source")}

    def slice_plan(self, region: str, *, now: datetime, deadline: datetime,
                   progress: slices.Progress,
                   rules: slices.SliceRules) -> slices.SlicePlan | None:
        """The interruptible Job's slice plan on the latest forecast; None without one.

        Slots are the planning step or the forecast step, whichever is longer:
        a finer slot than the forecast knows adds work, not information.
        """
        series = self._parsed.get(region)
        if series is None:
            return None
        step_s = max(self._defaults.step_s, series.step_s)
        return slices.plan_slices(series, now=now, deadline=deadline, progress=progress,
                                  rules=rules, step_s=step_s)


def _data_gb(annotations: Mapping[str, str]) -> float:
    try:
        return max(float(annotations.get(workloads.DATA_GB, "0")), 0.0)
    except ValueError:
        return 0.0
