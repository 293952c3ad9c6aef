"""The release controller: every held workload is released, on time, exactly once.

One reconciler thread owns all state. Watch threads only queue what they
learn (``sync`` and ``event`` are the watcher's sink); the reconciler drains
the queue, keeps the objects that carbongate holds, and decides about a
workload when something about it changed, when its timer fires (window
opening, deadline, periodic re-check), when a new grid snapshot arrives
(re-plan) or when this replica becomes leader. Only the leader writes.

Timers are in the controller's ``Clock``; the deadline timer fires
``lead_s`` before release_by so the API round trip cannot make it late, and
the decision at that instant is taken without the policy engine or the grid.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from carbongate import clock as clock_mod
from carbongate import kube as k8s
from carbongate import leases
from deferral import events, grid, interrupt, kube, patches, pausing, release, timers, watch, workloads
from deferral import metrics as metrics_mod
from policy_engine import engine as engine_mod

log = logging.getLogger(__name__)

_SPEC_PATH = {"Pod": "/spec", "Job": "/spec/template/spec"}


@dataclass(frozen=True)
class ControllerConfig:
    """Timing and defaults of the reconciler (from ``DeferralSettings``)."""

    default_duration_s: int = 3600
    lead_s: float = 30.0
    recheck_s: float = 300.0
    grid_poll_s: float = 5.0
    retry_s: float = 5.0
    max_attempts: int = 5
    pausing: pausing.PausingConfig = field(default_factory=pausing.PausingConfig)


# Release decisions asked of the policy in one engine call at most: the input of one call
# grows with each workload, and a call is not interrupted once it starts.
RELEASE_BATCH = 256


@dataclass
class Tracked:
    """What the controller remembers of one held workload."""

    raw: dict[str, Any]
    first_seen: datetime
    announced: bool = False
    break_glass_seen: datetime | None = None
    resume_by: datetime | None = None  # interruptible Jobs: when they must run to the end
    running: bool = False


@dataclass
class _Inbox:
    items: queue.SimpleQueue[tuple[Any, ...]] = field(default_factory=queue.SimpleQueue)
    wake: threading.Event = field(default_factory=threading.Event)

    def put(self, *item: Any) -> None:
        self.items.put(item)
        self.wake.set()


class Controller:
    """Decides and releases; see the module docstring for the threads."""

    def __init__(
        self,
        *,
        gateway: kube.Gateway,
        engine: engine_mod.PolicyEngine | None,
        grid_view: grid.GridView,
        clock: clock_mod.Clock,
        elector: leases.Elector | None,
        recorder: events.Recorder,
        metrics: metrics_mod.Metrics,
        config: ControllerConfig,
    ) -> None:
        self._gateway = gateway
        self._engine = engine
        self._grid = grid_view
        self._clock = clock
        self._elector = elector
        self._recorder = recorder
        self._metrics = metrics
        self._config = config
        self._inbox = _Inbox()
        self._tracked: dict[workloads.Key, Tracked] = {}
        self._timers: timers.TimerHeap[workloads.Key] = timers.TimerHeap()
        self._leading = False
        self._next_grid_check: datetime | None = None
        self._pauser = pausing.Pauser(gateway=gateway, engine=engine, grid_view=grid_view,
                                      recorder=recorder, metrics=metrics, config=config.pausing)
        self.release_lease_on_exit = True
        # Monotonic second of the last finished step, good or failed: the
        # liveness probe's proof that the loop (and so the Lease) still turns.
        self.last_step: float = clock_mod.monotonic()

    # -- the watcher's sink (called from watch threads) -------------------------

    def sync(self, kind: workloads.Kind, items: list[dict[str, Any]]) -> None:
        self._inbox.put("sync", kind, items)

    def event(self, kind: workloads.Kind, type_: watch.EventType, obj: dict[str, Any]) -> None:
        self._inbox.put("event", kind, type_, obj)

    # -- the reconciler ---------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set; each step says how long it may sleep."""
        while not stop.is_set():
            try:
                delay = self.step()
            except Exception:  # the loop that keeps deadlines must not die: log, count, go on
                self._metrics.loop_errors.inc()
                log.exception("reconciler step failed; continuing")
                delay = self._config.retry_s
            self.last_step = clock_mod.monotonic()
            self._clock.wait(self._inbox.wake, delay)
        if self._elector is not None and self.release_lease_on_exit:
            self._elector.release()

    @property
    def leading(self) -> bool:
        """Whether this replica led at its last step (what /healthz reports)."""
        return self._leading

    def wake(self) -> None:
        """End the current sleep (shutdown, or a test that changed the world)."""
        self._inbox.wake.set()

    def step(self) -> float:
        """Drain the queue, take leadership, reload the grid, decide; seconds to sleep."""
        self._inbox.wake.clear()
        now = self._clock.now()
        dirty = self._drain(now)
        leading = self._elector.tick(now) if self._elector is not None else True
        self._metrics.leader.set(1 if leading else 0)
        if leading and not self._leading:
            dirty |= set(self._tracked)  # a new leader looks at everything at once
        self._leading = leading
        if self._grid_due(now) and self._grid.refresh():
            dirty |= set(self._tracked)  # new forecast: re-plan every waiting workload
        dirty |= set(self._timers.pop_due(now))
        self._reconcile_all(sorted(dirty), now)
        self._update_gauges()
        return self._sleep_s(self._clock.now())

    def _drain(self, now: datetime) -> set[workloads.Key]:
        dirty: set[workloads.Key] = set()
        while True:
            try:
                item = self._inbox.items.get_nowait()
            except queue.Empty:
                return dirty
            if item[0] == "sync":
                dirty |= self._apply_sync(item[1], item[2], now)
            else:
                dirty |= self._apply_event(item[1], item[2], item[3], now)

    def _apply_sync(self, kind: workloads.Kind, items: list[dict[str, Any]],
                    now: datetime) -> set[workloads.Key]:
        listed = {workloads.key_of(kind, o): o for o in items}
        present: dict[workloads.Key, dict[str, Any]] = {
            workloads.key_of(kind, o): o for o in items if _held(kind, o)}
        for key in [k for k in self._tracked if k.kind == kind and k not in present]:
            self._let_go(key, listed.get(key), now)
        for key, obj in present.items():
            self._remember(key, obj, now)
        return set(present)

    def _apply_event(self, kind: workloads.Kind, type_: str, obj: dict[str, Any],
                     now: datetime) -> set[workloads.Key]:
        key = workloads.key_of(kind, obj)
        if type_ == "DELETED":
            if key in self._tracked:
                self._forget(key, deleted=True)
            return set()
        if _held(kind, obj):
            self._remember(key, obj, now)
            return {key}
        if key in self._tracked:
            self._let_go(key, obj, now)  # released by someone else (or by us), or finished
        return set()

    def _let_go(self, key: workloads.Key, obj: dict[str, Any] | None, now: datetime) -> None:
        """Stop tracking: gone from the API (deleted), finished, or released elsewhere."""
        if (obj is not None and interrupt.is_interruptible(obj) and interrupt.is_finished(obj)
                and self._leading):
            self._pauser.finished(obj, now)
        self._forget(key, deleted=obj is None)

    def _remember(self, key: workloads.Key, obj: dict[str, Any], now: datetime) -> None:
        tracked = self._tracked.get(key)
        if tracked is None:
            self._tracked[key] = Tracked(raw=obj, first_seen=now)
        elif _version(obj) >= _version(tracked.raw):
            tracked.raw = obj

    def _forget(self, key: workloads.Key, *, deleted: bool) -> None:
        tracked = self._tracked.pop(key, None)
        if tracked is not None and deleted and (key.kind == "Pod" or _suspended(tracked.raw)):
            self._metrics.deleted_while_gated.labels(kind=key.kind).inc()
            log.info("%s deleted while held", key)
        self._timers.cancel(key)

    def _reconcile_all(self, keys: list[workloads.Key], now: datetime) -> None:
        """Reconcile ``keys``; the held ones' release decisions asked of the policy in one call.

        A new snapshot makes every waiting workload due at once: one engine call
        for all of them (``release.decide_many``, the same decision per workload
        as ``release.decide``) instead of one each, which is what the replay
        does too.
        """
        held = [found for key in keys if (found := self._held_to_decide(key, now)) is not None]
        for start in range(0, len(held), RELEASE_BATCH):
            chunk = held[start:start + RELEASE_BATCH]
            decisions = release.decide_many(
                [(deferred, functools.partial(self._grid.plan, deferred, now)) for _, _, deferred in chunk],
                now=now, engine=self._engine, metrics=self._metrics, lead_s=self._config.lead_s)
            for (key, tracked, deferred), decision in zip(chunk, decisions, strict=True):
                self._act(key, tracked, deferred, decision, now)

    def _held_to_decide(self, key: workloads.Key,
                        now: datetime) -> tuple[workloads.Key, Tracked, workloads.Deferred] | None:
        """Everything before the release decision; the workload when one is to be made."""
        tracked = self._tracked.get(key)
        if tracked is None:
            return None
        if key.kind == "Job" and interrupt.is_managed("Job", tracked.raw):
            if self._leading:
                self._reconcile_interruptible(key, tracked, now)
            return None
        deferred = workloads.read(key.kind, tracked.raw, seen_at=tracked.first_seen,
                                  default_duration_s=self._config.default_duration_s)
        if deferred is None:
            self._forget(key, deleted=False)
            return None
        if deferred.break_glass and tracked.break_glass_seen is None:
            tracked.break_glass_seen = now
        if not self._leading:
            return None
        if not tracked.announced:
            tracked.announced = True
            self._recorder.record(events.event(
                deferred, reason="Deferred", message=events.deferred_message(deferred), now=now,
                instance=self._recorder.instance))
        return key, tracked, deferred

    def _act(self, key: workloads.Key, tracked: Tracked, deferred: workloads.Deferred,
             decision: release.Decision, now: datetime) -> None:
        """Release, re-plan or wait, as the decision says."""
        if decision.release:
            self._release(tracked, deferred, decision, now)
            return
        if decision.not_before is not None and decision.not_before != deferred.not_before:
            self._replan(tracked, deferred, decision, now)
        self._timers.schedule(key, self._next_wake(deferred, decision, now))

    def _next_wake(self, deferred: workloads.Deferred, decision: release.Decision,
                   now: datetime) -> datetime:
        window = decision.not_before or deferred.not_before
        candidates = [release.deadline_due(deferred, lead_s=self._config.lead_s),
                      now + timedelta(seconds=self._config.recheck_s)]
        if window is not None and window > now:
            candidates.append(window)
        return min(candidates)

    def _reconcile_interruptible(self, key: workloads.Key, tracked: Tracked,
                                 now: datetime) -> None:
        try:
            outcome = self._pauser.reconcile(tracked.raw, now)
        except k8s.ApiException as error:
            if error.status == 404:
                self._forget(key, deleted=True)
                return
            if error.status in (409, 422):  # changed under the patch: read it and decide again
                self._metrics.patch_conflicts.inc()
                if (fresh := self._reread(key, now)) is not None:
                    tracked.raw = fresh
                    self._timers.schedule(key, now)
                return
            self._retry_later(key, "interrupt", error, now)
            return
        except kube.TRANSPORT_ERRORS as error:
            self._retry_later(key, "interrupt", error, now)
            return
        tracked.raw, tracked.resume_by, tracked.running = (outcome.raw, outcome.resume_by,
                                                           outcome.running)
        self._timers.schedule(key, outcome.wake)

    # -- writing ------------------------------------------------------------------

    def _release(self, tracked: Tracked, deferred: workloads.Deferred,
                 decision: release.Decision, now: datetime) -> None:
        key = deferred.key
        raw = tracked.raw
        for attempt in range(self._config.max_attempts):
            narrow = attempt < self._config.max_attempts - 1  # the last try releases plainly
            operations = self._release_operations(key, raw, decision, narrow=narrow)
            if operations is None:
                self._forget(key, deleted=False)
                return
            try:
                self._gateway.json_patch(key, operations)
                break
            except k8s.ApiException as error:
                if error.status not in (409, 422):
                    self._retry_later(key, "release", error, now)
                    return
                self._metrics.patch_conflicts.inc()
                log.info("%s changed under the release patch (%s): re-reading", key, error.status)
                fresh = self._reread(key, now)
                if fresh is None:
                    return
                raw = tracked.raw = fresh
            except kube.TRANSPORT_ERRORS as error:
                self._retry_later(key, "release", error, now)
                return
        else:
            self._retry_later(key, "release", RuntimeError("too many conflicts"), now)
            return
        self._account(tracked, deferred, decision, now)

    def _release_operations(self, key: workloads.Key, raw: Mapping[str, Any],
                            decision: release.Decision, *,
                            narrow: bool) -> list[patches.Operation] | None:
        base = patches.release(key.kind, raw)
        if base is None or not narrow or decision.node_affinity is None:
            return base
        wanted = patches.requirement(decision.node_affinity.key,
                                     list(decision.node_affinity.values))
        return patches.narrowing(raw, _SPEC_PATH[key.kind], wanted) + base

    def _reread(self, key: workloads.Key, now: datetime) -> dict[str, Any] | None:
        try:
            return self._gateway.read(key)
        except k8s.ApiException as error:
            if error.status == 404:
                self._forget(key, deleted=True)
            else:
                self._retry_later(key, "read", error, now)
        except kube.TRANSPORT_ERRORS as error:
            self._retry_later(key, "read", error, now)
        return None

    def _retry_later(self, key: workloads.Key, operation: str, error: BaseException,
                     now: datetime) -> None:
        self._metrics.api_errors.labels(operation=operation).inc()
        log.warning("%s: %s failed (%s); retrying in %ss", key, operation, error,
                    self._config.retry_s)
        self._timers.schedule(key, now + timedelta(seconds=self._config.retry_s))

    def _account(self, tracked: Tracked, deferred: workloads.Deferred,
                 decision: release.Decision, now: datetime) -> None:
        """Metrics and the Released event, once the API server has accepted the release."""
        key = deferred.key
        released_at = self._clock.now()
        lag = max((released_at - self._due_at(tracked, deferred, decision, now)).total_seconds(),
                  0.0)
        self._metrics.releases.labels(kind=key.kind, reason=decision.reason).inc()
        self._metrics.release_lag.labels(reason=decision.reason).observe(lag)
        started = deferred.created or tracked.first_seen
        self._metrics.gate_age.labels(kind=key.kind).observe(
            max((released_at - started).total_seconds(), 0.0))
        missed = released_at > deferred.release_by
        if missed:
            self._metrics.deadline_misses.inc()
            log.error("%s released after its release_by %s", key, deferred.release_by)
        log.info("%s released (%s, %s): %s", key, decision.reason, decision.source,
                 decision.message)
        message = events.released_message(deferred, reason=decision.reason,
                                          detail=decision.message, g_per_kwh=decision.g_per_kwh,
                                          lag_s=lag)
        self._recorder.record(events.event(
            deferred, reason="DeadlineMissed" if missed else "Released", message=message,
            now=released_at, instance=self._recorder.instance, warning=missed))
        self._forget(key, deleted=False)

    def _due_at(self, tracked: Tracked, deferred: workloads.Deferred,
                decision: release.Decision, now: datetime) -> datetime:
        """The instant the release became due, for the lag histogram."""
        if decision.reason == "deadline":
            return release.deadline_due(deferred, lead_s=self._config.lead_s)
        if decision.reason == "window-open" and deferred.not_before is not None:
            return min(deferred.not_before, now)
        if decision.reason == "break-glass" and tracked.break_glass_seen is not None:
            return tracked.break_glass_seen
        return now

    def _replan(self, tracked: Tracked, deferred: workloads.Deferred,
                decision: release.Decision, now: datetime) -> None:
        assert decision.not_before is not None
        text = workloads.format_time(decision.not_before)
        operations = patches.annotation_update(tracked.raw, {workloads.NOT_BEFORE: text})
        try:
            tracked.raw = self._gateway.json_patch(deferred.key, operations)
        except kube.API_ERRORS as error:
            self._metrics.api_errors.labels(operation="replan").inc()
            log.info("%s: re-plan to %s not written (%s)", deferred.key, text, error)
            return
        self._metrics.replans.inc()
        self._recorder.record(events.event(
            deferred, reason="Replanned", now=now, instance=self._recorder.instance, unique=False,
            message=f"window moved from {_text(deferred.not_before)} to {text}: "
                    f"{decision.message}"))

    # -- bookkeeping ----------------------------------------------------------------

    def _grid_due(self, now: datetime) -> bool:
        if self._next_grid_check is not None and now < self._next_grid_check:
            return False
        self._next_grid_check = now + timedelta(seconds=self._config.grid_poll_s)
        return True

    def _update_gauges(self) -> None:
        for kind in workloads.KINDS:
            self._metrics.gated.labels(kind=kind).set(
                sum(1 for k, t in self._tracked.items()
                    if k.kind == kind and workloads.is_waiting(kind, t.raw)))
        interruptible = [t for k, t in self._tracked.items() if interrupt.is_managed(k.kind, t.raw)]
        for state, running in (("running", True), ("paused", False)):
            self._metrics.interruptible.labels(state=state).set(
                sum(1 for t in interruptible if not _suspended(t.raw) == running))
        bounds = [t.resume_by for t in interruptible if t.resume_by is not None]
        now = self._clock.now()
        self._metrics.slack.set(min((b - now).total_seconds() for b in bounds) if bounds else 0)

    def _sleep_s(self, now: datetime) -> float:
        wakes = [now + timedelta(seconds=self._config.grid_poll_s)]
        if (due := self._timers.next_due()) is not None:
            wakes.append(due)
        if self._elector is not None:
            wakes.append(self._elector.next_attempt(now))
        return max((min(wakes) - now).total_seconds(), 0.0)


def _held(kind: workloads.Kind, obj: Mapping[str, Any]) -> bool:
    """What the controller tracks: held workloads and unfinished interruptible Jobs."""
    return workloads.is_waiting(kind, obj) or interrupt.is_managed(kind, obj)


def _suspended(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("spec") or {}).get("suspend"))


def _version(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _text(value: datetime | None) -> str:
    return "unknown" if value is None else workloads.format_time(value)
