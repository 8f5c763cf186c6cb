"""The alerting rules (charts/warden/files/alerts.yaml) under promtool, and their contract with the runbooks,
the metric names and the unit tests (charts/warden/tests/alerts_test.yaml)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.conftest import CHART, REPO, run, tool
from tests.chart.metric_names import queryable_names

ALERTS_FILE = CHART / "files" / "alerts.yaml"
ALERTS_TEST = CHART / "tests" / "alerts_test.yaml"
RUNBOOKS = REPO / "docs" / "runbooks.md"

EXPECTED_ALERTS = {
    "PositionUnprotected": "critical",
    "PositionStuck": "warning",
    "CloseFailing": "critical",
    "ReconcileErrors": "warning",
    "ExchangeUnreachable": "critical",
    "RateLimitNearBudget": "warning",
    "AuditUnavailable": "critical",
    "AuditBacklog": "warning",
    "NoActiveLeader": "critical",
    "MultipleLeaders": "critical",
    "LeaderFlapping": "warning",
    "WardenDown": "critical",
    "DriftDetected": "warning",
    "DailyLossLimitReached": "warning",
}


def alert_rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(ALERTS_FILE.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_promtool_check_rules() -> None:
    done = run([tool("promtool"), "check", "rules", str(ALERTS_FILE)])
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in done.stdout


def test_promtool_unit_tests_pass() -> None:
    done = run([tool("promtool"), "test", "rules", str(ALERTS_TEST)], cwd=ALERTS_TEST.parent)
    assert "SUCCESS" in done.stdout


def test_every_expected_alert_exists_with_its_severity() -> None:
    rules = alert_rules()
    assert {name: rule["labels"]["severity"] for name, rule in rules.items()} == EXPECTED_ALERTS


def test_position_unprotected_pages_within_30_seconds() -> None:
    rule = alert_rules()["PositionUnprotected"]
    # threshold + for must leave room for a scrape and an evaluation inside 30 s
    threshold = float(re.search(r">\s*([0-9.]+)", rule["expr"]).group(1))  # type: ignore[union-attr]
    pending = float(rule.get("for", "0s").rstrip("s"))
    assert threshold + pending <= 20, rule


def test_every_alert_has_annotations_and_a_runbook_section() -> None:
    headings = {
        re.sub(r"[^a-z0-9-]", "", line[3:].strip().lower().replace(" ", "-"))
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }
    for name, rule in alert_rules().items():
        annotations = rule["annotations"]
        assert annotations.get("summary") and annotations.get("description"), name
        url = annotations["runbook_url"]
        assert url.endswith(f"docs/runbooks.md#{name.lower()}"), (name, url)
        assert name.lower() in headings, f"docs/runbooks.md has no section '## {name}'"


def test_alerts_query_only_known_metrics() -> None:
    known = queryable_names() | {"up"}
    for name, rule in alert_rules().items():
        used = set(re.findall(r"\b(warden_[a-z0-9_]+|up)\b", rule["expr"]))
        assert used, name
        assert used <= known, f"{name} queries unknown metrics {sorted(used - known)}"


def unit_test_cases() -> dict[str, dict[str, int]]:
    """alert -> {"firing": n, "silent": n} over charts/warden/tests/alerts_test.yaml."""
    cases: dict[str, dict[str, int]] = {}
    for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            counts = cases.setdefault(case["alertname"], {"firing": 0, "silent": 0})
            counts["firing" if case.get("exp_alerts") else "silent"] += 1
    return cases


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    cases = unit_test_cases()
    for name in EXPECTED_ALERTS:
        assert cases.get(name, {}).get("firing"), f"no unit test where {name} fires"
        assert cases.get(name, {}).get("silent"), f"no unit test where {name} stays silent"


def mutated_rules(tmp_path: Path, alert: str, expr: str) -> Path:
    """A copy of the chart's rules and unit tests with one alert's expression replaced."""
    document = yaml.safe_load(ALERTS_FILE.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = expr
    (tmp_path / "files").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "files" / "alerts.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    # Only the unit tests about this alert, so each mutation costs one short promtool run.
    tests = yaml.safe_load(ALERTS_TEST.read_text())
    tests["tests"] = [
        test for test in tests["tests"] if any(c["alertname"] == alert for c in test.get("alert_rule_test", []))
    ]
    (tmp_path / "tests" / "alerts_test.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    return tmp_path / "tests" / "alerts_test.yaml"


@pytest.mark.parametrize("alert", sorted(EXPECTED_ALERTS))
@pytest.mark.parametrize("broken", ["vector(1) > 2", "vector(1)"], ids=["never-fires", "always-fires"])
def test_unit_tests_catch_a_broken_alert(tmp_path: Path, alert: str, broken: str) -> None:
    """The unit tests are not vacuous: an alert that never fires, or always fires, fails them."""
    tests = mutated_rules(tmp_path, alert, broken)
    done = subprocess.run(
        [tool("promtool"), "test", "rules", str(tests)], capture_output=True, text=True, cwd=tests.parent, timeout=120
    )
    assert done.returncode != 0, f"promtool test rules passed with {alert} replaced by {broken!r}"
    assert alert in done.stdout + done.stderr
