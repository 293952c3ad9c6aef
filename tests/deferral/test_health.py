"""The controller's probes report its loops, not merely that HTTP answers.

A real controller runs against the Kubernetes API double (tests/support/kube_api.py)
and the real HTTP endpoint on 127.0.0.1; a stalled loop is simulated by
handing the probes a monotonic clock that has moved on, since the loop's own
progress is real time.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from carbongate import settings as settings_mod
from deferral import health
from tests.deferral.conftest import Cluster, Replica
from tests.support.waiting import eventually


def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def _serve(replica: Replica, **probes: Any) -> health.Server:
    limits = probes.pop("limits", health.Limits(loop_s=60, watch_s=60))
    server = health.Server(
        bind="127.0.0.1:0", registry=replica.metrics.registry,
        probes=health.Probes(reconciler=replica.running.controller, watchers=replica.running.watchers,
                             limits=limits, **probes))
    server.start()
    return server


def test_a_running_controller_is_ready_once_both_watches_listed(cluster: Cluster) -> None:
    replica = cluster.start(engine=None)
    server = _serve(replica)
    try:
        status, body = eventually(lambda: _ok(_get(server.port, "/readyz")), timeout_s=20)
        assert status == 200 and body["status"] == "ok"
        assert {kind: w["synced"] for kind, w in body["watches"].items()} == {"Pod": True, "Job": True}
        assert body["leader"] is True  # the only replica takes the Lease
        assert _get(server.port, "/healthz")[0] == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            assert b"carbongate_deferral_leader 1.0" in response.read()
    finally:
        server.stop()


def test_a_loop_that_stopped_stepping_fails_liveness(cluster: Cluster) -> None:
    replica = cluster.start(engine=None)
    limits = health.Limits(loop_s=60, watch_s=10_000)
    server = _serve(replica, limits=limits, now=lambda: time.monotonic() + limits.loop_s + 5)
    try:
        status, body = _get(server.port, "/healthz")
        assert status == 503 and body["status"] == "stuck"
        assert any("reconciler loop has not stepped" in problem for problem in body["problems"])
        assert _get(server.port, "/readyz")[0] == 503
    finally:
        server.stop()


def test_a_dead_watch_thread_fails_liveness(cluster: Cluster) -> None:
    replica = cluster.start(engine=None)
    server = _serve(replica)
    try:
        eventually(lambda: _ok(_get(server.port, "/healthz")), timeout_s=20)
        replica.running.watchers[0].stop()
        status, body = _get(server.port, "/healthz")
        assert status == 503
        assert f"{replica.running.watchers[0].kind} watch thread is not running" in body["problems"]
    finally:
        server.stop()


def test_an_unknown_path_is_404(cluster: Cluster) -> None:
    server = _serve(cluster.start(engine=None))
    try:
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/nope", timeout=5)
        assert raised.value.code == 404
        raised.value.close()
    finally:
        server.stop()


def test_the_limits_outlast_a_quiet_stream_and_a_full_back_off() -> None:
    section = settings_mod.load(environ={}).deferral
    limits = health.Limits.from_settings(section)
    assert limits.loop_s == 10 * section.lease_duration_s
    quiet = min(section.watch_timeout_s, section.resync_s)
    assert limits.watch_s > quiet + section.watch_backoff_max_s + section.request_timeout_s


def _ok(result: tuple[int, dict[str, Any]]) -> tuple[int, dict[str, Any]] | None:
    """The answer once it is 200, else None (so eventually() polls again)."""
    return result if result[0] == 200 else None
