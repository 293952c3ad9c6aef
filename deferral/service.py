"""Assemble and run the controller from the settings: ``python -m deferral``.

Everything is built here, at start, from one ``Settings`` object: the API
client, the policy engine, the grid view, the Lease elector, the watchers
and the metrics endpoint. Nothing happens at import time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import prometheus_client

from carbongate import clock as clock_mod
from carbongate import kube as k8s
from carbongate import leases, platform, process
from carbongate import settings as settings_mod
from carbongate import unreviewed as unreviewed_mod
from deferral import controller, events, grid, health, kube, pausing, unreviewed, watch
from deferral import metrics as metrics_mod
from planner import slices
from policy_engine import engine as engine_mod

log = logging.getLogger(__name__)



@dataclass
class Running:
    """A started controller and the threads serving it."""

    controller: controller.Controller
    watchers: list[watch.Watcher]
    thread: threading.Thread
    stop_event: threading.Event
    namespaces_thread: threading.Thread | None = None

    def stop(self, timeout_s: float = 5.0, *, release_lease: bool = True) -> None:
        """Stop all threads; ``release_lease=False`` leaves the Lease as a crash would."""
        self.controller.release_lease_on_exit = release_lease
        self.stop_event.set()
        self.controller.wake()
        for watcher in self.watchers:
            watcher.stop(timeout_s)
        self.thread.join(timeout_s)
        if self.namespaces_thread is not None:
            self.namespaces_thread.join(timeout_s)


def start(
    settings: settings_mod.Settings,
    *,
    api_client: k8s.ApiClient,
    engine: engine_mod.PolicyEngine | None,
    clock: clock_mod.Clock,
    metrics: metrics_mod.Metrics,
    identity: str | None = None,
) -> Running:
    """Build the controller and start its reconciler and watch threads."""
    section = settings.deferral
    gateway = kube.Gateway(api_client=api_client, request_timeout_s=section.request_timeout_s)
    lease = leases.lease_config(
        section="deferral", namespace=section.namespace, name=section.lease_name,
        identity=identity or section.identity, lease_duration_s=section.lease_duration_s,
        lease_renew_s=section.lease_renew_s)
    name = lease.identity
    elector = leases.Elector(api=gateway.lease_api(), config=lease)
    config = platform.read(settings.engine.policy_dir)
    reconciler = controller.Controller(
        gateway=gateway, engine=engine, clock=clock, elector=elector, metrics=metrics,
        grid_view=grid_view(settings, config, metrics=metrics),
        recorder=events.Recorder(gateway=gateway, instance=name),
        config=controller_config(settings, config))
    stop = threading.Event()
    thread = threading.Thread(target=reconciler.run, args=(stop,), name="reconciler",
                              daemon=True)
    counter = unreviewed_mod.Unreviewed(
        api_client=api_client, scope=unreviewed_mod.Scope.of(settings),
        registry=metrics.registry, clock=clock.now,
        refresh_s=settings.webhook.namespace_cache_ttl_s,
        request_timeout_s=section.request_timeout_s)
    namespaces = threading.Thread(target=counter.run, args=(stop,), name="namespaces", daemon=True)
    sink = unreviewed.Counting(sink=reconciler, counter=counter)
    watchers = [watch.Watcher(kind=kind, gateway=gateway, sink=sink, metrics=metrics,
                              config=watch_config(section)) for kind in ("Pod", "Job")]
    thread.start()
    namespaces.start()
    for watcher in watchers:
        watcher.start()
    return Running(controller=reconciler, watchers=watchers, thread=thread, stop_event=stop,
                   namespaces_thread=namespaces)


def controller_config(settings: settings_mod.Settings,
                      config: platform.PlatformConfig) -> controller.ControllerConfig:
    """Timing from the settings; the default duration by the platform's rule (carbongate.platform)."""
    section = settings.deferral
    return controller.ControllerConfig(
        default_duration_s=config.default_duration_s(settings),
        lead_s=float(section.deadline_lead_s), recheck_s=float(section.recheck_s),
        retry_s=section.retry_s,
        pausing=pausing.PausingConfig(
            rules=slices.rules_from_config(config.document),
            default_tier=config.default_tier,
            default_duration_s=config.default_duration_s(settings), lead_s=float(section.deadline_lead_s),
            recheck_s=float(section.recheck_s)))


def watch_config(section: settings_mod.DeferralSettings) -> watch.WatchConfig:
    return watch.WatchConfig(timeout_s=section.watch_timeout_s, resync_s=float(section.resync_s),
                             backoff_initial_s=section.watch_backoff_initial_s,
                             backoff_max_s=section.watch_backoff_max_s)


def grid_view(settings: settings_mod.Settings, config: platform.PlatformConfig, *,
              metrics: metrics_mod.Metrics) -> grid.GridView:
    """The snapshot reader with the planning knobs of settings and platform config.

    The home region is the settings' or the config's; without either, the
    grid view falls back to the first region of the snapshot it reads.
    """
    defaults = grid.PlanningDefaults(
        home_region=config.home_region(settings), step_s=settings.grid.plan_step_min * 60,
        horizon_s=settings.grid.forecast_horizon_h * 3600,
        network_kwh_per_gb=config.network_kwh_per_gb,
        stale_grace_s=settings.grid.stale_grace_s)
    return grid.GridView(path=settings.grid.snapshot_path, defaults=defaults, metrics=metrics)


def serve_forever(settings: settings_mod.Settings) -> int:
    """``python -m deferral`` / ``carbongate release``: run until SIGTERM or SIGINT."""
    from policy_engine import factory

    # First: a cluster that cannot be reached by any rule is a clear error before anything starts.
    api_client = k8s.api_client(settings.kube)
    metrics = metrics_mod.Metrics()
    engine: engine_mod.PolicyEngine | None
    try:
        engine = factory.build(settings.engine, watch=True)
    except Exception as error:  # the deadline path needs no engine: run without one
        log.error("policy engine unavailable (%s): releasing on deadlines and windows only",
                  error)
        metrics.policy_failures.labels(kind="startup").inc()
        engine = None
    running = start(settings, api_client=api_client, engine=engine,
                    clock=clock_mod.SystemClock(), metrics=metrics)
    # The release policy runs in this process: the engine's series (default registry) are exported too.
    server = health.Server(bind=settings.deferral.bind, registry=metrics.registry,
                           engine_registry=prometheus_client.REGISTRY,
                           probes=health.Probes(reconciler=running.controller, watchers=running.watchers,
                                                limits=health.Limits.from_settings(settings.deferral)))
    server.start()
    done = process.stop_on_signals("deferral controller")
    log.info("deferral controller running; /healthz, /readyz and /metrics on http://%s",
             settings.deferral.bind)
    done.wait()
    running.stop()
    server.stop()
    if engine is not None:
        engine.close()
    return 0
