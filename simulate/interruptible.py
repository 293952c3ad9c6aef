"""Interruptible jobs in a replay: paused and resumed through the controller's own logic.

A job whose CSV row says ``interruptible`` is admitted like any other (the
start-time replay of :mod:`simulate.replay` gives the admission action and
region). From then on it is driven here exactly as the deferral controller
drives an interruptible Job: the Job object carries the annotations the
pause patch writes and the ``status.startTime`` the Job controller resets on
each resume; ``deferral.interrupt.read`` derives the facts and the completion
guarantee from it; ``planner.slices.plan_slices`` plans on the forecast
issued last; ``deferral.interrupt.decide`` asks the shipped Rego
(``data.carbongate.interrupt.decision``) and falls back as the controller
does. It looks again, as the controller's timers would, at every forecast
issue, slice boundary and resume_by, and the job ends when its work (plus
the overhead of every resume) is done.

The oracle for an interruptible job is the same planner run once on the
true grid from submission: the cleanest set of hours that covers the work
with the tier's minimum slice, pause limit and per-resume overhead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from carbongate import timefmt
from deferral import interrupt, workloads
from planner import plan as planning
from planner import series as series_mod
from planner import slices, windows
from policy_engine import engine as engine_mod
from simulate import forecasts as forecasts_mod
from simulate import workload as workload_mod

ISSUE_S = forecasts_mod.ISSUE_INTERVAL_S


@dataclass(frozen=True)
class Run:
    """When an interruptible job ran: its slices, its pauses, when it finished."""

    segments: tuple[tuple[float, float], ...]
    pauses: int
    finished_s: float
    decisions: int
    reasons: tuple[str, ...]


@dataclass
class _State:
    running: bool
    slice_start: float | None
    run_s: int = 0
    pauses: int = 0
    final: bool = False


class Replayer:
    """Drives interruptible jobs on simulated time with one policy engine."""

    def __init__(self, *, engine: engine_mod.PolicyEngine, forecast: forecasts_mod.Forecasts,
                 config: Mapping[str, Any], lead_s: float, plan_step_s: int) -> None:
        self._engine = engine
        self._forecast = forecast
        self._rules = slices.rules_from_config(config)
        self._default_tier = str(config.get("default_tier") or "2")
        self._default_duration_s = int(config.get("default_duration_s") or 3600)
        self._lead_s = lead_s
        self._step_s = plan_step_s

    def rules(self, job: workload_mod.Job) -> slices.SliceRules | None:
        return self._rules.get(job.tier or self._default_tier)

    def run(self, job: workload_mod.Job, *, region: str, deferred: bool,
            deadline_s: float | None) -> Run:
        """Replay one job from its submission; ``deferred``: admission suspended it.

        ``deadline_s`` is the ``carbongate.io/deadline`` admission wrote; without
        one (a job admitted at once) the controller never pauses it, and neither
        does the replay.
        """
        state = _State(running=not deferred, slice_start=None if deferred else job.submit_s)
        segments: list[tuple[float, float]] = []
        reasons: list[str] = []
        now_s, decisions = job.submit_s, 0
        rules = self.rules(job)
        while True:
            facts = interrupt.read(self._object(job, state, region, deadline_s), now=_at(now_s),
                                   default_duration_s=self._default_duration_s, rules=rules,
                                   lead_s=self._lead_s)
            if state.running and facts.remaining_s <= 0:
                segments.append((_started(state), now_s))
                return Run(tuple(segments), state.pauses, now_s, decisions, tuple(reasons))
            plan = self._plan(facts, region, now_s, rules)
            planned = interrupt.plan_input(plan, now=_at(now_s),
                                           region=self._region_facts(region, now_s))
            decision = interrupt.decide(facts, now=_at(now_s), plan=functools.partial(_same, planned),
                                        ask=self._ask, on_failure=lambda _kind: None)
            decisions += 1
            reasons.append(decision.reason)
            if decision.run and not state.running:
                state.running, state.slice_start = True, now_s
                state.final = state.final or decision.reason == "deadline"
            elif not decision.run and state.running:
                segments.append((_started(state), now_s))
                state.run_s += int(now_s - _started(state))
                state.pauses += 1
                state.running, state.slice_start = False, None
            now_s = self._next(facts, plan, state, now_s)

    def oracle(self, job: workload_mod.Job, truth: series_mod.Series) -> tuple[tuple[float, float], ...]:
        return oracle(job, truth, self.rules(job))

    # -- the controller's view ------------------------------------------------------

    def _object(self, job: workload_mod.Job, state: _State, region: str,
                deadline_s: float | None) -> dict[str, Any]:
        """The Job as the API would show it: annotations of earlier pauses, startTime."""
        obj = workload_mod.kubernetes_job(job)
        notes = obj["metadata"]["annotations"]
        notes.update({workloads.DECISION: "defer", workloads.REGION: region,
                      interrupt.RUN_SECONDS: str(state.run_s), interrupt.PAUSES: str(state.pauses)})
        if deadline_s is not None:
            notes[workloads.DEADLINE] = timefmt.format_time(_at(deadline_s))
        if state.final:
            notes[interrupt.STATE] = interrupt.FINAL
        obj["spec"]["suspend"] = not state.running
        if state.running:
            obj["status"] = {"startTime": timefmt.format_time(_at(_started(state)))}
        return obj

    def _plan(self, facts: interrupt.Interruptible, region: str, now_s: float,
              rules: slices.SliceRules | None) -> slices.SlicePlan | None:
        series = self._forecast.issue(region, forecasts_mod.issue_time(now_s))
        if series is None or rules is None or facts.final:
            return None
        return slices.plan_slices(series, now=_at(now_s), deadline=facts.deadline,
                                  progress=interrupt.progress(facts, rules), rules=rules,
                                  step_s=max(self._step_s, series.step_s))

    def _region_facts(self, region: str, now_s: float) -> dict[str, Any] | None:
        issued = forecasts_mod.issue_time(now_s)
        series = self._forecast.issue(region, issued)
        value = None if series is None else series.value_at(_at(now_s))
        if value is None:
            return None
        # The simulated feed is never late: what it issued holds until the forecast ends.
        fresh_until = series.end if series is not None and series.end is not None else _at(now_s)
        return {"now_g_per_kwh": value, "signal": "average", "stale": False,
                "observed_at": timefmt.format_time(_at(issued)),
                "fresh_until_ns": int(fresh_until.timestamp()) * planning.NS_PER_S}

    def _ask(self, document: dict[str, Any]) -> Any:
        return self._engine.evaluate(engine_mod.INTERRUPT_DECISION, document)

    def _next(self, facts: interrupt.Interruptible, plan: slices.SlicePlan | None,
              state: _State, now_s: float) -> float:
        """The controller's next wake: issue, slice boundary, resume_by, or the work's end."""
        wakes: list[float] = [forecasts_mod.issue_time(now_s) + ISSUE_S]
        if not facts.final:
            wakes.append(facts.resume_by.timestamp())
        if plan is not None:
            wakes += [t.timestamp() for s in plan.slices for t in (s.start, s.end)]
        if state.running:
            wakes.append(now_s + facts.remaining_s)
        return min(w for w in wakes if w > now_s + 1e-6)


def oracle(job: workload_mod.Job, truth: series_mod.Series,
           rules: slices.SliceRules | None) -> tuple[tuple[float, float], ...]:
    """The cleanest slices on the true grid from submission (straight through without rules)."""
    if rules is None:
        return ((job.submit_s, job.submit_s + job.duration_s),)
    plan = slices.plan_slices(
        truth, now=_at(job.submit_s), deadline=_at(job.deadline_s),
        progress=slices.Progress(remaining_s=job.duration_s, running=False,
                                 pauses_left=rules.max_pauses),
        rules=rules, step_s=ISSUE_S)
    if plan is None:
        return ((job.submit_s, job.submit_s + job.duration_s),)
    return tuple((s.start.timestamp(), s.end.timestamp()) for s in plan.slices)


def emissions_g(segments: Sequence[tuple[float, float]], truth: series_mod.Series, *,
                kwh_per_s: float) -> float:
    """Grams emitted running these slices at a constant power on the true grid."""
    total = 0.0
    for start, end in segments:
        if end <= start:
            continue
        mean = windows.mean_intensity(truth, _at(start), end - start)
        if mean is None or not math.isfinite(mean):
            raise ValueError(f"the trace does not cover {_at(start)} .. {_at(end)}")
        total += kwh_per_s * (end - start) * mean
    return total


def _same(planned: interrupt.PlanInput) -> interrupt.PlanInput:
    return planned


def _started(state: _State) -> float:
    assert state.slice_start is not None
    return state.slice_start


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
