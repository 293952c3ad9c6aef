"""Per-team carbon budgets: the settings file, the states, and publishing them to OPA.

Making compute cleaner invites more of it; a budget per team is the brake.
The platform team writes the limits (a YAML file, a ConfigMap in a cluster);
governance adds up each team's emissions for the current period from the
ledger and publishes ``data.carbongate.budgets`` (docs/architecture.md,
"Budgets")::

    {"period": "2026-11", "period_start": "2026-11-01T00:00:00Z", "period_end": "2026-12-01T00:00:00Z",
     "period_start_ns": ..., "period_end_ns": ..., "generated_at": "...",
     "teams": {"ml": {"limit_g": 800000.0, "used_g": 652000.0,
                      "percent": 81.5, "state": "warn"}}}

The period's bounds travel with it: a policy applies a document only while
``input.now`` is inside its period, so last month's "exhausted" never holds
this month's work, at the turn of a period or while governance is down.
Policies read it to warn at 80 % and to hold back an exhausted team's tier-3
work. Publishing goes to every configured sink (an OPA server's REST API, the
atomic snapshot file the webhook loads, a ConfigMap every webhook pod mounts,
an in-process engine); a sink that fails is logged and counted and the others
still get the document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict

import yaml

from carbongate import configmaps, files, opa_data
from governance import periods, runs

log = logging.getLogger(__name__)

State = Literal["ok", "warn", "exhausted"]
DEFAULT_WARN_PERCENT = 80.0


class BudgetError(ValueError):
    """A budgets file that cannot be used; the message names the team or key."""


class TeamBudgetDoc(TypedDict):
    limit_g: float
    used_g: float
    percent: float
    state: State


class BudgetsDocument(TypedDict):
    period: str
    period_start: str
    period_end: str
    period_start_ns: int
    period_end_ns: int
    generated_at: str
    teams: dict[str, TeamBudgetDoc]


@dataclass(frozen=True)
class BudgetConfig:
    """The platform's limits: grams of CO2e per team per period."""

    limits_g: Mapping[str, float] = field(default_factory=dict)
    period: periods.PeriodKind = "monthly"
    warn_percent: float = DEFAULT_WARN_PERCENT


def state_of(percent: float, *, warn_percent: float = DEFAULT_WARN_PERCENT) -> State:
    """``exhausted`` at 100 % or more, ``warn`` from ``warn_percent``, else ``ok``."""
    if percent >= 100.0:
        return "exhausted"
    if percent >= warn_percent:
        return "warn"
    return "ok"


def team_budget(limit_g: float, used_g: float, *, warn_percent: float) -> TeamBudgetDoc:
    """One team's entry; a zero limit means any use exhausts it."""
    percent = 100.0 * used_g / limit_g if limit_g > 0 else (0.0 if used_g <= 0 else 100.0)
    return {"limit_g": float(limit_g), "used_g": round(float(used_g), 3),
            "percent": round(percent, 1),
            "state": state_of(percent, warn_percent=warn_percent)}


def document(config: BudgetConfig, usage_g: Mapping[str, float], *, period: periods.Period,
             now: datetime) -> BudgetsDocument:
    """The ``data.carbongate.budgets`` document for every team that has a limit."""
    teams = {team: team_budget(limit, usage_g.get(team, 0.0), warn_percent=config.warn_percent)
             for team, limit in sorted(config.limits_g.items())}
    return {"period": period.key,
            "period_start": runs.format_time(period.start), "period_end": runs.format_time(period.end),
            "period_start_ns": _ns(period.start), "period_end_ns": _ns(period.end),
            "generated_at": runs.format_time(now), "teams": teams}


