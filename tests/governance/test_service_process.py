"""The governance service as real processes: a crash mid-transaction, a restart, the outputs.

Each test runs ``python -m governance`` (or the same service paused inside a
commit, ``tests/governance/paused_service.py``) against the Kubernetes API
double on 127.0.0.1 and a real SQLite file or PostgreSQL database, kills it
with SIGKILL between a run's INSERT and its COMMIT, restarts it, and checks
that the ledger holds every finished pod exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from carbongate import settings
from governance import ledger, periods
from governance.runs import format_time
from tests.governance.conftest import FIXTURES, at, finished_pod
from tests.support import kube_api
from tests.support.webhook_server import free_port

pytestmark = pytest.mark.xdist_group("governance-processes")
ONE_RUN_G = 1.977624  # 2 vCPU, 4 GiB for GB 13h-15h (test_accounting)


@pytest.fixture
def kube() -> Iterator[kube_api.RunningKubeApi]:
    with kube_api.serve(kube_api.FakeKubeApi(clock=lambda: at("2026-11-03T10:00"))) as running:
        yield running


def write_config(directory: Path, *, database_url: str, kube_url: str, port: int,
                 traces: tuple[Path, ...] = (FIXTURES / "grid-GB.csv", FIXTURES / "grid-DE.csv"),
                 ) -> Path:
    kubeconfig = kube_api.write_kubeconfig(directory / "kubeconfig.yaml", server=kube_url)
    budgets = directory / "budgets.yaml"
    budgets.write_text("teams:\n  ml: {limit_g: 16}\n  web: {limit_kg: 1}\n", encoding="utf-8")
    config = directory / "carbongate.toml"
    trace_list = ", ".join(f'"{path}"' for path in traces)
    config.write_text(f"""
[grid]
home_region = "GB"
snapshot_path = "{directory / 'grid-snapshot.json'}"

[feed]
trace_files = [{trace_list}]

[kube]
kubeconfig = "{kubeconfig}"

[governance]
database_url = "{database_url}"
bind = "127.0.0.1:{port}"
budgets_file = "{budgets}"
budgets_snapshot_path = "{directory / 'budgets.json'}"
publish_interval_s = 0.5
watch_timeout_s = 5
""", encoding="utf-8")
    return config


def environment() -> dict[str, str]:
    """The test's environment without any CARBONGATE_ setting leaking in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CARBONGATE_")}


class Service:
    """A service process: stdout lines collected on a thread, stderr in a log file."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        self._log_handle = log.open("w", encoding="utf-8")
        self.process = subprocess.Popen([sys.executable, *argv], cwd=settings.PACKAGE_ROOT,
                                        env=environment(), stdout=subprocess.PIPE,
                                        stderr=self._log_handle, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def wait_for_line(self, expected: str, timeout_s: float) -> None:
        self.eventually(lambda: expected in self.lines, timeout_s)

    def eventually(self, check: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited:\n{self.log.read_text()}")
            time.sleep(0.1)
        raise AssertionError(f"condition not met in time; service log:\n{self.log.read_text()}")

    def kill(self) -> None:
        self.process.kill()
        self.close()

    def terminate(self) -> int:
        """SIGTERM, and the exit code (killed, and failing, if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log_handle.close()


def reader(url: str) -> ledger.SqlLedger:
    """The ledger without migrating: a reader must not take the writers' locks."""
    return ledger.SqlLedger(engine=ledger.create_engine(url))


def count_runs(url: str) -> int:
    opened = reader(url)
    try:
        return opened.count()
    finally:
        opened.close()


def duplicated_uids(url: str) -> list[str]:
    engine = ledger.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(sa.select(ledger.RUNS.c.uid).group_by(ledger.RUNS.c.uid)
                                     .having(sa.func.count() > 1)))
    finally:
        engine.dispose()


def recorded_uids(url: str) -> set[str]:
    opened = reader(url)
    try:
        return {r.uid for r in opened.runs(since=at("2026-01-01T00:00"),
                                           until=at("2027-01-01T00:00"))}
    finally:
        opened.close()


def test_a_crash_between_record_and_commit_loses_and_duplicates_nothing(
        kube: kube_api.RunningKubeApi, ledger_url: str, tmp_path: Path) -> None:
    seeded = [kube.api.seed(finished_pod(f"train-{i}")) for i in range(6)]
    kube.api.seed({**finished_pod("later"), "status": {"phase": "Running"}})
    ledger.open_ledger(ledger_url).close()  # migrated up front: every commit below is a run
    config = write_config(tmp_path, database_url=ledger_url, kube_url=kube.url, port=free_port())

    paused = Service(["-m", "tests.governance.paused_service", str(config), "4"],
                     tmp_path / "paused.log")
    try:
        paused.wait_for_line("PAUSED", timeout_s=60)
    finally:
        paused.kill()  # SIGKILL: the 4th run's INSERT is done, its COMMIT is not
    assert paused.process.returncode == -signal.SIGKILL
    assert count_runs(ledger_url) == 3

    restarted = Service(["-m", "governance", "--config", str(config)], tmp_path / "service.log")
    try:
        restarted.eventually(lambda: count_runs(ledger_url) == 6, 60)
        kube.api.mutate("Pod", "ml-train", "later",
                        lambda o: o.update(status=finished_pod("later")["status"]))
        restarted.eventually(lambda: count_runs(ledger_url) == 7, 30)
    finally:
        assert restarted.terminate() == 0
    assert duplicated_uids(ledger_url) == []
    expected = {p["metadata"]["uid"] for p in seeded} | {
        kube.api.get("Pod", "ml-train", "later")["metadata"]["uid"]}  # type: ignore[index]
    assert recorded_uids(ledger_url) == expected


