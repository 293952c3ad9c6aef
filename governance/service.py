"""The governance service (``python -m governance``): collector, publisher, HTTP.

One process, none of it in the admission path:

* the election (:mod:`carbongate.leases`): with ``governance.lease_name``
  set, only the holder of that Lease runs the two loops below (a *term*); a
  follower waits and takes over once the leader's Lease expires, and keeps
  serving ``GET /budgets`` from the shared ledger meanwhile. A term ends
  before anyone else can take over, and its per-team gauges are dropped so
  only the leader exports them. Election is about doing the work once, not
  correctness: the ledger is unique on the pod UID;
* the collector (``governance.collector``) records finished pods;
* the publisher, every ``publish_interval_s`` and soon after a run is
  recorded, archives the feed's grid snapshot into the ledger (so runs are
  priced on the intensity that was published), recomputes the current
  period's budgets and publishes them (snapshot file, ConfigMap, OPA server);
* a small HTTP server on every replica: ``/healthz``, ``/metrics``
  (Prometheus) and ``/budgets`` (the report as JSON, ``?period=2026-11&team=ml``).

Everything is built from :class:`carbongate.settings.Settings`; the pieces
are passed to each other explicitly so tests can assemble the same service
around a Kubernetes API double and a throwaway database.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flask
import kubernetes.client
import prometheus_client as prom
from flask.typing import ResponseReturnValue
from werkzeug import serving

from carbongate import clock as clock_mod
from carbongate import files, kube, leases, unreviewed
from carbongate import settings as settings_mod
from governance import (
    budgets,
    collector,
    energy,
    history,
    ledger,
    metrics,
    periods,
    pods,
    report,
)

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


# --- HTTP --------------------------------------------------------------------------------

def create_app(*, service: Governance, ready: Callable[[], bool] = lambda: True,
               leading: Callable[[], bool] = lambda: True) -> flask.Flask:
    """The HTTP app: health, metrics, and the budgets report as JSON."""
    app = flask.Flask("governance")

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        ok = ready()
        return flask.jsonify({"ok": ok, "leader": leading()}), 200 if ok else 503

    @app.get("/metrics")
    def metrics_page() -> flask.Response:
        return flask.Response(prom.generate_latest(service.meters.registry),
                              mimetype=prom.CONTENT_TYPE_LATEST)

    @app.get("/budgets")
    def budgets_page() -> ResponseReturnValue:
        try:
            period = (periods.parse(flask.request.args["period"])
                      if "period" in flask.request.args else None)
        except periods.PeriodError as error:
            return flask.jsonify({"error": str(error)}), 400
        team = flask.request.args.get("team") or None
        return flask.jsonify(report.to_document(service.report(period=period, team=team)))

    return app


# --- assembling from settings ------------------------------------------------------------

def database_url(settings: settings_mod.GovernanceSettings) -> str:
    """The URL from the environment variable the settings name, else the settings'."""
    return settings_mod.environment_value(settings.database_url_env) or settings.database_url


def defaults(settings: settings_mod.Settings) -> pods.Defaults:
    """Home region and default tier: the settings, else the platform's policy config."""
    config: dict[str, Any] = {}
    path = settings.engine.policy_dir / "carbongate" / "config" / "data.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.warning("cannot read platform config %s: %s", path, error)
    home = settings.grid.home_region or str(config.get("home_region") or "")
    if not home:
        raise settings_mod.SettingsError(
            "grid.home_region is empty and the platform config names no home_region")
    return pods.Defaults(home_region=home, default_tier=str(config.get("default_tier") or "2"))


def trace_files(settings: settings_mod.Settings) -> tuple[Path, ...]:
    """The traces the feed replays when it has no providers: its list, else the demo ones."""
    if settings.feed.providers_file is not None:
        return ()
    if settings.feed.trace_files:
        return settings.feed.trace_files
    return tuple(sorted(settings_mod.DEMO_GRID_DIR.glob("*.csv")))


def grid_history(settings: settings_mod.Settings, store: ledger.Ledger) -> history.IntensityHistory:
    """The archive of published snapshots first, then the traces the feed replays."""
    chain: list[history.IntensityHistory] = [history.ArchiveHistory(ledger=store)]
    traces = trace_files(settings)
    if traces:
        chain.append(history.load_traces(traces))
    return history.ChainHistory(histories=tuple(chain))


def sinks(settings: settings_mod.Settings, *, core: budgets.ConfigMapApi | None = None
          ) -> list[budgets.BudgetSink]:
    """The snapshot file always; the ConfigMap when named; the OPA server when it decides."""
    section = settings.governance
    found: list[budgets.BudgetSink] = [budgets.FileSink(section.budgets_snapshot_path)]
    if section.budgets_configmap and core is not None:
        found.append(budgets.ConfigMapSink(api=core, namespace=section.namespace,
                                           config_map=section.budgets_configmap))
    if settings.engine.kind == "opa":
        token = settings_mod.environment_value(settings.engine.opa_token_env)
        found.append(budgets.OpaSink(url=settings.engine.opa_url, token=token,
                                     timeout_s=max(settings.engine.opa_timeout_s, 2.0)))
    return found


