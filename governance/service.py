"""The governance service (``python -m governance``) assembled from the settings and run.

The work (budgets, a term of collecting and publishing) is
:mod:`governance.publishing`; here it is built and run, one process, none of
it in the admission path:

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
* the HTTP sidecar (:mod:`carbongate.sidecar`) on every replica: ``/healthz``,
  ``/metrics`` (Prometheus) and ``/budgets`` (the report as JSON, ``?period=2026-11&team=ml``).

Everything is built from :class:`carbongate.settings.Settings`; the pieces
are passed to each other explicitly so tests can assemble the same service
around a Kubernetes API double and a throwaway database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from carbongate import clock as clock_mod
from carbongate import kube, leases, platform, process, sidecar, unreviewed
from carbongate import settings as settings_mod
from governance import (
    budgets,
    collector,
    history,
    ledger,
    metrics,
    periods,
    pods,
    publishing,
    report,
)
from planner import energy

log = logging.getLogger(__name__)


# --- assembling from settings ------------------------------------------------------------

def database_url(settings: settings_mod.GovernanceSettings) -> str:
    """The URL from the environment variable the settings name, else the settings'."""
    return settings_mod.environment_value(settings.database_url_env) or settings.database_url


def defaults(settings: settings_mod.Settings) -> pods.Defaults:
    """Home region and default tier: the settings, else the platform's policy config (carbongate.platform).

    A finished pod is priced in its home region, so one must be named: governance
    has no grid snapshot of its own to take the first region from.
    """
    config = platform.read(settings.engine.policy_dir)
    home = config.home_region(settings)
    if not home:
        raise settings_mod.SettingsError(
            "grid.home_region is empty and the platform config names no home_region")
    return pods.Defaults(home_region=home, default_tier=config.default_tier)


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
              api_client: kube.ApiClient,
              identity: str | None = None) -> leases.Elector | None:
    """The Lease elector, or None when ``lease_name`` is empty (no election)."""
    if not settings.lease_name:
        return None
    config = leases.lease_config(
        section="governance", namespace=settings.namespace, name=settings.lease_name,
        identity=identity or settings.identity, lease_duration_s=settings.lease_duration_s,
        lease_renew_s=settings.lease_renew_s)
    return leases.Elector(api=kube.CoordinationV1Api(api_client), config=config)


@dataclass
class Running:
    """A started replica: the election loop (which runs the terms) on its thread."""

    service: publishing.Governance
    store: ledger.SqlLedger
    leadership: leases.Leadership
    collecting: publishing.Collecting
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


def start(settings: settings_mod.Settings, *, api_client: kube.ApiClient,
          clock: clock_mod.Clock, meters: metrics.GovernanceMetrics | None = None,
          identity: str | None = None) -> Running:
    """Build a replica from the settings and start its election loop."""
    section = settings.governance
    elector = candidate(section, api_client=api_client, identity=identity)
    meters = meters or metrics.create()
    store = ledger.open_ledger(database_url(section))
    core = kube.CoreV1Api(api_client)
    batch = kube.BatchV1Api(api_client)
    service = publishing.Governance(store=store, budgets_file=publishing.BudgetsFile(section.budgets_file),
                         sinks=sinks(settings, core=core), meters=meters,
                         snapshot_path=settings.grid.snapshot_path)
    recorder = collector.Recorder(
        store=store, model=energy.load(section.energy_model_file),
        grid=grid_history(settings, store), defaults=defaults(settings),
        lookups=collector.KubeLookups(core=core, batch=batch), meters=meters)
    counter = unreviewed.Unreviewed(
        api_client=api_client, scope=unreviewed.Scope.of(settings),
        registry=meters.registry, clock=clock.now,
        refresh_s=settings.webhook.namespace_cache_ttl_s)
    collecting = publishing.Collecting(service=service, recorder=recorder, pods_api=core, meters=meters,
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


# --- HTTP --------------------------------------------------------------------------------

def http_sidecar(bind: str, *, running: Running) -> sidecar.Sidecar:
    """``/healthz``, ``/metrics`` and ``/budgets`` (the report as JSON) on ``bind``."""
    return sidecar.Sidecar(bind=bind, name="governance", health=lambda: health(running),
                           registries=[running.service.meters.registry],
                           routes={"/budgets": lambda query: budgets_report(running.service, query)})


def health(running: Running) -> sidecar.Answer:
    """Ready (a leader once its first pod list is done, a follower at once), and whether it leads."""
    ok = running.ready
    return (200 if ok else 503), {"ok": ok, "leader": running.leadership.leading}


def budgets_report(service: publishing.Governance, query: Mapping[str, str]) -> sidecar.Answer:
    """``/budgets?period=2026-11&team=ml``: the report (current period by default); 400 on a bad period."""
    try:
        period = periods.parse(query["period"]) if "period" in query else None
    except periods.PeriodError as error:
        return 400, {"error": str(error)}
    return 200, report.to_document(service.report(period=period, team=query.get("team") or None))


def run(settings: settings_mod.Settings, *, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``): election, collector, publisher, HTTP server."""
    stop = stop or process.stop_on_signals("governance")
    running = start(settings, api_client=kube.api_client(settings.kube),
                    clock=clock_mod.SystemClock())
    server = http_sidecar(settings.governance.bind, running=running)
    server.start()
    log.info("governance serving on http://%s (ledger %s, lease %s)", settings.governance.bind,
             ledger.render_url(database_url(settings.governance)),
             settings.governance.lease_name or "none: always collecting")
    try:
        stop.wait()
    finally:
        running.stop()
        server.stop()
    return 0
