"""Warden facing corrupted exchange answers on the routes it observes: a readable Synced condition, no crash, and
recovery once the answers are whole again. Each mode on a route or two here; every route and mode against the
gateway alone in tests/paper/test_malformed_answers.py."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.localenv.processes import Service
from tests.e2e.conftest import Trader, position_manifest, wait_for

MARK = "/fapi/v1/premiumIndex"
MARKETS = "/fapi/v1/exchangeInfo"
POSITIONS = "/fapi/v3/positionRisk"
STOPS = "/fapi/v1/openAlgoOrders"


def _synced(trader: Trader, name: str) -> dict[str, Any] | None:
    return next((c for c in trader.status(name).get("conditions", []) if c["type"] == "Synced"), None)


def _fault(trader: Trader, path: str, rule: dict[str, Any]) -> None:
    trader.stack.paper_admin("/_paper/faults", {**rule, "method": "GET", "path": path})


def _reported(trader: Trader, name: str, message: str, controller: Service) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        synced = _synced(trader, name)
        return synced if synced and synced["status"] == "False" and message in synced["message"] else None

    found: dict[str, Any] = wait_for(f"{name} to report {message!r}", probe, 60, controller)
    return found


def _no_crashed_pass(controller: Service, trader: Trader, name: str) -> None:
    """The daemon logs a trace for a pass that raised; a handled exchange failure leaves none."""
    assert controller.alive()
    assert f"reconcile of {trader.namespace}/{name} failed" not in controller.log.read_text(errors="replace")


@pytest.mark.parametrize(
    ("path", "rule", "message"),
    [
        (MARKETS, {"mode": "truncated"}, f"the answer to GET {MARKETS} is malformed: not valid JSON"),
        (MARK, {"mode": "missing_field", "field": "markPrice"}, "field 'markPrice' is missing"),
        (
            MARK,
            {"mode": "wrong_type", "field": "markPrice"},
            f"the answer to GET {MARK} is malformed: field 'markPrice' is null, not a number",
        ),
    ],
    ids=["markets-truncated", "mark-missing", "mark-null"],
)
def test_a_new_position_waits_for_whole_answers_then_trades(
    trader: Trader, controller: Service, path: str, rule: dict[str, Any], message: str
) -> None:
    _fault(trader, path, rule)
    try:
        trader.apply(position_manifest("patient"))
        synced = _reported(trader, "patient", message, controller)
        assert synced["reason"] == "ObserveFailed" and synced["message"].startswith("BadResponse: ")
        assert trader.status("patient").get("phase", "Pending") == "Pending"
        assert trader.orders() == []
    finally:
        trader.stack.paper_admin("/_paper/faults", method="DELETE")
    trader.wait_phase("patient", "Protected", controller)
    _no_crashed_pass(controller, trader, "patient")


@pytest.mark.parametrize(
    ("path", "rule", "message"),
    [
        (POSITIONS, {"mode": "truncated"}, f"the answer to GET {POSITIONS} is malformed: not valid JSON"),
        (
            POSITIONS,
            {"mode": "wrong_type", "field": "positionAmt", "value": {"amount": "0.010"}},
            "field 'positionAmt' is an object, not a number",
        ),
        (
            STOPS,
            {"mode": "missing_field", "field": "clientAlgoId"},
            f"{STOPS} is malformed: field 'clientAlgoId' is missing",
        ),
    ],
    ids=["positions-truncated", "positions-object", "stops-missing"],
)
def test_a_protected_position_reports_and_recovers(
    trader: Trader, controller: Service, path: str, rule: dict[str, Any], message: str
) -> None:
    trader.apply(position_manifest("steady"))
    trader.wait_phase("steady", "Protected", controller)
    orders = trader.orders()
    rule = {**rule, "apiKey": trader.account.api_key}  # signed routes: only this trader's account
    _fault(trader, path, rule)
    try:
        _reported(trader, "steady", message, controller)
        assert trader.status("steady")["phase"] == "Protected"  # a bad answer is not news about the position
        assert trader.orders() == orders  # and Warden did nothing about it
    finally:
        trader.stack.paper_admin("/_paper/faults", method="DELETE")
    wait_for(
        "steady to observe again", lambda: (_synced(trader, "steady") or {}).get("status") == "True", 60, controller
    )
    assert trader.status("steady")["phase"] == "Protected"
    assert trader.orders() == orders
    _no_crashed_pass(controller, trader, "steady")
