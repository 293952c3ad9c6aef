"""What the controller reads from an interruptible Job, and whether it runs now.

A Job annotated ``carbongate.io/interruptible: "true"`` that carbongate
decided on (``carbongate.io/decision``) may be paused (``spec.suspend:
true``; the Job controller terminates its active pods) while the grid is
dirty and resumed when it is clean. Everything the decision needs is read
from the API, never from the controller's memory, so a restarted or newly
elected controller carries on where the last one stopped:

- the run time of finished slices and the pauses taken are annotations the
  pause patch writes (``carbongate.io/run-seconds``, ``carbongate.io/pauses``)
  in the same request that suspends the Job;
- the slice running now began at ``status.startTime``, which the Job
  controller resets each time a suspended Job is resumed (the Kubernetes Job
  documentation, "Suspending a Job"), which is also why
  ``activeDeadlineSeconds`` counts from each resume.

The completion guarantee is computed here, in Python, from the object
alone: ``resume_by`` = deadline - remaining work - one pause overhead - the
controller's lead. From that instant the Job runs and is never paused again
(``carbongate.io/interrupt: final`` is written with the resume), whatever the
policy engine or the grid feed says or fails to say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict, cast, get_args

from deferral import release, workloads
from planner import slices

INTERRUPTIBLE = workloads.INTERRUPTIBLE
RUN_SECONDS = workloads.PREFIX + "run-seconds"
PAUSES = workloads.PREFIX + "pauses"
PAUSED_AT = workloads.PREFIX + "paused-at"
STATE = workloads.PREFIX + "interrupt"
FINAL = "final"

Reason = Literal["deadline", "not-interruptible", "no-plan", "clean-slice", "max-pauses",
                 "min-slice", "dirty-now", "waiting"]
RUNNING_REASONS = frozenset({"deadline", "not-interruptible", "no-plan", "clean-slice",
                             "max-pauses", "min-slice"})


@dataclass(frozen=True)
class Interruptible:
    """One interruptible Job as the API shows it, and the instants that bound it."""

    key: workloads.Key
    uid: str
    resource_version: str
    tier: str | None
    annotations: Mapping[str, str]
    running: bool
    slice_start: datetime | None   # status.startTime while running
    run_s: int                     # finished slices + the running one
    slice_s: int                   # how long the running slice has run
    pauses: int
    expected_duration_s: int
    remaining_s: int               # work left: expected - (run time - overheads paid)
    deadline: datetime
    resume_by: datetime            # after this, run to the end (lead included)
    final: bool
    active_deadline_s: int | None
    problems: tuple[str, ...]

    @property
    def started(self) -> bool:
        return self.run_s > 0 or self.pauses > 0


def is_interruptible(obj: Mapping[str, Any]) -> bool:
    """Whether a Job opted in (and carbongate decided on it at admission)."""
    notes = _notes(obj)
    return notes.get(INTERRUPTIBLE) == "true" and workloads.DECISION in notes


def is_finished(job: Mapping[str, Any]) -> bool:
    """A Complete or Failed condition (True): nothing left to pause or resume."""
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(isinstance(c, Mapping) and c.get("type") in ("Complete", "Failed")
               and c.get("status") == "True" for c in conditions)


def is_managed(kind: workloads.Kind, obj: Mapping[str, Any]) -> bool:
    """The Jobs the interruption path owns: opted in, decided, not finished."""
    return kind == "Job" and is_interruptible(obj) and not is_finished(obj)


def read(job: Mapping[str, Any], *, now: datetime, default_duration_s: int,
         rules: slices.SliceRules | None, lead_s: float) -> Interruptible:
    """The facts of ``job`` at ``now``; unreadable values become problems, read safely.

    A missing deadline stands in as ``now``: the Job then runs at once and is
    never paused, since no promise could be kept about it.
    """
    metadata = job.get("metadata") or {}
    notes = _notes(job)
    problems: list[str] = []
    running = not (job.get("spec") or {}).get("suspend")
    started_at = _start_time(job) if running else None
    slice_s = max(int((now - started_at).total_seconds()), 0) if started_at else 0
    run_s = _count(notes, RUN_SECONDS, problems) + slice_s
    pauses = _count(notes, PAUSES, problems)
    duration = workloads.expected_duration(notes, problems, default_duration_s)
    overhead = rules.overhead_s if rules is not None else 0
    resumes = pauses if running else max(pauses - 1, 0)
    remaining = max(duration - max(run_s - resumes * overhead, 0), 0)
    deadline = _deadline(notes, problems, now)
    charge = overhead if (running or run_s > 0 or pauses > 0) else 0
    resume_by = deadline - timedelta(seconds=remaining + charge + lead_s)
    spec = job.get("spec") or {}
    active = spec.get("activeDeadlineSeconds")
    return Interruptible(
        key=workloads.key_of("Job", job), uid=str(metadata.get("uid") or ""),
        resource_version=str(metadata.get("resourceVersion") or ""),
        tier=tier_of(job), annotations=notes, running=running,
        slice_start=started_at, run_s=run_s, slice_s=slice_s, pauses=pauses,
        expected_duration_s=duration, remaining_s=remaining, deadline=deadline,
        resume_by=resume_by, final=notes.get(STATE) == FINAL or now >= resume_by,
        active_deadline_s=int(active) if isinstance(active, int) else None,
        problems=tuple(problems))


def progress(job: Interruptible, rules: slices.SliceRules) -> slices.Progress:
    """What the slice planner needs to know of the Job."""
    return slices.Progress(remaining_s=job.remaining_s, running=job.running,
                           running_for_s=job.slice_s, started=job.started,
                           pauses_left=max(rules.max_pauses - job.pauses, 0))


@dataclass(frozen=True)
class Decision:
    """Run or stay paused, why, and who said so."""

    run: bool
    reason: Reason
    source: Literal["deadline", "policy", "fallback"]
    message: str
    g_per_kwh: float | None = None


class PlanInput(TypedDict):
    region: Mapping[str, Any] | None
    feasible: bool
    run_now: bool
    next_start_ns: int | None
    mean_g_per_kwh: float | None
    slices: list[dict[str, Any]]


def plan_input(plan: slices.SlicePlan | None, *, now: datetime,
               region: Mapping[str, Any] | None) -> PlanInput:
    """``input.plan`` of ``data.carbongate.interrupt.decision``."""
    if plan is None:
        return {"region": region, "feasible": False, "run_now": False, "next_start_ns": None,
                "mean_g_per_kwh": None, "slices": []}
    nxt = plan.next_start(now)
    return {
        "region": region, "feasible": True, "run_now": plan.runs_at(now),
        "next_start_ns": None if nxt is None else release.to_ns(nxt),
        "mean_g_per_kwh": plan.mean_g_per_kwh,
        "slices": [{"start_ns": release.to_ns(s.start), "end_ns": release.to_ns(s.end),
                    "mean_g_per_kwh": s.mean_g_per_kwh} for s in plan.slices],
    }


def decision_input(job: Interruptible, *, now: datetime, plan: PlanInput) -> dict[str, Any]:
    """``input`` of ``data.carbongate.interrupt.decision`` (docs/deferral.md)."""
    return {
        "now": workloads.format_time(now), "now_ns": release.to_ns(now),
        "workload": {
            "kind": "Job", "namespace": job.key.namespace, "name": job.key.name,
            "tier": job.tier, "annotations": dict(job.annotations), "running": job.running,
            "run_s": job.run_s, "slice_s": job.slice_s, "remaining_s": job.remaining_s,
            "pauses": job.pauses, "deadline": workloads.format_time(job.deadline),
            "deadline_ns": release.to_ns(job.deadline), "resume_by_ns": release.to_ns(job.resume_by),
            "final": job.final,
        },
        "plan": plan,
    }


def decide(job: Interruptible, *, now: datetime, plan: Callable[[], PlanInput],
           ask: Callable[[dict[str, Any]], Any] | None,
           on_failure: Callable[[str], None]) -> Decision:
    """The deadline first (Python alone), then the policy, else the fallback rules.

    ``ask`` evaluates the policy (None: no engine); ``on_failure`` is told why
    the policy gave no usable answer (error, undefined, malformed).
    """
    if job.final:
        return Decision(True, "deadline", "deadline",
                        f"running to the end: {job.remaining_s}s of work left, deadline "
                        f"{workloads.format_time(job.deadline)}")
    planned = plan()
    if ask is None:
        return fallback(job, now=now, plan=planned)
    try:
        answer = ask(decision_input(job, now=now, plan=planned))
    except Exception:  # fail-open boundary: any engine failure falls back
        on_failure("error")
        return fallback(job, now=now, plan=planned)
    parsed = parse_decision(answer)
    if parsed is None:
        on_failure("undefined" if answer is None else "malformed")
        return fallback(job, now=now, plan=planned)
    return parsed


def fallback(job: Interruptible, *, now: datetime, plan: PlanInput) -> Decision:
    """Without a policy: never pause a running Job; resume a paused one at its planned slice."""
    if job.running:
        return Decision(True, "no-plan", "fallback", "running: no policy answer, never paused blind")
    if plan["feasible"] and not plan["run_now"]:
        return Decision(False, "waiting", "fallback",
                        f"paused: waiting for the planned slice (resume by "
                        f"{workloads.format_time(job.resume_by)})")
    reason: Reason = "clean-slice" if plan["feasible"] else "no-plan"
    return Decision(True, reason, "fallback", f"running: {reason} (no policy answer)")


def parse_decision(answer: Any) -> Decision | None:
    if not isinstance(answer, Mapping):
        return None
    run, reason = answer.get("run"), answer.get("reason")
    if not isinstance(run, bool) or reason not in get_args(Reason):
        return None
    if run != (reason in RUNNING_REASONS):
        return None
    g = answer.get("g_per_kwh")
    return Decision(run=run, reason=cast(Reason, reason), source="policy",
                    message=str(answer.get("message") or reason),
                    g_per_kwh=float(g) if isinstance(g, int | float)
                    and not isinstance(g, bool) else None)


def _notes(obj: Mapping[str, Any]) -> dict[str, str]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return {str(k): str(v) for k, v in annotations.items() if isinstance(v, str)}


def tier_of(obj: Mapping[str, Any]) -> str | None:
    """The ``carbongate.io/tier`` label, when there is one."""
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(workloads.TIER)
    return value if isinstance(value, str) else None


def _start_time(job: Mapping[str, Any]) -> datetime | None:
    text = (job.get("status") or {}).get("startTime")
    try:
        return workloads.parse_time(str(text)) if text else None
    except ValueError:
        return None


def _count(notes: Mapping[str, str], key: str, problems: list[str]) -> int:
    text = notes.get(key)
    if text is None:
        return 0
    try:
        return max(int(text), 0)
    except ValueError:
        problems.append(f"{key}: {text!r} is not a whole number; read as 0")
        return 0


def _deadline(notes: Mapping[str, str], problems: list[str], now: datetime) -> datetime:
    text = notes.get(workloads.DEADLINE)
    try:
        if text is not None:
            return workloads.parse_time(text)
        problems.append(f"{workloads.DEADLINE} missing: runs to the end, never paused")
    except ValueError:
        problems.append(f"{workloads.DEADLINE}: {text!r} is not an RFC 3339 time; never paused")
    return now
