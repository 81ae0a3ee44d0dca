"""The monitoring files in deploy/ stay true to the metrics Valdrix exports.

Every PromQL expression in the Grafana dashboards and the alerting rules may name only series
that `valdrix.kit.metrics` defines, and the alerts pass promtool's checks and their
unit tests (deploy/prometheus/alerts_test.yml). promtool is required: CI installs it (.ci/run).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from valdrix.kit import metrics

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "deploy" / "grafana"
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
DASHBOARDS = sorted(GRAFANA.glob("*.json"))

RUNBOOK = "https://github.com/valdrix/valdrix/blob/main/docs/operations/runbook.md"
RUNBOOK_DOC = ROOT / "docs" / "operations" / "runbook.md"
# What Grafana substitutes before a query reaches Prometheus ($tenant with All selected).
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "6h",
    "$tenant": ".*",
}
INSTALL_PROMTOOL = (
    "promtool is required and .ci/install-promtool could not fetch it. Install it with"
    " `cd /tmp && apt-get download prometheus && dpkg -x prometheus_*.deb /tmp/prom`"
    " and set VALDRIX_PROMTOOL=/tmp/prom/usr/bin/promtool, or put promtool on PATH."
)


# --- A small PromQL scanner ----------------------------------------------------------------
# Strings are skipped whole, so a label value such as job="valdrix_api" names no metric.
TOKEN = re.compile(
    r""""(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`|[A-Za-z_:][A-Za-z0-9_:]*|\s+|.""",
    re.DOTALL,
)
CLOSING = {")": "(", "]": "[", "}": "{"}


def exported_series() -> set[str]:
    """Series names a scrape of any Valdrix process can show, from the metrics catalogue."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if not isinstance(value, (MetricWrapperBase, metrics.HistoryCounter)):
            continue
        for family in value.describe():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
    return names


def metric_names(expr: str) -> set[str]:
    return {t for t in TOKEN.findall(expr) if t.startswith("valdrix_")}


def bracket_errors(expr: str) -> list[str]:
    open_brackets: list[str] = []
    for token in TOKEN.findall(expr):
        if token in "([{":
            open_brackets.append(token)
        elif token in CLOSING:
            if not open_brackets or open_brackets.pop() != CLOSING[token]:
                return [f"unmatched {token!r}"]
        elif token[0] in "\"'`" and (len(token) < 2 or token[-1] != token[0]):
            return [f"unterminated string {token!r}"]
    return [f"unclosed {b!r}" for b in open_brackets]


def promql_problems(expr: str, known: set[str]) -> list[str]:
    unknown = sorted(metric_names(expr) - known)
    return bracket_errors(expr) + [f"not an exported series: {name}" for name in unknown]


# --- Where the expressions are -------------------------------------------------------------
def load_dashboard(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def all_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep their panels inside


def dashboard_queries(path: Path) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target; template variable queries come separately."""
    for panel in all_panels(load_dashboard(path)):
        for target in panel.get("targets", []):
            yield f"{path.name} panel {panel['id']} {target['refId']}", target["expr"]


def variable_queries(path: Path) -> Iterator[tuple[str, str]]:
    for variable in load_dashboard(path).get("templating", {}).get("list", []):
        if variable["type"] == "query":
            query = variable["query"]
            text = query if isinstance(query, str) else query["query"]
            yield f"{path.name} variable {variable['name']}", text


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def runbook_anchors() -> set[str]:
    """The anchors GitHub gives the runbook's headings."""
    headings = re.findall(r"^#+ (.+)$", RUNBOOK_DOC.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def all_expressions() -> list[tuple[str, str]]:
    found = [(f"alerts.yml {rule['alert']}", rule["expr"]) for rule in alert_rules()]
    for path in DASHBOARDS:
        found += [*dashboard_queries(path), *variable_queries(path)]
    return found


EXPRESSIONS = all_expressions()


# --- Expressions name only exported metrics --------------------------------------------------
def test_the_monitoring_files_exist():
    assert [p.name for p in DASHBOARDS] == ["customer-health.json", "platform.json"]
    assert len(EXPRESSIONS) > 40


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[w for w, _ in EXPRESSIONS])
def test_expression_names_only_exported_series_and_balances_brackets(where, expr):
    assert metric_names(expr), f"{where} queries no Valdrix metric"
    assert promql_problems(expr, exported_series()) == []


