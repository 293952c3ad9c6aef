"""The slice plan of an interruptible workload: the cleanest set of run slices before its deadline.

A Job that checkpoints may be paused while the grid is dirty and resumed when
it is clean. Which hours it should run is arithmetic, and lives here, in one
function used by the webhook (``carbongate review``), the deferral controller
and the replay, so all three see the same plan.

Time from ``now`` to the deadline is cut into slots of ``step_s`` (the last
partial slot is not used: it could not be finished in). A plan is a set of
slots; consecutive chosen slots form a run slice. A plan is valid when

- its slots cover the remaining work plus ``overhead_s`` for every slice
  that resumes paused work (restart, reading the checkpoint, work lost since
  the last one); the very first start of a Job that never ran, and the
  continuation of a slice running now, cost nothing;
- it pauses at most ``max_pauses`` times (stopping a slice that runs now
  counts; the end of the last slice is the Job finishing, not a pause);
- every slice followed by a pause has run at least ``min_slice_s`` (for the
  slice running now, counting what it already ran).

Among valid plans the cleanest wins: the lowest sum of slot intensities
(energy is proportional to run time, so this is the emissions order), ties to
the plan that uses earlier slots. Slots the forecast does not cover are
usable at the highest intensity the forecast knows, so an unknown future
never looks attractive but still counts for feasibility; the plan is remade
with every new forecast. The search is an exact dynamic programme over
(slices begun, slots chosen, minimum-slice debt), checked against brute
force in tests/planner/test_slices.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from planner import series as series_mod
from planner import windows


@dataclass(frozen=True, slots=True)
class SliceRules:
    """A tier's interruption settings (``tiers[t].interruptible`` in the platform config)."""

    min_slice_s: int
    max_pauses: int
    overhead_s: int


def rules_from_config(config: Mapping[str, Any]) -> dict[str, SliceRules]:
    """Each tier's ``interruptible`` settings of the platform config (configcheck vets them)."""
    found: dict[str, SliceRules] = {}
    for tier, values in (config.get("tiers") or {}).items():
        settings = values.get("interruptible") if isinstance(values, Mapping) else None
        if isinstance(settings, Mapping):
            found[str(tier)] = SliceRules(
                min_slice_s=int(settings.get("min_slice_s", 3600)),
                max_pauses=int(settings.get("max_pauses", 0)),
                overhead_s=round(float(settings.get("pause_overhead_min", 0)) * 60))
    return found


def describe(plan: SlicePlan | None) -> str:
    """``11-23T00:00Z+3h15m, ...``: a plan in a table cell or a review."""
    if plan is None:
        return "no plan (no forecast, or the work no longer fits: runs to the end)"
    if not plan.slices:
        return "no work left"
    return ", ".join(f"{s.start:%m-%dT%H:%MZ}+{_span(s.end - s.start)}" for s in plan.slices)


