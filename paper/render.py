"""Binance USDⓈ-M JSON shapes for the venue's records (decimal strings, integer ids and times)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from paper.markets import MarketSpec
from paper.models import ZERO, AlgoOrder, Candle, Order, SymbolStats, Trade
from paper.risk import AccountMetrics, PositionMetrics, break_even_price, liquidation_price

FUNDING_INTERVAL_MS = 8 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000


def dec(value: Decimal, places: int, max_places: int = 8) -> str:
    """Fixed-point string with at least ``places`` decimals, more (up to ``max_places``) if needed to be exact."""
    for p in range(places, max(places, max_places) + 1):
        quantized = value.quantize(Decimal(1).scaleb(-p))
        if quantized == value:
            return f"{quantized:f}"
    return f"{value.quantize(Decimal(1).scaleb(-max_places), rounding=ROUND_HALF_UP):f}"


def money(value: Decimal) -> str:
    return dec(value, 8)


def price(spec: MarketSpec, value: Decimal) -> str:
    return dec(value, spec.price_precision)


def qty(spec: MarketSpec, value: Decimal) -> str:
    return dec(value, spec.quantity_precision)


def order(spec: MarketSpec, o: Order, *, with_time: bool = False, with_cum_qty: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "orderId": o.order_id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_order_id,
        "price": price(spec, o.price),
        "avgPrice": price(spec, o.avg_price),
        "origQty": qty(spec, o.quantity),
        "executedQty": qty(spec, o.executed_qty),
    }
    if with_cum_qty:
        body["cumQty"] = qty(spec, o.executed_qty)
    body.update(
        {
            "cumQuote": dec(o.cum_quote, 5, 12),
            "timeInForce": o.time_in_force,
            "type": o.type,
            "reduceOnly": o.reduce_only,
            "closePosition": o.close_position,
            "side": o.side,
            "positionSide": o.position_side,
            "stopPrice": price(spec, o.stop_price),
            "workingType": o.working_type,
            "priceProtect": o.price_protect,
            "origType": o.orig_type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
        }
    )
    if with_time:
        body["time"] = o.time
    body["updateTime"] = o.update_time
    return body


def algo_order(spec: MarketSpec, a: AlgoOrder) -> dict[str, Any]:
    body: dict[str, Any] = {
        "algoId": a.algo_id,
        "clientAlgoId": a.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": a.order_type,
        "symbol": a.symbol,
        "side": a.side,
        "positionSide": a.position_side,
        "timeInForce": a.time_in_force,
        "quantity": qty(spec, a.quantity),
        "algoStatus": a.algo_status,
        "actualOrderId": "" if a.actual_order_id is None else str(a.actual_order_id),
        "actualPrice": dec(a.actual_price, 5),
        "triggerPrice": price(spec, a.trigger_price),
        "price": price(spec, a.price),
        "icebergQuantity": None,
        "tpTriggerPrice": "0.000",
        "tpPrice": "0.000",
        "slTriggerPrice": "0.000",
        "slPrice": "0.000",
        "tpOrderType": "",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": a.working_type,
        "priceMatch": "NONE",
        "closePosition": a.close_position,
        "priceProtect": a.price_protect,
        "reduceOnly": a.reduce_only,
        "createTime": a.create_time,
        "updateTime": a.update_time,
        "triggerTime": a.trigger_time,
        "goodTillDate": 0,
    }
    if a.order_type == "TRAILING_STOP_MARKET":
        body["activatePrice"] = price(spec, a.activate_price or ZERO)
        body["callbackRate"] = dec(a.callback_rate or ZERO, 1)
    return body


def trade(spec: MarketSpec, t: Trade) -> dict[str, Any]:
    return {
        "symbol": t.symbol,
        "id": t.trade_id,
        "orderId": t.order_id,
        "side": t.side,
        "price": price(spec, t.price),
        "qty": qty(spec, t.qty),
        "realizedPnl": money(t.realized_pnl),
        "quoteQty": dec(t.quote_qty, 5, 12),
        "commission": money(t.commission),
        "commissionAsset": "USDT",
        "time": t.time,
        "positionSide": t.position_side,
        "buyer": t.side == "BUY",
        "maker": t.maker,
        "marginAsset": "USDT",
    }


def _isolated_margin(p: PositionMetrics) -> str:
    """``isolatedMargin``: the isolated wallet plus unrealized PnL; "0" marks a cross position (ccxt reads it so)."""
    return money(p.isolated_wallet + p.unrealized_pnl) if p.isolated else "0"


def position_risk(spec: MarketSpec, p: PositionMetrics, metrics: AccountMetrics) -> dict[str, Any]:
    return {
        "symbol": p.symbol,
        "positionSide": p.position_side,
        "positionAmt": qty(spec, p.amount),
        "entryPrice": dec(p.entry_price, spec.price_precision),
        "breakEvenPrice": dec(break_even_price(p.amount, p.entry_price), spec.price_precision),
        "markPrice": money(p.mark_price),
        "unRealizedProfit": money(p.unrealized_pnl),
        "liquidationPrice": money(liquidation_price(metrics, p, spec)),
        "isolatedMargin": _isolated_margin(p),
        "notional": money(p.notional),
        "marginAsset": "USDT",
        "isolatedWallet": money(p.isolated_wallet) if p.isolated else "0",
        "initialMargin": money(p.initial_margin),
        "maintMargin": money(p.maint_margin),
        "positionInitialMargin": money(p.initial_margin),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": p.update_time,
    }


def account_v3(metrics: AccountMetrics, markets: dict[str, MarketSpec], update_time: int) -> dict[str, Any]:
    m = metrics
    asset = {
        "asset": "USDT",
        "walletBalance": money(m.wallet_balance),
        "unrealizedProfit": money(m.unrealized_pnl),
        "marginBalance": money(m.margin_balance),
        "maintMargin": money(m.maint_margin),
        "initialMargin": money(m.initial_margin),
        "positionInitialMargin": money(m.position_initial_margin),
        "openOrderInitialMargin": money(m.open_order_initial_margin),
        "crossWalletBalance": money(m.cross_wallet_balance),
        "crossUnPnl": money(m.cross_unrealized_pnl),
        "availableBalance": money(m.available_balance),
        "maxWithdrawAmount": money(m.max_withdraw_amount),
        "updateTime": update_time,  # v3 has no "marginAvailable" per asset (v2 had; ccxt's recorded v3 response)
    }
    positions = [
        {
            "symbol": p.symbol,
            "positionSide": p.position_side,
            "positionAmt": qty(markets[p.symbol], p.amount),
            "unrealizedProfit": money(p.unrealized_pnl),
            "isolatedMargin": _isolated_margin(p),
            "notional": money(p.notional),
            "isolatedWallet": money(p.isolated_wallet) if p.isolated else "0",
            "initialMargin": money(p.initial_margin),
            "maintMargin": money(p.maint_margin),
            "updateTime": p.update_time,
        }
        for p in m.positions
    ]
    return {
        "totalInitialMargin": money(m.initial_margin),
        "totalMaintMargin": money(m.maint_margin),
        "totalWalletBalance": money(m.wallet_balance),
        "totalUnrealizedProfit": money(m.unrealized_pnl),
        "totalMarginBalance": money(m.margin_balance),
        "totalPositionInitialMargin": money(m.position_initial_margin),
        "totalOpenOrderInitialMargin": money(m.open_order_initial_margin),
        "totalCrossWalletBalance": money(m.cross_wallet_balance),
        "totalCrossUnPnl": money(m.cross_unrealized_pnl),
        "availableBalance": money(m.available_balance),
        "maxWithdrawAmount": money(m.max_withdraw_amount),
        "assets": [asset],
        "positions": positions,
    }


def premium_index(spec: MarketSpec, mark: Decimal, now: int) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "markPrice": money(mark),
        "indexPrice": money(mark),
        "estimatedSettlePrice": money(mark),
        "lastFundingRate": "0.00010000",
        "interestRate": "0.00010000",
        "nextFundingTime": (now // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS,
        "time": now,
    }


def exchange_info(markets: dict[str, MarketSpec], now: int) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": now,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [spec.exchange_info for spec in markets.values()],
    }


def leverage_bracket(spec: MarketSpec) -> dict[str, Any]:
    return {"symbol": spec.symbol, "brackets": spec.bracket_info}


def ticker_24hr(spec: MarketSpec, stats: SymbolStats, mark: Decimal, now: int) -> dict[str, Any]:
    change = mark - stats.open_price
    percent = (change / stats.open_price * 100).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    weighted = stats.quote_volume / stats.volume if stats.volume else mark
    return {
        "symbol": spec.symbol,
        "priceChange": price(spec, change),
        "priceChangePercent": f"{percent:f}",
        "weightedAvgPrice": price(spec, weighted),
        "lastPrice": price(spec, mark),
        "lastQty": qty(spec, stats.last_qty),
        "openPrice": price(spec, stats.open_price),
        "highPrice": price(spec, stats.high),
        "lowPrice": price(spec, stats.low),
        "volume": qty(spec, stats.volume),
        "quoteVolume": dec(stats.quote_volume, 2, 12),
        "openTime": now - DAY_MS,
        "closeTime": now,
        "firstId": stats.first_trade_id,
        "lastId": stats.last_trade_id,
        "count": stats.count,
    }


def kline(spec: MarketSpec, c: Candle, close_time: int) -> list[Any]:
    """One ``GET /fapi/v1/klines`` row (Binance's array layout; the last field is unused and always "0")."""
    return [
        c.open_time,
        price(spec, c.open),
        price(spec, c.high),
        price(spec, c.low),
        price(spec, c.close),
        qty(spec, c.volume),
        close_time,
        dec(c.quote_volume, 5, 12),
        c.count,
        qty(spec, c.taker_buy_volume),
        dec(c.taker_buy_quote_volume, 5, 12),
        "0",
    ]