def test_scanner_catches_invented_metrics_missing_suffixes_and_unbalanced_brackets():
    known = exported_series()
    assert "valdrix_scans_total" in known
    assert "valdrix_job_duration_seconds_bucket" in known
    assert "valdrix_jobs_stuck" in known
    assert promql_problems("sum(valdrix_db_connections_open)", known) == [
        "not an exported series: valdrix_db_connections_open"
    ]
    assert promql_problems("rate(valdrix_scans[5m])", known)  # a counter is exposed as _total
    assert promql_problems("valdrix_job_duration_seconds", known)  # a histogram needs a suffix
    assert promql_problems("valdrix_jobs_stuck_total", known)  # a gauge has no _total
    assert promql_problems("sum(rate(valdrix_scans_total[5m])", known) == ["unclosed '('"]
    assert promql_problems("max(valdrix_jobs_stuck]", known) == ["unmatched ']'"]
    assert promql_problems('valdrix_jobs_stuck{job="valdrix_api(", x="}"}', known) == []


# --- Dashboards ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_dashboard_is_grafana_json_with_unique_panel_ids_on_the_datasource_variable(path):
    board = load_dashboard(path)
    assert board["schemaVersion"] == 39
    ids = [panel["id"] for panel in all_panels(board)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in all_panels(board):
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_customer_health_filters_tenant_gauges_by_the_tenant_variable():
    path = GRAFANA / "customer-health.json"
    tenant = next(v for v in load_dashboard(path)["templating"]["list"] if v["name"] == "tenant")
    assert tenant["includeAll"] is True
    assert dict(variable_queries(path)) == {
        "customer-health.json variable tenant": "label_values(valdrix_open_findings, tenant_id)"
    }
    tenant_series = [expr for _, expr in dashboard_queries(path) if "tenant_id" in expr]
    assert len(tenant_series) >= 6
    assert all('tenant_id=~"$tenant"' in expr for expr in tenant_series)


# --- Alerts ----------------------------------------------------------------------------------
def test_every_alert_has_severity_summary_description_and_a_runbook_section():
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules) == 12
    for rule in rules:
        name = rule["alert"]
        assert "for" in rule, name
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert re.search(r"\{\{ \$(labels|value)", annotations["description"]), name
        url, _, anchor = annotations["runbook_url"].partition("#")
        assert url == RUNBOOK, name
        assert anchor in runbook_anchors(), f"{name}: no heading for #{anchor} in the runbook"


# --- promtool --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def promtool() -> str:
    configured = os.environ.get("VALDRIX_PROMTOOL")
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"VALDRIX_PROMTOOL={configured} is not an executable. {INSTALL_PROMTOOL}")
        return configured
    found = shutil.which("promtool") or str(ROOT / ".ci" / "bin" / "promtool")
    if not os.access(found, os.X_OK):
        # A fresh machine running the README's test command: fetch it the way CI does.
        installed = subprocess.run(
            [str(ROOT / ".ci" / "install-promtool")], capture_output=True, text=True, check=False
        )
        if installed.returncode != 0 or not os.access(found, os.X_OK):
            pytest.fail(f"{INSTALL_PROMTOOL}\n{installed.stderr[-2000:]}")
    return found


