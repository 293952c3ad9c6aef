"""The budget ledger under database faults: nothing lost, nothing counted twice, pods admitted.

``python -m governance`` watches the Kubernetes API double (tests/support/kube_api.py)
and records each finished pod in the ledger; the webhook server reads the
budgets governance publishes. The database then fails under it: PostgreSQL
crashes and comes back (``pg_ctl stop -m immediate``, then start: crash
recovery), or SQLite's disk fills up (a full tmpfs, or a file-size limit
when mounting is not allowed). Pods finish during the fault. Afterwards the
ledger holds every finished pod exactly once, the service never exited, and
the webhook admitted throughout.

(A governance process killed between a run's INSERT and its COMMIT is
tests/governance/test_service_process.py::test_a_crash_between_record_and_commit_loses_and_duplicates_nothing.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from governance import ledger, periods
from tests.reliability import ledger_side, servers
from tests.support import kube_api, webhook_server
from tests.support.webhook_server import free_port

pytestmark = pytest.mark.xdist_group("reliability")

LEDGER_ERRORS = "carbongate_governance_ledger_errors_total"


@pytest.fixture
def kube() -> Iterator[kube_api.RunningKubeApi]:
    """The API double on the wall clock: the governance process it serves has no other."""
    with kube_api.serve(kube_api.FakeKubeApi()) as running:
        yield running


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webhook_server.RunningWebhook]:
    """One webhook for the module: each test's governance publishes the budgets it reads."""
    with servers.webhook(tmp_path_factory.mktemp("webhook")) as running:
        yield running


def finish_pods(kube: kube_api.RunningKubeApi, prefix: str, count: int,
                finished: datetime | None = None) -> set[str]:
    """``count`` pods that ran for two hours to completion at ``finished`` (now); their UIDs.

    Now is the wall clock's: governance, a separate process, counts a run into
    the budget period in which it ended, by its own clock.
    """
    finished = finished or datetime.now(UTC)
    times = {"created": _rfc3339(finished - timedelta(hours=3)),
             "started": _rfc3339(finished - timedelta(hours=2)), "finished": _rfc3339(finished)}
    return {kube.api.seed(ledger_side.finished_pod(f"{prefix}-{i}", **times))["metadata"]["uid"]
            for i in range(count)}


def _rfc3339(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_published_budget_counts(published: dict[str, Any], last_finished: datetime) -> None:
    """The budgets count the runs of their period: the last runs' period, or a new one begun since.

    Runs belong to the period they ended in; if a month turned between the last
    run and the publication, the new period starts empty.
    """
    used_g = published["teams"]["ml"]["used_g"]
    if published["period"] == periods.containing(last_finished).key:
        assert used_g > 0, published
    else:
        assert periods.parse(published["period"]).start > last_finished, published
        assert used_g == 0, published


def governance_metric(port: int, name: str) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def assert_webhook_admits(webhook: webhook_server.RunningWebhook, uid: str) -> None:
    response = webhook.review(servers.tier3_review(uid))["response"]
    assert response["allowed"] is True


def assert_exactly(url: str, expected: set[str]) -> None:
    uids, duplicates = ledger_side.uids_and_duplicates(url)
    assert duplicates == []
    assert uids == expected


def test_a_postgresql_crash_and_restart_loses_and_duplicates_nothing(
        kube: kube_api.RunningKubeApi, webhook: webhook_server.RunningWebhook, tmp_path: Path) -> None:
    with ledger_side.removed_after(ledger_side.PostgresCluster()) as cluster:
        cluster.start()
        url = cluster.create_database("ledger")
        ledger.open_ledger(url).close()  # migrated up front: counting works from the first poll
        port = free_port()
        service = ledger_side.governance_process(
            tmp_path, database_url=url, kube_url=kube.url, port=port,
            budgets_snapshot=webhook.directory / "budgets.json")
        with servers.running(service):
            expected = finish_pods(kube, "before", 4)
            servers.wait_for(lambda: ledger_side.count_runs(url) == 4, timeout_s=60, what="4 runs recorded")

            cluster.crash()
            expected |= finish_pods(kube, "during", 4)
            servers.wait_for(lambda: governance_metric(port, LEDGER_ERRORS) >= 1, timeout_s=30,
                             what="a ledger write failing against the stopped database")
            assert service.alive(), service.log()[-2000:]
            assert_webhook_admits(webhook, "while-postgres-is-down")

            cluster.start()
            servers.wait_for(lambda: ledger_side.count_runs(url) == 8, timeout_s=60, what="8 runs after restart")
            last_finished = datetime.now(UTC)
            expected |= finish_pods(kube, "after", 2, finished=last_finished)
            servers.wait_for(lambda: ledger_side.count_runs(url) == 10, timeout_s=30, what="10 runs")
            assert service.alive()
        assert service.process is not None and service.process.returncode == 0, service.log()[-2000:]
        assert_exactly(url, expected)
    published = json.loads((webhook.directory / "budgets.json").read_text())
    assert_published_budget_counts(published, last_finished)
    assert_webhook_admits(webhook, "after")


def test_a_full_disk_under_sqlite_loses_and_duplicates_nothing(
        kube: kube_api.RunningKubeApi, webhook: webhook_server.RunningWebhook, tmp_path: Path) -> None:
    """A full tmpfs when the tests may mount (root), else a file-size limit on the process."""
    directory = tmp_path / "ledger"
    disk: ledger_side.TinyFilesystem | ledger_side.FileSizeLimit = (
        ledger_side.TinyFilesystem(directory) if ledger_side.can_mount()
        else ledger_side.FileSizeLimit(directory))
    with ledger_side.removed_after(disk):
        url = f"sqlite:///{directory / 'ledger.db'}"
        ledger.open_ledger(url).close()
        port = free_port()
        service = ledger_side.governance_process(
            tmp_path, database_url=url, kube_url=kube.url, port=port,
            budgets_snapshot=webhook.directory / "budgets.json", output="pipe")
        with servers.running(service):
            expected = finish_pods(kube, "before", 3)
            servers.wait_for(lambda: ledger_side.count_runs(url) == 3, timeout_s=60, what="3 runs recorded")

            disk.fill(service)
            expected |= finish_pods(kube, "during", 40)
            servers.wait_for(lambda: governance_metric(port, LEDGER_ERRORS) >= 1, timeout_s=30,
                             what="a ledger write failing on the full disk")
            assert service.alive(), service.log()[-2000:]
            assert_webhook_admits(webhook, "while-the-disk-is-full")

            disk.free(service)
            servers.wait_for(lambda: ledger_side.count_runs(url) == 43, timeout_s=60,
                             what="43 runs after space came back")
            expected |= finish_pods(kube, "after", 2)
            servers.wait_for(lambda: ledger_side.count_runs(url) == 45, timeout_s=30, what="45 runs")
        assert service.process is not None and service.process.returncode == 0, service.log()[-2000:]
        assert_exactly(url, expected)
        assert ledger_side.sqlite_integrity(directory / "ledger.db") == "ok"
    assert_webhook_admits(webhook, "after")