def candidate(settings: settings_mod.GovernanceSettings, *,
              api_client: kubernetes.client.ApiClient,
              identity: str | None = None) -> leases.Elector | None:
    """The Lease elector, or None when ``lease_name`` is empty (no election)."""
    if not settings.lease_name:
        return None
    config = leases.lease_config(
        section="governance", namespace=settings.namespace, name=settings.lease_name,
        identity=identity or settings.identity, lease_duration_s=settings.lease_duration_s,
        lease_renew_s=settings.lease_renew_s)
    return leases.Elector(api=kubernetes.client.CoordinationV1Api(api_client), config=config)


# --- running -----------------------------------------------------------------------------

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


@dataclass
class Running:
    """A started replica: the election loop (which runs the terms) on its thread."""

    service: Governance
    store: ledger.SqlLedger
    leadership: leases.Leadership
    collecting: Collecting
    thread: threading.Thread
    stop_event: threading.Event

    @property
    def ready(self) -> bool:
        """A leader once its first pod list is done; a follower at once (it serves reports)."""
        return self.collecting.synced if self.leadership.leading else True

    def stop(self, timeout_s: float = 15.0, *, release_lease: bool = True) -> None:
        """Stop the loops; ``release_lease=False`` leaves the Lease as a crash would."""
        self.leadership.release_on_exit = release_lease
        self.stop_event.set()
        self.thread.join(timeout_s)
        self.store.close()


def start(settings: settings_mod.Settings, *, api_client: kubernetes.client.ApiClient,
          clock: clock_mod.Clock, meters: metrics.GovernanceMetrics | None = None,
          identity: str | None = None) -> Running:
    """Build a replica from the settings and start its election loop."""
    section = settings.governance
    elector = candidate(section, api_client=api_client, identity=identity)
    meters = meters or metrics.create()
    store = ledger.open_ledger(database_url(section))
    core = kubernetes.client.CoreV1Api(api_client)
    batch = kubernetes.client.BatchV1Api(api_client)
    service = Governance(store=store, budgets_file=BudgetsFile(section.budgets_file),
                         sinks=sinks(settings, core=core), meters=meters,
                         snapshot_path=settings.grid.snapshot_path)
    recorder = collector.Recorder(
        store=store, model=energy.load(section.energy_model_file),
        grid=grid_history(settings, store), defaults=defaults(settings),
        lookups=collector.KubeLookups(core=core, batch=batch), meters=meters)
    counter = unreviewed.Unreviewed(
        api_client=api_client, scope=unreviewed.Scope.of(settings.webhook),
        registry=meters.registry, clock=clock.now,
        refresh_s=settings.webhook.namespace_cache_ttl_s)
    collecting = Collecting(service=service, recorder=recorder, pods_api=core, meters=meters,
                            watch_timeout_s=section.watch_timeout_s,
                            interval_s=section.publish_interval_s, unreviewed=counter)

    def changed(leading: bool) -> None:
        meters.leader.set(1 if leading else 0)
        if not leading:
            meters.forget_budgets()

    elected = leases.Leadership(candidate=elector, work=collecting, clock=clock,
                                name="governance", on_change=changed)
    stop = threading.Event()
    thread = threading.Thread(target=elected.run, args=(stop,), name="governance-election",
                              daemon=True)
    thread.start()
    return Running(service=service, store=store, leadership=elected, collecting=collecting,
                   thread=thread, stop_event=stop)


def run(settings: settings_mod.Settings, *, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``): election, collector, publisher, HTTP server."""
    stop = stop or _stop_on_signals()
    running = start(settings, api_client=kube.api_client(settings.kube),
                    clock=clock_mod.SystemClock())
    server = _http_server(settings.governance.bind, create_app(
        service=running.service, ready=lambda: running.ready,
        leading=lambda: running.leadership.leading))
    http = threading.Thread(target=server.serve_forever, name="governance-http", daemon=True)
    http.start()
    log.info("governance serving on http://%s (ledger %s, lease %s)", settings.governance.bind,
             ledger.render_url(database_url(settings.governance)),
             settings.governance.lease_name or "none: always collecting")
    try:
        stop.wait()
    finally:
        running.stop()
        server.shutdown()
        http.join(timeout=10)
    return 0


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


def _http_server(bind: str, app: flask.Flask) -> serving.BaseWSGIServer:
    host, _, port = bind.rpartition(":")
    return serving.make_server(host or "127.0.0.1", int(port), app, threaded=True)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    return stop
