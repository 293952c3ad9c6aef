"""``carbongate budget report`` from the command line, and the loop back to admission.

The last test is the issue's "done when": runs recorded in the ledger push a
team past 80 %, governance publishes the budgets snapshot, and the team's
next ``kubectl apply`` (decided by the webhook's own offline path on the
shipped policies) carries the warning naming the team, its use and its limit.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from carbongate import cli, settings
from governance import budgets, ledger, metrics, publishing
from tests.governance.conftest import at, record
from webhook import offline


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = ledger.open_ledger(url)
    # ml: 650 kg of an 800 kg budget this month (81 %); web: 20 kg of 200 kg
    for i in range(13):
        store.record(record(f"ml-{i}", team="ml", emissions_g=50_000.0,
                            end=at("2026-11-02T00:00").replace(day=2 + i)))
    store.record(record("web-0", team="web", namespace="web", decision="admit", saved_g=0.0,
                        emissions_g=20_000.0))
    store.close()
    return url


@pytest.fixture
def budgets_file(tmp_path: Path) -> Path:
    path = tmp_path / "budgets.yaml"
    path.write_text("teams:\n  ml: {limit_kg: 800}\n  web: {limit_kg: 200}\n", encoding="utf-8")
    return path


def report_argv(database: str, budgets_file: Path, *extra: str) -> list[str]:
    return ["budget", "report", "--period", "2026-11", "--database-url", database,
            "--budgets", str(budgets_file), *extra]


def test_the_table_goes_to_stdout(database: str, budgets_file: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(report_argv(database, budgets_file)) == 0
    out = capsys.readouterr().out
    assert "650 kg" in out and "800 kg" in out and "81.2%" in out and "warn" in out


@pytest.mark.parametrize("fmt", ["csv", "json", "html"])
def test_every_format_can_be_written_to_a_file(database: str, budgets_file: Path,
                                               tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "reports" / f"november.{fmt}"
    assert cli.main(report_argv(database, budgets_file, "--format", fmt, "--out", str(out))) == 0
    text = out.read_text(encoding="utf-8")
    if fmt == "csv":
        rows = {r["team"]: r for r in csv.DictReader(io.StringIO(text)) if r["level"] == "team"}
        assert rows["ml"]["state"] == "warn"
    elif fmt == "json":
        teams = {t["name"]: t for t in json.loads(text)["teams"]}
        assert (teams["ml"]["percent"], teams["web"]["state"]) == (81.2, "ok")
    else:
        assert text.count("<svg") == 3 and "ml: emissions against the budget" in text


def test_one_team_only(database: str, budgets_file: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(report_argv(database, budgets_file, "--team", "web", "--format", "json")) == 0
    assert [t["name"] for t in json.loads(capsys.readouterr().out)["teams"]] == ["web"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--period", "November"], "is not a period"),
    (["--database-url", "mysql://db/ledger"], "supports sqlite and postgresql"),
])
def test_bad_arguments_exit_2_with_a_message(database: str, budgets_file: Path, argv: list[str],
                                             message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*report_argv(database, budgets_file), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_broken_budgets_file_exits_2(database: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("teams:\n  ml: {limit: 5}\n", encoding="utf-8")
    assert cli.main(report_argv(database, broken)) == 2
    assert "teams.ml" in capsys.readouterr().err


def test_a_team_past_80_percent_is_warned_on_its_next_apply(
        database: str, budgets_file: Path, tmp_path: Path) -> None:
    store = ledger.open_ledger(database)
    snapshot = tmp_path / "state" / "budgets.json"
    governance = publishing.Governance(
        store=store, budgets_file=publishing.BudgetsFile(budgets_file),
        sinks=[budgets.FileSink(snapshot)], meters=metrics.create(),
        clock=lambda: at("2026-11-21T12:00"))
    governance.publish()
    store.close()
    assert json.loads(snapshot.read_text(encoding="utf-8"))["teams"]["ml"]["state"] == "warn"

    review = tmp_path / "review.json"
    review.write_text(json.dumps(admission_review()), encoding="utf-8")
    outcome = offline.review_file(
        review, settings=settings.load(environ={}), now=at("2026-11-21T12:00"), traces=(),
        namespace_labels={"carbongate.io/tier": "3"}, budgets_file=snapshot)
    warnings = outcome.as_json()["warnings"]
    assert any("team ml has used 650 of 800 kgCO2e" in w for w in warnings), warnings


def admission_review() -> dict[str, object]:
    """``kubectl apply`` of a tier-3 pod of team ml, as the API server sends it."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "train", "namespace": "ml-train",
                        "labels": {"carbongate.io/team": "ml", "carbongate.io/tier": "3"},
                        "annotations": {"carbongate.io/expected-duration": "1h"}},
           "spec": {"containers": [{"name": "main", "image": "trainer:1",
                                    "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}]}}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "ml-train", "operation": "CREATE", "name": "train",
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": pod, "oldObject": None, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}}


# ---------------------------------------------------------------- the report never writes


def _tables_and_versions(path: Path) -> tuple[list[str], list[int]]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"))
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    return tables, versions


def test_the_report_refuses_an_old_schema_and_never_migrates_it(
        tmp_path: Path, budgets_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ledger at schema 1 (before append-only runs and mandate events) stays at schema 1."""
    path = tmp_path / "old.db"
    engine = ledger.create_engine(f"sqlite:///{path}")
    assert ledger.migrate(engine, ledger.MIGRATIONS[:1]) == [1]
    engine.dispose()
    before = _tables_and_versions(path)
    assert cli.main(report_argv(f"sqlite:///{path}", budgets_file)) == 2
    err = capsys.readouterr().err
    assert "has schema version 1, this carbongate reads 3" in err and "never migrates" in err
    assert _tables_and_versions(path) == before


def test_the_report_reads_a_ledger_it_cannot_write(
        database: str, budgets_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(database.removeprefix("sqlite:///"))
    path.chmod(0o444)
    try:
        assert cli.main(report_argv(database, budgets_file)) == 0
    finally:
        path.chmod(0o644)
    assert "650 kg" in capsys.readouterr().out


def test_the_report_does_not_create_a_missing_ledger(
        tmp_path: Path, budgets_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo.db"
    assert cli.main(report_argv(f"sqlite:///{missing}", budgets_file)) == 2
    assert "no ledger at" in capsys.readouterr().err
    assert not missing.exists()


# ---------------------------------------------------------------- --demo


def test_the_demo_report_shows_a_month_of_runs_for_several_teams(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo.json"
    assert cli.main(["budget", "report", "--demo", "--period", "2026-11", "--format", "json",
                     "--out", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    teams = {t["name"]: t for t in doc["teams"]}
    assert set(teams) == {"ml", "data", "web-ci", "analytics"}
    assert {t["state"] for t in teams.values()} == {"ok", "warn", "exhausted", None}
    assert doc["cluster"]["runs"] == sum(t["runs"] for t in teams.values()) > 1000
    assert doc["signals"] == ["demo"]
    assert list(tmp_path.iterdir()) == [out]  # no ledger left behind, nothing written beside


def test_the_demo_is_the_same_every_time_and_touches_no_database(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "real.db"
    monkeypatch.setenv("CARBONGATE_GOVERNANCE_DATABASE_URL", f"sqlite:///{real}")
    monkeypatch.setenv("CARBONGATE_DATABASE_URL", f"sqlite:///{real}")
    assert cli.main(["budget", "report", "--demo", "--period", "2026-10", "--format", "csv"]) == 0
    first = capsys.readouterr().out
    assert cli.main(["budget", "report", "--demo", "--period", "2026-10", "--format", "csv"]) == 0
    assert capsys.readouterr().out == first and first.count("\n") > 8
    assert not real.exists()


def test_the_demo_html_report_renders(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = tmp_path / "demo.html"
    assert cli.main(["budget", "report", "--demo", "--period", "2026-11", "--format", "html",
                     "--out", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert "Cluster total" in text and text.count("<svg") == 5  # four teams' use, and the savings


def test_the_demo_refuses_a_database_url(capsys: pytest.CaptureFixture[str], database: str) -> None:
    assert cli.main(["budget", "report", "--demo", "--database-url", database]) == 2
    assert "--demo brings its own ledger" in capsys.readouterr().err
