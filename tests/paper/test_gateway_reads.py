"""Warden's gateway reads over real ccxt against the paper exchange."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from controller.api.v1alpha1 import Side
from controller.exchange.binanceusdm import BinanceUsdm as Gateway
from controller.handlers.observer import reads_weight
from tests.paper.conftest import ExchangeFactory, PaperServer

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"


async def test_a_read_of_one_symbol_alone_asks_the_venue_for_that_symbols_position_only(
    paper: PaperServer, exchange: Any
) -> None:
    await exchange.create_order(BTC, "market", "buy", "0.010")
    await exchange.create_order(ETH, "market", "sell", "0.10")
    gateway = Gateway(exchange)
    whole = await gateway.snapshot(frozenset({BTC}))
    alone = await gateway.snapshot(frozenset({BTC}), every_position=False)
    stops = [r for r in await paper_requests(paper, exchange) if r["path"] == "/fapi/v1/openAlgoOrders"]
    bare = await gateway.snapshot(frozenset({BTC}), every_position=False, orders=False)
    assert whole.sizes == {(BTC, Side.LONG): Decimal("0.010"), (ETH, Side.SHORT): Decimal("0.10")}
    assert alone.sizes == {(BTC, Side.LONG): Decimal("0.010")} and alone.symbols == whole.symbols == {BTC}
    assert alone.taken_at > whole.taken_at
    assert bare.sizes == alone.sizes and bare.marks == alone.marks and bare.open_orders == {}
    rows = await paper_requests(paper, exchange)
    assert [r.get("symbol") for r in rows if r["path"] == "/fapi/v3/positionRisk"] == [None, "BTCUSDT", "BTCUSDT"]
    assert [r for r in rows if r["path"] == "/fapi/v1/openAlgoOrders"] == stops  # none read for ``bare``


async def test_resting_stops_count_against_the_accounts_conditional_cap(exchange: Any) -> None:
    """Binance caps an account's open algo orders at 200: the stops count (on every symbol), the regular orders not."""
    await exchange.create_order(BTC, "market", "buy", "0.010")
    await exchange.create_order(ETH, "market", "buy", "0.10")
    await exchange.create_order(BTC, "limit", "buy", "0.010", 60000)
    for symbol, amount, price in ((BTC, "0.010", 64000), (ETH, "0.10", 3000)):
        params = {"stopLossPrice": price, "reduceOnly": True, "workingType": "MARK_PRICE"}
        await exchange.create_order(symbol, "market", "sell", amount, None, params)
    gateway = Gateway(exchange)
    snapshot = await gateway.snapshot(frozenset({BTC, ETH}))
    assert len(snapshot.open_orders) == 3
    assert gateway.conditional_count(snapshot, BTC) == gateway.conditional_count(snapshot, ETH) == 2


async def paper_requests(paper: PaperServer, exchange: Any) -> list[dict[str, Any]]:
    status, logged = await paper.admin("GET", f"requests?apiKey={exchange.apiKey}")
    assert status == 200, logged
    rows: list[dict[str, Any]] = logged if isinstance(logged, list) else logged["requests"]
    return rows


async def test_an_accounts_positions_share_one_market_load_and_a_failed_one_for_a_second(
    paper: PaperServer, make_client: ExchangeFactory
) -> None:
    """After a failover every Position of an account asks for the markets at once: one request goes, and while
    the venue is in maintenance the account sends at most one a second, not one per Position."""
    gateway = Gateway(await make_client())
    rule = {"mode": "maintenance", "durationMs": 60_000, "method": "GET", "path": "/fapi/v1/exchangeInfo"}
    status, body = await paper.admin("POST", "faults", rule)
    assert status == 201, body
    answers = await asyncio.gather(*(gateway.load_markets() for _ in range(8)), return_exceptions=True)
    assert all(isinstance(answer, ccxt.OnMaintenance) for answer in answers), answers
    with pytest.raises(ccxt.OnMaintenance):
        await gateway.load_markets()  # within the second: the same answer, no request
    assert len(await market_loads(paper)) == 1
    await paper.admin("DELETE", "faults")
    await asyncio.sleep(1.1)
    await gateway.load_markets()
    await gateway.load_markets()  # loaded: nothing more to ask
    assert [r["status"] for r in await market_loads(paper)] == [503, 200]
    assert "BTC/USDT:USDT" in gateway.client.markets


