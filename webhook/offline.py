"""Deciding one AdmissionReview offline, for ``carbongate review``.

The grid comes from trace files with a perfect forecast (the trace itself from
``now`` on); the policies from a directory; the decision from the same
``admission.review`` the webhook runs. Nothing is recorded. For a Job
annotated ``carbongate.io/interruptible: "true"`` it also shows the plan of
slices the deferral controller would follow (``planner.slices``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from carbongate import files, platform, timefmt
from carbongate import settings as settings_mod
from planner import slices, snapshot
from webhook import admission, manifests, reviews

# What the engine holds for budgets when a review names none (no team has a budget).
NO_BUDGETS: Mapping[str, Any] = {"period": "", "teams": {}}


class ReviewError(RuntimeError):
    """The review could not be made; the message says what to fix."""


@dataclass(frozen=True)
class Outcome:
    """Everything ``carbongate review`` prints."""

    request: reviews.Request
    result: admission.Result
    now: datetime
    home_region: str
    policy_version: str
    slice_plan: slices.SlicePlan | None = None
    interruptible: bool = False
    namespace_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        response = self.result.response["response"]
        return {
            "uid": self.request.uid,
            "kind": self.request.kind,
            "now": snapshot.format_time(self.now),
            "home_region": self.home_region,
            "policy_version": self.policy_version,
            "allowed": response["allowed"],
            "decision": self.result.decision,
            "patch": self.result.patch,
            "warnings": response.get("warnings", []),
            "fail_open": self.result.fail_open,
            "slice_plan": None if not self.interruptible else _slices_json(self.slice_plan),
        }

    def as_text(self) -> str:
        doc = self.as_json()
        decision = doc["decision"] or {}
        lines = [
            f"{doc['kind']} {self.request.namespace}/{self.request.name or '(generated)'} at {doc['now']}"
            f" (home {doc['home_region']}, policies {doc['policy_version']})",
            f"allowed:  {doc['allowed']}",
            f"decision: {decision['action'] if decision.get('action') else self._no_decision()}"
            + (f" — {decision.get('reason')}" if decision.get("reason") else ""),
        ]
        if doc["fail_open"]:
            lines.append(f"fail-open: {doc['fail_open']}")
        lines.append("patch:" + ("" if doc["patch"] else " (none)"))
        lines += [f"  {json.dumps(op)}" for op in doc["patch"]]
        lines.append("warnings:" + ("" if doc["warnings"] else " (none)"))
        lines += [f"  {w}" for w in doc["warnings"]]
        if self.interruptible:
            lines.append(f"slices:   {slices.describe(self.slice_plan)}")
        return "\n".join(lines)

    def _no_decision(self) -> str:
        """Why nothing was decided, in the words a platform engineer needs next."""
        request = self.request
        if (request.group, request.kind) not in admission.DECIDED_KINDS:
            return (f"none: carbongate decides Pods and batch/v1 Jobs, not {request.kind}s "
                    f"(the Pods a {request.kind} creates are decided when they are created)")
        if self.result.policy_input is None:
            return (f"none: the webhook does not decide {request.operation or 'this'} requests in namespace "
                    f"{request.namespace!r} (exempt, carbongate's own or not a create)")
        return "none: the policy gave no decision (admitted unchanged)"


def review_file(
    path: Path,
    *,
    settings: settings_mod.Settings,
    now: datetime,
    traces: tuple[Path, ...],
    namespace_labels: Mapping[str, str],
    budgets_file: Path | None,
) -> Outcome:
    """Decide the one AdmissionReview or workload manifest in ``path`` at ``now`` on the given traces."""
    outcomes = review_files([path], settings=settings, now=now, traces=traces,
                            namespace_labels=namespace_labels, budgets_file=budgets_file)
    if len(outcomes) != 1:
        raise ReviewError(f"{path}: holds {len(outcomes)} workloads, not one")
    return outcomes[0]


def review_files(
    paths: list[Path],
    *,
    settings: settings_mod.Settings,
    now: datetime,
    traces: tuple[Path, ...],
    namespace_labels: Mapping[str, str],
    budgets_file: Path | None,
    namespace: str | None = None,
) -> list[Outcome]:
    """Decide every workload in ``paths`` (manifests or AdmissionReviews) at ``now``.

    A Namespace among the documents supplies the labels of its workloads;
    ``namespace_labels`` (``--namespace-label``) are laid over them, for every namespace.
    """
    found = _read_manifests(paths, namespace)
    grid = grid_from_traces(traces or demo_traces(), now=now, settings=settings)
    budgets = _read_json(budgets_file) if budgets_file else None
    reviewer = Reviewer(settings)
    try:
        return [reviewer.decide(request, now=now, grid=grid, budgets=budgets,
                                namespace_labels={**found.namespace_labels.get(request.namespace, {}),
                                                  **namespace_labels})
                for request in found.requests]
    finally:
        reviewer.close()


class Reviewer:
    """The engine, platform config and energy model behind many offline decisions.

    Compiling the policies costs far more than one decision, so ``review`` of
    many files and ``carbongate test`` build one and put each case's grid and
    budgets into it before deciding.
    """

    def __init__(self, settings: settings_mod.Settings, *, policy_version: str | None = None) -> None:
        """``policy_version`` stands in for the policies' hash in annotations (tests that outlive an edit)."""
        from planner import energy

        self.settings = settings
        self.policy_version = policy_version
        self.engine = _engine(settings)
        self.platform = platform.read(settings.engine.policy_dir)
        self.config: Mapping[str, Any] = self.platform.document
        self.model = energy.load(settings.governance.energy_model_file)
        self._held: dict[str, Mapping[str, Any]] = {}

    def decide(self, request: reviews.Request, *, now: datetime, grid: snapshot.GridSnapshot,
               budgets: Mapping[str, Any] | None, namespace_labels: Mapping[str, str],
               home_region: str | None = None) -> Outcome:
        """One request decided as the webhook would at ``now`` with this grid and these budgets."""
        settings = self.settings
        self._put("grid", grid)
        self._put("budgets", budgets if budgets is not None else NO_BUDGETS)
        knowledge = admission.knowledge(
            settings=settings, platform=self.platform, now=now, grid=grid, budgets=budgets,
            namespace_labels=dict(namespace_labels), policy_version=self.policy_version or self.engine.version,
            home_region=home_region or self.platform.home_region(settings, grid["regions"], within=True))
        home = knowledge.home_region
        model = self.model
        result = admission.review(
            request, knowledge=knowledge,
            decide=lambda document: self.engine.evaluate("carbongate/admission/decision", document),
            energy_kwh=lambda obj, duration_s: model.energy_kwh(obj, duration_s),
        )
        job = request.object or {}
        interruptible = request.kind == "Job" and _annotations(job).get("carbongate.io/interruptible") == "true"
        plan = (_slice_plan(job, result.decision or {}, grid=grid, config=self.config, now=now,
                            home=home, step_s=settings.grid.plan_step_min * 60,
                            default_duration_s=self.platform.default_duration_s(settings))
                if interruptible else None)
        return Outcome(request=request, result=result, now=now, home_region=home,
                       policy_version=self.engine.version, slice_plan=plan, interruptible=interruptible,
                       namespace_labels=dict(namespace_labels))

    def _put(self, name: str, document: Mapping[str, Any]) -> None:
        """Put a document only when it changed: each put recompiles the policies (~0.4 s)."""
        if self._held.get(name) != document:
            self.engine.put_data(name, document)
            self._held[name] = document

    def close(self) -> None:
        self.engine.close()


