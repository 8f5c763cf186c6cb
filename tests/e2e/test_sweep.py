"""The account sweep on real components: Warden's orphan orders are cancelled, foreign orders never touched,
an untracked exchange position is reported or adopted exactly once."""

from __future__ import annotations

import asyncio
import json
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import asyncpg

from controller.exchange.client import make_exchange
from controller.reconcile.model import Purpose, client_order_id
from devtools.localenv.processes import Service
from tests.e2e.conftest import EACH_VENUE, Trader, wait_for

SYMBOL = "BTC/USDT:USDT"


def send(trader: Trader, *orders: tuple[str, str, str | None, dict[str, Any]]) -> None:
    """Orders a person (or a lost copy of Warden) placed directly on the account, through ccxt."""

    async def place() -> None:
        account = trader.account
        client = make_exchange(account.venue.value, account.api_key, account.secret, trader.stack.paper_url)
        try:
            for kind, side, price, params in orders:
                await client.create_order(SYMBOL, kind, side, "0.010", price, params)
        finally:
            await client.close()

    asyncio.run(place())


def audit_rows(trader: Trader, type_: str) -> list[dict[str, Any]]:
    async def fetch() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(trader.stack.postgres.url)
        try:
            rows = await conn.fetch("SELECT * FROM events WHERE type = $1 AND namespace = $2", type_, trader.namespace)
        finally:
            await conn.close()
        return [dict(r) for r in rows]

    return asyncio.run(fetch())


ACCOUNT_WIDE_ORDER_READS = frozenset({"/fapi/v1/openAlgoOrders", "/v5/order/realtime"})
"""Where a sweep reads the open (conditional) orders of every symbol, on either venue: without a symbol."""


def sweeps(trader: Trader) -> int:
    """Sweeps of this account so far (a Position's own reads name its symbol)."""
    log = trader.stack.paper_admin(f"/_paper/requests?apiKey={trader.account.api_key}")
    assert isinstance(log, list)
    return sum(1 for r in log if r["path"] in ACCOUNT_WIDE_ORDER_READS and r["symbol"] is None)


def open_orders(trader: Trader) -> dict[str, dict[str, Any]]:
    live = ("NEW", "PARTIALLY_FILLED")
    return {o["clientOrderId"]: o for o in trader.orders() if o["status"] in live}


@EACH_VENUE
def test_orphan_orders_are_cancelled_and_foreign_orders_left_alone(trader: Trader, controller: Service) -> None:
    # Unique per test: the controller reports a cancelled orphan once per client id, whichever account it was on.
    orphan = client_order_id(f"a-position-force-deleted-in-{trader.namespace}", Purpose.ENTRY)
    send(
        trader,
        ("limit", "buy", "50000", {"clientOrderId": orphan}),
        ("limit", "buy", "50000", {"clientOrderId": "web_manual_1"}),
    )
    assert {orphan, "web_manual_1"} <= {o["clientOrderId"] for o in trader.orders()}  # both reached the exchange
    wait_for("the orphan to be cancelled", lambda: orphan not in open_orders(trader), 60, controller)
    assert [o["status"] for o in trader.orders() if o["clientOrderId"] == orphan] == ["CANCELED"]
    assert "web_manual_1" in open_orders(trader), "an order Warden did not create was touched"
    rows = wait_for("the audit row", lambda: audit_rows(trader, "DriftOrphanOrder"), 30, controller)
    assert [json.loads(r["detail"])["clientOrderId"] for r in rows] == [orphan]
    events = json.loads(trader.stack.kubectl("get", "events", "-n", trader.namespace, "-o", "json").stdout)
    assert any(e["reason"] == "DriftOrphanOrder" and orphan in e["message"] for e in events["items"])


@EACH_VENUE
def test_an_untracked_position_is_adopted_once_and_protected(trader: Trader, controller: Service) -> None:
    got = trader.stack.kubectl("get", "exchangeaccount", "paper", "-n", trader.namespace, "-o", "json")
    account = json.loads(got.stdout)
    account["spec"] |= {"untrackedPositions": "Adopt", "adoptionStopLossPercent": "2"}
    trader.apply({k: account[k] for k in ("apiVersion", "kind", "spec")} | {"metadata": {"name": "paper"}})
    send(trader, ("market", "buy", None, {"clientOrderId": "web_open_1"}))

    def adopted() -> list[dict[str, Any]]:
        found = trader.stack.kubectl("get", "positions", "-n", trader.namespace, "-o", "json").stdout
        return [p for p in json.loads(found)["items"] if p["spec"].get("adopted")]

    first = wait_for("the position to be adopted", adopted, 90, controller)
    name = first[0]["metadata"]["name"]
    assert name == "adopted-btcusdt-long-1"
    assert first[0]["spec"]["amount"] == "0.010" and first[0]["spec"]["side"] == "long"
    status = trader.wait_phase(name, "Protected", controller, timeout=60)
    stop = open_orders(trader)[status["stopOrder"]["clientOrderId"]]
    entry = trader.stack.paper_admin(f"/_paper/positions?apiKey={trader.account.api_key}")
    assert isinstance(entry, list) and entry
    assert stop["quantity"] == "0.010" and stop["side"] == "SELL"
    tick = Decimal("0.1")
    expected = (Decimal(entry[0]["entryPrice"]) * Decimal("0.98") / tick).to_integral_value(ROUND_FLOOR) * tick
    assert abs(Decimal(stop["triggerPrice"]) - expected) <= tick  # rounded to the tick, toward the loss side

    # More sweeps pass (the shared controller sweeps every few seconds): still exactly one adoption.
    before = sweeps(trader)
    wait_for("two more sweeps", lambda: sweeps(trader) >= before + 2, 60, controller)
    assert [p["metadata"]["name"] for p in adopted()] == [name]
    assert len(audit_rows(trader, "DriftUntrackedPosition")) == 1
    assert [r["type"] for r in audit_rows(trader, "PositionAdopted")] == ["PositionAdopted"]

    closing = '{"spec":{"state":"Closed"}}'
    trader.stack.kubectl("patch", "position", name, "-n", trader.namespace, "--type=merge", "-p", closing)
    closed = trader.wait_phase(name, "Closed", controller)
    assert closed["exitReason"] == "Requested"
    assert not trader.stack.paper_admin(f"/_paper/positions?apiKey={trader.account.api_key}")
