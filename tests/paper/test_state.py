"""``--state FILE``: the venue comes back after a restart with its accounts, books, ids and clock."""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal
from pathlib import Path

import ccxt.async_support as ccxt
import pytest

from controller.exchange.client import make_exchange
from paper.models import OrderRequest
from paper.services import PaperOptions
from paper.state import restore, snapshot
from paper.venue import Venue
from tests.paper.conftest import serve

BTC = "BTC/USDT:USDT"


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "paper.json"
    options = PaperOptions(state_path=path)
    async with serve(options=options) as server:
        await server.create_account("st-key", "st-secret")
        await server.set_price("BTCUSDT", "64000")
        exchange = make_exchange("binanceusdm", "st-key", "st-secret", base_url=server.base_url)
        try:
            await exchange.load_markets()
            entry = await exchange.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "st-e"})
            params = {"stopLossPrice": 60000, "reduceOnly": True, "clientOrderId": "st-sl"}
            stop = await exchange.create_order(BTC, "market", "sell", 0.01, None, params)
            await asyncio.sleep(0.3)  # the debounced write, before shutdown writes again
            assert path.exists()
        finally:
            await exchange.close()
    assert os.listdir(tmp_path) == ["paper.json"]  # no temp file left behind

    async with serve(options=PaperOptions(state_path=path)) as server:
        assert server.venue.marks["BTCUSDT"] == Decimal(64000)
        exchange = make_exchange("binanceusdm", "st-key", "st-secret", base_url=server.base_url)
        try:
            await exchange.load_markets()
            [position] = await exchange.fetch_positions([BTC])
            assert (position["contracts"], position["entryPrice"]) == (0.01, 64000.0)
            again = await exchange.fetch_order(None, BTC, {"clientOrderId": "st-e"})
            assert (again["id"], again["status"]) == (entry["id"], "closed")
            [open_stop] = await exchange.fetch_open_orders(BTC, params={"trigger": True})
            assert open_stop["id"] == stop["id"]
            with pytest.raises(ccxt.InvalidOrder):  # -4116: the client id is still taken
                await exchange.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "st-e"})
            later = await exchange.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "st-2"})
            assert int(later["id"]) > int(entry["id"])  # ids continue, never reused
            await server.set_price("BTCUSDT", "59000")  # the restored stop still triggers
            assert await exchange.fetch_positions([BTC]) != []  # 0.02 long, 0.01 closed by the stop
            status, rows = await server.admin("GET", "orders?apiKey=st-key")
            assert status == 200 and [r["clientOrderId"] for r in rows][:2] == ["st-e", "st-sl"]
        finally:
            await exchange.close()


def test_snapshot_round_trip_keeps_shared_records_shared() -> None:
    venue = Venue()
    account, _ = venue.create_account("k", "s", Decimal(1000))
    venue.set_mark_price("BTCUSDT", Decimal("65000"))
    order = venue.place_order(
        account, OrderRequest(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=Decimal("0.01"))
    )
    saved = json.loads(json.dumps(snapshot(venue)))
    fresh = Venue()
    restore(fresh, saved)
    restored = fresh.accounts["k"]
    assert restored == account and restored is not account
    assert fresh.order_log == [restored.orders[order.order_id]]
    assert fresh.order_log[0] is restored.orders[order.order_id]  # one record, as in the running venue
    assert fresh.trade_log[0] is restored.trades[0]
    assert fresh.marks == venue.marks
    with pytest.raises(ValueError):
        restore(Venue(), {**saved, "format": 99})


def test_restored_accounts_rebuild_their_open_order_indexes() -> None:
    venue = Venue()
    account, _ = venue.create_account("k", "s", Decimal(100000))
    resting = venue.place_order(
        account,
        OrderRequest(
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            quantity=Decimal("0.01"),
            price=Decimal(60000),
            time_in_force="GTC",
        ),
    )
    venue.place_order(account, OrderRequest(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=Decimal("0.01")))
    fresh = Venue()
    restore(fresh, json.loads(json.dumps(snapshot(venue))))
    restored = fresh.accounts["k"]
    assert list(restored.open_orders) == [resting.order_id]  # the filled market order is not open
    assert restored.open_orders[resting.order_id] is restored.orders[resting.order_id]
    assert [o.order_id for o in fresh.open_orders(restored, "BTCUSDT")] == [resting.order_id]
