"""The governance service as a process, its database, and ways to break the database.

- ``PostgresCluster``: a throwaway PostgreSQL cluster like the governance
  tests' (``tests/governance/conftest.py``, whose helpers find the binaries
  and run them as ``postgres`` when root), but one this test owns, so it can
  be stopped dead (``pg_ctl stop -m immediate``: no checkpoint, crash
  recovery on start) and started again on the same port.
- ``TinyFilesystem``: a size-limited tmpfs mount (needs root) that can be
  filled to the last byte and emptied again.
- ``FileSizeLimit``: the same fault without mount rights: ``prlimit`` on the
  running process's RLIMIT_FSIZE (Python ignores SIGXFSZ, so a write past the
  limit fails with EFBIG, which SQLite reports like a full disk).
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import psycopg
import sqlalchemy as sa

from carbongate import settings as settings_mod
from governance import ledger
from tests.governance import conftest as governance_fixtures
from tests.reliability import servers
from tests.support import kube_api

DEMO_GRID = settings_mod.DEMO_GRID_DIR
finished_pod = governance_fixtures.finished_pod
at = governance_fixtures.at


class PostgresCluster:
    """initdb into a temporary directory, then start/stop/crash at will on one port."""

    def __init__(self) -> None:
        binaries = governance_fixtures._server_binaries()
        if binaries is None:
            raise RuntimeError("initdb/pg_ctl not found: run scripts/ensure-postgres.sh")
        self._bin = binaries
        self.home = Path(tempfile.mkdtemp(prefix="carbongate-reliability-pg-"))
        self.data = self.home / "data"
        self.port = governance_fixtures._free_port()
        if os.geteuid() == 0:
            shutil.chown(self.home, user="postgres")
        self._run("initdb", "-D", str(self.data), "-U", "carbongate", "--auth=trust", "-E", "UTF8",
                  "--no-sync")

    def _run(self, tool: str, *arguments: str) -> None:
        command = governance_fixtures._as_server_user([str(self._bin / tool), *arguments])
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.home / "server.log"),
                  "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.home} -c max_connections=40",
                  "start")

    def crash(self) -> None:
        """Stop without a checkpoint, as a killed server would; the next start recovers from WAL."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://carbongate@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.home, ignore_errors=True)


class DiskFault(Protocol):
    """A way to make the ledger's writes fail for lack of space, and to undo it."""

    directory: Path

    def fill(self, process: servers.Process) -> None: ...

    def free(self, process: servers.Process) -> None: ...


class TinyFilesystem:
    """A tmpfs of ``size`` bytes mounted on ``directory`` (root only)."""

    def __init__(self, directory: Path, *, size: int = 4 * 1024 * 1024) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(directory)],
                       check=True, capture_output=True, text=True)
        self._filler = directory / "filler"

    def fill(self, process: servers.Process) -> None:
        """Write until the filesystem refuses another byte."""
        chunk = b"\0" * 4096
        with open(self._filler, "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error

    def free(self, process: servers.Process) -> None:
        self._filler.unlink()

    def remove(self) -> None:
        subprocess.run(["umount", "-l", str(self.directory)], check=False, capture_output=True)


class FileSizeLimit:
    """RLIMIT_FSIZE of the running process lowered to the ledger's current size."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def fill(self, process: servers.Process) -> None:
        largest = max(path.stat().st_size for path in self.directory.iterdir())
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (largest, resource.RLIM_INFINITY))

    def free(self, process: servers.Process) -> None:
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def remove(self) -> None:
        pass


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


def governance_process(directory: Path, *, database_url: str, kube_url: str, port: int,
                       budgets_snapshot: Path, output: str = "file") -> servers.Process:
    """``python -m governance`` on the Kubernetes API double, the demo traces and ``database_url``."""
    kubeconfig = kube_api.write_kubeconfig(directory / "kubeconfig.yaml", server=kube_url)
    budgets = directory / "budgets.yaml"
    budgets.write_text("teams:\n  ml: {limit_kg: 100}\n", encoding="utf-8")
    config = servers.write_toml(directory / "governance.toml", {
        "grid": {"home_region": "GB", "snapshot_path": directory / "grid-snapshot.json"},
        # A whole year of demo traces, priced by time of year: runs end whenever the test runs.
        "feed": {"trace_files": [str(DEMO_GRID / "GB_2023_hourly.csv"), str(DEMO_GRID / "DE_2023_hourly.csv")]},
        "kube": {"kubeconfig": kubeconfig},
        "governance": {"database_url": database_url,
                       "bind": f"127.0.0.1:{port}", "budgets_file": budgets,
                       "budgets_snapshot_path": budgets_snapshot, "publish_interval_s": 0.5,
                       "watch_timeout_s": 5},
    })
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CARBONGATE_")}
    return servers.Process("governance", servers.carbongate("governance", "--config", str(config)),
                           directory=directory, env=environment, clean_env=True, output=output)


def count_runs(url: str) -> int:
    opened = ledger.SqlLedger(engine=ledger.create_engine(url))
    try:
        return opened.count()
    finally:
        opened.close()


def uids_and_duplicates(url: str) -> tuple[set[str], list[str]]:
    engine = ledger.create_engine(url)
    try:
        with engine.connect() as conn:
            uids = set(conn.scalars(sa.select(ledger.RUNS.c.uid)))
            duplicates = list(conn.scalars(sa.select(ledger.RUNS.c.uid).group_by(ledger.RUNS.c.uid)
                                           .having(sa.func.count() > 1)))
        return uids, duplicates
    finally:
        engine.dispose()


def sqlite_integrity(path: Path) -> str:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("PRAGMA integrity_check").scalar())
    finally:
        engine.dispose()


@contextlib.contextmanager
def removed_after(thing: Any) -> Iterator[Any]:
    try:
        yield thing
    finally:
        thing.remove()