def recent_trace(directory: Path, *, start: datetime, end: datetime) -> Path:
    """A GB trace around now: 150 g/kWh while the runs ran, 300 before and after.

    The service budgets the *current* period by the wall clock, so the runs it
    is shown must end in it whatever day the test runs on.
    """
    path = directory / "grid-GB-recent.csv"
    header = (FIXTURES / "grid-GB.csv").read_text(encoding="utf-8").splitlines()[0]
    rows = [header]
    hour = start - timedelta(hours=12)
    while hour < end + timedelta(hours=12):
        value = 150.0 if start <= hour < end else 300.0
        rows.append(f"{hour:%Y-%m-%d %H:%M:%S},Great Britain,Great Britain,GB,{value * 0.8:.1f},"
                    f"{value:.1f},50.0,40.0,hand-made,false,")
        hour += timedelta(hours=1)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def wait_out_a_period_turn(margin: timedelta) -> None:
    """Sleep past the end of the current month if it comes within ``margin``.

    The service is a separate process on the wall clock and publishes the
    period it is in; runs that ended in this month must still be this month's
    when it publishes, whatever day and hour the test runs at.
    """
    now = datetime.now(UTC)
    turn = periods.containing(now).end
    if turn - now < margin:
        time.sleep((turn - now).total_seconds() + 1)


def test_the_running_service_publishes_budgets_and_serves_the_report(tmp_path: Path) -> None:
    wait_out_a_period_turn(timedelta(minutes=3))
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # in the current month
    start, admitted = end - timedelta(hours=2), end - timedelta(hours=5)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with kube_api.serve(kube_api.FakeKubeApi(clock=lambda: admitted)) as kube:
        for i in range(7):
            kube.api.seed(finished_pod(f"train-{i}", started=format_time(start),
                                       finished=format_time(end)))
        run_service_and_check(kube, url, tmp_path, recent_trace(tmp_path, start=start, end=end))


def run_service_and_check(kube: kube_api.RunningKubeApi, url: str, tmp_path: Path,
                          trace: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, database_url=url, kube_url=kube.url, port=port,
                          traces=(trace,))
    service = Service(["-m", "governance", "--config", str(config)], tmp_path / "service.log")
    snapshot = tmp_path / "budgets.json"

    def published_all() -> bool:
        if not snapshot.exists():
            return False
        teams = json.loads(snapshot.read_text(encoding="utf-8"))["teams"]
        return bool(teams["ml"]["used_g"] == pytest.approx(7 * ONE_RUN_G, abs=1e-3))

    try:
        service.eventually(published_all, 60)
        doc = json.loads(snapshot.read_text(encoding="utf-8"))
        # 7 × 1.977624 g = 13.843368 g of a 16 g budget: 86.5 %, past the 80 % warning
        assert doc["teams"]["ml"] == {"limit_g": 16.0, "used_g": pytest.approx(13.843, abs=1e-3),
                                      "percent": 86.5, "state": "warn"}
        assert doc["teams"]["web"]["state"] == "ok"
        base = f"http://127.0.0.1:{port}"
        # No lease_name: no election, this process always leads.
        assert requests.get(f"{base}/healthz", timeout=5).json() == {"ok": True, "leader": True}
        report = requests.get(f"{base}/budgets", timeout=5).json()  # the current period
        assert report["period"] == doc["period"]
        (ml,) = [t for t in report["teams"] if t["name"] == "ml"]
        assert (ml["runs"], ml["runs_deferred"], ml["state"]) == (7, 7, "warn")
        assert ml["saved_g"] == pytest.approx(7 * ONE_RUN_G, abs=1e-3)
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        assert 'carbongate_governance_runs_recorded_total{phase="Succeeded"} 7.0' in metrics
        assert requests.get(f"{base}/budgets", params={"period": "November"},
                            timeout=5).status_code == 400
    finally:
        assert service.terminate() == 0


@pytest.mark.parametrize("kubeconfig", [None, "missing-kubeconfig.yaml"], ids=["none", "missing-file"])
def test_governance_without_a_usable_kubeconfig_exits_2_with_a_clear_error(
        tmp_path: Path, kubeconfig: str | None) -> None:
    """Outside a cluster with no kubeconfig (or one that does not exist): one line, no traceback."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("CARBONGATE_", "KUBERNETES_"))}
    environment["CARBONGATE_GOVERNANCE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'ledger.db'}"
    argv = [sys.executable, "-m", "governance", "--bind", f"127.0.0.1:{free_port()}"]
    if kubeconfig:
        argv += ["--kubeconfig", str(tmp_path / kubeconfig)]
    finished = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=60,
                              cwd=tmp_path, check=False)
    assert finished.returncode == 2, finished.stderr
    assert "Traceback" not in finished.stderr and "ConfigException" not in finished.stderr
    assert len(finished.stderr.strip().splitlines()) == 1, finished.stderr
    if kubeconfig:
        assert f"cannot use kubeconfig {tmp_path / kubeconfig}" in finished.stderr
    else:
        assert "cannot reach the Kubernetes API" in finished.stderr and "--kubeconfig" in finished.stderr
