"""Governance's work: the budgets it publishes, and one term of collecting and publishing.

:class:`Governance` recomputes the current period's budgets from the ledger
and publishes them everywhere (archiving the feed's grid snapshot first, so
runs are priced on the intensity that was published); :class:`BudgetsFile`
is the platform's budgets settings, re-read when the ConfigMap changes;
:class:`Collecting` is one leader term: the collector records finished pods
while the publish loop republishes every interval and soon after a run is
recorded. Assembling these from the settings, the election and the process
are :mod:`governance.service`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from carbongate import clock as clock_mod
from carbongate import files, unreviewed
from governance import budgets, collector, history, ledger, metrics, periods, report

log = logging.getLogger(__name__)


@dataclass
class BudgetsFile:
    """The budgets settings file, re-read when it changes (a ConfigMap update)."""

    path: Path | None
    config: budgets.BudgetConfig = field(default_factory=budgets.BudgetConfig)
    _taken: files.Stamp | None = None

    def current(self) -> budgets.BudgetConfig:
        """The latest valid config; a broken edit keeps the previous one (and is logged)."""
        if self.path is None:
            return self.config
        version = files.stamp(self.path)
        if version is None:
            log.warning("budgets file %s unreadable, keeping the last one", self.path)
            return self.config
        if version != self._taken:
            try:
                self.config = budgets.load_config(self.path)
            except budgets.BudgetError as error:
                log.error("budgets file rejected, keeping the last one: %s", error)
            self._taken = version
        return self.config


@dataclass
class Governance:
    """The assembled service: what the loops and the HTTP handlers share."""

    store: ledger.Ledger
    budgets_file: BudgetsFile
    sinks: Sequence[budgets.BudgetSink]
    meters: metrics.GovernanceMetrics
    snapshot_path: Path | None = None
    clock: clock_mod.Now = clock_mod.utc_now
    _snapshot_taken: files.Stamp | None = None
    last_published: budgets.BudgetsDocument | None = None

    def report(self, *, period: periods.Period | None = None, team: str | None = None
               ) -> report.Report:
        """The budget report for a period (the current one by default)."""
        config = self.budgets_file.current()
        now = self.clock()
        return report.build(self.store, config, now=now, team=team,
                            period=period or periods.containing(now, config.period))

    def publish(self) -> budgets.BudgetsDocument:
        """Archive the grid snapshot, recompute the budgets, publish them everywhere."""
        self.archive_grid()
        config = self.budgets_file.current()
        now = self.clock()
        period = periods.containing(now, config.period)
        usage = self.store.usage_g(since=period.start, until=period.end)
        doc = budgets.document(config, usage, period=period, now=now)
        budgets.publish(doc, self.sinks,
                        on_failure=lambda name: self.meters.publish_failures.labels(sink=name).inc())
        self.meters.published.inc()
        for team, entry in doc["teams"].items():
            self.meters.team_used_g.labels(team=team).set(entry["used_g"])
            self.meters.team_percent.labels(team=team).set(entry["percent"])
        self.last_published = doc
        return doc

    def archive_grid(self) -> int:
        """Store the feed snapshot's points when the file changed since last time."""
        if self.snapshot_path is None:
            return 0
        version = files.stamp(self.snapshot_path)
        if version is None or version == self._snapshot_taken:
            return 0
        try:
            document = files.read_json(self.snapshot_path)
        except (OSError, ValueError) as error:
            log.debug("no grid snapshot to archive at %s: %s", self.snapshot_path, error)
            return 0
        stored = history.archive_snapshot(self.store, document)
        self._snapshot_taken = version
        return stored


@dataclass
class Collecting:
    """One term's work: a fresh collector (list, then watch) and the publish loop."""

    service: Governance
    recorder: collector.Recorder
    pods_api: collector.PodsApi
    meters: metrics.GovernanceMetrics
    watch_timeout_s: int
    interval_s: float
    unreviewed: unreviewed.Unreviewed | None = None
    current: collector.Collector | None = None

    def __call__(self, stop: threading.Event) -> None:
        wake = threading.Event()
        watcher = collector.Collector(
            api=self.pods_api, recorder=self.recorder, meters=self.meters,
            watch_timeout_s=self.watch_timeout_s, on_recorded=wake.set,
            observe=None if self.unreviewed is None else self.unreviewed.observe)
        self.current = watcher
        threads = [threading.Thread(target=watcher.run, args=(stop,), name="governance-watch",
                                    daemon=True)]
        if self.unreviewed is not None:
            threads.append(threading.Thread(target=self.unreviewed.run, args=(stop,),
                                            name="governance-namespaces", daemon=True))
        for thread in threads:
            thread.start()
        try:
            _publish_loop(self.service, stop=stop, wake=wake, interval_s=self.interval_s)
        finally:
            watcher.stop()
            for thread in threads:
                thread.join(timeout=10)

    @property
    def synced(self) -> bool:
        """The running term's first pod list is done."""
        return self.current is not None and self.current.synced.is_set()


def _publish_loop(service: Governance, *, stop: threading.Event, wake: threading.Event,
                  interval_s: float) -> None:
    while not stop.is_set():
        try:
            service.publish()
        except Exception:  # a failed round (database down) is logged; the next one retries
            log.exception("publishing budgets failed")
        _pause(interval_s, stop=stop, wake=wake)


def _pause(interval_s: float, *, stop: threading.Event, wake: threading.Event) -> None:
    """Until the interval is over, a run was recorded (then a short settle), or stop."""
    waited = 0.0
    while waited < interval_s and not stop.is_set():
        if wake.wait(0.2):
            wake.clear()
            stop.wait(0.5)  # let a burst of recorded runs land before recomputing
            return
        waited += 0.2
