"""The venue's account and matching model as the real ccxt ``binanceusdm`` sees it over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from tests.paper.conftest import PaperServer

BTC = "BTC/USDT:USDT"


async def _prices(paper: PaperServer, **fields: str) -> dict[str, Any]:
    status, body = await paper.admin("POST", "price", {"symbol": "BTCUSDT", **fields})
    assert status == 200, body
    result: dict[str, Any] = body
    return result


async def _refused(cls: type[BaseException], code: int, call: Any, *args: Any) -> None:
    with pytest.raises(cls) as exc_info:
        await call(*args)
    assert type(exc_info.value) is cls, f"expected exactly {cls.__name__}, got {type(exc_info.value).__name__}"
    assert str(code) in str(exc_info.value)


async def test_hedge_mode_positions_and_mode_switch(exchange: Any) -> None:
    await exchange.set_position_mode(True)
    assert (await exchange.fetch_position_mode())["hedged"] is True
    await exchange.create_order(BTC, "market", "buy", 0.02, None, {"hedged": True})
    await exchange.create_order(BTC, "market", "sell", 0.01, None, {"hedged": True})
    positions = await exchange.fetch_positions([BTC])
    assert sorted((p["side"], p["contracts"], p["hedged"]) for p in positions) == [
        ("long", 0.02, True),
        ("short", 0.01, True),
    ]
    await _refused(ccxt.OperationRejected, -4068, exchange.set_position_mode, False)
    # ccxt turns a hedged reduce-only sell into side=SELL&positionSide=LONG
    close = await exchange.create_order(BTC, "market", "sell", 0.05, None, {"hedged": True, "reduceOnly": True})
    assert (close["status"], close["filled"], close["remaining"]) == ("expired", 0.02, 0.03)
    rows = await exchange.fapiPrivateV3GetPositionRisk({"symbol": "BTCUSDT"})
    assert [(r["positionSide"], r["positionAmt"]) for r in rows] == [("LONG", "0.000"), ("SHORT", "-0.010")]
    await _refused(ccxt.OperationRejected, -4061, exchange.create_order, BTC, "market", "buy", 0.01)


async def test_partial_fill_then_cancel_and_time_in_force(exchange: Any, paper: PaperServer) -> None:
    order = await exchange.create_order(BTC, "limit", "buy", 0.25, 64000, {"clientOrderId": "part-1"})
    await paper.set_price("BTCUSDT", "63990")  # bookDepth: 0.100 BTC per price update
    partial = await exchange.fetch_order(order["id"], BTC)
    assert (partial["status"], partial["filled"], partial["remaining"], partial["average"]) == (
        "open",
        0.1,
        0.15,
        64000.0,
    )
    assert partial["info"]["status"] == "PARTIALLY_FILLED"
    cancelled = await exchange.cancel_order(order["id"], BTC)
    assert (cancelled["status"], cancelled["filled"]) == ("canceled", 0.1)
    expired = await exchange.create_order(BTC, "limit", "buy", 0.01, 63000, {"timeInForce": "IOC"})
    assert (expired["status"], expired["filled"]) == ("expired", 0.0)
    await _refused(
        ccxt.OrderNotFillable, -5022, exchange.create_order, BTC, "limit", "buy", 0.01, 64500, {"postOnly": True}
    )
    resting = await exchange.create_order(BTC, "limit", "sell", 0.01, 64500, {"postOnly": True})
    assert (resting["status"], resting["postOnly"], resting["timeInForce"]) == ("open", True, "PO")
    trades = await exchange.fetch_my_trades(BTC)
    assert [(t["takerOrMaker"], t["amount"], t["fee"]["cost"]) for t in trades] == [("maker", 0.1, 1.28)]


async def test_mark_and_last_prices_are_separate(exchange: Any, paper: PaperServer) -> None:
    body = await _prices(paper, mark="65000", last="65100.5")
    assert (body["markPrice"], body["lastPrice"]) == ("65000.00000000", "65100.50000000")
    assert (await exchange.fetch_mark_price(BTC))["markPrice"] == 65000.0
    assert (await exchange.fetch_ticker(BTC))["last"] == 65100.5
    order = await exchange.create_order(BTC, "market", "buy", 0.01)
    assert order["average"] == 65100.5  # market orders take at the last price
    await exchange.create_order(
        BTC, "market", "sell", 0.01, None, {"stopLossPrice": 64000, "reduceOnly": True, "workingType": "MARK_PRICE"}
    )
    await _prices(paper, last="63900")
    assert len(await exchange.fetch_open_orders(BTC, params={"trigger": True})) == 1  # the mark has not moved
    await _prices(paper, mark="63950")
    assert await exchange.fetch_open_orders(BTC, params={"trigger": True}) == []
    await _prices(paper, mark="63950", last="67200")  # last above the PERCENT_PRICE band of the mark
    await _refused(ccxt.OperationRejected, -4131, exchange.create_order, BTC, "market", "buy", 0.01)


async def test_more_errors_as_ccxt_classes(exchange: Any, paper: PaperServer) -> None:
    await _refused(
        ccxt.InvalidOrder,
        -1013,
        exchange.fapiPrivatePostOrder,
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "121"},
    )
    await exchange.create_order(BTC, "market", "buy", 0.01)
    paper.venue.max_open_algo_orders = 1
    await exchange.create_order(BTC, "market", "sell", 0.01, None, {"stopLossPrice": 60000, "reduceOnly": True})
    await _refused(
        ccxt.OperationRejected,
        -4045,
        exchange.create_order,
        BTC,
        "market",
        "sell",
        0.01,
        None,
        {"stopLossPrice": 61000, "reduceOnly": True},
    )
    await exchange.set_leverage(125, BTC)
    await _refused(ccxt.OperationRejected, -2027, exchange.create_order, BTC, "market", "buy", 1)


async def test_isolated_position_is_liquidated_by_an_autoclose_order(exchange: Any, paper: PaperServer) -> None:
    await exchange.set_margin_mode("isolated", BTC)
    await exchange.create_order(BTC, "market", "buy", 0.1)
    (position,) = await exchange.fetch_positions([BTC])
    assert position["marginMode"] == "isolated" and position["collateral"] == 325.0
    assert 61997.9 < position["liquidationPrice"] < 61998.0
    await paper.set_price("BTCUSDT", "61000")
    assert await exchange.fetch_positions([BTC]) == []
    orders = await exchange.fetch_orders(BTC)
    forced = orders[-1]
    assert forced["clientOrderId"].startswith("autoclose-")
    assert (forced["status"], forced["type"], forced["timeInForce"], forced["reduceOnly"]) == (
        "closed",
        "limit",
        "IOC",
        True,
    )
    trades = await exchange.fetch_my_trades(BTC)
    assert (trades[-1]["price"], trades[-1]["order"]) == (61998.0, forced["id"])
    realized = Decimal(trades[-1]["info"]["realizedPnl"])
    assert realized == Decimal("0.1") * (Decimal("61998") - 65000)


async def test_ohlcv_from_the_price_path(exchange: Any, paper: PaperServer) -> None:
    await paper.set_price("BTCUSDT", "65500")
    await paper.set_price("BTCUSDT", "64800")
    await exchange.create_order(BTC, "market", "buy", 0.01)
    candles = await exchange.fetch_ohlcv(BTC, "1m")
    timestamp, open_, high, low, close, volume = candles[-1]
    assert timestamp % 60_000 == 0
    assert (high, low, close) == (65500.0, 64800.0, 64800.0)
    assert volume >= 0.01 and open_ in (65000.0, 65500.0, 64800.0)
    assert len(await exchange.fetch_ohlcv(BTC, "1h", limit=5)) == 1
    with pytest.raises(ccxt.BadRequest):
        await exchange.fapiPublicGetKlines({"symbol": "BTCUSDT", "interval": "7m"})