def _slice_plan(job: Mapping[str, Any], decision: Mapping[str, Any], *, grid: snapshot.GridSnapshot,
                config: Mapping[str, Any], now: datetime, home: str, step_s: int,
                default_duration_s: int) -> slices.SlicePlan | None:
    """The slices the controller would plan for this Job if admitted now as decided."""
    rules = slices.rules_from_config(config).get(str(decision.get("tier") or config.get("default_tier")))
    notes = _annotations(job)
    deadline_text = decision.get("deadline") or notes.get("carbongate.io/deadline")
    region = str(decision.get("region") or home)
    doc = grid["regions"].get(region)
    series = None if doc is None else snapshot.region_series(doc)
    if rules is None or not deadline_text or series is None:
        return None
    try:
        deadline = timefmt.parse_time(str(deadline_text))
    except ValueError:
        return None
    try:
        duration = timefmt.parse_duration(notes["carbongate.io/expected-duration"])
    except (KeyError, ValueError):
        duration = default_duration_s
    progress = slices.Progress(remaining_s=duration, running=decision.get("action") != "defer",
                               pauses_left=rules.max_pauses)
    return slices.plan_slices(series, now=now, deadline=deadline, progress=progress, rules=rules,
                              step_s=max(step_s, series.step_s))


def _slices_json(plan: slices.SlicePlan | None) -> list[dict[str, Any]] | None:
    if plan is None:
        return None
    return [{"start": snapshot.format_time(s.start), "end": snapshot.format_time(s.end),
             "mean_g_per_kwh": round(s.mean_g_per_kwh, 1)} for s in plan.slices]


def _annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    found = (obj.get("metadata") or {}).get("annotations") or {}
    return {str(k): str(v) for k, v in found.items()}


def _read_manifests(paths: list[Path], namespace: str | None) -> manifests.Manifests:
    try:
        found = manifests.read(paths, namespace=namespace)
    except manifests.ManifestError as error:
        raise ReviewError(str(error)) from error
    if not found.requests:
        raise ReviewError(f"no workload to review in {', '.join(map(str, paths))} (only Namespaces or empty documents)")
    return found


def demo_traces() -> tuple[Path, ...]:
    """The bundled demo traces, GB first so that it is the home region."""
    from carbon_feed import traces as trace_mod

    found = trace_mod.demo_files(settings_mod.DEMO_GRID_DIR)
    if not found:
        raise ReviewError(f"no --grid given and no demo traces in {settings_mod.DEMO_GRID_DIR}")
    return tuple(found)


def grid_from_traces(traces: tuple[Path, ...], *, now: datetime,
                     settings: settings_mod.Settings) -> snapshot.GridSnapshot:
    from carbon_feed import traces as trace_mod

    try:
        document = trace_mod.snapshot_from_traces(
            traces, now=now, horizon_h=settings.grid.forecast_horizon_h,
            durations_min=settings.grid.window_durations_min, grace_s=settings.grid.stale_grace_s,
            read=trace_mod.load_any,
        )
    except (OSError, ValueError) as error:
        raise ReviewError(f"cannot build the grid from {', '.join(map(str, traces))}: {error}") from error
    return snapshot.check_snapshot(document)


def _engine(settings: settings_mod.Settings) -> Any:
    import policy_engine
    from policy_engine import errors

    embedded = dataclasses.replace(settings.engine, kind="embedded")
    try:
        engine = policy_engine.build(embedded)
    except errors.PolicyCompileError as error:
        raise ReviewError(f"the policies in {settings.engine.policy_dir} do not compile: {error}") from error
    return engine


def _read_json(path: Path) -> Mapping[str, Any]:
    try:
        return files.load_json(path)
    except (OSError, ValueError) as error:
        raise ReviewError(f"cannot read {path}: {error}") from error
