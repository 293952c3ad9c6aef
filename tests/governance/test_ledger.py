"""The ledger against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from governance import ledger, runs
from tests.governance.conftest import at, record


def test_a_new_database_gets_every_migration_in_order(ledger_url: str) -> None:
    engine = ledger.create_engine(ledger_url)
    try:
        assert ledger.migrate(engine) == [1, 2, 3]
        with engine.connect() as conn:
            rows = conn.execute(sa.select(ledger.SCHEMA_VERSION.c.version,
                                          ledger.SCHEMA_VERSION.c.description)
                                .order_by(ledger.SCHEMA_VERSION.c.version)).all()
        assert [version for version, _ in rows] == [1, 2, 3]
        assert "append-only" in rows[1][1] and "append-only" in rows[2][1]
    finally:
        engine.dispose()


def test_reopening_applies_nothing_and_keeps_the_runs(ledger_url: str) -> None:
    first = ledger.open_ledger(ledger_url)
    first.record(record("a"))
    first.close()
    engine = ledger.create_engine(ledger_url)
    try:
        assert ledger.migrate(engine) == []
        assert ledger.schema_version(engine) == 3
    finally:
        engine.dispose()
    again = ledger.open_ledger(ledger_url)
    assert again.contains("a") and again.count() == 1
    again.close()


def test_a_later_migration_is_applied_on_top_of_an_older_schema(ledger_url: str) -> None:
    engine = ledger.create_engine(ledger_url)
    try:
        assert ledger.migrate(engine, ledger.MIGRATIONS[:1]) == [1]
        assert ledger.schema_version(engine) == 1
        assert ledger.migrate(engine) == [2, 3]
        assert ledger.schema_version(engine) == 3
    finally:
        engine.dispose()


def test_two_processes_starting_at_once_migrate_once(ledger_url: str) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def start() -> None:
        engine = ledger.create_engine(ledger_url)
        try:
            results.append(ledger.migrate(engine))
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results, key=len) == [[], [], [1, 2, 3]]


def test_a_run_is_recorded_once_whatever_the_retries(store: ledger.SqlLedger) -> None:
    assert store.record(record("uid-1")) is True
    assert store.record(record("uid-1", emissions_g=999.0)) is False
    assert store.count() == 1
    (kept,) = store.runs(since=at("2026-11-01T00:00"), until=at("2026-12-01T00:00"))
    assert kept.emissions_g == 100.0


def test_a_recorded_run_reads_back_identical(store: ledger.SqlLedger) -> None:
    original = record("uid-1", node_pool="gpu-a100", counterfactual_g=None, saved_g=0.0)
    store.record(original)
    (back,) = store.runs(since=at("2026-11-01T00:00"), until=at("2026-12-01T00:00"))
    assert back == original
    assert back.start.tzinfo is not None


@pytest.mark.parametrize("statement", [
    "UPDATE runs SET emissions_g = 0",
    "DELETE FROM runs",
])
def test_the_database_refuses_to_rewrite_history(store: ledger.SqlLedger, statement: str) -> None:
    store.record(record("uid-1"))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), \
            store.engine.begin() as conn:
        conn.exec_driver_sql(statement)
    assert store.count() == 1


def test_runs_are_selected_by_the_time_they_ended(store: ledger.SqlLedger) -> None:
    store.record(record("october", end=at("2026-10-31T23:59")))
    store.record(record("first", end=at("2026-11-01T00:00")))
    store.record(record("last", end=at("2026-11-30T23:59")))
    store.record(record("december", end=at("2026-12-01T00:00")))
    found = store.runs(since=at("2026-11-01T00:00"), until=at("2026-12-01T00:00"))
    assert [r.uid for r in found] == ["first", "last"]


def test_usage_adds_up_emissions_per_team(store: ledger.SqlLedger) -> None:
    store.record(record("a", team="ml", emissions_g=100.0))
    store.record(record("b", team="ml", emissions_g=250.5))
    store.record(record("c", team="web", emissions_g=40.0))
    store.record(record("d", team="web", emissions_g=None))  # unpriced: counts zero
    usage = store.usage_g(since=at("2026-11-01T00:00"), until=at("2026-12-01T00:00"))
    assert usage == {"ml": pytest.approx(350.5), "web": pytest.approx(40.0)}


def test_runs_can_be_read_for_one_team(store: ledger.SqlLedger) -> None:
    store.record(record("a", team="ml"))
    store.record(record("b", team="web"))
    found = store.runs(since=at("2026-11-01T00:00"), until=at("2026-12-01T00:00"), team="web")
    assert [r.uid for r in found] == ["b"]


def test_grid_points_keep_the_latest_value_per_hour(store: ledger.SqlLedger) -> None:
    first = [ledger.GridPoint("GB", at("2026-11-03T10:00") + timedelta(hours=h), 100.0 + h,
                              "average", "forecast", 3600) for h in range(3)]
    store.store_points(first)
    store.store_points([ledger.GridPoint("GB", at("2026-11-03T11:00"), 42.0, "average",
                                         "observed", 3600)])
    points = store.points("GB", since=at("2026-11-03T10:30"), until=at("2026-11-03T12:30"))
    assert [(p.start.hour, p.g_per_kwh, p.source) for p in points] == [
        (10, 100.0, "forecast"), (11, 42.0, "observed"), (12, 102.0, "forecast")]


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger.open_ledger(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_file_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "state" / "deeper" / "ledger.db"
    ledger.open_ledger(f"sqlite:///{path}").close()
    assert path.exists()


def test_postgresql_urls_use_psycopg_3() -> None:
    url = ledger.database_url("postgresql://carbongate:secret@db:5432/ledger")
    assert url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize("url", ["mysql://db/ledger", "not a url"])
def test_unsupported_databases_are_refused_clearly(url: str) -> None:
    with pytest.raises(ledger.LedgerError, match="sqlite and postgresql|not a database URL"):
        ledger.create_engine(url)


def test_an_unreachable_database_is_reported_without_the_password() -> None:
    with pytest.raises(ledger.LedgerError) as caught:
        ledger.open_ledger("postgresql://carbongate:hunter2@127.0.0.1:1/ledger")
    assert "hunter2" not in str(caught.value)
    assert "cannot open the ledger" in str(caught.value)


def _mandate(uid: str, event: str = "tier-refused", **changes: Any) -> runs.MandateEvent:
    values: dict[str, Any] = {
        "uid": uid, "event": event, "team": "ml", "namespace": "ml-train",
        "workload_kind": "Job", "workload": "nightly", "detail": "1" if event == "tier-refused" else "",
        "at": at("2026-11-03T10:00")}
    values.update(changes)
    return runs.MandateEvent(**values)


def test_a_refusal_and_a_break_glass_are_recorded_once_per_workload(store: ledger.SqlLedger) -> None:
    assert store.record_mandate(_mandate("job-1")) is True
    assert store.record_mandate(_mandate("job-1")) is False  # the Job's second pod
    assert store.record_mandate(_mandate("job-1", "break-glass")) is True
    assert store.record_mandate(_mandate("job-2", team="web")) is True
    assert store.record_mandate(_mandate("job-3", at=at("2026-12-01T00:00"))) is True
    counts = store.mandate_counts(since=at("2026-11-01T00:00"), until=at("2026-12-01T00:00"))
    assert counts == {"ml": {"tier-refused": 1, "break-glass": 1}, "web": {"tier-refused": 1}}


def test_mandate_events_are_append_only_in_the_database(store: ledger.SqlLedger) -> None:
    store.record_mandate(_mandate("job-1"))
    for statement in ("UPDATE mandate_events SET team = 'nobody'", "DELETE FROM mandate_events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.exec_driver_sql(statement)
