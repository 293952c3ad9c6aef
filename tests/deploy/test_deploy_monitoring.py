"""Alerts and dashboard query metrics the code really exposes, in valid PromQL.

Metric names are read from the code (every prometheus_client Counter, Gauge,
Histogram and Summary constructed anywhere in the first-party packages),
never listed by hand: a renamed metric breaks this test, not a 3 a.m. page.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from tests.deploy import support

DASHBOARD = support.REPO / "deploy/monitoring/dashboards/carbongate.json"
PROMETHEUS_BUILTINS = frozenset({"up"})
# The API server's own admission webhook counters (Kubernetes metrics reference):
# labels name (the webhook's name) and type; the rejections also error_type.
KUBE_APISERVER = frozenset({"apiserver_admission_webhook_fail_open_count",
                            "apiserver_admission_webhook_rejection_count"})
# What each kind of collector exposes (prometheus_client's text format).
SUFFIXES = {"Counter": ("_total", "_created"), "Gauge": ("",),
            "Histogram": ("_bucket", "_sum", "_count", "_created"),
            "Summary": ("", "_sum", "_count", "_created")}


@cache
def exposed_metrics() -> frozenset[str]:
    """Every series name the first-party code can expose."""
    names: set[str] = set()
    for path in _first_party_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            kind = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0]
            if kind in SUFFIXES and isinstance(first, ast.Constant) and isinstance(first.value, str):
                base = first.value.removesuffix("_total") if kind == "Counter" else first.value
                names |= {base + suffix for suffix in SUFFIXES[kind]}
    return frozenset(names)


def _first_party_sources() -> Iterator[Path]:
    for package in sorted(support.REPO.iterdir()):
        if (package / "__init__.py").is_file() and package.name != "tests":
            yield from sorted(package.rglob("*.py"))


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects (parsing fails on invalid PromQL)."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(promql_parser.parse(expression), visit)
    return found


def grafana_to_promql(expression: str) -> str:
    """Grafana's variables replaced by what they stand for, so the query parses."""
    expression = expression.replace("$__rate_interval", "5m").replace("$__range", "1h")
    return re.sub(r"\$\{?\w+\}?", ".*", expression)


