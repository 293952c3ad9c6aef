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

from carbongate import settings as settings_mod
from carbongate import timefmt
from planner import slices, snapshot
from webhook import admission, reviews, state


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
            f"decision: {decision.get('action', 'none (undefined: admitted unchanged)')}"
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


def review_file(
    path: Path,
    *,
    settings: settings_mod.Settings,
    now: datetime,
    traces: tuple[Path, ...],
    namespace_labels: Mapping[str, str],
    budgets_file: Path | None,
) -> Outcome:
    """Decide the AdmissionReview in ``path`` at ``now`` on the given traces."""
    request = _read_request(path)
    grid = _grid(traces or _demo_traces(), now=now, settings=settings)
    budgets = _read_json(budgets_file) if budgets_file else None
    engine = _engine(settings, grid=grid, budgets=budgets)
    try:
        config = state.load_json(settings.engine.policy_dir / "carbongate/config/data.json")
    except (OSError, ValueError):
        config = {}
    home = settings.grid.home_region or next(iter(grid["regions"]), "")
    knowledge = admission.Knowledge(
        now=now, grid=grid, budgets=budgets, config=config, namespace_labels=dict(namespace_labels),
        home_region=home, own_namespace=settings.webhook.own_namespace,
        exempt_namespaces=frozenset(settings.webhook.exempt_namespaces), policy_version=engine.version,
        plan_step_s=settings.grid.plan_step_min * 60, horizon_s=settings.grid.forecast_horizon_h * 3600,
    )
    from governance import energy

    model = energy.load(settings.governance.energy_model_file)
    result = admission.review(
        request, knowledge=knowledge,
        decide=lambda document: engine.evaluate("carbongate/admission/decision", document),
        energy_kwh=lambda obj, duration_s: model.energy_kwh(obj, duration_s),
    )
    version = engine.version
    engine.close()
    job = request.object or {}
    interruptible = request.kind == "Job" and _annotations(job).get("carbongate.io/interruptible") == "true"
    plan = (_slice_plan(job, result.decision or {}, grid=grid, config=config, now=now,
                        home=home, step_s=settings.grid.plan_step_min * 60)
            if interruptible else None)
    return Outcome(request=request, result=result, now=now, home_region=home, policy_version=version,
                   slice_plan=plan, interruptible=interruptible)


def _slice_plan(job: Mapping[str, Any], decision: Mapping[str, Any], *, grid: snapshot.GridSnapshot,
                config: Mapping[str, Any], now: datetime, home: str, step_s: int) -> slices.SlicePlan | None:
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
        duration = int(config.get("default_duration_s") or 3600)
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


def _read_request(path: Path) -> reviews.Request:
    try:
        return reviews.parse(path.read_bytes())
    except OSError as error:
        raise ReviewError(f"cannot read {path}: {error}") from error
    except reviews.BadReview as error:
        raise ReviewError(f"{path}: {error}") from error


def _demo_traces() -> tuple[Path, ...]:
    """The bundled demo traces, GB first so that it is the home region."""
    found = sorted(settings_mod.DEMO_GRID_DIR.glob("*.csv"), key=lambda p: (not p.name.startswith("GB"), p.name))
    if not found:
        raise ReviewError(f"no --grid given and no demo traces in {settings_mod.DEMO_GRID_DIR}")
    return tuple(found)


def _grid(traces: tuple[Path, ...], *, now: datetime, settings: settings_mod.Settings) -> snapshot.GridSnapshot:
    from carbon_feed import traces as trace_mod

    try:
        document = trace_mod.snapshot_from_traces(
            traces, now=now, horizon_h=settings.grid.forecast_horizon_h,
            durations_min=settings.grid.window_durations_min, grace_s=settings.grid.stale_grace_s,
        )
    except (OSError, ValueError) as error:
        raise ReviewError(f"cannot build the grid from {', '.join(map(str, traces))}: {error}") from error
    return snapshot.check_snapshot(document)


def _engine(settings: settings_mod.Settings, *, grid: Mapping[str, Any], budgets: Mapping[str, Any] | None) -> Any:
    import policy_engine
    from policy_engine import errors

    embedded = dataclasses.replace(settings.engine, kind="embedded")
    try:
        engine = policy_engine.build(embedded)
        engine.put_data("grid", grid)
        if budgets is not None:
            engine.put_data("budgets", budgets)
    except errors.PolicyCompileError as error:
        raise ReviewError(f"the policies in {settings.engine.policy_dir} do not compile: {error}") from error
    return engine


def _read_json(path: Path) -> Mapping[str, Any]:
    try:
        return state.load_json(path)
    except (OSError, ValueError) as error:
        raise ReviewError(f"cannot read {path}: {error}") from error
