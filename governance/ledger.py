"""The ledger: an append-only record of runs, in SQLite (WAL) or PostgreSQL.

Budgets are only as trustworthy as the ledger under them, so it is built to
neither lose nor double-count a run whatever happens to the process:

* each run is one ``INSERT … ON CONFLICT (uid) DO NOTHING`` in its own
  transaction: a crash before the commit leaves nothing, a replay after it
  inserts nothing, and the unique constraint on the pod UID is the arbiter;
* rows are never updated or deleted: triggers refuse it in the database
  itself, so no code path (nor a hand-typed ``psql``) rewrites history;
* the schema is versioned: ``schema_version`` lists the migrations applied,
  and :func:`open_ledger` applies the missing ones in order, each in its own
  transaction, under a lock so two processes starting at once do not race.

Besides runs it archives the grid intensity the feed published
(``grid_points``), so a run is priced at the intensity of the hours it ran
even after the feed's forecast has moved on. That table is an archive of the
latest known value per hour, updated in place.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from carbongate import clock
from governance import runs

log = logging.getLogger(__name__)
# Named here: inside the classes below, ``runs`` is also a method's name.
MandateEvent = runs.MandateEvent


class LedgerError(RuntimeError):
    """The ledger cannot be opened or written; the message says which database."""


@dataclass(frozen=True)
class GridPoint:
    """One archived hour (or step) of a region's intensity."""

    region: str
    start: datetime
    g_per_kwh: float
    signal: str
    source: str
    step_s: int


