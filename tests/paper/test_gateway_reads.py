"""Warden's gateway reads over real ccxt against the paper exchange."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from controller.api.v1alpha1 import Side
from controller.exchange.binanceusdm import BinanceUsdm as Gateway
from tests.paper.conftest import PaperServer

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


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


async def paper_requests(paper: PaperServer, exchange: Any) -> list[dict[str, Any]]:
    status, logged = await paper.admin("GET", f"requests?apiKey={exchange.apiKey}")
    assert status == 200, logged
    rows: list[dict[str, Any]] = logged if isinstance(logged, list) else logged["requests"]
    return rows
