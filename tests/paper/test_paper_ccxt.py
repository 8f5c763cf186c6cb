"""The paper exchange driven by the real, unmodified ccxt ``binanceusdm`` over HTTP on 127.0.0.1."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from tests.paper.conftest import ExchangeFactory, PaperServer

BTC = "BTC/USDT:USDT"
SOL = "SOL/USDT:USDT"


def _raises_exactly(exc_info: pytest.ExceptionInfo[BaseException], cls: type[BaseException]) -> None:
    assert type(exc_info.value) is cls, f"expected exactly {cls.__name__}, got {type(exc_info.value).__name__}"


async def _long(exchange: Any, amount: float = 0.01, cid: str | None = None) -> dict[str, Any]:
    params = {"clientOrderId": cid} if cid else {}
    order: dict[str, Any] = await exchange.create_order(BTC, "market", "buy", amount, None, params)
    return order


async def _stop(exchange: Any, cid: str, price: float, amount: float = 0.01) -> dict[str, Any]:
    params = {"stopLossPrice": price, "reduceOnly": True, "workingType": "MARK_PRICE", "clientOrderId": cid}
    order: dict[str, Any] = await exchange.create_order(BTC, "market", "sell", amount, None, params)
    return order


async def test_load_markets_gives_the_four_symbols_with_precision_and_limits(exchange: Any) -> None:
    markets = exchange.markets
    assert sorted(markets) == sorted([BTC, "ETH/USDT:USDT", SOL, "SEI/USDT:USDT"])
    btc = markets[BTC]
    assert (btc["type"], btc["linear"], btc["settle"], btc["contractSize"]) == ("swap", True, "USDT", 1.0)
    assert btc["precision"]["amount"] == 0.001 and btc["precision"]["price"] == 0.1
    assert btc["limits"]["amount"] == {"min": 0.001, "max": 1000.0}
    assert btc["limits"]["market"] == {"min": 0.001, "max": 120.0}
    assert btc["limits"]["cost"]["min"] == 100.0
    assert btc["active"] is True
    assert "TAKE_PROFIT_MARKET" in btc["info"]["orderTypes"]
    sol = markets[SOL]
    assert sol["precision"]["amount"] == 1.0 and sol["precision"]["price"] == 0.01
    assert markets["SEI/USDT:USDT"]["precision"]["price"] == 0.0001
    assert markets["ETH/USDT:USDT"]["limits"]["cost"]["min"] == 20.0


async def test_public_market_data(exchange: Any, paper: PaperServer) -> None:
    await paper.set_price("BTCUSDT", "65000.5")
    assert abs(await exchange.fetch_time() - paper.venue.now()) < 5000
    mark = await exchange.fetch_mark_price(BTC)
    assert mark["markPrice"] == 65000.5
    ticker = await exchange.fetch_ticker(BTC)
    assert ticker["last"] == 65000.5 and ticker["symbol"] == BTC
    marks = await exchange.fetch_mark_prices()
    assert set(marks) == set(exchange.markets)
    funding = await exchange.fetch_funding_rate(BTC)
    assert funding["fundingRate"] == 0.0001


async def test_market_buy_opens_long_at_mark_and_charges_taker_fee(exchange: Any) -> None:
    order = await _long(exchange, 0.01, "entry-1")
    assert (order["status"], order["filled"], order["average"]) == ("closed", 0.01, 65000.0)
    assert order["clientOrderId"] == "entry-1"
    positions = await exchange.fetch_positions([BTC])
    assert len(positions) == 1
    pos = positions[0]
    assert (pos["side"], pos["contracts"], pos["entryPrice"], pos["marginMode"]) == ("long", 0.01, 65000.0, "cross")
    balance = await exchange.fetch_balance()
    fee = Decimal("650") * Decimal("0.0005")
    assert Decimal(str(balance["USDT"]["total"])) == Decimal("10000") - fee
    assert Decimal(str(balance["USDT"]["used"])) == Decimal("32.5")  # 650 / leverage 20
    trades = await exchange.fetch_my_trades(BTC)
    assert [(t["side"], t["takerOrMaker"], t["fee"]["cost"]) for t in trades] == [("buy", "taker", 0.325)]


async def test_reduce_only_stop_is_listed_fetched_and_cancelled(exchange: Any, paper: PaperServer) -> None:
    await _long(exchange)
    created = await _stop(exchange, "sl-1", 64000)
    assert created["clientOrderId"] == "sl-1" and created["status"] == "open"
    open_triggers = await exchange.fetch_open_orders(BTC, params={"trigger": True})
    assert [(o["clientOrderId"], o["triggerPrice"], o["reduceOnly"]) for o in open_triggers] == [
        ("sl-1", 64000.0, True)
    ]
    assert open_triggers[0]["info"]["orderType"] == "STOP_MARKET"
    assert open_triggers[0]["info"]["workingType"] == "MARK_PRICE"
    assert await exchange.fetch_open_orders(BTC) == []  # the regular book does not hold algo orders
    fetched = await exchange.fetch_order(None, BTC, {"trigger": True, "clientOrderId": "sl-1"})
    assert (fetched["id"], fetched["status"], fetched["amount"]) == (created["id"], "open", 0.01)
    by_id = await exchange.fetch_order(created["id"], BTC, {"trigger": True})
    assert by_id["clientOrderId"] == "sl-1"
    await exchange.cancel_order(None, BTC, {"trigger": True, "clientOrderId": "sl-1"})
    assert await exchange.fetch_open_orders(BTC, params={"trigger": True}) == []
    cancelled = await exchange.fetch_order(None, BTC, {"trigger": True, "clientOrderId": "sl-1"})
    assert cancelled["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound) as exc_info:
        await exchange.cancel_order(None, BTC, {"trigger": True, "clientOrderId": "sl-1"})
    _raises_exactly(exc_info, ccxt.OrderNotFound)


async def test_stop_triggers_when_the_mark_moves_through_it(exchange: Any, paper: PaperServer) -> None:
    await _long(exchange)
    await _stop(exchange, "sl-2", 64000)
    await paper.set_price("BTCUSDT", "63999.9")
    assert await exchange.fetch_positions([BTC]) == []
    trades = await exchange.fetch_my_trades(BTC)
    assert [t["side"] for t in trades] == ["buy", "sell"]
    exit_trade = trades[1]
    assert exit_trade["price"] == 63999.9
    assert Decimal(exit_trade["info"]["realizedPnl"]) == Decimal("0.01") * (Decimal("63999.9") - 65000)
    stop = await exchange.fetch_order(None, BTC, {"trigger": True, "clientOrderId": "sl-2"})
    assert stop["status"] == "closed" and stop["info"]["algoStatus"] == "FINISHED"
    assert stop["info"]["actualOrderId"] == exit_trade["order"]
    child = await exchange.fetch_order(exit_trade["order"], BTC)
    assert (child["status"], child["filled"], child["reduceOnly"]) == ("closed", 0.01, True)
    assert child["info"]["origType"] == "STOP_MARKET"
    balance = await exchange.fetch_balance()
    expected = Decimal("10000") - Decimal("0.325") - Decimal("10.001") - Decimal("0.3199995")
    assert Decimal(str(balance["USDT"]["total"])) == expected.quantize(Decimal("0.00000001"))


async def test_take_profit_and_close_position_stop(exchange: Any, paper: PaperServer) -> None:
    await _long(exchange, 0.02)
    tp = await exchange.create_order(
        BTC, "market", "sell", 0.01, None, {"takeProfitPrice": 66000, "reduceOnly": True, "clientOrderId": "tp-1"}
    )
    assert tp["info"]["orderType"] == "TAKE_PROFIT_MARKET" and tp["takeProfitPrice"] == 66000.0
    close_all = await exchange.create_order(
        BTC,
        "TAKE_PROFIT_MARKET",
        "sell",
        None,
        None,
        {"stopPrice": 67000, "closePosition": True, "clientOrderId": "cp"},
    )
    assert close_all["info"]["closePosition"] is True
    await paper.set_price("BTCUSDT", "66000")
    positions = await exchange.fetch_positions([BTC])
    assert positions[0]["contracts"] == 0.01
    open_algos = await exchange.fetch_open_orders(BTC, params={"trigger": True})
    assert [o["clientOrderId"] for o in open_algos] == ["cp"]
    await paper.set_price("BTCUSDT", "67000.1")
    assert await exchange.fetch_positions([BTC]) == []
    trades = await exchange.fetch_my_trades(BTC)
    assert [(t["side"], t["amount"], t["price"]) for t in trades] == [
        ("buy", 0.02, 65000.0),
        ("sell", 0.01, 66000.0),
        ("sell", 0.01, 67000.1),
    ]
    assert (await exchange.fetch_order(None, BTC, {"trigger": True, "clientOrderId": "cp"}))["status"] == "closed"


async def test_fetch_regular_order_by_client_id_and_unknown_orders(exchange: Any) -> None:
    placed = await _long(exchange, 0.01, "entry-by-cid")
    fetched = await exchange.fetch_order(None, BTC, {"clientOrderId": "entry-by-cid"})
    assert (fetched["id"], fetched["status"], fetched["filled"]) == (placed["id"], "closed", 0.01)
    with pytest.raises(ccxt.OrderNotFound) as exc_info:
        await exchange.fetch_order(None, BTC, {"clientOrderId": "never-placed"})
    _raises_exactly(exc_info, ccxt.OrderNotFound)
    with pytest.raises(ccxt.OrderNotFound) as exc_info:
        await exchange.cancel_order(placed["id"], BTC)  # already filled: -2011
    _raises_exactly(exc_info, ccxt.OrderNotFound)
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.fetch_order(None, BTC, {"trigger": True, "clientOrderId": "never-placed"})


async def test_duplicate_client_order_id_is_rejected_even_after_fill(exchange: Any) -> None:
    await _long(exchange, 0.01, "dup-1")
    with pytest.raises(ccxt.InvalidOrder) as exc_info:  # -4116, after the exception-map merge
        await _long(exchange, 0.01, "dup-1")
    _raises_exactly(exc_info, ccxt.InvalidOrder)
    assert "-4116" in str(exc_info.value)
    await _stop(exchange, "dup-sl", 60000)
    await exchange.cancel_order(None, BTC, {"trigger": True, "clientOrderId": "dup-sl"})
    with pytest.raises(ccxt.InvalidOrder) as exc_info:
        await _stop(exchange, "dup-sl", 60000)
    _raises_exactly(exc_info, ccxt.InvalidOrder)
    assert "-4116" in str(exc_info.value)


async def test_reduce_only_that_would_increase_is_rejected(exchange: Any) -> None:
    with pytest.raises(ccxt.InvalidOrder) as exc_info:  # flat: nothing to reduce (-2022)
        await exchange.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True})
    _raises_exactly(exc_info, ccxt.InvalidOrder)
    assert "-2022" in str(exc_info.value)
    await _long(exchange)
    with pytest.raises(ccxt.InvalidOrder) as exc_info:  # long: a reduce-only buy would increase it
        await exchange.create_order(BTC, "market", "buy", 0.01, None, {"reduceOnly": True})
    _raises_exactly(exc_info, ccxt.InvalidOrder)
    assert "-2022" in str(exc_info.value)


async def test_insufficient_margin(exchange: Any) -> None:
    with pytest.raises(ccxt.InsufficientFunds) as exc_info:  # 5 BTC * 65000 / 20 = 16250 > 10000
        await exchange.create_order(BTC, "market", "buy", 5, None)
    _raises_exactly(exc_info, ccxt.InsufficientFunds)
    assert await exchange.fetch_positions() == []


async def test_min_notional_and_endpoint_and_precision_errors(exchange: Any) -> None:
    with pytest.raises(ccxt.InvalidOrder) as exc_info:  # 0.001 * 65000 = 65 < 100
        await exchange.create_order(BTC, "market", "buy", 0.001)
    _raises_exactly(exc_info, ccxt.InvalidOrder)
    assert "-4164" in str(exc_info.value)
    with pytest.raises(ccxt.InvalidOrder) as exc_info:  # conditional type on the regular endpoint
        await exchange.fapiPrivatePostOrder(
            {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "quantity": "0.01", "stopPrice": "60000"}
        )
    _raises_exactly(exc_info, ccxt.InvalidOrder)
    assert "-4120" in str(exc_info.value)
    with pytest.raises(ccxt.BadRequest) as exc_info:  # ccxt would truncate; the raw API does not
        await exchange.fapiPrivatePostOrder(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0101"}
        )
    _raises_exactly(exc_info, ccxt.BadRequest)
    assert "-1111" in str(exc_info.value)
    with pytest.raises(ccxt.BadSymbol):
        await exchange.fapiPrivatePostOrder({"symbol": "DOGEUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"})


async def test_immediately_triggering_stop_is_rejected(exchange: Any) -> None:
    await _long(exchange)
    with pytest.raises(ccxt.OrderImmediatelyFillable) as exc_info:  # -2021
        await _stop(exchange, "sl-above-mark", 65500)
    _raises_exactly(exc_info, ccxt.OrderImmediatelyFillable)
    assert await exchange.fetch_open_orders(BTC, params={"trigger": True}) == []


async def test_authentication_failures(make_client: ExchangeFactory, paper: PaperServer) -> None:
    await paper.create_account("auth-key", "right-secret")
    wrong_secret = await make_client("auth-key", "wrong-secret", register=False)
    with pytest.raises(ccxt.AuthenticationError) as exc_info:  # -1022
        await wrong_secret.fetch_balance()
    _raises_exactly(exc_info, ccxt.AuthenticationError)
    assert "-1022" in str(exc_info.value)
    unknown = await make_client("no-such-key", "whatever", register=False)
    with pytest.raises(ccxt.AuthenticationError) as exc_info:  # -2015, HTTP 401
        await unknown.fetch_balance()
    _raises_exactly(exc_info, ccxt.AuthenticationError)
    assert "-2015" in str(exc_info.value)
    stale = await make_client("auth-key", "right-secret", register=False)
    stale.options["timeDifference"] = 120_000  # requests stamped two minutes in the past
    with pytest.raises(ccxt.InvalidNonce) as exc_info:  # -1021
        await stale.fetch_balance()
    _raises_exactly(exc_info, ccxt.InvalidNonce)


async def test_replica_header_is_recorded(make_client: ExchangeFactory, paper: PaperServer) -> None:
    client = await make_client(headers={"X-Warden-Replica": "warden-0", "X-Warden-Epoch": "7"})
    await client.load_markets()
    await client.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "rep-entry"})
    await client.create_order(
        BTC, "market", "sell", 0.01, None, {"stopLossPrice": 60000, "reduceOnly": True, "clientOrderId": "rep-sl"}
    )
    status, rows = await paper.admin("GET", "orders")
    assert status == 200
    by_cid = {(r["kind"], r["clientOrderId"]): r for r in rows}
    entry, stop = by_cid[("order", "rep-entry")], by_cid[("algo", "rep-sl")]
    assert entry["replica"] == "warden-0" and stop["replica"] == "warden-0"
    assert entry["apiKey"] == client.apiKey and entry["status"] == "FILLED" and entry["quantity"] == "0.010"
    assert isinstance(entry["orderId"], int) and isinstance(stop["algoId"], int)
    assert stop["reduceOnly"] is True and stop["status"] == "NEW" and entry["time"] > 0
    status, trades = await paper.admin("GET", "trades")
    assert [(t["clientOrderId"], t["replica"]) for t in trades] == [("rep-entry", "warden-0")]
    _, requests = await paper.admin("GET", f"requests?apiKey={client.apiKey}")
    sent = [(r["clientOrderId"], r["replica"], r["epoch"]) for r in requests if r["method"] == "POST"]
    assert sent == [("rep-entry", "warden-0", 7), ("rep-sl", "warden-0", 7)]


async def test_admin_close_position_and_cancel_algo(exchange: Any, paper: PaperServer) -> None:
    await _long(exchange)
    await _stop(exchange, "sl-admin", 60000)
    status, body = await paper.admin(
        "POST", "cancel-algo", {"apiKey": exchange.apiKey, "symbol": "BTCUSDT", "clientAlgoId": "sl-admin"}
    )
    assert status == 200 and body["algoStatus"] == "CANCELED"
    stop = await exchange.fetch_order(None, BTC, {"trigger": True, "clientOrderId": "sl-admin"})
    assert stop["status"] == "canceled"
    status, body = await paper.admin("POST", "close-position", {"apiKey": exchange.apiKey, "symbol": "BTCUSDT"})
    assert status == 200 and body["closed"] is True
    assert await exchange.fetch_positions() == []
    trades = await exchange.fetch_my_trades(BTC)
    assert [t["side"] for t in trades] == ["buy", "sell"]
    status, body = await paper.admin("POST", "close-position", {"apiKey": exchange.apiKey, "symbol": "BTCUSDT"})
    assert status == 200 and body["closed"] is False


async def test_admin_accounts_are_idempotent(paper: PaperServer) -> None:
    account = {"apiKey": "idem", "secret": "s", "balance": "500"}
    assert (await paper.admin("POST", "accounts", account))[0] == 201
    assert (await paper.admin("POST", "accounts", account))[0] == 200
    assert (await paper.admin("POST", "accounts", {**account, "secret": "other"}))[0] == 409


async def test_limit_order_rests_then_fills_as_maker(exchange: Any, paper: PaperServer) -> None:
    order = await exchange.create_order(BTC, "limit", "buy", 0.01, 64000, {"clientOrderId": "lim-1"})
    assert order["status"] == "open" and order["price"] == 64000.0
    assert [o["clientOrderId"] for o in await exchange.fetch_open_orders(BTC)] == ["lim-1"]
    balance = await exchange.fetch_balance()
    assert balance["USDT"]["used"] == 32.0  # open-order initial margin 640 / 20
    await paper.set_price("BTCUSDT", "63950")
    filled = await exchange.fetch_order(order["id"], BTC)
    assert (filled["status"], filled["average"]) == ("closed", 64000.0)
    trades = await exchange.fetch_my_trades(BTC)
    assert (trades[0]["takerOrMaker"], trades[0]["fee"]["cost"]) == ("maker", 0.128)
    await exchange.create_order(BTC, "limit", "sell", 0.01, 66000, {"clientOrderId": "lim-2"})
    cancelled = await exchange.cancel_order(None, BTC, {"clientOrderId": "lim-2"})
    assert (cancelled["status"], cancelled["clientOrderId"]) == ("canceled", "lim-2")
    await exchange.create_order(BTC, "limit", "sell", 0.01, 66000, {"clientOrderId": "lim-3"})
    await exchange.cancel_all_orders(BTC)
    assert await exchange.fetch_open_orders(BTC) == []
    await _stop(exchange, "sl-all", 60000)
    await exchange.cancel_all_orders(BTC, {"trigger": True})
    assert await exchange.fetch_open_orders(BTC, params={"trigger": True}) == []


async def test_leverage_and_margin_mode(exchange: Any) -> None:
    response = await exchange.set_leverage(10, BTC)
    assert response["leverage"] == 10
    with pytest.raises(ccxt.BadRequest):
        await exchange.fapiPrivatePostLeverage({"symbol": "SOLUSDT", "leverage": 100})  # SOL max is 75
    await exchange.set_margin_mode("isolated", BTC)
    with pytest.raises(ccxt.MarginModeAlreadySet):
        await exchange.set_margin_mode("isolated", BTC)
    await exchange.set_margin_mode("cross", BTC)
    await _long(exchange)
    balance = await exchange.fetch_balance()
    assert balance["USDT"]["used"] == 65.0  # 650 / 10


async def test_trailing_stop_and_case_insensitive_algo_cancel(exchange: Any) -> None:
    await _long(exchange)
    trailing = await exchange.create_order(
        BTC,
        "TRAILING_STOP_MARKET",
        "sell",
        0.01,
        None,
        {"callbackRate": 1.5, "activationPrice": 66000, "reduceOnly": True, "clientOrderId": "trail-1"},
    )
    assert trailing["info"]["orderType"] == "TRAILING_STOP_MARKET"
    assert (trailing["info"]["activatePrice"], trailing["info"]["callbackRate"]) == ("66000.00", "1.5")
    response = await exchange.fapiPrivateDeleteAlgoOrder({"symbol": "BTCUSDT", "algoid": trailing["id"]})
    assert response == {"algoId": int(trailing["id"]), "clientAlgoId": "trail-1", "code": "200", "msg": "success"}
    assert await exchange.fetch_open_orders(BTC, params={"trigger": True}) == []


async def test_raw_shapes_match_binance(exchange: Any) -> None:
    """Key sets of the raw bodies equal those of Binance's recorded responses (ccxt's static fixtures)."""
    order = await exchange.fapiPrivatePostOrder(
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010", "newOrderRespType": "RESULT"}
    )
    assert set(order) == {
        "orderId", "symbol", "status", "clientOrderId", "price", "avgPrice", "origQty", "executedQty", "cumQty",
        "cumQuote", "timeInForce", "type", "reduceOnly", "closePosition", "side", "positionSide", "stopPrice",
        "workingType", "priceProtect", "origType", "priceMatch", "selfTradePreventionMode", "goodTillDate",
        "updateTime",
    }  # fmt: skip
    queried = await exchange.fapiPrivateGetOrder({"symbol": "BTCUSDT", "orderId": order["orderId"]})
    assert set(queried) == set(order) - {"cumQty"} | {"time"}
    (trade,) = await exchange.fapiPrivateGetUserTrades({"symbol": "BTCUSDT"})
    assert set(trade) == {
        "symbol", "id", "orderId", "side", "price", "qty", "realizedPnl", "marginAsset", "quoteQty", "commission",
        "commissionAsset", "time", "positionSide", "maker", "buyer",
    }  # fmt: skip
    (position,) = await exchange.fapiPrivateV3GetPositionRisk()
    assert set(position) == {
        "symbol", "positionSide", "positionAmt", "entryPrice", "breakEvenPrice", "markPrice", "unRealizedProfit",
        "liquidationPrice", "isolatedMargin", "notional", "marginAsset", "isolatedWallet", "initialMargin",
        "maintMargin", "positionInitialMargin", "openOrderInitialMargin", "adl", "bidNotional", "askNotional",
        "updateTime",
    }  # fmt: skip
    assert (position["positionAmt"], position["entryPrice"], position["notional"]) == (
        "0.010",
        "65000.00",
        "650.00000000",
    )
    account = await exchange.fapiPrivateV3GetAccount()
    assert [a["asset"] for a in account["assets"]] == ["USDT"] and account["assets"][0]["updateTime"] > 0
    assert [p["symbol"] for p in account["positions"]] == ["BTCUSDT"]


async def test_short_position_and_buy_stop(exchange: Any, paper: PaperServer) -> None:
    await exchange.create_order(SOL, "market", "sell", 10)
    (position,) = await exchange.fetch_positions([SOL])
    assert (position["side"], position["contracts"], position["notional"]) == ("short", 10.0, 1500.0)
    assert position["info"]["positionAmt"] == "-10"
    await exchange.create_order(
        SOL, "market", "buy", 10, None, {"stopLossPrice": 155, "reduceOnly": True, "clientOrderId": "sol-sl"}
    )
    await paper.set_price("SOLUSDT", "154.99")
    assert len(await exchange.fetch_positions([SOL])) == 1
    await paper.set_price("SOLUSDT", "155.2")
    assert await exchange.fetch_positions([SOL]) == []
    trades = await exchange.fetch_my_trades(SOL)
    assert Decimal(trades[-1]["info"]["realizedPnl"]) == Decimal("-52")  # 10 * (150 - 155.2)