class Ledger(Protocol):
    """What the collector, the budgets and the reports need from storage."""

    def record(self, record: runs.RunRecord) -> bool:
        """Append a run once; False when its UID is already there."""
        ...

    def runs(self, *, since: datetime, until: datetime, team: str | None = None
             ) -> list[runs.RunRecord]:
        """Runs that ended in ``[since, until)``, oldest first."""
        ...

    def usage_g(self, *, since: datetime, until: datetime) -> dict[str, float]:
        """Emissions per team of runs that ended in ``[since, until)``."""
        ...

    def contains(self, uid: str) -> bool:
        """Whether a pod UID is already recorded."""
        ...

    def store_points(self, points: Iterable[GridPoint]) -> int:
        """Archive intensity points (latest value per region and start wins)."""
        ...

    def record_mandate(self, event: MandateEvent) -> bool:
        """Append a refusal or a break-glass once per workload UID; False when already there."""
        ...

    def mandate_counts(self, *, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        """Per team, how many of each event happened in ``[since, until)``."""
        ...

    def points(self, region: str, *, since: datetime, until: datetime) -> list[GridPoint]:
        """Archived points of a region holding at some instant of ``[since, until)``."""
        ...


# --- tables as the code reads them (the migrations below create them) -------------------

_metadata = sa.MetaData()
RUNS = sa.Table(
    "runs", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uid", sa.String(64), nullable=False, unique=True),
    sa.Column("team", sa.String(253), nullable=False),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("pod", sa.String(253), nullable=False),
    sa.Column("workload", sa.String(253), nullable=False),
    sa.Column("tier", sa.String(8), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("home_region", sa.String(64), nullable=False),
    sa.Column("node_pool", sa.String(253)),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("energy_kwh", sa.Float, nullable=False),
    sa.Column("emissions_g", sa.Float),
    sa.Column("counterfactual_g", sa.Float),
    sa.Column("saved_g", sa.Float, nullable=False),
    sa.Column("mean_g_per_kwh", sa.Float),
    sa.Column("signal", sa.String(16), nullable=False),
    sa.Column("intensity_source", sa.String(16), nullable=False),
    sa.Column("deferred_s", sa.Float, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("runs_team_end", "team", "end_at"),
)
GRID_POINTS = sa.Table(
    "grid_points", _metadata,
    sa.Column("region", sa.String(64), primary_key=True),
    sa.Column("start_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("g_per_kwh", sa.Float, nullable=False),
    sa.Column("signal", sa.String(16), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("step_s", sa.Integer, nullable=False),
)
# Mandate refusals (carbongate.io/tier-refused) and break-glass releases
# (carbongate.io/release-now), once per workload UID and kind; append-only too.
MANDATE_EVENTS = sa.Table(
    "mandate_events", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uid", sa.String(64), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("team", sa.String(253), nullable=False),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("workload_kind", sa.String(16), nullable=False),
    sa.Column("workload", sa.String(253), nullable=False),
    sa.Column("detail", sa.String(253), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("uid", "event", name="mandate_events_once"),
    sa.Index("mandate_events_team_at", "team", "at"),
)
SCHEMA_VERSION = sa.Table(
    "schema_version", _metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

# Columns shared by RunRecord and the runs table (RunRecord's start/end are start_at/end_at).
_RECORD_COLUMNS = {f.name: ("start_at" if f.name == "start" else "end_at" if f.name == "end"
                            else f.name) for f in fields(runs.RunRecord)}


# --- migrations --------------------------------------------------------------------------

@dataclass(frozen=True)
class Migration:
    """One step of the schema; never edited once released, only followed by another."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_tables(conn: Connection) -> None:
    # Version 1 is exactly the tables above; later changes come as new migrations.
    _metadata.create_all(conn, tables=[RUNS, GRID_POINTS])


_SQLITE_GUARDS = tuple(
    f"CREATE TRIGGER runs_no_{verb.lower()} BEFORE {verb} ON runs "
    "BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END"
    for verb in ("UPDATE", "DELETE")
)
_POSTGRES_GUARDS = (
    ("CREATE FUNCTION carbongate_runs_append_only() RETURNS trigger LANGUAGE plpgsql AS "
     "$$ BEGIN RAISE EXCEPTION 'runs are append-only'; END $$"),
    ("CREATE TRIGGER runs_append_only BEFORE UPDATE OR DELETE ON runs "
     "FOR EACH ROW EXECUTE FUNCTION carbongate_runs_append_only()"),
)


def _append_only(conn: Connection) -> None:
    statements = _POSTGRES_GUARDS if conn.dialect.name == "postgresql" else _SQLITE_GUARDS
    for statement in statements:
        conn.exec_driver_sql(statement)


def _mandate_events(conn: Connection) -> None:
    _metadata.create_all(conn, tables=[MANDATE_EVENTS])
    if conn.dialect.name == "postgresql":  # the function of migration 2 serves this table too
        conn.exec_driver_sql(
            "CREATE TRIGGER mandate_events_append_only BEFORE UPDATE OR DELETE ON mandate_events "
            "FOR EACH ROW EXECUTE FUNCTION carbongate_runs_append_only()")
        return
    for verb in ("UPDATE", "DELETE"):
        conn.exec_driver_sql(
            f"CREATE TRIGGER mandate_events_no_{verb.lower()} BEFORE {verb} ON mandate_events "
            "BEGIN SELECT RAISE(ABORT, 'mandate events are append-only'); END")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs and the grid intensity archive", _create_tables),
    Migration(2, "runs are append-only (triggers refuse UPDATE and DELETE)", _append_only),
    Migration(3, "mandate events: tier refusals and break-glass per workload, append-only",
              _mandate_events),
)
# Any constant will do: it only has to be the same in every governance process.
_PG_MIGRATION_LOCK = 0x6361726267617465  # "carbgate"
# How far before a window an archived point may start and still hold in it.
_LOOKBACK = timedelta(days=1)


def migrate(engine: Engine, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the migrations the database lacks, in order; return the versions applied."""
    applied: list[int] = []
    with _writing(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        _metadata.create_all(conn, tables=[SCHEMA_VERSION])
        done = set(conn.scalars(sa.select(SCHEMA_VERSION.c.version)))
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            with conn.begin_nested():
                migration.apply(conn)
                conn.execute(SCHEMA_VERSION.insert().values(
                    version=migration.version, description=migration.description,
                    applied_at=clock.utc_now()))
            applied.append(migration.version)
            log.info("ledger migration %d applied: %s", migration.version, migration.description)
    return applied


def schema_version(engine: Engine) -> int:
    """The highest migration applied (0 for an empty database)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("schema_version"):
            return 0
        return int(conn.scalar(sa.select(sa.func.max(SCHEMA_VERSION.c.version))) or 0)


# --- opening -----------------------------------------------------------------------------

def database_url(url: str) -> sa.URL:
    """The URL with psycopg 3 for PostgreSQL (SQLAlchemy would pick psycopg2 otherwise)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        raise LedgerError(f"not a database URL: {error}") from error
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise LedgerError(f"the ledger supports sqlite and postgresql, not {parsed.drivername}")
    return parsed


def create_engine(url: str) -> Engine:
    """An engine with SQLite in WAL mode and explicit transactions, or PostgreSQL."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(parsed, pool_pre_ping=True)


def _sqlite_engine(url: sa.URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below drive transactions, not pysqlite's guesses.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front, so two writers queue instead of
        # failing half-way with "database is locked".
        immediate = conn.get_execution_options().get("carbongate_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextlib.contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    with engine.connect().execution_options(carbongate_write=True) as conn, conn.begin():
        yield conn


def open_ledger(url: str) -> SqlLedger:
    """Connect, migrate to the current schema and return the ledger."""
    engine = create_engine(url)
    try:
        migrate(engine)
    except sa.exc.SQLAlchemyError as error:
        engine.dispose()
        raise LedgerError(f"cannot open the ledger at {render_url(url)}: {error}") from error
    return SqlLedger(engine=engine)


def open_ledger_read_only(url: str) -> SqlLedger:
    """Connect without writing anything, for ``budget report``; never migrates.

    A report is often run from a laptop against the production database:
    it must not create tables, run migrations or hold a write lock there. The
    connection is read-only (SQLite ``mode=ro``; PostgreSQL
    ``default_transaction_read_only``) and a ledger at another schema version
    than this carbongate's is refused with what to do, not upgraded.
    """
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_read_only(parsed, shown=render_url(url))
    else:
        engine = sa.create_engine(parsed, pool_pre_ping=True,
                                  connect_args={"options": "-c default_transaction_read_only=on"})
    try:
        version = schema_version(engine)
    except sa.exc.SQLAlchemyError as error:
        engine.dispose()
        raise LedgerError(f"cannot open the ledger at {render_url(url)}: {error}") from error
    current = max(m.version for m in MIGRATIONS)
    if version != current:
        engine.dispose()
        raise LedgerError(_version_mismatch(render_url(url), version, current))
    return SqlLedger(engine=engine)


def _version_mismatch(shown: str, version: int, current: int) -> str:
    if version == 0:
        return f"no ledger at {shown}: it has no carbongate tables (the governance service creates them)"
    if version < current:
        return (f"the ledger at {shown} has schema version {version}, this carbongate reads {current}; "
                "the report never migrates: upgrade the governance service (it migrates on start), "
                "then run the report again")
    return (f"the ledger at {shown} has schema version {version}, newer than this carbongate's {current}: "
            "run the report with the carbongate version the governance service runs")


def _sqlite_read_only(url: sa.URL, *, shown: str) -> Engine:
    database = url.database or ""
    if not database or database == ":memory:" or not Path(database).is_file():
        raise LedgerError(f"no ledger at {shown}: no such file")
    uri = f"file:{Path(database).resolve()}?mode=ro"
    engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=30,
                                                                            check_same_thread=False))

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA query_only=ON")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def render_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


# --- the ledger --------------------------------------------------------------------------

class SqlLedger:
    """The :class:`Ledger` on SQLAlchemy Core (SQLite or PostgreSQL)."""

    def __init__(self, *, engine: Engine) -> None:
        self.engine = engine

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def record(self, record: runs.RunRecord) -> bool:
        """One transaction: insert unless the UID is there; True when a row was added."""
        values = {column: getattr(record, name) for name, column in _RECORD_COLUMNS.items()}
        values["recorded_at"] = clock.utc_now()
        statement = (self._insert(RUNS).values(**values)
                     .on_conflict_do_nothing(index_elements=[RUNS.c.uid]).returning(RUNS.c.id))
        with _writing(self.engine) as conn:
            inserted = conn.execute(statement).first()
        return inserted is not None

    def runs(self, *, since: datetime, until: datetime, team: str | None = None
             ) -> list[runs.RunRecord]:
        query = sa.select(RUNS).where(RUNS.c.end_at >= since, RUNS.c.end_at < until)
        if team is not None:
            query = query.where(RUNS.c.team == team)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(RUNS.c.end_at, RUNS.c.id)).mappings().all()
        return [_record(row) for row in rows]

    def usage_g(self, *, since: datetime, until: datetime) -> dict[str, float]:
        query = (sa.select(RUNS.c.team, sa.func.coalesce(sa.func.sum(RUNS.c.emissions_g), 0.0))
                 .where(RUNS.c.end_at >= since, RUNS.c.end_at < until).group_by(RUNS.c.team))
        with self.engine.connect() as conn:
            return {str(team): float(total) for team, total in conn.execute(query)}

    def contains(self, uid: str) -> bool:
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(RUNS.c.id).where(RUNS.c.uid == uid)) is not None

    def count(self) -> int:
        """How many runs the ledger holds."""
        with self.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(RUNS)) or 0)

    def record_mandate(self, event: MandateEvent) -> bool:
        values = {"uid": event.uid, "event": event.event, "team": event.team,
                  "namespace": event.namespace, "workload_kind": event.workload_kind,
                  "workload": event.workload, "detail": event.detail, "at": event.at,
                  "recorded_at": clock.utc_now()}
        statement = (self._insert(MANDATE_EVENTS).values(**values)
                     .on_conflict_do_nothing(index_elements=[MANDATE_EVENTS.c.uid,
                                                             MANDATE_EVENTS.c.event])
                     .returning(MANDATE_EVENTS.c.id))
        with _writing(self.engine) as conn:
            return conn.execute(statement).first() is not None

    def mandate_counts(self, *, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        table = MANDATE_EVENTS
        query = (sa.select(table.c.team, table.c.event, sa.func.count())
                 .where(table.c.at >= since, table.c.at < until)
                 .group_by(table.c.team, table.c.event))
        counts: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for team, event, count in conn.execute(query):
                counts.setdefault(str(team), {})[str(event)] = int(count)
        return counts

    def store_points(self, points: Iterable[GridPoint]) -> int:
        rows = [{"region": p.region, "start_at": p.start, "g_per_kwh": p.g_per_kwh,
                 "signal": p.signal, "source": p.source, "step_s": p.step_s} for p in points]
        if not rows:
            return 0
        statement = self._insert(GRID_POINTS)
        statement = statement.on_conflict_do_update(
            index_elements=[GRID_POINTS.c.region, GRID_POINTS.c.start_at],
            set_={name: statement.excluded[name]
                  for name in ("g_per_kwh", "signal", "source", "step_s")})
        with _writing(self.engine) as conn:
            conn.execute(statement, rows)
        return len(rows)

    def points(self, region: str, *, since: datetime, until: datetime) -> list[GridPoint]:
        # A point that started up to a day before `since` may still hold at `since`.
        query = (sa.select(GRID_POINTS)
                 .where(GRID_POINTS.c.region == region, GRID_POINTS.c.start_at < until,
                        GRID_POINTS.c.start_at >= since - _LOOKBACK)
                 .order_by(GRID_POINTS.c.start_at))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        found = [GridPoint(region=row["region"], start=runs.utc(row["start_at"]),
                           g_per_kwh=float(row["g_per_kwh"]), signal=row["signal"],
                           source=row["source"], step_s=int(row["step_s"])) for row in rows]
        # Keep from the last point that began at or before `since`: it holds at `since`.
        first = max((i for i, p in enumerate(found) if p.start <= since), default=0)
        return found[first:]

    def _insert(self, table: sa.Table) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)


def _record(row: sa.RowMapping) -> runs.RunRecord:
    values = {name: row[column] for name, column in _RECORD_COLUMNS.items()}
    for name in ("admitted_at", "start", "end"):
        values[name] = runs.utc(values[name])
    return runs.RunRecord(**values)