def _span(length: timedelta) -> str:
    minutes = int(length.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m" if hours else f"{rest}m"


@dataclass(frozen=True, slots=True)
class Progress:
    """Where the workload stands: what work is left and whether it runs now."""

    remaining_s: int        # work still to do (expected duration less work done)
    running: bool           # a slice runs now
    running_for_s: int = 0  # how long the current slice has run
    started: bool = False   # it has run before: a new slice is a resume and costs overhead
    pauses_left: int = 0    # pauses it may still take (max_pauses less pauses taken)


@dataclass(frozen=True, slots=True)
class Slice:
    start: datetime
    end: datetime
    mean_g_per_kwh: float


@dataclass(frozen=True, slots=True)
class SlicePlan:
    """The chosen slices, earliest first, and what they add up to."""

    slices: tuple[Slice, ...]
    run_s: int              # total planned run time, overheads included
    pauses: int             # pauses the plan takes (stopping the running slice included)
    mean_g_per_kwh: float   # time-weighted over the slices

    def runs_at(self, when: datetime) -> bool:
        """Whether a slice covers ``when`` (the plan says: be running now)."""
        return any(s.start <= when < s.end for s in self.slices)

    def next_start(self, after: datetime) -> datetime | None:
        return next((s.start for s in self.slices if s.start > after), None)


@dataclass(frozen=True, slots=True)
class Choice:
    """The discrete answer: which slots, and the plan's cost."""

    slots: tuple[int, ...]
    cost: float
    pauses: int
    overheads: int


# DP state: (slices begun, inside a slice, minimum-slice debt in slots, slots chosen
# capped at the most ever needed, whether the first slice was free of overhead),
# mapped to (cost, sum of slot indexes for the tie-break, back pointer).
_State = tuple[int, bool, int, int, bool]
_Layer = dict[_State, tuple[float, int, tuple[_State, bool] | None]]


def plan_slices(series: series_mod.Series | None, *, now: datetime, deadline: datetime,
                progress: Progress, rules: SliceRules, step_s: int) -> SlicePlan | None:
    """The cleanest valid plan from ``now`` to ``deadline``; None when none fits.

    A workload with no work left gets an empty plan.
    """
    if progress.remaining_s <= 0:
        return SlicePlan(slices=(), run_s=0, pauses=0, mean_g_per_kwh=0.0)
    count = int((deadline - now).total_seconds() // step_s)
    costs = slot_costs(series, now=now, step_s=step_s, count=count)
    choice = choose_slots(costs, step_s=step_s, progress=progress, rules=rules)
    if choice is None:
        return None
    return _plan(choice, costs, now=now, step_s=step_s, progress=progress, rules=rules)


def slot_costs(series: series_mod.Series | None, *, now: datetime, step_s: int,
               count: int) -> list[float]:
    """Mean intensity of each slot; slots the forecast misses get its highest value."""
    known: list[float | None] = [
        None if series is None else windows.mean_intensity(
            series, now + timedelta(seconds=k * step_s), step_s)
        for k in range(max(count, 0))]
    present = [c for c in known if c is not None]
    worst = max(present) if present else 0.0
    return [worst if c is None else c for c in known]


def choose_slots(costs: Sequence[float], *, step_s: int, progress: Progress,
                 rules: SliceRules) -> Choice | None:
    """The exact optimum over slot costs (see the module docstring for validity)."""
    work = progress.remaining_s
    most = math.ceil((work + (progress.pauses_left + 1) * rules.overhead_s) / step_s)
    full = math.ceil(rules.min_slice_s / step_s)
    first = math.ceil(max(rules.min_slice_s - progress.running_for_s, 0) / step_s)
    layer: _Layer = {(0, False, 0, 0, False): (0.0, 0, None)}
    history: list[_Layer] = []
    for k, cost in enumerate(costs):
        nxt: _Layer = {}
        for state, (total, order, _) in layer.items():
            begun, inside, debt, chosen, free = state
            must_run = k == 0 and progress.running and first > 0
            if not must_run:  # skip slot k: a slice ends here (a pause, unless it was the last)
                _keep(nxt, (begun, False, debt, chosen, free), total, order, (state, False))
            if inside:
                moved: _State = (begun, True, max(debt - 1, 0), min(chosen + 1, most), free)
            else:
                continues = progress.running and k == 0
                if begun >= _slices_allowed(progress, continued=free or continues) or debt > 0:
                    continue  # no pause left to take, or the last slice was too short to pause
                is_free = continues or (begun == 0 and not progress.running
                                        and not progress.started)
                need = first if continues else full
                moved = (begun + 1, True, max(need - 1, 0), min(chosen + 1, most),
                         free or is_free)
            _keep(nxt, moved, total + cost, order + k, (state, True))
        history.append(layer)
        layer = nxt
    best: tuple[float, int, _State] | None = None
    for state, (total, order, _) in layer.items():
        begun, _inside, _debt, chosen, free = state
        overheads = begun - (1 if free else 0)
        if begun == 0 or chosen * step_s < work + overheads * rules.overhead_s:
            continue
        if best is None or (total, order) < (best[0], best[1]):
            best = (total, order, state)
    if best is None:
        return None
    slots = _trace(history, layer, best[2])
    return _choice(slots, best[0], progress=progress, step_s=step_s)


def _slices_allowed(progress: Progress, *, continued: bool) -> int:
    """Slices a plan may have: one more than its pauses, less one if it stops the running one."""
    if progress.running and not continued:
        return progress.pauses_left
    return progress.pauses_left + 1


def _keep(layer: _Layer, state: _State, total: float, order: int,
          back: tuple[_State, bool]) -> None:
    found = layer.get(state)
    if found is None or (total, order) < (found[0], found[1]):
        layer[state] = (total, order, back)


def _trace(history: list[_Layer], last: _Layer, state: _State) -> list[int]:
    slots: list[int] = []
    layer = last
    for k in range(len(history) - 1, -1, -1):
        back = layer[state][2]
        assert back is not None
        state, took = back
        if took:
            slots.append(k)
        layer = history[k]
    return sorted(slots)


def _choice(slots: list[int], cost: float, *, progress: Progress, step_s: int) -> Choice:
    runs = runs_of(slots)
    stops_now = progress.running and (not slots or slots[0] != 0)
    pauses = len(runs) - 1 + (1 if stops_now else 0)
    continued = progress.running and bool(slots) and slots[0] == 0
    free = continued or (not progress.running and not progress.started)
    return Choice(slots=tuple(slots), cost=cost, pauses=pauses,
                  overheads=len(runs) - (1 if free else 0))


def runs_of(slots: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive slot indexes as (first, last) pairs."""
    runs: list[tuple[int, int]] = []
    for slot in slots:
        if runs and runs[-1][1] == slot - 1:
            runs[-1] = (runs[-1][0], slot)
        else:
            runs.append((slot, slot))
    return runs


def _plan(choice: Choice, costs: Sequence[float], *, now: datetime, step_s: int,
          progress: Progress, rules: SliceRules) -> SlicePlan:
    """Slices from slots; the last one ends when the work is done, not at its slot's end."""
    needed = progress.remaining_s + choice.overheads * rules.overhead_s
    spare = len(choice.slots) * step_s - needed
    slices: list[Slice] = []
    runs = runs_of(choice.slots)
    for index, (first, last) in enumerate(runs):
        start = now + timedelta(seconds=first * step_s)
        end = now + timedelta(seconds=(last + 1) * step_s)
        if index == len(runs) - 1:
            end -= timedelta(seconds=max(min(spare, (last - first + 1) * step_s - 1), 0))
        mean = sum(costs[first:last + 1]) / (last - first + 1)
        slices.append(Slice(start=start, end=end, mean_g_per_kwh=mean))
    total = sum((s.end - s.start).total_seconds() for s in slices)
    weighted = sum((s.end - s.start).total_seconds() * s.mean_g_per_kwh for s in slices)
    return SlicePlan(slices=tuple(slices), run_s=int(total), pauses=choice.pauses,
                     mean_g_per_kwh=weighted / total if total else 0.0)
