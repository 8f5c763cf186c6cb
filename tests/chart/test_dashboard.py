"""The Grafana dashboard shipped in the chart queries only Warden's metrics, in valid PromQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.chart.conftest import CHART, by_kind, helm_template, manifests, run, tool
from tests.chart.metric_names import METRIC_NAMES, queryable_names

DASHBOARD = CHART / "files" / "dashboard.json"

# panel title -> a metric it must show
REQUIRED_PANELS = {
    "Positions by phase": "warden_positions",
    "Unprotected positions": "warden_unprotected_positions",
    "Realized PnL today": "warden_realized_pnl_today",
    "Fill → protected latency": "warden_fill_to_protect_seconds_bucket",
    "Reconcile latency": "warden_reconcile_duration_seconds_bucket",
    "Exchange errors": "warden_exchange_errors_total",
    "Exchange weight budget": "warden_exchange_weight_budget",
}


def dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return result


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # collapsed rows
    return found


def expressions(board: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(board) for t in p.get("targets", []) if t.get("expr")]
    for variable in board.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query":
            text = query["query"] if isinstance(query, dict) else query
            exprs.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", text))
    return exprs


def used_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\bwarden_[a-zA-Z0-9_]+\b", expr))


def test_metric_names_are_the_agreed_contract() -> None:
    assert len(METRIC_NAMES) == len(set(METRIC_NAMES)) == 27
    assert all(name.startswith("warden_") for name in METRIC_NAMES)


def test_dashboard_queries_only_known_metrics() -> None:
    known = queryable_names()
    exprs = expressions(dashboard())
    assert len(exprs) >= 10
    for expr in exprs:
        used = used_metrics(expr)
        assert used, f"expression queries no warden_ metric: {expr}"
        assert used <= known, f"unknown metrics {sorted(used - known)} in: {expr}"


def test_required_panels_show_their_metrics() -> None:
    by_title = {p["title"]: p for p in panels(dashboard())}
    for title, metric in REQUIRED_PANELS.items():
        assert title in by_title, f"no panel '{title}'"
        shown = set().union(*(used_metrics(t["expr"]) for t in by_title[title]["targets"]))
        assert metric in shown, f"panel '{title}' does not show {metric}"


def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every expression (as recording rules; Grafana variables replaced by values)."""
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": expr.replace("$account", ".*").replace("$__rate_interval", "5m")}
        for i, expr in enumerate(expressions(dashboard()))
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run([tool("promtool"), "check", "rules", str(path)])


def test_dashboard_configmap() -> None:
    [configmap] = [
        c for c in by_kind(manifests(helm_template()), "ConfigMap") if c["metadata"]["name"].endswith("dashboard")
    ]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["warden.json"]) == dashboard()
    assert not [c for c in by_kind(manifests(helm_template("monitoring.dashboard.enabled=false")), "ConfigMap")]
