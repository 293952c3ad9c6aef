"""carbongate's own policy in a replay: the production admission and release paths on a simulated clock.

Nothing here decides. Each job is submitted as the ``batch/v1`` Job a team
would apply, wrapped in an AdmissionReview, and goes through
``webhook.admission.review`` with a real embedded OPA engine and the Rego
policies of ``--policy-dir``; the patch it returns is applied, and a Job it
suspended is held exactly as the deferral controller holds it:
``deferral.workloads.read`` derives release_by, and ``deferral.release.decide_many``
(per job: deadline first, then ``data.carbongate.release.decision`` on a fresh plan,
then the fallback rules; the jobs due at one instant asked in one engine call)
says when it goes. A re-planned window is written
back with ``deferral.patches.annotation_update``.

Time moves in order through three kinds of instants, as in production:

- a job's submission (admission on the forecast issued last);
- every forecast issue (on the hour) while any job waits: the controller
  re-plans every waiting workload when a new grid snapshot arrives;
- each waiting job's timers: its planned window, and its deadline less the
  controller's lead (``deferral.deadline_lead_s``).

The controller's periodic re-check (``deferral.recheck_s``) is not
simulated: between two forecast issues the grid data it would re-check
against has not changed, only the clock has. Release decisions are thus
asked only when something changed, which keeps a year of jobs affordable.

Every job is independent of the others (budgets are not simulated: their
use depends on the whole cluster, not on the replayed jobs), so a workload
can be split across processes, each with its own engine, and give the same
result.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jsonpatch

from carbongate import platform, timefmt
from carbongate import settings as settings_mod
from deferral import metrics as deferral_metrics
from deferral import patches as deferral_patches
from deferral import release, timers, workloads
from planner import energy
from planner import plan as planning
from policy_engine import engine as engine_mod
from simulate import forecasts as forecasts_mod
from simulate import snapshots
from simulate import workload as workload_mod
from webhook import admission, reviews

log = logging.getLogger(__name__)

SUBMITTER = "system:serviceaccount:simulated:submitter"


@dataclass(frozen=True)
class Outcome:
    """When and where carbongate ran one job, and what led there."""

    start_s: float
    region: str
    action: str                 # admission action: admit, defer, shift, deny, or none
    reason: str                 # its reason, or "fail-open:<why>"
    release_reason: str | None  # for a deferred job: window-open, clean-now, deadline, ...
    release_decisions: int      # how often the release path was asked
    replans: int
    deadline_s: float | None = None  # the carbongate.io/deadline admission wrote (deferred jobs)


@dataclass
class _Waiting:
    """A job carbongate holds back, as the controller tracks it."""

    index: int
    job: workload_mod.Job
    raw: dict[str, Any]
    deferred: workloads.Deferred
    action: str
    reason: str
    decisions: int = 0
    replans: int = 0


@dataclass(frozen=True)
class Setup:
    """What the replay runs with, besides the jobs."""

    settings: settings_mod.Settings
    config: Mapping[str, Any]
    horizon_s: int
    # Publish every forecast issue to the engine as data.carbongate.grid: only
    # needed when a policy reads that document (each publication rebuilds the engine).
    publish_grid: bool = False


@dataclass
class Replay:
    """carbongate deciding a workload on simulated time."""

    engine: engine_mod.PolicyEngine
    publisher: snapshots.Publisher
    setup: Setup
    energy_model: energy.EnergyModel
    metrics: deferral_metrics.Metrics = field(default_factory=deferral_metrics.Metrics)
    # Told (jobs submitted, jobs in all, simulated now) now and then on a long run (simulate.progress).
    progress: Callable[[int, int, datetime], None] | None = None
    _published_at: int | None = None

    def run(self, jobs: Sequence[workload_mod.Job]) -> list[Outcome]:
        """Every job's outcome, in the order given (jobs must be in submit order)."""
        outcomes: list[Outcome | None] = [None] * len(jobs)
        waiting: dict[int, _Waiting] = {}
        due: timers.TimerHeap[int] = timers.TimerHeap()
        position, last = 0, float("-inf")
        while position < len(jobs) or waiting:
            now_s = self._next_instant(jobs, position, due, waiting, last)
            now = datetime.fromtimestamp(now_s, UTC)
            chosen = set(waiting) if waiting and now_s == _next_issue(last) else set()
            chosen.update(due.pop_due(now))
            if chosen:
                self._reconsider(waiting, sorted(chosen), now, due, outcomes)
            while position < len(jobs) and jobs[position].submit_s <= now_s:
                self._submit(jobs[position], position, now, waiting, due, outcomes)
                position += 1
            if self.progress is not None:
                self.progress(position, len(jobs), now)
            last = now_s
        return [o for o in outcomes if o is not None]

    # -- the clock ------------------------------------------------------------------

    def _next_instant(self, jobs: Sequence[workload_mod.Job], position: int,
                      due: timers.TimerHeap[int], waiting: Mapping[int, _Waiting], last: float) -> float:
        candidates = []
        if position < len(jobs):
            candidates.append(jobs[position].submit_s)
        if waiting:
            candidates.append(_next_issue(last))
        timer = due.next_due()
        if timer is not None:
            candidates.append(timer.timestamp())
        return min(candidates)

    # -- admission ------------------------------------------------------------------

    def _submit(self, job: workload_mod.Job, index: int, now: datetime, waiting: dict[int, _Waiting],
                due: timers.TimerHeap[int], outcomes: list[Outcome | None]) -> None:
        obj = workload_mod.kubernetes_job(job)
        request = reviews.parse(_review_body(obj, uid=f"sim-{index}"))
        result = admission.review(request, knowledge=self._knowledge(job, now),
                                  decide=self._decide, energy_kwh=self._energy_kwh)
        decision = result.decision or {}
        action = str(decision.get("action", "none"))
        reason = f"fail-open:{result.fail_open}" if result.fail_open else str(decision.get("reason", "undefined"))
        if not result.response["response"]["allowed"]:
            # Only budget reactions deny, and budgets are not replayed; a denied
            # job is counted as run at once, never as emissions avoided.
            outcomes[index] = Outcome(now.timestamp(), job.home, "deny", reason, None, 0, 0)
            return
        # In place: obj is this replay's own (the review carried a serialised copy), so no deep copy.
        stored = jsonpatch.apply_patch(obj, result.patch, in_place=True) if result.patch else obj
        stored["metadata"]["resourceVersion"] = "1"
        deferred = workloads.read("Job", stored, default_duration_s=self._default_duration_s,
                                  seen_at=now)
        if deferred is None:
            outcomes[index] = Outcome(now.timestamp(), _region(stored, job), action, reason, None, 0, 0)
            return
        waiting[index] = _Waiting(index=index, job=job, raw=stored, deferred=deferred,
                                  action=action, reason=reason)
        due.schedule(index, self._next_wake(deferred, None, now))

    def _knowledge(self, job: workload_mod.Job, now: datetime) -> admission.Knowledge:
        published = self._published(job, now)
        return admission.knowledge(
            settings=self.setup.settings, platform=platform.PlatformConfig.of(self.setup.config),
            now=now, grid=published.document,
            # Each row's tier is the platform's for its namespace, opted in and enforced.
            namespace_labels={"carbongate.io/tier": job.tier, "carbongate.io/enforcement": "enforce"},
            policy_version=self.engine.version, home_region=job.home, horizon_s=self.setup.horizon_s,
            grid_series=published.series,
        )

    def _decide(self, policy_input: Mapping[str, Any]) -> Any:
        try:
            return self.engine.evaluate(engine_mod.ADMISSION_DECISION, policy_input)
        except Exception as error:
            raise admission.DecisionError(f"policy engine: {error}") from error

    def _energy_kwh(self, obj: Mapping[str, Any], duration_s: int) -> float:
        return self.energy_model.energy_kwh(obj, duration_s)

    # -- release --------------------------------------------------------------------

    def _reconsider(self, waiting: dict[int, _Waiting], indices: Sequence[int], now: datetime,
                    due: timers.TimerHeap[int], outcomes: list[Outcome | None]) -> None:
        """The release path for every job due now, the policy asked once for all of them."""
        held = [waiting[i] for i in indices if i in waiting]
        for one in held:
            one.decisions += 1
        decisions = release.decide_many([(one.deferred, functools.partial(self._plan, one, now)) for one in held],
                                        now=now, engine=self.engine, metrics=self.metrics, lead_s=self._lead_s)
        for one, decision in zip(held, decisions, strict=True):
            self._apply(waiting, one, decision, now, due, outcomes)

    def _apply(self, waiting: dict[int, _Waiting], held: _Waiting, decision: release.Decision, now: datetime,
               due: timers.TimerHeap[int], outcomes: list[Outcome | None]) -> None:
        """Release the job, or write its new window and set its next timer, as the controller does."""
        index = held.index
        if decision.release:
            region = decision.region or _region(held.raw, held.job)
            outcomes[index] = Outcome(now.timestamp(), region, held.action, held.reason,
                                      decision.reason, held.decisions, held.replans,
                                      deadline_s=_deadline_s(held.deferred))
            del waiting[index]
            due.cancel(index)
            return
        if decision.not_before is not None and decision.not_before != held.deferred.not_before:
            self._replan(held, decision.not_before, now)
        due.schedule(index, self._next_wake(held.deferred, decision, now))

    def _plan(self, held: _Waiting, now: datetime) -> Mapping[str, Any]:
        """``input.plan`` from now until release_by, as the controller's ``GridView.plan`` makes it."""
        published = self._published(held.job, now)
        deferred = held.deferred
        shape = planning.WorkloadShape(
            duration_s=max(deferred.expected_duration_s, 1),
            max_start_s=max(int((deferred.release_by - now).total_seconds()), 0),
            data_gb=held.job.data_gb,
        )
        rules = planning.PlanningRules(
            home_region=held.job.home, step_s=self.setup.settings.grid.plan_step_min * 60,
            horizon_s=self.setup.horizon_s, network_kwh_per_gb=self._network_kwh_per_gb)
        return planning.plan_workload(published.document["regions"], shape, now=now, rules=rules,
                                      parsed=published.series)

    def _replan(self, held: _Waiting, not_before: datetime, now: datetime) -> None:
        """Write the new window on the held Job, as the controller patches it."""
        operations = deferral_patches.annotation_update(
            held.raw, {workloads.NOT_BEFORE: timefmt.format_time(not_before)})
        held.raw = jsonpatch.apply_patch(held.raw, operations)
        held.raw["metadata"]["resourceVersion"] = str(int(held.raw["metadata"]["resourceVersion"]) + 1)
        reread = workloads.read("Job", held.raw, default_duration_s=self._default_duration_s, seen_at=now)
        if reread is not None:
            held.deferred = reread
            held.replans += 1

    def _next_wake(self, deferred: workloads.Deferred, decision: release.Decision | None,
                   now: datetime) -> datetime:
        """The controller's next timer for this workload: its window or its deadline."""
        window = (decision.not_before if decision is not None else None) or deferred.not_before
        wake = release.deadline_due(deferred, lead_s=self._lead_s)
        if window is not None and now < window < wake:
            return window
        return max(wake, now)

    # -- the grid -------------------------------------------------------------------

    def _published(self, job: workload_mod.Job, now: datetime) -> snapshots.Published:
        issued = forecasts_mod.issue_time(now.timestamp())
        if self.setup.publish_grid and self._published_at != issued:
            everything = self.publisher.everything(issued)
            self.engine.put_data("grid", everything.document)
            self._published_at = issued
        return self.publisher.at(job.regions, issued)

    @property
    def _lead_s(self) -> float:
        return float(self.setup.settings.deferral.deadline_lead_s)

    @property
    def _default_duration_s(self) -> int:
        value = self.setup.config.get("default_duration_s")
        if isinstance(value, int | float) and value > 0:
            return int(value)
        return self.setup.settings.deferral.default_expected_duration_s

    @property
    def _network_kwh_per_gb(self) -> float:
        value = self.setup.config.get("network_kwh_per_gb", 0.0)
        return float(value) if isinstance(value, int | float) else 0.0


