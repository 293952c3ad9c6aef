"""Fixtures for governance: a throwaway PostgreSQL server, ledgers on SQLite and PostgreSQL,
run records and finished pods built by hand.

The PostgreSQL server is real: ``initdb`` into a temporary directory and
``pg_ctl start`` on 127.0.0.1 with a free port, once per test session (per
xdist worker), as the ``postgres`` user when the tests run as root (the
server refuses to run as root). ``scripts/ensure-postgres.sh`` (run by
``make test``) installs the binaries when missing. Without them the
PostgreSQL tests skip, except under ``CI=true`` where they fail: CI must
not pass without having exercised the database the product supports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from governance import ledger, runs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "governance"
_database_names = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too so `-p no:xdist` runs accept the marker under --strict-markers.
    config.addinivalue_line("markers", "xdist_group(name): run in the named group's worker")


@dataclasses.dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster: connect as ``user`` on 127.0.0.1:``port``."""

    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        """A new empty database; its URL."""
        name = f"ledger_{os.getpid()}_{next(_database_names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _server_binaries() -> Path | None:
    for name in ("pg_ctl", "initdb"):
        if shutil.which(name) is None:
            break
    else:
        return Path(shutil.which("pg_ctl") or "").parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start a private PostgreSQL cluster for the session and stop it at the end."""
    binaries = _server_binaries()
    if binaries is None:
        _unavailable("initdb/pg_ctl not found (run scripts/ensure-postgres.sh)")
    assert binaries is not None
    home = Path(tempfile.mkdtemp(prefix="carbongate-pg-"))
    data, port = home / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(home, user="postgres")
    try:
        _run(_as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", "carbongate",
                              "--auth=trust", "-E", "UTF8", "--no-sync"]))
        _run(_as_server_user([
            str(binaries / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l",
            str(home / "server.log"), "-o",
            (f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off "
             "-c full_page_writes=off -c max_connections=60"), "start"]))
    except subprocess.CalledProcessError as error:
        log = (home / "server.log").read_text() if (home / "server.log").exists() else ""
        shutil.rmtree(home, ignore_errors=True)
        _unavailable(f"{error}: {error.stderr}{log}")
    try:
        yield PostgresServer(port=port, user="carbongate")
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run(_as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                  "-w", "stop"]))
        shutil.rmtree(home, ignore_errors=True)


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty ledger database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.fresh_database()


@pytest.fixture
def store(ledger_url: str) -> Iterator[ledger.SqlLedger]:
    """An opened (migrated) ledger on each backend."""
    opened = ledger.open_ledger(ledger_url)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[ledger.SqlLedger]:
    """A ledger on a SQLite file only, for tests about what sits above storage."""
    opened = ledger.open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def at(text: str) -> datetime:
    """An instant from ``2026-11-03T10:00`` (UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def record(uid: str = "uid-1", **changes: Any) -> runs.RunRecord:
    """A ledger row with plausible values; override what the test is about."""
    base = runs.RunRecord(
        uid=uid, team="ml", namespace="ml-train", pod=f"pod-{uid}", workload="nightly",
        tier="3", decision="defer", region="GB", home_region="GB", node_pool=None,
        phase="Succeeded", admitted_at=at("2026-11-03T10:00"), start=at("2026-11-03T13:00"),
        end=at("2026-11-03T15:00"), energy_kwh=0.5, emissions_g=100.0, counterfactual_g=150.0,
        saved_g=50.0, mean_g_per_kwh=200.0, signal="average", intensity_source="history",
        deferred_s=3 * 3600.0)
    return dataclasses.replace(base, **changes)


def finished_pod(name: str, *, uid: str | None = None, namespace: str = "ml-train",
                 team: str | None = "ml", tier: str = "3", decision: str | None = "defer",
                 created: str = "2026-11-03T10:00:00Z", started: str = "2026-11-03T13:00:00Z",
                 finished: str = "2026-11-03T15:00:00Z", phase: str = "Succeeded",
                 cpu: str = "2", memory: str = "4Gi", job: str | None = None,
                 region: str | None = None) -> dict[str, Any]:
    """A Pod as the API server returns it once its containers have terminated."""
    labels = {"carbongate.io/tier": tier}
    if team:
        labels["carbongate.io/team"] = team
    annotations = {}
    if decision:
        annotations["carbongate.io/decision"] = decision
    if region:
        annotations["carbongate.io/region"] = region
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels,
                                "annotations": annotations, "creationTimestamp": created}
    if uid:
        metadata["uid"] = uid
    if job:
        metadata["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": job,
                                        "uid": f"job-{job}", "controller": True}]
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": {"containers": [{"name": "main", "image": "busybox",
                                 "resources": {"requests": {"cpu": cpu, "memory": memory}}}]},
        "status": {"phase": phase, "startTime": started, "containerStatuses": [{
            "name": "main", "ready": False, "restartCount": 0, "image": "busybox",
            "imageID": "", "state": {"terminated": {
                "exitCode": 0 if phase == "Succeeded" else 1, "reason": "Completed",
                "startedAt": started, "finishedAt": finished}}}]},
    }


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
