"""The budget report in every format, from a ledger holding a month of runs.

The month (November 2026, seen on the 21st) is built by a formula, not at
random, so every figure below can be recomputed: team ``ml`` runs one
deferred 30 kg job a day in ``ml-train`` (saving 6 kg each) and one 2 kg
undeferred job a day in ``ml-serve``; ``web`` one 1.5 kg run a day; ``data``
one shifted 12 kg run every other day (saving 4 kg).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from governance import budgets, charts, ledger, periods, render, report
from tests.governance.conftest import at, record

NOVEMBER = periods.parse("2026-11")
NOW = at("2026-11-21T12:00")
CONFIG = budgets.BudgetConfig(limits_g={"ml": 800_000.0, "web": 200_000.0, "data": 100_000.0})


def populate(store: ledger.SqlLedger) -> None:
    for day in range(20):  # 1 to 20 November
        start = at("2026-11-01T02:00") + timedelta(days=day)
        store.record(record(f"ml-train-{day}", team="ml", namespace="ml-train", decision="defer",
                            admitted_at=start - timedelta(hours=3), start=start,
                            end=start + timedelta(hours=2), emissions_g=30_000.0,
                            counterfactual_g=36_000.0, saved_g=6_000.0,
                            deferred_s=3 * 3600.0))
        store.record(record(f"ml-serve-{day}", team="ml", namespace="ml-serve", decision="admit",
                            tier="2", start=start, end=start + timedelta(hours=1),
                            admitted_at=start, emissions_g=2_000.0, counterfactual_g=2_000.0,
                            saved_g=0.0, deferred_s=0.0))
        store.record(record(f"web-{day}", team="web", namespace="web", decision="none",
                            tier="1", start=start, end=start + timedelta(minutes=30),
                            admitted_at=start, emissions_g=1_500.0, counterfactual_g=1_500.0,
                            saved_g=0.0, deferred_s=0.0))
        if day % 2 == 0:
            store.record(record(f"data-{day}", team="data", namespace="etl", decision="shift",
                                region="NO", start=start, end=start + timedelta(hours=3),
                                admitted_at=start, emissions_g=12_000.0,
                                counterfactual_g=16_000.0, saved_g=4_000.0, deferred_s=0.0))
    # October and December runs must not count in November
    store.record(record("ml-october", team="ml", end=at("2026-10-31T23:00")))
    store.record(record("ml-december", team="ml", end=at("2026-12-01T01:00")))


@pytest.fixture(scope="module")
def november_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ledger.SqlLedger]:
    store = ledger.open_ledger(f"sqlite:///{tmp_path_factory.mktemp('november') / 'ledger.db'}")
    populate(store)
    yield store
    store.close()


@pytest.fixture(scope="module")
def november(november_store: ledger.SqlLedger) -> report.Report:
    return report.build(november_store, CONFIG, period=NOVEMBER, now=NOW)


@pytest.fixture(scope="module")
def november_html(november: report.Report) -> str:
    return render.render(november, "html")


def team(rep: report.Report, name: str) -> report.TeamReport:
    (found,) = [t for t in rep.teams if t.totals.name == name]
    return found


def test_each_team_is_added_up_against_its_limit(november: report.Report) -> None:
    ml = team(november, "ml")
    # 20 × 30 kg + 20 × 2 kg = 640 kg of 800 kg: 80 %, the warning
    assert ml.totals.used_g == pytest.approx(640_000.0)
    assert (ml.percent, ml.state) == (80.0, "warn")
    assert ml.totals.saved_g == pytest.approx(120_000.0)
    assert (ml.totals.runs, ml.totals.runs_deferred, ml.totals.runs_shifted) == (40, 20, 0)
    assert ml.totals.mean_delay_s == pytest.approx(3 * 3600)
    data = team(november, "data")
    # 10 × 12 kg = 120 kg of 100 kg: exhausted; shifted runs save but do not wait
    assert (data.totals.used_g, data.state, data.totals.runs_shifted) == (120_000.0, "exhausted", 10)
    assert data.totals.mean_delay_s is None
    assert team(november, "web").state == "ok"


def test_namespaces_are_listed_under_their_team(november: report.Report) -> None:
    namespaces = {ns.name: ns for ns in team(november, "ml").namespaces}
    assert set(namespaces) == {"ml-train", "ml-serve"}
    assert namespaces["ml-train"].used_g == pytest.approx(600_000.0)
    assert namespaces["ml-serve"].runs_deferred == 0


def test_the_report_can_be_limited_to_one_team(november_store: ledger.SqlLedger) -> None:
    rep = report.build(november_store, CONFIG, period=NOVEMBER, now=NOW, team="web")
    assert [t.totals.name for t in rep.teams] == ["web"]


def test_a_team_with_runs_but_no_budget_is_reported_without_a_limit(
        sqlite_store: ledger.SqlLedger) -> None:
    sqlite_store.record(record("x", team="research", end=at("2026-11-05T10:00")))
    rep = report.build(sqlite_store, budgets.BudgetConfig(), period=NOVEMBER, now=NOW)
    (research,) = rep.teams
    assert (research.limit_g, research.percent, research.state) == (None, None, None)


def test_savings_are_split_by_week(november: report.Report) -> None:
    weeks = dict(team(november, "ml").weekly_saved)
    # ISO weeks overlapping November: 1 Nov is a Sunday (week of 26 Oct, clipped to 1 Nov)
    assert list(weeks) == [at("2026-11-01T00:00"), at("2026-11-02T00:00"),
                           at("2026-11-09T00:00"), at("2026-11-16T00:00"),
                           at("2026-11-23T00:00"), at("2026-11-30T00:00")]
    # runs end 1-20 Nov at 04:00: 1 day, then 7, 7, 5 days of 6 kg
    assert list(weeks.values()) == pytest.approx([6_000, 42_000, 42_000, 30_000, 0, 0])


def test_the_cumulative_use_ends_at_the_total(november: report.Report) -> None:
    ml = team(november, "ml")
    assert ml.cumulative[-1][1] == pytest.approx(ml.totals.used_g)
    assert [v for _, v in ml.cumulative] == sorted(v for _, v in ml.cumulative)


# --- formats --------------------------------------------------------------------------------

def test_the_table_shows_every_team_and_namespace(november: report.Report) -> None:
    text = render.render(november, "table")
    ml_line = next(line for line in text.splitlines() if line.startswith("ml "))
    assert re.search(r"640 kg\s+800 kg\s+80\.0%\s+warn\s+120 kg\s+40\s+20\s+0\s+3h 00m", ml_line)
    assert re.search(r"^  ml-train\s+600 kg", text, re.MULTILINE)
    assert "exhausted" in text
    assert "2026-11 (1 Nov 2026 – 30 Nov 2026, UTC)" in text


def test_the_csv_has_a_row_per_team_and_namespace(november: report.Report) -> None:
    rows = list(csv.DictReader(io.StringIO(render.render(november, "csv"))))
    assert [(r["level"], r["team"], r["namespace"]) for r in rows] == [
        ("team", "data", ""), ("namespace", "data", "etl"),
        ("team", "ml", ""), ("namespace", "ml", "ml-serve"), ("namespace", "ml", "ml-train"),
        ("team", "web", ""), ("namespace", "web", "web"), ("cluster", "", "")]
    ml = rows[2]
    assert (float(ml["used_g"]), float(ml["limit_g"]), ml["state"]) == (640000.0, 800000.0, "warn")
    assert (int(ml["runs_deferred"]), float(ml["mean_delay_s"])) == (20, 10800.0)


def test_the_json_is_the_report_document(november: report.Report) -> None:
    doc = json.loads(render.render(november, "json"))
    assert doc == json.loads(json.dumps(report.to_document(november)))
    (ml,) = [t for t in doc["teams"] if t["name"] == "ml"]
    assert (ml["used_g"], ml["percent"], ml["state"], ml["saved_g"]) == (
        640000.0, 80.0, "warn", 120000.0)
    assert [ns["name"] for ns in ml["namespaces"]] == ["ml-serve", "ml-train"]
    assert doc["period_start"] == "2026-11-01T00:00:00Z"


def test_the_html_carries_a_use_chart_per_team_and_the_weekly_savings(november_html: str) -> None:
    page = november_html
    svgs = re.findall(r"<svg\b.*?</svg>", page, re.DOTALL)
    assert len(svgs) == 4  # ml, web, data use-against-budget, plus savings per week
    use_charts = [s for s in svgs if "against the budget" in s]
    assert len(use_charts) == 3
    ml_chart = next(s for s in use_charts if "ml: emissions" in s)
    for legend in ("used so far", "budget 800 kg", "warning at 80 %"):
        assert legend in ml_chart
    assert "640 kg (80 %)" in ml_chart  # the latest figure written at the line's end
    # 640 kg in 20.5 days of 30: 937 kg by the end of the month at this pace
    assert "at this pace: 937 kg by 30 Nov" in ml_chart
    savings = next(s for s in svgs if "Carbon saved per week" in s)
    assert "kg CO₂e saved" in savings and "2–8 Nov" in savings
    assert "42.0 kg" in savings  # ml's 7 × 6 kg in the week of 2 Nov, written on its bar


def test_the_html_is_self_contained(november_html: str) -> None:
    page = november_html
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "<script" not in page
    assert page.startswith("<!DOCTYPE html>")


def test_team_names_are_escaped_in_html(sqlite_store: ledger.SqlLedger) -> None:
    sqlite_store.record(record("x", team="<b>ml</b>", end=at("2026-11-05T10:00")))
    page = render.render(report.build(sqlite_store, CONFIG, period=NOVEMBER, now=NOW), "html")
    assert "<b>ml</b>" not in page and "&lt;b&gt;ml&lt;/b&gt;" in page


def test_an_empty_period_still_renders_in_every_format(sqlite_store: ledger.SqlLedger) -> None:
    rep = report.build(sqlite_store, budgets.BudgetConfig(), period=NOVEMBER, now=NOW)
    for fmt in render.FORMATS:
        assert render.render(rep, fmt)
    assert "no teams" in render.render(rep, "table")


def test_refused_tiers_and_break_glass_show_per_team_in_every_format(tmp_path) -> None:
    from governance import runs

    store = ledger.open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        populate(store)
        for uid, event, team, when in (("j1", "tier-refused", "data", "2026-11-04T09:00"),
                                       ("j2", "tier-refused", "data", "2026-11-05T09:00"),
                                       ("j2", "break-glass", "data", "2026-11-05T11:00"),
                                       ("j3", "break-glass", "audit", "2026-11-06T11:00"),
                                       ("j4", "tier-refused", "data", "2026-10-30T11:00")):
            store.record_mandate(runs.MandateEvent(
                uid=uid, event=event, team=team, namespace="etl", workload_kind="Job",
                workload=uid, detail="1" if event == "tier-refused" else "", at=at(when)))
        built = report.build(store, CONFIG, period=NOVEMBER, now=NOW)
    finally:
        store.close()
    teams = {t.totals.name: t for t in built.teams}
    assert (teams["data"].tier_refusals, teams["data"].break_glass) == (2, 1)
    assert (teams["audit"].tier_refusals, teams["audit"].break_glass) == (0, 1)  # no runs, still shown
    assert (teams["ml"].tier_refusals, teams["ml"].break_glass) == (0, 0)
    document = json.loads(render.render(built, "json"))
    assert {t["name"]: (t["tier_refusals"], t["break_glass"]) for t in document["teams"]}[
        "data"] == (2, 1)
    rows = [r for r in csv.DictReader(io.StringIO(render.render(built, "csv")))
            if r["level"] == "team"]
    assert {r["team"]: (r["tier_refusals"], r["break_glass"]) for r in rows}["data"] == ("2", "1")
    line = next(x for x in render.render(built, "table").splitlines() if x.startswith("data "))
    assert line.split()[-2:] == ["2", "1"]
    assert "2 tier label(s) refused · 1 break-glass release(s)" in render.render(built, "html")


# --- one unit per report, and the cluster's total ---------------------------------------------

@pytest.mark.parametrize(("grams", "unit", "text"), [
    (640_000.0, "kg", "640 kg"), (42_000.0, "kg", "42.0 kg"), (1_500.0, "kg", "1.50 kg"),
    (340.0, "kg", "0.340 kg"), (2_400_000.0, "kg", "2,400 kg"), (0.0, "kg", "0 kg"),
    (-4_000.0, "kg", "-4.00 kg"), (340.0, "g", "340 g"), (12.34, "g", "12.3 g"), (0.5, "g", "0.5 g"),
])
def test_masses_are_written_in_the_unit_asked(grams: float, unit: charts.Unit, text: str) -> None:
    assert charts.format_mass(grams, unit) == text


def test_a_report_is_in_kg_throughout_or_in_g_when_every_figure_is_under_a_kg() -> None:
    assert charts.report_unit([340.0, 2_400_000.0, 5.0]) == "kg"
    assert charts.report_unit([999.0, 12.0, -998.0]) == "g"
    assert charts.report_unit([-1_000.0]) == "kg"
    assert charts.report_unit([]) == "g"


def test_no_tonnes_or_grams_beside_kilograms_in_the_table_and_html(november: report.Report,
                                                                  november_html: str) -> None:
    text = render.render(november, "table")
    assert not re.search(r"\d t\b", text) and not re.search(r"\d g\b", text)
    assert re.search(r"^  etl\s+120 kg", text, re.MULTILINE)
    assert not re.search(r"\d (t|g) CO|>\d[\d.,]* (t|g)<", november_html)


def test_a_small_report_is_in_grams(sqlite_store: ledger.SqlLedger) -> None:
    sqlite_store.record(record("x", team="research", end=at("2026-11-05T10:00"), emissions_g=340.0,
                               counterfactual_g=340.0))
    text = render.render(report.build(sqlite_store, budgets.BudgetConfig(), period=NOVEMBER, now=NOW), "table")
    assert re.search(r"^research\s+340 g", text, re.MULTILINE)
    assert "kg" not in text


def test_the_cluster_total_adds_up_every_team(november: report.Report) -> None:
    cluster = november.cluster
    assert cluster.totals.used_g == pytest.approx(640_000 + 30_000 + 120_000)
    assert cluster.totals.saved_g == pytest.approx(120_000 + 40_000)
    assert (cluster.totals.runs, cluster.totals.runs_deferred, cluster.totals.runs_shifted) == (70, 20, 10)
    assert cluster.totals.mean_delay_s == pytest.approx(3 * 3600)
    assert cluster.limit_g == pytest.approx(1_100_000)


def test_the_cluster_total_is_in_every_format(november: report.Report, november_html: str) -> None:
    table_line = render.render(november, "table").splitlines()[-1]
    assert re.search(r"^CLUSTER TOTAL\s+790 kg\s+1,100 kg\s+—\s+160 kg\s+70\s+20\s+10\s+3h 00m", table_line)
    last = list(csv.DictReader(io.StringIO(render.render(november, "csv"))))[-1]
    assert (last["level"], float(last["used_g"]), float(last["saved_g"]), last["runs"]) == (
        "cluster", 790_000.0, 160_000.0, "70")
    cluster = json.loads(render.render(november, "json"))["cluster"]
    assert (cluster["used_g"], cluster["limit_g"], cluster["runs"], cluster["name"]) == (
        790_000.0, 1_100_000.0, 70, "cluster total")
    assert "<b>Cluster total</b>: 790 kg CO₂e from 70 runs across 3 team(s)" in november_html
    assert re.search(r'<tfoot><tr class="total"><td>CLUSTER TOTAL</td><td>790 kg</td>', november_html)


def test_chart_text_is_legible(november_html: str) -> None:
    sizes = [float(s) for s in re.findall(r"font(?:-size:|: [a-z ]*?)\s*([\d.]+)px", november_html)]
    # SVG user units are points; a 6.4 in chart shown about 530 px wide draws 11 of them as 12-13 px.
    assert sizes and min(sizes) >= 11.0