def run_promtool(promtool: str, *args: str) -> str:
    result = subprocess.run(
        [promtool, *args], capture_output=True, text=True, cwd=ROOT, check=False, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_alerting_rules_pass_promtool_check(promtool):
    assert "SUCCESS: 12 rules found" in run_promtool(promtool, "check", "rules", str(ALERTS))


def test_each_alert_fires_on_its_trigger_and_not_on_a_near_miss(promtool):
    tested = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    covered = {case["alertname"] for test in tested for case in test["alert_rule_test"]}
    assert covered == {rule["alert"] for rule in alert_rules()}
    run_promtool(promtool, "test", "rules", str(PROMETHEUS / "alerts_test.yml"))


def test_example_prometheus_config_passes_promtool_check(promtool, tmp_path):
    # As deployed: beside its rules and the metrics token file it names.
    for name in ("prometheus.yml", "alerts.yml", "recording.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    token_file = tmp_path / "secrets" / "valdrix-metrics-token"
    token_file.parent.mkdir()
    token_file.write_text(secrets.token_hex(32))
    run_promtool(promtool, "check", "config", str(tmp_path / "prometheus.yml"))


def test_example_prometheus_config_scrapes_the_api_port_with_the_metrics_token():
    jobs = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]
    [api] = [job for job in jobs if job["job_name"] == "valdrix-api"]
    assert api["authorization"]["type"] == "Bearer"
    assert api["authorization"]["credentials_file"]


def test_dashboard_queries_are_promql_that_prometheus_parses(promtool, tmp_path):
    # promtool parses recording rules, so each panel query becomes one, with Grafana's
    # variables replaced as Grafana would before sending it.
    rules = []
    for n, (where, expr) in enumerate(q for path in DASHBOARDS for q in dashboard_queries(path)):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"{where} uses a variable Grafana would not fill: {expr}"
        rules.append({"record": f"dashboard:query_{n}", "expr": expr})
    rules_file = tmp_path / "dashboards.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    run_promtool(promtool, "check", "rules", str(rules_file))


# --- The review's names, restatements, tenant jobs and recovery -----------------------------
RECORDING = PROMETHEUS / "recording.yml"
REVIEW_NAMES = {
    "valdrix_background_jobs_queued",
    "valdrix_zombie_scan_latency_seconds",
    "valdrix_llm_spend_per_tenant",
    "valdrix_aws_api_errors",
    "valdrix_remediation_execution_time",
}


def recording_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RECORDING.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_reviews_metric_names_exist_as_series_under_promtool(promtool):
    run_promtool(promtool, "check", "rules", str(RECORDING))
    tests = yaml.safe_load((PROMETHEUS / "recording_test.yml").read_text())["tests"]
    evaluated = {
        metric_names(case["expr"]).pop()
        for test in tests
        for case in test["promql_expr_test"]
        if case["exp_samples"]
    }
    assert evaluated >= REVIEW_NAMES
    run_promtool(promtool, "test", "rules", str(PROMETHEUS / "recording_test.yml"))
    # A rule never records under a name a scrape already gives a series (it would double it).
    for rule in recording_rules():
        assert rule["record"] not in exported_series(), rule["record"]
        assert promql_problems(rule["expr"], exported_series()) == [], rule["record"]


def test_cost_restatements_have_an_alert_with_a_runbook_section():
    [rule] = [r for r in alert_rules() if "valdrix_cost_restatements_total" in r["expr"]]
    assert rule["alert"] == "ValdrixCostRestated"
    assert rule["annotations"]["runbook_url"].endswith("#cost-restatements")


def test_the_example_config_scrapes_workers_on_the_port_the_deployment_guide_gives():
    jobs = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]
    [worker] = [job for job in jobs if job["job_name"] == "valdrix-worker"]
    ports = {t.rpartition(":")[2] for c in worker["static_configs"] for t in c["targets"]}
    operations = ROOT / "docs" / "operations"
    guides = "\n".join((operations / n).read_text() for n in ("deployment.md", "runbook.md"))
    documented = set(re.findall(r"--metrics-port (\d+)", guides))
    assert ports == documented == {"9100"}


def test_dashboards_show_tenant_jobs_and_scan_recovery():
    health = " ".join(expr for _, expr in dashboard_queries(GRAFANA / "customer-health.json"))
    for name in (
        "valdrix_tenant_jobs",
        "valdrix_tenant_jobs_failed_recent",
        "valdrix_tenant_job_oldest_wait_seconds",
    ):
        assert name in metric_names(health), name
    platform = " ".join(expr for _, expr in dashboard_queries(GRAFANA / "platform.json"))
    assert {"valdrix_scan_recovery_seconds_bucket", "valdrix_scan_recovery_seconds_sum"} <= (
        metric_names(platform)
    )
