"""The report in each format: a terminal table, CSV, JSON and a self-contained HTML page.

The table and the HTML are for people (masses in one unit for the whole
report, kg, or g when every figure is under 1 kg; delays in hours and
minutes), and end with the cluster's total; CSV and JSON are for tools (grams, kWh and seconds, unrounded
enough to add up). The HTML page embeds its charts as inline SVG and its
styles inline, so it can be mailed or attached to a ticket as one file.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Literal

from governance import charts, report

Format = Literal["table", "csv", "json", "html"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json", "html")
_ONE_SECOND = timedelta(seconds=1)


def render(rep: report.Report, fmt: Format) -> str:
    """The report as text in one of :data:`FORMATS`."""
    renderers: dict[str, Callable[[report.Report], str]] = {
        "table": table, "csv": to_csv, "json": to_json, "html": to_html}
    return renderers[fmt](rep)


def format_delay(seconds: float | None) -> str:
    """``3h 12m``, ``45m``, ``—`` when nothing waited."""
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _period_title(rep: report.Report) -> str:
    start = rep.period.start.strftime("%-d %b %Y")
    end = (rep.period.end - _ONE_SECOND).strftime("%-d %b %Y")
    return f"{rep.period.key} ({start} – {end}, UTC)"


# --- table ------------------------------------------------------------------------------

_TABLE_HEAD = ("TEAM / namespace", "USED", "LIMIT", "USE", "STATE", "SAVED", "RUNS",
               "DEFERRED", "SHIFTED", "MEAN DELAY", "REFUSED TIER", "BREAK-GLASS")


def table(rep: report.Report) -> str:
    """A fixed-width table: one line per team, its namespaces indented below."""
    unit = charts.report_unit(rep.masses_g())
    rows: list[tuple[str, ...]] = [_TABLE_HEAD]
    for team in rep.teams:
        rows.append(_team_row(team, unit))
        rows.extend(_table_row("  " + ns.name, ns, unit) for ns in team.namespaces)
    if rep.teams:
        rows.append(_cluster_row(rep.cluster, unit))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_TABLE_HEAD))]
    lines = [f"carbongate budget report — {_period_title(rep)}",
             (f"signal: {', '.join(rep.signals) or 'no priced runs'}; saved = against running "
              "each changed job when it was admitted, in the home region"), ""]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                          strict=True)]
        lines.append("  ".join(cells).rstrip())
    if not rep.teams:
        lines.append("(no teams: no budgets configured and no runs recorded)")
    return "\n".join(lines) + "\n"


def _table_row(name: str, totals: report.Totals, unit: charts.Unit, *, limit: float | None = None,
               percent: float | None = None, state: str | None = None,
               mandate: tuple[int, int] | None = None) -> tuple[str, ...]:
    """Refusals and break-glass are per team (the ledger keeps them per workload, not run)."""
    return (name, charts.format_mass(totals.used_g, unit),
            "—" if limit is None else charts.format_mass(limit, unit), _percent(percent),
            state or "", charts.format_mass(totals.saved_g, unit), str(totals.runs),
            str(totals.runs_deferred), str(totals.runs_shifted),
            format_delay(totals.mean_delay_s),
            "" if mandate is None else str(mandate[0]),
            "" if mandate is None else str(mandate[1]))


def _team_row(team: report.TeamReport, unit: charts.Unit) -> tuple[str, ...]:
    return _table_row(team.totals.name, team.totals, unit, limit=team.limit_g, percent=team.percent,
                      state=team.state, mandate=(team.tier_refusals, team.break_glass))


def _cluster_row(cluster: report.ClusterTotals, unit: charts.Unit) -> tuple[str, ...]:
    """The teams added up; the limit is their limits added up, the use left without a percent."""
    return _table_row(report.CLUSTER.upper(), cluster.totals, unit, limit=cluster.limit_g,
                      mandate=(cluster.tier_refusals, cluster.break_glass))


# --- csv and json -----------------------------------------------------------------------

CSV_COLUMNS = ("period", "level", "team", "namespace", "used_g", "limit_g", "percent", "state",
               "saved_g", "energy_kwh", "runs", "runs_deferred", "runs_shifted",
               "unpriced_runs", "mean_delay_s", "tier_refusals", "break_glass")


def to_csv(rep: report.Report) -> str:
    """One row per team (``level=team``), per namespace (``level=namespace``), and the total (``level=cluster``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for team in rep.teams:
        writer.writerow(_csv_row(rep, "team", team.totals.name, "", team.totals,
                                 team.limit_g, team.percent, team.state)
                        + [str(team.tier_refusals), str(team.break_glass)])
        for ns in team.namespaces:
            writer.writerow(_csv_row(rep, "namespace", team.totals.name, ns.name, ns,
                                     None, None, None) + ["", ""])
    cluster = rep.cluster
    writer.writerow(_csv_row(rep, "cluster", "", "", cluster.totals, cluster.limit_g, None, None)
                    + [str(cluster.tier_refusals), str(cluster.break_glass)])
    return buffer.getvalue()


def _csv_row(rep: report.Report, level: str, team: str, namespace: str, totals: report.Totals,
             limit: float | None, percent: float | None, state: str | None) -> list[str]:
    def number(value: float | None, digits: int = 3) -> str:
        return "" if value is None else f"{value:.{digits}f}"
    return [rep.period.key, level, team, namespace, number(totals.used_g), number(limit),
            number(percent, 1), state or "", number(totals.saved_g),
            number(totals.energy_kwh, 6), str(totals.runs), str(totals.runs_deferred),
            str(totals.runs_shifted), str(totals.unpriced), number(totals.mean_delay_s, 1)]


def to_json(rep: report.Report) -> str:
    """The report document (same as ``GET /budgets``), indented."""
    return json.dumps(report.to_document(rep), indent=2, ensure_ascii=False) + "\n"


# --- html -------------------------------------------------------------------------------

_STATE_COLOURS = {"ok": "#2e7d32", "warn": "#e08a00", "exhausted": "#c62828"}
_CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#1f2933;margin:2rem auto;
max-width:1100px;padding:0 1rem;background:#fff}
h1{font-size:1.6rem;margin:0 0 .2rem}h2{font-size:1.2rem;margin:2rem 0 .6rem}
.sub{color:#616e7c;margin:0 0 1.4rem}
.cards{display:flex;flex-wrap:wrap;gap:1rem}
.card{border:1px solid #e4e7eb;border-radius:8px;padding:.9rem 1.1rem;min-width:220px;flex:1}
.card h3{margin:0 0 .3rem;font-size:1.05rem}.big{font-size:1.7rem;font-weight:bold}
.badge{display:inline-block;color:#fff;border-radius:999px;padding:.05rem .6rem;
font-size:.8rem;font-weight:bold;vertical-align:middle;margin-left:.4rem}
.bar{background:#e4e7eb;border-radius:4px;height:8px;margin:.5rem 0}
.bar span{display:block;height:8px;border-radius:4px}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{padding:.35rem .45rem;border-bottom:1px solid #e4e7eb;text-align:right}td{white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{color:#616e7c;font-weight:normal}
tr.ns td:first-child{padding-left:1.6rem;color:#616e7c}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1rem}
figure{margin:0;border:1px solid #e4e7eb;border-radius:8px;padding:.5rem}
figure svg{width:100%;height:auto}figcaption{color:#616e7c;font-size:.85rem;padding:.3rem}
.note{color:#616e7c;font-size:.85rem;margin-top:2rem}
.total{font-size:1.05rem;margin:0 0 1rem}tr.total td{font-weight:bold;border-top:2px solid #9aa5b1}
"""


def to_html(rep: report.Report) -> str:
    """A self-contained page: summary cards, charts, the table, and how to read it."""
    title = f"Carbon budgets — {_period_title(rep)}"
    unit = charts.report_unit(rep.masses_g())
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _subtitle(rep),
        _cluster_card(rep, unit),
        '<div class="cards">', *(_card(t, unit) for t in rep.teams), "</div>",
        "<h2>Use against each budget</h2>", '<div class="charts">',
        *(_figure(charts.use_against_limit(t, rep.period, rep.generated_at,
                                           warn_percent=rep.warn_percent, unit=unit),
                  _use_caption(t, rep.warn_percent)) for t in rep.teams),
        "</div>", "<h2>Savings</h2>",
        _figure(charts.savings_per_week(rep.teams, rep.period, unit=unit), _SAVINGS_CAPTION),
        "<h2>Details</h2>", _html_table(rep, unit), _note(rep, unit), "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _subtitle(rep: report.Report) -> str:
    generated = rep.generated_at.strftime("%-d %b %Y %H:%M")
    signals = ", ".join(rep.signals) or "no priced runs"
    return f'<p class="sub">Generated {generated} UTC · grid signal: {html.escape(signals)}</p>'


_SAVINGS_CAPTION = ("CO₂e each team's deferred and shifted runs avoided, week by week, "
                    "compared with running them when they were submitted.")


def _cluster_card(rep: report.Report, unit: charts.Unit) -> str:
    """The whole cluster in one line, above the teams."""
    cluster = rep.cluster
    if not rep.teams:
        return '<p class="total">No teams: no budgets configured and no runs recorded.</p>'
    return (f'<p class="total"><b>Cluster total</b>: {charts.format_mass(cluster.totals.used_g, unit)} '
            f"CO₂e from {cluster.totals.runs} runs across {len(rep.teams)} team(s); saved "
            f"{charts.format_mass(cluster.totals.saved_g, unit)} · {_waits(cluster.totals)}.</p>")


def _card(team: report.TeamReport, unit: charts.Unit) -> str:
    name = html.escape(team.totals.name)
    badge = ""
    if team.state is not None:
        badge = (f'<span class="badge" style="background:{_STATE_COLOURS[team.state]}">'
                 f"{team.state}</span>")
    limit = ("no budget set" if team.limit_g is None else
             f"of {charts.format_mass(team.limit_g, unit)} ({_percent(team.percent)})")
    fill = min(team.percent or 0.0, 100.0)
    colour = _STATE_COLOURS.get(team.state or "ok", "#2f6fba")
    return (f'<div class="card"><h3>{name}{badge}</h3>'
            f'<div class="big">{charts.format_mass(team.totals.used_g, unit)}</div>'
            f"<div>{html.escape(limit)}</div>"
            f'<div class="bar"><span style="width:{fill:.1f}%;background:{colour}"></span></div>'
            f"<div>saved {charts.format_mass(team.totals.saved_g, unit)} · {_waits(team.totals)}"
            f"</div><div>{_mandate(team)}</div></div>")


def _mandate(team: report.TeamReport) -> str:
    return (f"{team.tier_refusals} tier label(s) refused · "
            f"{team.break_glass} break-glass release(s)")


def _waits(totals: report.Totals) -> str:
    parts = []
    if totals.runs_deferred:
        parts.append(f"{totals.runs_deferred} deferred (mean wait "
                     f"{format_delay(totals.mean_delay_s)})")
    if totals.runs_shifted:
        parts.append(f"{totals.runs_shifted} shifted")
    return ", ".join(parts) or "nothing deferred or shifted"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _use_caption(team: report.TeamReport, warn_percent: float) -> str:
    if team.limit_g is None:
        return f"{team.totals.name}: emissions added up through the period; no budget is set."
    return (f"{team.totals.name}: emissions added up through the period (blue), against the "
            f"budget (red line); crossing the dashed line ({warn_percent:.0f} %) brings "
            "warnings at admission, reaching the red line holds back tier-3 work.")


def _html_table(rep: report.Report, unit: charts.Unit) -> str:
    head = "".join(f"<th>{html.escape(h.title() if h.isupper() else h)}</th>"
                   for h in _TABLE_HEAD)
    rows: list[str] = []
    for team in rep.teams:
        rows.append(_html_row("", _team_row(team, unit)))
        rows.extend(_html_row("ns", _table_row(ns.name, ns, unit)) for ns in team.namespaces)
    foot = _html_row("total", _cluster_row(rep.cluster, unit)) if rep.teams else ""
    return (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
            f"<tfoot>{foot}</tfoot></table>")


def _html_row(css_class: str, cells: Iterable[str]) -> str:
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<tr{attribute}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


def _note(rep: report.Report, unit: charts.Unit) -> str:
    return (f'<p class="note">Masses are in {unit} of CO₂e throughout. '
            "Emissions are estimated from each pod's requested CPU, memory "
            "and GPUs with Cloud Carbon Footprint's coefficients, times the grid's carbon "
            "intensity in the region and hours it ran. Savings are counted only for runs "
            "carbongate deferred or shifted (never tier 1), against the same run started at "
            "submission in the home region. Unpriced runs (no grid data) count as zero: "
            f"{sum(t.totals.unpriced for t in rep.teams)} this period.</p>")
