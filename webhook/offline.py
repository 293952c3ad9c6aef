"""Deciding one AdmissionReview offline, for ``carbongate review``.

The grid comes from trace files with a perfect forecast (the trace itself from
``now`` on); the policies from a directory; the decision from the same
``admission.review`` the webhook runs. Nothing is recorded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from carbongate import files, platform
from carbongate import settings as settings_mod
from planner import snapshot
from webhook import admission, reviews


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
    knowledge = admission.knowledge(
        settings=settings, platform=platform.read(settings.engine.policy_dir), now=now, grid=grid,
        budgets=budgets, namespace_labels=dict(namespace_labels), policy_version=engine.version)
    home = knowledge.home_region
    from planner import energy

    model = energy.load(settings.governance.energy_model_file)
    result = admission.review(
        request, knowledge=knowledge,
        decide=lambda document: engine.evaluate("carbongate/admission/decision", document),
        energy_kwh=lambda obj, duration_s: model.energy_kwh(obj, duration_s),
    )
    version = engine.version
    engine.close()
    return Outcome(request=request, result=result, now=now, home_region=home, policy_version=version)


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
        return files.load_json(path)
    except (OSError, ValueError) as error:
        raise ReviewError(f"cannot read {path}: {error}") from error
