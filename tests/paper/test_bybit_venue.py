"""The Bybit front beside the Binance one: the admin API on Bybit accounts, liquidation as Bybit reports it, state
kept across a restart."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt
import pytest

from paper.bybit.front import MAX_ACTIVE_PER_SYMBOL, BybitFront, OrderRequest
from paper.bybit.vocab import OrderType, Side
from paper.errors import VenueError
from paper.models import VenueName
from paper.services import PaperOptions
from paper.venue import Venue
from tests.paper.bybit_client import bybit_client
from tests.paper.conftest import PaperServer, bybit_account, serve
from tests.paper.test_bybit_conformance import BTC

LINEAR = {"category": "linear", "symbol": "BTCUSDT"}
DAY_MS = 24 * 3600 * 1000


async def test_accounts_speak_one_venue(paper: PaperServer) -> None:
    status, body = await paper.admin("POST", "accounts", {"apiKey": "v", "secret": "s", "venue": "kraken"})
    assert status == 400 and "venue" in body["error"]
    status, body = await paper.admin("POST", "accounts", {"apiKey": "v", "secret": "s", "venue": "bybit"})
    assert (status, body["venue"]) == (201, "bybit")
    status, body = await paper.admin("POST", "accounts", {"apiKey": "v", "secret": "s"})  # the same key on Binance
    assert status == 409


async def test_the_admin_api_works_on_bybit_accounts(bybit: Any, paper: PaperServer) -> None:
    x = bybit
    entry = await x.create_order(BTC, "market", "buy", 0.02, None, {"clientOrderId": "ad-entry"})
    await x.create_order(
        BTC, "market", "sell", 0.02, None, {"clientOrderId": "ad-sl", "stopLossPrice": 60000, "reduceOnly": True}
    )
    api_key = x.apiKey
    status, body = await paper.admin(
        "POST", "cancel-algo", {"apiKey": api_key, "symbol": "BTCUSDT", "orderLinkId": "ad-sl"}
    )
    assert status == 200, body
    assert (body["orderLinkId"], body["orderStatus"], body["cancelType"]) == ("ad-sl", "Deactivated", "CancelByAdmin")
    status, body = await paper.admin(
        "POST", "cancel-algo", {"apiKey": api_key, "symbol": "BTCUSDT", "orderLinkId": "ad-entry"}
    )
    assert status == 404  # not a conditional order
    _, orders = await paper.admin("GET", f"orders?apiKey={api_key}")
    assert [o["clientOrderId"] for o in orders] == ["ad-entry", "ad-sl"]
    _, trades = await paper.admin("GET", f"trades?apiKey={api_key}")
    assert [t["clientOrderId"] for t in trades] == ["ad-entry"]
    # The trade as the account's API names it: Bybit's execId, what a client records.
    assert [t["venueTradeId"] for t in trades] == [t["id"] for t in await x.fetch_my_trades(BTC)]
    _, positions = await paper.admin("GET", f"positions?apiKey={api_key}")
    assert [(p["symbol"], p["positionAmt"]) for p in positions] == [("BTCUSDT", "0.020")]
    status, body = await paper.admin("POST", "external-close", {"apiKey": api_key, "symbol": "BTCUSDT"})
    assert status == 200 and body["closed"] is True
    assert (body["order"]["createType"], body["order"]["orderStatus"]) == ("CreateByClosing", "Filled")
    assert await x.fetch_positions() == []
    _, requests = await paper.admin("GET", f"requests?apiKey={api_key}")
    creates = [r for r in requests if r["path"] == "/v5/order/create"]
    assert [r["clientOrderId"] for r in creates] == ["ad-entry", "ad-sl"]
    _, faults = await paper.admin("GET", "faults")
    assert faults["counters"] == {"cancel_algo": 1, "external_close": 1}
    assert entry["id"] in {o["info"]["orderId"] for o in await x.fetch_closed_orders(BTC)}


async def test_a_liquidation_is_a_bust_trade(bybit: Any, paper: PaperServer) -> None:
    x = bybit
    await x.set_leverage(50, BTC)
    await x.create_order(BTC, "market", "buy", 1, None, {"clientOrderId": "lq-entry"})
    await x.create_order(BTC, "limit", "buy", 0.01, 40000, {"clientOrderId": "lq-rest"})
    await paper.set_price("BTCUSDT", "50000")
    assert await x.fetch_positions() == []
    assert [t["order"] for t in await x.fetch_my_trades(BTC)] == [
        (await x.privateGetV5OrderRealtime({**LINEAR, "orderLinkId": "lq-entry"}))["result"]["list"][0]["orderId"]
    ]  # ccxt asks for execType=Trade: the bust trade is not among them
    busts = (await x.privateGetV5ExecutionList({**LINEAR, "execType": "BustTrade"}))["result"]["list"]
    assert [(b["execType"], b["createType"], b["side"], b["execQty"], b["orderLinkId"]) for b in busts] == [
        ("BustTrade", "CreateByLiq", "Sell", "1.000", "")
    ]
    rest = (await x.privateGetV5OrderRealtime({**LINEAR, "orderLinkId": "lq-rest"}))["result"]["list"][0]
    assert rest["orderStatus"] == "Cancelled"
    with pytest.raises(ccxt.InsufficientFunds):
        await x.create_order(BTC, "market", "buy", 1, None)


async def test_bybit_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "paper.json"
    async with serve(options=PaperOptions(state_path=path)) as server:
        api_key, secret = await bybit_account(server)
        x = bybit_client(server.base_url, api_key, secret)
        try:
            await x.load_markets()
            await x.set_margin_mode("isolated", BTC)
            await x.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "rs-entry"})
            await x.create_order(
                BTC,
                "market",
                "sell",
                0.01,
                None,
                {"clientOrderId": "rs-sl", "stopLossPrice": 60000, "reduceOnly": True},
            )
            await x.privatePostV5PositionTradingStop(
                {**LINEAR, "tpslMode": "Full", "positionIdx": 0, "takeProfit": "70000"}
            )
            await asyncio.sleep(0.3)
        finally:
            await x.close()
    async with serve(options=PaperOptions(state_path=path)) as server:
        x = bybit_client(server.base_url, api_key, secret)
        try:
            await x.load_markets()
            [row] = await x.fetch_positions([BTC])
            assert (row["contracts"], row["info"]["takeProfit"]) == (0.01, "70000.00")
            stop = (await x.privateGetV5OrderRealtime({**LINEAR, "orderLinkId": "rs-sl"}))["result"]["list"][0]
            assert stop["orderStatus"] == "Untriggered"
            with pytest.raises(ccxt.InvalidOrder):  # 110072: the orderLinkId is still taken
                await x.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "rs-entry"})
            with pytest.raises(ccxt.MarginModeAlreadySet):
                await x.set_margin_mode("isolated", BTC)
            await server.set_price("BTCUSDT", "59000")  # the restored stop still triggers; the TP goes with it
            assert await x.fetch_positions() == [] and await x.fetch_open_orders(BTC) == []
        finally:
            await x.close()


async def test_history_keeps_cancelled_orders_a_day_and_filled_ones_a_week(bybit: Any, paper: PaperServer) -> None:
    x = bybit
    await x.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "h-filled"})
    rest = await x.create_order(BTC, "limit", "buy", 0.01, 60000, {"clientOrderId": "h-cancelled"})
    await x.cancel_order(rest["id"], BTC)
    await paper.admin("POST", "clock", {"mode": "manual"})

    async def history() -> set[str]:
        await x.load_time_difference()  # the client follows the venue's clock
        answer = await x.privateGetV5OrderHistory({**LINEAR, "startTime": paper.venue.now() - 6 * DAY_MS})
        return {o["orderLinkId"] for o in answer["result"]["list"]}

    assert await history() == {"h-filled", "h-cancelled"}
    await paper.admin("POST", "clock", {"advance_ms": DAY_MS + 1000})
    assert await history() == {"h-filled"}
    # realtime still finds it by orderLinkId (among the newest 500 closed orders)
    found = await x.privateGetV5OrderRealtime({**LINEAR, "orderLinkId": "h-cancelled"})
    assert [o["orderStatus"] for o in found["result"]["list"]] == ["Cancelled"]


def test_500_active_orders_per_symbol_and_no_more() -> None:
    venue = Venue()
    account, _ = venue.create_account("k", "s", Decimal(10_000_000), VenueName.BYBIT)
    front = BybitFront(venue)

    def rest(n: int) -> None:
        qty, price = Decimal("0.01"), Decimal(30000 + n)
        front.place_order(
            account, OrderRequest(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT, qty=qty, price=price)
        )

    for n in range(MAX_ACTIVE_PER_SYMBOL):
        rest(n)
    with pytest.raises(VenueError) as refused:
        rest(MAX_ACTIVE_PER_SYMBOL)
    assert refused.value.code == 110020