async def market_loads(paper: PaperServer) -> list[dict[str, Any]]:
    return [r for r in await every_request(paper) if r["path"] == "/fapi/v1/exchangeInfo"]


async def every_request(paper: PaperServer) -> list[dict[str, Any]]:
    status, logged = await paper.admin("GET", "requests")
    assert status == 200, logged
    rows: list[dict[str, Any]] = logged if isinstance(logged, list) else logged["requests"]
    return rows


async def test_a_snapshot_with_no_regular_order_needed_reads_none_and_weighs_what_is_counted(
    paper: PaperServer, exchange: Any
) -> None:
    """Protected positions on BTC and ETH and nothing on SOL: the stops of all three are read, no regular open
    orders, and only SOL's mark on its own (BTC's and ETH's come with their positions). The venue's own weight
    for the read is what the observer counts for it."""
    await exchange.create_order(BTC, "market", "buy", "0.010")
    await exchange.create_order(ETH, "market", "buy", "0.10")
    for symbol, amount, price in ((BTC, "0.010", 60000), (ETH, "0.10", 3000)):
        params = {"stopLossPrice": price, "reduceOnly": True, "workingType": "MARK_PRICE"}
        await exchange.create_order(symbol, "market", "sell", amount, None, params)
    mark = Decimal((await exchange.fetch_mark_price(SOL))["info"]["markPrice"])
    resting = await exchange.create_order(SOL, "limit", "buy", "1", exchange.price_to_precision(SOL, mark * 9 / 10))
    gateway = Gateway(exchange)
    await gateway.load_markets()
    before = len(await every_request(paper))
    snapshot = await gateway.snapshot(frozenset({BTC, ETH, SOL}), regular=frozenset())
    rows = (await every_request(paper))[before:]  # (the marks are public: no API key)
    assert not [r for r in rows if r["path"] == "/fapi/v1/openOrders"]
    assert sorted(r["symbol"] for r in rows if r["path"] == "/fapi/v1/openAlgoOrders") == [
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
    ]
    assert [r["symbol"] for r in rows if r["path"] == "/fapi/v1/premiumIndex"] == ["SOLUSDT"]
    assert snapshot.reads is not None and sum(r["weight"] for r in rows) == reads_weight(snapshot.reads) == 5 + 3 + 1
    assert set(snapshot.marks) == {BTC, ETH, SOL} and all(snapshot.marks.values())
    assert len(snapshot.open_orders) == 2 and all(o.conditional for o in snapshot.open_orders.values())
    assert not snapshot.lists_regular(SOL)  # the resting order is not read, and the snapshot says so
    # A Position with a resting entry on SOL: its regular orders are read (1 weight), and listed.
    snapshot = await gateway.snapshot(frozenset({BTC, ETH, SOL}), regular=frozenset({SOL}))
    assert snapshot.lists_regular(SOL) and not snapshot.lists_regular(BTC)
    assert resting["clientOrderId"] in snapshot.open_orders
    assert snapshot.reads is not None and reads_weight(snapshot.reads) == 5 + 3 + 1 + 1


async def test_marks_from_the_positions_are_the_venues_marks(paper: PaperServer, exchange: Any) -> None:
    await exchange.create_order(BTC, "market", "buy", "0.010")
    await paper.set_price("BTCUSDT", "65432.1")
    gateway = Gateway(exchange)
    carried = await gateway.snapshot(frozenset({BTC}), regular=frozenset())
    alone = await gateway.snapshot(frozenset({BTC}), every_position=False, orders=False)
    assert carried.marks == alone.marks and carried.marks[BTC] == Decimal(
        (await exchange.fetch_mark_price(BTC))["info"]["markPrice"]
    )
    assert carried.reads is not None and not carried.reads.marks  # no premiumIndex read for it
