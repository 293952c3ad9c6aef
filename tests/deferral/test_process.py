"""``python -m deferral`` as a process: wired from settings, releases, serves metrics, stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deferral import workloads
from tests.deferral import builders
from tests.support import kube_api
from tests.support.waiting import eventually


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.xdist_group("deferral-process")
def test_the_controller_process_releases_an_overdue_pod_and_stops_on_sigterm(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    port = _free_port()
    with kube_api.serve() as served:
        served.api.seed(builders.gated_pod("overdue", not_before=now - timedelta(minutes=5),
                                           deadline=now + timedelta(hours=6)))
        environment = {
            **os.environ,
            "CARBONGATE_KUBE_API_URL": served.url,
            "CARBONGATE_DEFERRAL_BIND": f"127.0.0.1:{port}",
            "CARBONGATE_DEFERRAL_IDENTITY": "process-test",
            "CARBONGATE_DEFERRAL_WATCH_TIMEOUT_S": "2",
            "CARBONGATE_GRID_SNAPSHOT_PATH": str(tmp_path / "missing-snapshot.json"),
        }
        process = subprocess.Popen([sys.executable, "-m", "deferral"], env=environment,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            eventually(lambda: not workloads.gates(served.api.get("Pod", "ml-team", "overdue")),
                       timeout_s=60)
            # The gate is gone once the API double applied the PATCH, but the controller
            # counts the release only after the PATCH's answer reaches it: wait for the count.
            released = 'carbongate_deferral_releases_total{kind="Pod",reason="window-open"} 1.0'
            metrics = eventually(lambda: _scrape_once(port, containing=released), timeout_s=10)
            assert "carbongate_deferral_deadline_misses_total 0.0" in metrics
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        lease = served.api.get("Lease", "carbongate", "carbongate-deferral")
        assert lease is not None and lease["spec"].get("holderIdentity") is None  # handed back


def _scrape_once(port: int, *, containing: str) -> str:
    """The metrics page once it contains ``containing``, else ""."""
    page = _scrape(port)
    return page if containing in page else ""


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return ""
