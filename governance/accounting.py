"""From a finished run to its ledger row: energy, emissions, counterfactual, saving.

* energy: the energy model over the run's duration (``planner.energy``);
* emissions: energy × the time-weighted mean intensity of the region it ran
  in, over the hours it ran, with the signal stated;
* counterfactual: the same energy had the run started when it was admitted,
  in the home region, for the same duration: what would have happened
  without carbongate;
* saving: counterfactual − emissions, claimed only for runs carbongate
  changed (decision ``defer`` or ``shift``, never tier 1) and only when both
  sides are priced on the same signal. Every other run saves exactly 0; a
  change that turned out dirtier shows as a negative saving, not hidden.

Pure: the facts, the model and the history come in, a record goes out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from governance import history, runs
from planner import energy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Priced:
    """Mean intensity used for a window, where it came from, and its signal."""

    g_per_kwh: float | None
    signal: str
    source: runs.IntensitySource


def account(
    facts: runs.RunFacts, *, model: energy.EnergyModel, grid: history.IntensityHistory
) -> runs.RunRecord:
    """The ledger row for a finished run (raises ``energy.PodSpecError`` on a bad spec)."""
    energy_kwh = model.energy_kwh(facts.pod_spec, facts.duration_s, node_pool=facts.node_pool)
    actual = _price_actual(facts, grid)
    emissions_g = None if actual.g_per_kwh is None else energy_kwh * actual.g_per_kwh
    counterfactual_g, saved_g = _counterfactual(facts, grid, energy_kwh, actual, emissions_g)
    return runs.RunRecord(
        uid=facts.uid, team=facts.team, namespace=facts.namespace, pod=facts.pod,
        workload=facts.workload, tier=facts.tier, decision=facts.decision, region=facts.region,
        home_region=facts.home_region, node_pool=facts.node_pool, phase=facts.phase,
        admitted_at=facts.admitted_at, start=facts.start, end=facts.end,
        energy_kwh=energy_kwh, emissions_g=emissions_g, counterfactual_g=counterfactual_g,
        saved_g=saved_g, mean_g_per_kwh=actual.g_per_kwh, signal=actual.signal,
        intensity_source=actual.source,
        deferred_s=max(0.0, (facts.start - facts.admitted_at).total_seconds()),
    )


def _price_actual(facts: runs.RunFacts, grid: history.IntensityHistory) -> Priced:
    """The run's own window from history; failing that, the intensity seen at admission."""
    reading = grid.mean(facts.region, facts.start, facts.end)
    if reading is not None:
        return Priced(reading.mean_g_per_kwh, reading.signal, "history")
    if facts.admission_g_per_kwh is not None:
        log.info("pricing %s/%s at its admission intensity: no history for %s",
                 facts.namespace, facts.pod, facts.region)
        return Priced(facts.admission_g_per_kwh, "unknown", "admission")
    log.warning("cannot price %s/%s: no intensity known for %s", facts.namespace, facts.pod,
                facts.region)
    return Priced(None, "unknown", "none")


def _counterfactual(
    facts: runs.RunFacts, grid: history.IntensityHistory, energy_kwh: float,
    actual: Priced, emissions_g: float | None,
) -> tuple[float | None, float]:
    """(counterfactual_g, saved_g): unchanged runs are their own counterfactual, saving 0."""
    if not facts.changed or emissions_g is None:
        return emissions_g, 0.0
    start = facts.admitted_at
    reading = grid.mean(facts.home_region, start, start + timedelta(seconds=facts.duration_s))
    if reading is None or actual.source != "history" or reading.signal != actual.signal:
        # Without both sides on the same footing there is no saving we can show.
        return None, 0.0
    counterfactual_g = energy_kwh * reading.mean_g_per_kwh
    return counterfactual_g, counterfactual_g - emissions_g
