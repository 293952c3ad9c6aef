"""``budget report --demo``: a month of runs for a few teams, so a newcomer can see a report.

The demo ledger is written at run time into a temporary directory (an SQLite
file, removed afterwards) and read back through the same read-only path as a
real ledger: nothing is committed to the repository and no real database is
opened. It is deterministic: the same period (and the same ``now``, which
clips a period still running) gives the same runs, figure for figure.

Each run goes through the real accounting (:func:`governance.accounting.account`,
the default energy model), priced on a made-up grid whose signal is called
``demo`` so the report says where its figures come from: every region has a
daily swing (clean around 03:00 and 14:00 UTC, dirty in the evening peak)
around its own level. Teams and budgets:

* ``ml``: large tier-3 training jobs, often deferred or shifted; past the
  warning level of its budget by the end of the month;
* ``data``: tier-3 batch, deferred a few hours, comfortably inside;
* ``web-ci``: many small tier-2 CI runs, some deferred an hour; over budget;
* ``analytics``: tier-1 work only, no budget set.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa

from governance import accounting, budgets, history, ledger, periods, runs
from planner import energy

SIGNAL: Final = "demo"
# Mean g/kWh of each region of the made-up grid (GB-like, DE-like, NO-like).
LEVELS: Final = {"GB": 180.0, "DE": 340.0, "NO": 30.0}


@dataclass(frozen=True)
class _Team:
    name: str
    namespaces: tuple[str, ...]
    tier: str
    runs_per_day: int
    cpu: tuple[int, ...]
    hours: tuple[float, float]
    defer_share: float
    shift_share: float
    max_wait_h: float
    limit_kg: float | None


TEAMS: Final = (
    _Team("ml", ("ml-training", "ml-eval"), "3", 6, (8, 16, 32), (1.0, 6.0), 0.55, 0.25, 18.0, 5.5),
    _Team("data", ("etl",), "3", 4, (4, 8), (0.5, 2.5), 0.6, 0.0, 8.0, 1.5),
    _Team("web-ci", ("ci-runners", "preview"), "2", 40, (2, 4), (0.1, 0.4), 0.3, 0.0, 1.0, 0.5),
    _Team("analytics", ("dashboards",), "1", 8, (2,), (0.2, 1.0), 0.0, 0.0, 0.0, None),
)


class DemoGrid:
    """A made-up grid: each region's level with a daily swing, averaged minute by minute."""

    def intensity(self, region: str, when: datetime) -> float:
        hour = when.hour + when.minute / 60
        swing = 0.35 * math.cos((hour - 19) / 24 * 2 * math.pi) + 0.15 * math.cos((hour - 8) / 12 * 2 * math.pi)
        return LEVELS[region] * (1 + swing)

    def mean(self, region: str, start: datetime, end: datetime) -> history.Reading | None:
        if region not in LEVELS or end <= start:
            return None
        steps = max(1, int((end - start).total_seconds() // 600))
        width = (end - start) / steps
        total = sum(self.intensity(region, start + width * (i + 0.5)) for i in range(steps))
        return history.Reading(total / steps, SIGNAL, "demo", (end - start).total_seconds())


def config() -> budgets.BudgetConfig:
    """The demo teams' budgets (``analytics`` has none)."""
    return budgets.BudgetConfig(limits_g={t.name: t.limit_kg * 1000 for t in TEAMS if t.limit_kg is not None})


def records(period: periods.Period, *, now: datetime) -> list[runs.RunRecord]:
    """Every demo run that ended in ``period`` before ``now``, accounted as the collector does."""
    rng = random.Random(f"carbongate-demo-{period.key}")
    grid, model = DemoGrid(), energy.EnergyModel.default()
    found = []
    day = period.start
    while day < period.end:
        for team in TEAMS:
            for n in range(rng.randint(team.runs_per_day // 2, team.runs_per_day)):
                facts = _facts(rng, team, day, n)
                if facts.end < min(period.end, now):
                    found.append(accounting.account(facts, model=model, grid=grid))
        day += timedelta(days=1)
    return found


def _facts(rng: random.Random, team: _Team, day: datetime, n: int) -> runs.RunFacts:
    admitted = day + timedelta(hours=rng.uniform(7, 20) if team.tier != "3" else rng.uniform(0, 24))
    roll = rng.random()
    decision = "defer" if roll < team.defer_share else "shift" if roll < team.defer_share + team.shift_share \
        else "admit"
    start = _cleanest_start(admitted, team.max_wait_h) if decision == "defer" else admitted
    end = start + timedelta(hours=rng.uniform(*team.hours))
    cpu = rng.choice(team.cpu)
    spec = {"containers": [{"name": "main", "resources": {"requests": {"cpu": str(cpu),
                                                                       "memory": f"{cpu * 4}Gi"}}}]}
    namespace = rng.choice(team.namespaces)
    return runs.RunFacts(
        uid=f"demo-{team.name}-{day:%Y%m%d}-{n}", namespace=namespace, pod=f"{team.name}-{day:%m%d}-{n}",
        team=team.name, tier=team.tier, decision=decision, region="NO" if decision == "shift" else "GB",
        home_region="GB", phase="Succeeded", admitted_at=admitted, start=start, end=end, pod_spec=spec,
        workload=f"{team.name}-job-{n}")


def _cleanest_start(admitted: datetime, max_wait_h: float) -> datetime:
    """A deferred run starts at the cleanest half hour of its wait, as a perfect forecast would have it."""
    grid = DemoGrid()
    starts = [admitted + timedelta(hours=k / 2) for k in range(1, int(max_wait_h * 2) + 1)]
    return min(starts, key=lambda when: grid.intensity("GB", when))


@contextlib.contextmanager
def ledger_url(period: periods.Period, *, now: datetime) -> Iterator[str]:
    """The URL of a fresh SQLite ledger holding the demo runs, removed on exit.

    Written through the ledger's own schema and ``record``, quietly (its
    migration log lines would only puzzle someone trying the report) and
    without syncing each row to disk: the file is thrown away afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="carbongate-demo-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'demo-ledger.db'}"
        engine = ledger.create_engine(url)
        sa.event.listen(engine, "connect", _unsynced)
        store = ledger.SqlLedger(engine=engine)
        try:
            level = ledger.log.level
            ledger.log.setLevel(logging.WARNING)
            try:
                ledger.migrate(engine)
            finally:
                ledger.log.setLevel(level)
            for record in records(period, now=now):
                store.record(record)
        finally:
            store.close()
        yield url


def _unsynced(dbapi_connection: Any, _record: Any) -> None:
    """Runs after the ledger's own connect hook (which asks for synchronous=FULL)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()
