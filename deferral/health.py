"""The controller's probes and metrics: ``/healthz``, ``/readyz``, ``/metrics`` on ``deferral.bind``.

Answering HTTP proves only that a thread serves HTTP. What must keep going
is the reconciler loop (it renews the Lease and keeps every deadline) and
the two watches (they tell it what exists). So:

- ``/healthz`` (liveness) fails when the loop has not finished a step for
  ten lease durations, or a watch thread died or has shown no sign of life
  for longer than its longest quiet stream plus a full back-off. A restart
  helps then; it does not help when the API server is down, and a watch that
  keeps retrying against a dead API server is alive.
- ``/readyz`` (readiness) also needs every watch to have listed once, so a
  new pod is not counted available before it knows what it holds.

Both answer JSON saying why, and whether this replica leads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import prometheus_client

from carbongate import clock, sidecar
from carbongate import settings as settings_mod
from deferral import controller, watch

LOOP_LEASES = 10  # lease durations without a step before the loop counts as stuck


@dataclass(frozen=True)
class Limits:
    """Seconds without progress after which the loop, or a watch, counts as stuck."""

    loop_s: float
    watch_s: float

    @classmethod
    def from_settings(cls, section: settings_mod.DeferralSettings) -> Limits:
        # A quiet cluster sends nothing for a whole stream (at most the watch
        # timeout, and a resync ends it sooner), which is then reopened,
        # perhaps after the longest back-off, each call bounded by the
        # request timeout.
        longest_stream = min(section.watch_timeout_s, section.resync_s) + 1
        return cls(loop_s=LOOP_LEASES * section.lease_duration_s,
                   watch_s=longest_stream + section.watch_backoff_max_s + 2 * section.request_timeout_s)


class Probes:
    """Liveness and readiness of one controller and its watchers."""

    def __init__(self, *, reconciler: controller.Controller, watchers: Sequence[watch.Watcher],
                 limits: Limits, now: Callable[[], float] = clock.monotonic) -> None:
        self._reconciler = reconciler
        self._watchers = tuple(watchers)
        self._limits = limits
        self._now = now

    def live(self) -> tuple[bool, dict[str, Any]]:
        now = self._now()
        loop_age = now - self._reconciler.last_step
        problems = [f"reconciler loop has not stepped for {loop_age:.0f}s"] if loop_age > self._limits.loop_s else []
        watches: dict[str, Any] = {}
        for watcher in self._watchers:
            age = now - watcher.last_progress
            watches[watcher.kind] = {"alive": watcher.alive(), "synced": watcher.synced,
                                     "progress_age_s": round(age, 1)}
            if not watcher.alive():
                problems.append(f"{watcher.kind} watch thread is not running")
            elif age > self._limits.watch_s:
                problems.append(f"{watcher.kind} watch has shown no progress for {age:.0f}s")
        body = {"status": "ok" if not problems else "stuck", "problems": problems,
                "leader": self._reconciler.leading, "loop_age_s": round(loop_age, 1), "watches": watches}
        return not problems, body

    def ready(self) -> tuple[bool, dict[str, Any]]:
        ok, body = self.live()
        unsynced = [w.kind for w in self._watchers if not w.synced]
        if unsynced:
            body["problems"].append(f"not listed yet: {', '.join(unsynced)}")
            body["status"] = "starting" if ok else body["status"]
        return ok and not unsynced, body


class Server:
    """The HTTP endpoint (:mod:`carbongate.sidecar`): the probes as JSON, ``/metrics`` over the registries.

    ``engine_registry``: the policy engine counts into the process's default
    registry; the controller runs the release policy, so it exports those too.
    """

    def __init__(self, *, bind: str, probes: Probes, registry: prometheus_client.CollectorRegistry,
                 engine_registry: prometheus_client.CollectorRegistry | None = None) -> None:
        registries = [registry] if engine_registry is None else [registry, engine_registry]
        self._sidecar = sidecar.Sidecar(bind=bind, name="deferral", health=lambda: _answer(probes.live()),
                                        registries=registries,
                                        routes={"/readyz": lambda _query: _answer(probes.ready())})

    @property
    def port(self) -> int:
        return self._sidecar.port

    def start(self) -> None:
        self._sidecar.start()

    def stop(self) -> None:
        self._sidecar.stop()


def _answer(check: tuple[bool, dict[str, Any]]) -> sidecar.Answer:
    ok, body = check
    return (200 if ok else 503), body