@pytest.fixture(scope="module")
def rules(rendered: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rule = support.one(rendered["monitoring"], "PrometheusRule", "carbongate")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_scan_finds_the_metrics_the_issue_names() -> None:
    assert {"carbongate_fail_open_total", "carbongate_admission_decisions_total",
            "carbongate_admission_seconds_bucket"} <= exposed_metrics()


def test_every_alert_expression_is_valid_promql_on_real_metrics(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        known = exposed_metrics() | PROMETHEUS_BUILTINS | KUBE_APISERVER
        assert names <= known, (rule["alert"], names - known)


def test_every_dashboard_query_is_valid_promql_on_real_metrics(dashboard: dict[str, Any]) -> None:
    queries = _queries(dashboard)
    assert queries
    for query in queries:
        names = metric_names(grafana_to_promql(query))
        assert names and names <= exposed_metrics() | KUBE_APISERVER, (query, names - exposed_metrics())


def test_an_invalid_expression_or_unknown_metric_is_caught() -> None:
    with pytest.raises(ValueError):
        metric_names("sum(rate(carbongate_fail_open_total[5m])")
    assert not metric_names("carbongate_no_such_metric") <= exposed_metrics()


@pytest.mark.parametrize(("theme", "metric"), [
    ("fail-open rate", "carbongate_fail_open_total"),
    ("stale grid data", "carbongate_feed_stale"),
    ("a gate near its deadline", "carbongate_deferral_release_lag_seconds_bucket"),
    ("a missed deadline", "carbongate_deferral_deadline_misses_total"),
    ("a budget exhausted", "carbongate_budget_used_percent"),
    ("workloads the webhook never saw", "carbongate_unreviewed_workloads_total"),
    ("the API server failing open", "apiserver_admission_webhook_fail_open_count"),
    ("the API server rejecting calls", "apiserver_admission_webhook_rejection_count"),
    ("an expiring certificate", "carbongate_webhook_certificate_expiry_seconds"),
])
def test_an_alert_watches_each_operational_risk(rules: list[dict[str, Any]], theme: str, metric: str) -> None:
    assert any(metric in metric_names(r["expr"]) for r in rules), theme


def test_alerts_are_named_once_with_a_severity_and_a_summary(rules: list[dict[str, Any]]) -> None:
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize("metric", [
    "carbongate_admission_decisions_total",
    "carbongate_fail_open_total",
    "carbongate_feed_data_age_seconds",
    "carbongate_deferral_gated_workloads",
    "carbongate_deferral_gate_age_seconds_bucket",
    "carbongate_budget_used_percent",
    "carbongate_grid_intensity_g_per_kwh",
    "carbongate_governance_saved_grams_total",
    "carbongate_governance_overshoot_grams_total",
    "carbongate_governance_emitted_grams_total",
    "carbongate_governance_leader",
    "carbongate_unreviewed_workloads_total",
    "apiserver_admission_webhook_fail_open_count",
    "carbongate_webhook_certificate_expiry_seconds",
    "carbongate_governance_tier_refusals_total",
    "carbongate_governance_break_glass_total",
])
def test_the_dashboard_charts(dashboard: dict[str, Any], metric: str) -> None:
    assert any(metric in metric_names(grafana_to_promql(q)) for q in _queries(dashboard))


def test_intensity_is_charted_per_region_and_savings_per_team(dashboard: dict[str, Any]) -> None:
    queries = _queries(dashboard)
    intensity = [q for q in queries if "carbongate_grid_intensity_g_per_kwh" in q]
    assert intensity and all("by (region" in q and "$region" in q for q in intensity)
    savings = [q for q in queries if "carbongate_governance_saved_grams_total" in q]
    assert savings and all("by (team)" in q and "$team" in q for q in savings)
    # Net of overshoot wherever a saving is shown: a dirtier change is not hidden.
    assert all("carbongate_governance_overshoot_grams_total" in q for q in savings)


def test_decisions_are_broken_down_by_action_and_by_tier(dashboard: dict[str, Any]) -> None:
    decisions = [q for q in _queries(dashboard) if "carbongate_admission_decisions_total" in q]
    assert any("by (action)" in q for q in decisions)
    assert any("tier" in q.split("(")[1] for q in decisions)


def test_dashboard_panels_have_unique_ids_a_datasource_and_do_not_overlap(
    dashboard: dict[str, Any],
) -> None:
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        box = panel["gridPos"]
        mine = {(x, y) for x in range(box["x"], box["x"] + box["w"])
                for y in range(box["y"], box["y"] + box["h"])}
        assert not mine & cells, panel["title"]
        assert box["x"] + box["w"] <= 24
        cells |= mine
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    used = set(re.findall(r"\$(\w+)", " ".join(_queries(dashboard)))) - {"__rate_interval", "__range"}
    assert used <= variables


def test_service_monitor_scrapes_ports_that_exist(rendered: Mapping[str, list[dict[str, Any]]]) -> None:
    monitor = support.one(rendered["monitoring"], "ServiceMonitor", "carbongate")
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [s for s in support.of_kind(rendered["dev"], "Service")
                if selector.items() <= s["metadata"]["labels"].items()]
    assert len(services) == 3
    ports = {p["name"] for s in services for p in s["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == ports


def test_the_https_scrape_trusts_the_webhook_ca_and_checks_its_name(
    rendered: Mapping[str, list[dict[str, Any]]],
) -> None:
    monitor = support.one(rendered["monitoring"], "ServiceMonitor", "carbongate")
    (https,) = [e for e in monitor["spec"]["endpoints"] if e.get("scheme") == "https"]
    tls = https["tlsConfig"]
    assert tls["ca"]["secret"] == {"name": "carbongate-webhook-tls", "key": "ca.crt"}
    assert not tls.get("insecureSkipVerify")
    assert tls["serverName"] == "carbongate-webhook.carbongate.svc"


def test_scrape_annotations_name_a_declared_port(rendered: Mapping[str, list[dict[str, Any]]]) -> None:
    for deployment in support.of_kind(rendered["dev"], "Deployment"):
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        ports = {p["containerPort"] for c in support.containers(deployment) for p in c.get("ports", [])}
        assert int(annotations["prometheus.io/port"]) in ports


def test_the_webhook_pod_annotations_scrape_the_webhooks_own_metrics(
    rendered: Mapping[str, list[dict[str, Any]]],
) -> None:
    """Annotation scraping names one port per pod: it must be the webhook's /metrics (HTTPS)."""
    deployment = support.one(rendered["dev"], "Deployment", "carbongate-webhook")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    webhook = support.container(deployment, "webhook")
    (https,) = [p for p in webhook["ports"] if p["name"] == "https"]
    assert int(annotations["prometheus.io/port"]) == https["containerPort"]
    assert annotations["prometheus.io/scheme"] == "https"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_kube_prometheus_stack_selects_the_monitor_and_the_rules(
    rendered: Mapping[str, list[dict[str, Any]]],
) -> None:
    """Its Prometheus selects ServiceMonitors and PrometheusRules by `release: <Helm release>`."""
    for kind in ("ServiceMonitor", "PrometheusRule"):
        labels = support.one(rendered["monitoring"], kind, "carbongate")["metadata"]["labels"]
        assert labels["release"] == "kube-prometheus-stack", kind


def test_the_dashboard_ships_as_a_config_map_grafana_picks_up(
    rendered: Mapping[str, list[dict[str, Any]]],
) -> None:
    config_map = support.one(rendered["monitoring"], "ConfigMap", "carbongate-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["carbongate.json"]) == json.loads(DASHBOARD.read_text())


def test_the_api_server_alerts_select_carbongates_webhook_by_its_configured_name(
        rules: list[dict[str, Any]], rendered: Mapping[str, list[dict[str, Any]]]) -> None:
    """The name label is the webhook's name in the MutatingWebhookConfiguration."""
    configuration = next(r for r in rendered["dev"] if r["kind"] == "MutatingWebhookConfiguration")
    names = {w["name"] for w in configuration["webhooks"]}
    for rule in rules:
        if metric_names(rule["expr"]) & KUBE_APISERVER:
            selected = set(re.findall(r'name="([^"]+)"', rule["expr"]))
            assert selected and selected <= names, rule["alert"]


def test_the_certificate_alerts_warn_at_fourteen_days_and_page_at_three(
        rules: list[dict[str, Any]]) -> None:
    expiry = {r["alert"]: r for r in rules
              if "carbongate_webhook_certificate_expiry_seconds" in metric_names(r["expr"])}
    assert {(r["labels"]["severity"], r["expr"].split("<")[1].strip()) for r in expiry.values()} == {
        ("warning", "14 * 86400"), ("critical", "3 * 86400")}


def test_intensity_per_region_comes_first_and_decisions_filter_by_mode(dashboard: dict[str, Any]) -> None:
    charts = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert "carbongate_grid_intensity_g_per_kwh" in charts[0]["targets"][0]["expr"]
    mode = next(v for v in dashboard["templating"]["list"] if v["name"] == "mode")
    assert mode["query"]["query"] == "label_values(carbongate_admission_decisions_total, mode)"
    decisions = [q for q in _queries(dashboard) if "carbongate_admission_decisions_total" in q]
    assert decisions and all('mode=~"$mode"' in q for q in decisions)


def test_the_fail_open_panel_sits_beside_the_api_servers_webhook_metrics(dashboard: dict[str, Any]) -> None:
    def panel(metric: str) -> dict[str, Any]:
        return next(p for p in dashboard["panels"] if any(metric in t["expr"] for t in p.get("targets", [])))

    ours = panel("carbongate_fail_open_total")["gridPos"]
    theirs = panel("apiserver_admission_webhook_fail_open_count")["gridPos"]
    assert ours["y"] == theirs["y"] and ours["x"] + ours["w"] == theirs["x"]