def _next_issue(last: float) -> float:
    """The first forecast issue strictly after ``last``."""
    if last == float("-inf"):
        return last
    return forecasts_mod.issue_time(last) + forecasts_mod.ISSUE_INTERVAL_S


def _deadline_s(deferred: workloads.Deferred) -> float | None:
    return None if deferred.deadline is None else deferred.deadline.timestamp()


def _region(obj: Mapping[str, Any], job: workload_mod.Job) -> str:
    """Where the Job runs: the region carbongate annotated (a shift), else its home."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    region = annotations.get(workloads.REGION)
    return region if isinstance(region, str) and region in job.regions else job.home


def _review_body(obj: Mapping[str, Any], *, uid: str) -> bytes:
    """The AdmissionReview the API server would send for creating ``obj``."""
    return json.dumps({
        "apiVersion": reviews.API_VERSION,
        "kind": reviews.KIND,
        "request": {
            "uid": uid,
            "kind": {"group": "batch", "version": "v1", "kind": "Job"},
            "resource": {"group": "batch", "version": "v1", "resource": "jobs"},
            "requestKind": {"group": "batch", "version": "v1", "kind": "Job"},
            "namespace": obj["metadata"]["namespace"],
            "name": obj["metadata"]["name"],
            "operation": "CREATE",
            "userInfo": {"username": SUBMITTER},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }).encode()

