"""Pause and resume of interruptible Jobs: the controller's writes for them.

The reconciler hands every interruptible Job it tracks to :class:`Pauser`
when something about it changed or its timer fired. The Pauser reads the
facts from the object (``deferral.interrupt``), asks for a decision (the
deadline first, then ``data.carbongate.interrupt.decision`` on a fresh slice
plan, then the fallback rules) and writes at most one JSON patch:

- pause: ``spec.suspend: true`` plus the run time of the slice that ends and
  the pause count, as annotations, in the same request, guarded by ``test``
  operations on the resource version and the suspension as read, so the run
  time is only ever added once;
- resume: ``spec.suspend: false`` (and ``carbongate.io/interrupt: final``
  when the deadline forces it: from then on it is never paused again).

It says when it wants to look again: the next slice boundary, the instant
the completion guarantee takes over, the end of the minimum slice, or the
periodic re-check.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from deferral import events, grid, interrupt, kube, patches, workloads
from deferral import metrics as metrics_mod
from planner import slices
from policy_engine import engine as engine_mod

log = logging.getLogger(__name__)

INTERRUPT_PATH = engine_mod.INTERRUPT_DECISION


@dataclass(frozen=True)
class PausingConfig:
    """The interruption knobs: per-tier rules from the platform config, timing from settings."""

    rules: Mapping[str, slices.SliceRules] = field(default_factory=dict)
    default_tier: str = "2"
    default_duration_s: int = 3600
    lead_s: float = 30.0
    recheck_s: float = 300.0


@dataclass(frozen=True)
class Outcome:
    """What a reconcile did: the object as now stored, and when to look again."""

    raw: dict[str, Any]
    wake: datetime
    resume_by: datetime | None
    running: bool


class Pauser:
    """Decides and writes for interruptible Jobs (leader only; the controller checks)."""

    def __init__(self, *, gateway: kube.Gateway, engine: engine_mod.PolicyEngine | None,
                 grid_view: grid.GridView, recorder: events.Recorder,
                 metrics: metrics_mod.Metrics, config: PausingConfig) -> None:
        self._gateway = gateway
        self._engine = engine
        self._grid = grid_view
        self._recorder = recorder
        self._metrics = metrics
        self._config = config

    def rules_for(self, tier: str | None) -> slices.SliceRules | None:
        return self._config.rules.get(tier or self._config.default_tier)

    def facts(self, raw: Mapping[str, Any], now: datetime) -> interrupt.Interruptible:
        rules = self.rules_for(interrupt.tier_of(raw))
        return interrupt.read(raw, now=now, default_duration_s=self._config.default_duration_s,
                              rules=rules, lead_s=self._config.lead_s)

    def plan(self, job: interrupt.Interruptible, now: datetime) -> slices.SlicePlan | None:
        return plan_for(job, grid_view=self._grid, rules=self.rules_for(job.tier), now=now)

    def reconcile(self, raw: dict[str, Any], now: datetime) -> Outcome:
        """Decide about one Job and write what the decision asks; raises API errors."""
        job = self.facts(raw, now)
        planned: list[slices.SlicePlan | None] = []

        def plan_input() -> interrupt.PlanInput:
            planned.append(self.plan(job, now))
            region = self._grid.region_facts(self._grid.region_of(job.annotations))
            return interrupt.plan_input(planned[-1], now=now, region=region)

        ask = None if self._engine is None else (
            lambda document: self._engine.evaluate(INTERRUPT_PATH, document)  # type: ignore[union-attr]
        )
        decision = interrupt.decide(job, now=now, plan=plan_input, ask=ask,
                                    on_failure=self._policy_failed)
        stored = raw
        if decision.run and not job.running:
            stored = self._resume(job, raw, decision, now)
        elif decision.run and decision.reason == "deadline" and job.annotations.get(
                interrupt.STATE) != interrupt.FINAL:
            stored = self._gateway.json_patch(job.key, patches.annotation_update(
                raw, {interrupt.STATE: interrupt.FINAL}))
        elif not decision.run and job.running:
            stored = self._pause(job, raw, decision, now)
        plan = planned[-1] if planned else None
        running = decision.run
        return Outcome(raw=stored, wake=self._next_wake(job, plan, running, now),
                       resume_by=None if job.final else job.resume_by, running=running)

    def finished(self, raw: Mapping[str, Any], now: datetime) -> None:
        """A tracked Job completed or failed: account its last slice, check its deadline."""
        job = self.facts(raw, now)
        status = raw.get("status") or {}
        done_at = _time(status.get("completionTime")) or now
        last = job.slice_s if job.slice_start is None else max(
            int((done_at - job.slice_start).total_seconds()), 0)
        self._metrics.run_seconds.inc(last)
        late = done_at > job.deadline and not job.problems
        if late:
            self._metrics.deadline_misses.inc()
        self._recorder.record(events.event(
            job, reason="DeadlineMissed" if late else "Finished", now=now,
            instance=self._recorder.instance, warning=late,
            message=f"finished at {workloads.format_time(done_at)} (deadline "
                    f"{workloads.format_time(job.deadline)}) after {job.pauses} pause(s), "
                    f"{job.run_s - job.slice_s + last}s of run time"))

    # -- writing ------------------------------------------------------------------

    def _pause(self, job: interrupt.Interruptible, raw: Mapping[str, Any],
               decision: interrupt.Decision, now: datetime) -> dict[str, Any]:
        notes = {interrupt.RUN_SECONDS: str(job.run_s), interrupt.PAUSES: str(job.pauses + 1),
                 interrupt.PAUSED_AT: workloads.format_time(now)}
        operations = patches.annotation_update(raw, notes) + _suspension(raw, True)
        stored = self._gateway.json_patch(job.key, operations)
        self._metrics.pauses.labels(reason=decision.reason).inc()
        self._metrics.run_seconds.inc(job.slice_s)
        log.info("%s paused (%s): %s", job.key, decision.reason, decision.message)
        self._record(job, "Paused", f"{decision.message}; ran {job.slice_s}s this slice, "
                     f"{job.run_s}s in all, {job.remaining_s}s of work left, must run by "
                     f"{workloads.format_time(job.resume_by)}", now)
        return stored

    def _resume(self, job: interrupt.Interruptible, raw: Mapping[str, Any],
                decision: interrupt.Decision, now: datetime) -> dict[str, Any]:
        notes = {interrupt.STATE: interrupt.FINAL} if decision.reason == "deadline" else {}
        operations = (patches.annotation_update(raw, notes) if notes else
                      [{"op": "test", "path": "/metadata/resourceVersion",
                        "value": job.resource_version}]) + _suspension(raw, False)
        stored = self._gateway.json_patch(job.key, operations)
        self._metrics.resumes.labels(reason=decision.reason).inc()
        late = now > job.resume_by + timedelta(seconds=self._config.lead_s)
        if late:
            self._metrics.deadline_misses.inc()
            log.error("%s resumed after its resume_by %s", job.key, job.resume_by)
        log.info("%s resumed (%s): %s", job.key, decision.reason, decision.message)
        self._record(job, "DeadlineMissed" if late else "Resumed",
                     f"{decision.message}; {job.run_s}s run so far, {job.remaining_s}s of work "
                     f"left, deadline {workloads.format_time(job.deadline)}", now, warning=late)
        return stored

    def _record(self, job: interrupt.Interruptible, reason: events.Reason, message: str,
                now: datetime, *, warning: bool = False) -> None:
        self._recorder.record(events.event(job, reason=reason, message=message, now=now,
                                           instance=self._recorder.instance, unique=False,
                                           warning=warning))

    def _policy_failed(self, kind: str) -> None:
        self._metrics.policy_failures.labels(kind=kind).inc()

    def _next_wake(self, job: interrupt.Interruptible, plan: slices.SlicePlan | None,
                   running: bool, now: datetime) -> datetime:
        wakes = [now + timedelta(seconds=self._config.recheck_s)]
        if not job.final:
            wakes.append(job.resume_by)
        if plan is not None:
            wakes += [t for s in plan.slices for t in (s.start, s.end) if t > now]
        rules = self.rules_for(job.tier)
        if running and job.slice_start is not None and rules is not None:
            wakes.append(job.slice_start + timedelta(seconds=rules.min_slice_s))
        return min(w for w in wakes if w > now)  # the re-check is always ahead


def plan_for(job: interrupt.Interruptible, *, grid_view: grid.GridView,
             rules: slices.SliceRules | None, now: datetime) -> slices.SlicePlan | None:
    """The Job's slice plan now (None: no tier rules, no forecast, or nothing fits)."""
    if rules is None:
        return None
    return grid_view.slice_plan(grid_view.region_of(job.annotations), now=now,
                                deadline=job.deadline, progress=interrupt.progress(job, rules),
                                rules=rules)


def _suspension(raw: Mapping[str, Any], suspend: bool) -> list[patches.Operation]:
    """Set ``spec.suspend``, testing it was the opposite (absent counts as false)."""
    if "suspend" not in (raw.get("spec") or {}):
        return [{"op": "add", "path": "/spec/suspend", "value": suspend}]
    return [{"op": "test", "path": "/spec/suspend", "value": not suspend},
            {"op": "replace", "path": "/spec/suspend", "value": suspend}]


def _time(text: Any) -> datetime | None:
    try:
        return workloads.parse_time(str(text)) if text else None
    except ValueError:
        return None