def _ns(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000


# --- the settings file -------------------------------------------------------------------

def load_config(path: Path | None) -> BudgetConfig:
    """Read the budgets file; ``None`` means no budgets (an empty document is published).

    Shape::

        period: monthly          # or weekly
        warn_percent: 80
        teams:
          ml: {limit_kg: 800}    # or limit_g: 800000
    """
    if path is None:
        return BudgetConfig()
    try:
        parsed = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise BudgetError(f"cannot read budgets file {path}: {error}") from error
    return config_from_document(parsed or {}, where=str(path))


def config_from_document(parsed: Any, *, where: str = "budgets") -> BudgetConfig:
    """Check and build the config from the parsed YAML."""
    if not isinstance(parsed, Mapping):
        raise BudgetError(f"{where}: the top level must be a mapping")
    unknown = set(parsed) - {"period", "warn_percent", "teams"}
    if unknown:
        raise BudgetError(f"{where}: unknown key(s) {sorted(unknown)}")
    kind = parsed.get("period", "monthly")
    if kind not in ("monthly", "weekly"):
        raise BudgetError(f"{where}: period must be monthly or weekly, not {kind!r}")
    warn = parsed.get("warn_percent", DEFAULT_WARN_PERCENT)
    if isinstance(warn, bool) or not isinstance(warn, int | float) or not 0 < warn <= 100:
        raise BudgetError(f"{where}: warn_percent must be a number in (0, 100], not {warn!r}")
    teams = parsed.get("teams") or {}
    if not isinstance(teams, Mapping):
        raise BudgetError(f"{where}: teams must map a team name to its limit")
    limits = {str(team): _limit_g(values, f"{where}: teams.{team}")
              for team, values in teams.items()}
    return BudgetConfig(limits_g=limits, period=kind, warn_percent=float(warn))


def _limit_g(values: Any, where: str) -> float:
    if not isinstance(values, Mapping) or len(set(values) & {"limit_g", "limit_kg"}) != 1:
        raise BudgetError(f"{where} needs exactly one of limit_g or limit_kg")
    unknown = set(values) - {"limit_g", "limit_kg"}
    if unknown:
        raise BudgetError(f"{where}: unknown key(s) {sorted(unknown)}")
    key = "limit_g" if "limit_g" in values else "limit_kg"
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BudgetError(f"{where}.{key} must be a non-negative number, not {value!r}")
    return float(value) * (1000.0 if key == "limit_kg" else 1.0)


# --- publishing --------------------------------------------------------------------------

class BudgetSink(Protocol):
    """Somewhere the budgets document goes; raises on failure (the publisher counts it)."""

    @property
    def name(self) -> str:
        """What the sink is called in logs and metrics."""
        ...

    def publish(self, doc: BudgetsDocument) -> None:
        """Deliver the whole document, replacing the previous one."""
        ...


class DataEngine(Protocol):
    """The part of ``policy_engine.engine.PolicyEngine`` a budgets sink needs."""

    def put_data(self, root: str, value: Any) -> None:
        """Replace ``data.carbongate.<root>``."""
        ...


def render(doc: BudgetsDocument) -> str:
    """The document as the file and the ConfigMap hold it (stable key order)."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class FileSink:
    """An atomic JSON snapshot file (temp file, fsync, rename) the webhook reloads."""

    path: Path
    name: str = "file"

    def publish(self, doc: BudgetsDocument) -> None:
        files.write_atomically(self.path, render(doc))


@dataclass(frozen=True)
class OpaSink:
    """``PUT /v1/data/carbongate/budgets`` on an OPA server (its Data API)."""

    url: str
    token: str | None = None
    timeout_s: float = 2.0
    name: str = "opa"

    def publish(self, doc: BudgetsDocument) -> None:
        """Raises :class:`carbongate.opa_data.OpaDataError` (a RuntimeError) when OPA does not take it."""
        client = opa_data.OpaDataClient(url=self.url, token=self.token, timeout_s=self.timeout_s)
        try:
            client.put("carbongate/budgets", doc)
        finally:
            client.close()


CONFIGMAP_KEY = "budgets.json"
CONFIGMAP_LABELS = {"app.kubernetes.io/name": "carbongate",
                    "app.kubernetes.io/part-of": "carbongate",
                    "app.kubernetes.io/component": "governance",
                    "app.kubernetes.io/managed-by": "carbongate-governance"}


# Re-exported: what callers of this module name.
ConfigMapApi = configmaps.ConfigMapApi
ConfigMapConflict = configmaps.ConfigMapConflict


@dataclass(frozen=True)
class ConfigMapSink:
    """Key ``budgets.json`` of a ConfigMap in carbongate's namespace.

    Every webhook pod has its own OPA (or embedded engine) and mounts this
    ConfigMap, so the kubelet delivers the document to all of them, however
    many replicas there are. Written through :class:`carbongate.configmaps.ConfigMapKey`
    (optimistic concurrency, a few retries on 409). A document that differs
    only in ``generated_at`` is not written again: each write makes the
    kubelet update the file in every webhook pod and every pod push it into
    its OPA, for nothing.
    """

    api: ConfigMapApi
    namespace: str
    config_map: str
    timeout_s: float = 5.0
    attempts: int = 3
    name: str = "configmap"

    def publish(self, doc: BudgetsDocument) -> None:
        target = configmaps.ConfigMapKey(api=self.api, namespace=self.namespace,
                                         name=self.config_map, key=CONFIGMAP_KEY,
                                         labels=CONFIGMAP_LABELS, timeout_s=self.timeout_s,
                                         attempts=self.attempts)
        target.write(render(doc), same=lambda stored: _same_budgets(stored, doc))


def _same_budgets(published: str | None, doc: BudgetsDocument) -> bool:
    """Whether the published text holds ``doc`` apart from when it was generated."""
    try:
        found = json.loads(published or "")
    except ValueError:
        return False
    if not isinstance(found, dict):
        return False
    return {**found, "generated_at": None} == {**doc, "generated_at": None}


@dataclass(frozen=True)
class EngineSink:
    """An in-process policy engine (the embedded OPA) via ``put_data("budgets", doc)``."""

    engine: DataEngine
    name: str = "engine"

    def publish(self, doc: BudgetsDocument) -> None:
        self.engine.put_data("budgets", doc)


def publish(doc: BudgetsDocument, sinks: Sequence[BudgetSink],
            *, on_failure: Callable[[str], None] | None = None) -> list[str]:
    """Send the document to every sink; return the names of those that failed.

    Fail-open: a sink that is down must not keep the others from the news.
    ``on_failure(sink_name)`` lets the caller count it in a metric.
    """
    failed: list[str] = []
    for sink in sinks:
        try:
            sink.publish(doc)
        except Exception as error:  # any sink failure is logged, counted, survived
            log.warning("publishing budgets to %s failed: %s", sink.name, error)
            failed.append(sink.name)
            if on_failure is not None:
                on_failure(sink.name)
    return failed
