"""Bybit V5 JSON shapes of the venue's records: numbers and times as strings, ``positionIdx``, ``triggerDirection``,
``smpGroup``, ``seq`` and similar as integers, flags as booleans (the reference brief §7)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from paper import render
from paper.bybit.front import BybitOrder, execution_id, trigger_direction
from paper.bybit.vocab import (
    OPEN_STATUSES,
    ROLE_TYPES,
    SETTLE_COIN,
    SOURCE_CREATE_TYPES,
    CancelType,
    CreateType,
    ExecType,
    OrderStatus,
    OrderType,
    Side,
    StopOrderType,
    TimeInForce,
    TpslMode,
    TriggerBy,
    TriggerDirection,
    position_idx,
)
from paper.engine import Engine
from paper.markets import MarketSpec
from paper.models import POSITION_ROLES, ZERO, Account, AlgoOrder, StopRole, Trade
from paper.risk import FEE_RATES, AccountMetrics, PositionMetrics, break_even_price, liquidation_price

FUNDING_INTERVAL_MS = 8 * 3600 * 1000
_TAKE_PROFITS = frozenset({StopRole.TAKE_PROFIT, StopRole.PARTIAL_TAKE_PROFIT})


def _opt(spec: MarketSpec, value: Decimal) -> str:
    """A price that may be unset: "" when zero (Bybit leaves such fields empty)."""
    return render.price(spec, value) if value else ""


def instrument(spec: MarketSpec, launch_time: int) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": spec.base_asset,
        "quoteCoin": spec.quote_asset,
        "launchTime": str(launch_time),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(spec.price_precision),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": f"{spec.max_leverage}.00", "leverageStep": "0.01"},
        "priceFilter": {
            "minPrice": render.price(spec, spec.min_price),
            "maxPrice": render.price(spec, spec.max_price),
            "tickSize": render.price(spec, spec.tick_size),
        },
        "lotSizeFilter": {
            "maxOrderQty": render.qty(spec, spec.max_qty),
            "minOrderQty": render.qty(spec, spec.min_qty),
            "qtyStep": render.qty(spec, spec.step_size),
            "postOnlyMaxOrderQty": render.qty(spec, spec.max_qty),
            "maxMktOrderQty": render.qty(spec, spec.market_max_qty),
            "minNotionalValue": f"{spec.min_notional.normalize():f}",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": FUNDING_INTERVAL_MS // 60_000,
        "settleCoin": spec.margin_asset,
        "copyTrading": "both",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "displayName": "",
    }


def ticker(spec: MarketSpec, engine: Engine) -> dict[str, Any]:
    stats = engine.stats[spec.symbol]
    last, mark = engine.lasts[spec.symbol], engine.marks[spec.symbol]
    change = (last - stats.open_price) / stats.open_price if stats.open_price else ZERO
    now = engine.now()
    return {
        "symbol": spec.symbol,
        "lastPrice": render.price(spec, last),
        "indexPrice": render.price(spec, mark),
        "markPrice": render.price(spec, mark),
        "prevPrice24h": render.price(spec, stats.open_price),
        "price24hPcnt": render.dec(change, 6),
        "highPrice24h": render.price(spec, stats.high),
        "lowPrice24h": render.price(spec, stats.low),
        "prevPrice1h": render.price(spec, stats.open_price),
        "openInterest": "0",
        "openInterestValue": "0",
        "turnover24h": render.dec(stats.quote_volume, 4),
        "volume24h": render.qty(spec, stats.volume),
        "fundingRate": "0.0001",
        "nextFundingTime": str((now // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS),
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        # the paper book: one tick either side of the last price, the depth a resting order may fill per update
        "bid1Price": render.price(spec, last - spec.tick_size),
        "bid1Size": render.qty(spec, spec.book_depth),
        "ask1Price": render.price(spec, last + spec.tick_size),
        "ask1Size": render.qty(spec, spec.book_depth),
        "basis": "",
    }


def _trigger_price(algo: AlgoOrder) -> Decimal:
    if algo.order_type != "TRAILING_STOP_MARKET":
        return algo.trigger_price
    return Engine.trailing_trigger(algo) if algo.trailing_extreme is not None else algo.activate_price or ZERO


def _create_type(view: BybitOrder) -> CreateType:
    if view.algo is not None:
        return ROLE_TYPES[view.algo.role][1]
    assert view.order is not None
    return SOURCE_CREATE_TYPES.get(view.order.source, CreateType.BY_USER)


def _cancel_type(view: BybitOrder, status: OrderStatus) -> str:
    if status not in (OrderStatus.CANCELLED, OrderStatus.DEACTIVATED) or view.info.cancel_type != CancelType.UNKNOWN:
        return view.info.cancel_type
    algo = view.algo
    if algo is not None and view.order is None and algo.role != StopRole.PLAIN and algo.algo_status == "EXPIRED":
        return CancelType.BY_TPSL_CLEAR
    if view.order is not None and view.order.only_reduces and view.order.status == "EXPIRED":
        return CancelType.BY_REDUCE_ONLY
    return view.info.cancel_type


def order(spec: MarketSpec, account: Account, view: BybitOrder) -> dict[str, Any]:
    algo, regular = view.algo, view.order
    record = regular if regular is not None else algo
    assert record is not None
    status = view.status
    executed = regular.executed_qty if regular is not None else ZERO
    cum_quote = regular.cum_quote if regular is not None else ZERO
    quantity = regular.quantity if regular is not None else algo.quantity if algo is not None else ZERO
    engine_type = algo.order_type if algo is not None else regular.type if regular is not None else "MARKET"
    is_limit = engine_type in ("LIMIT", "STOP", "TAKE_PROFIT")
    fee = sum((t.commission for t in account.trades if regular is not None and t.order_id == regular.order_id), ZERO)
    tif = record.time_in_force
    attached = record.attached
    take_profit = next((s for s in attached if s.role in _TAKE_PROFITS), None)
    stop_loss = next((s for s in attached if s.role not in _TAKE_PROFITS), None)
    leaves = quantity - executed if status in OPEN_STATUSES else ZERO
    limit_price = regular.price if regular is not None else algo.price if algo is not None else ZERO
    return {
        "orderId": view.order_id,
        "orderLinkId": view.link_id,
        "blockTradeId": "",
        "symbol": spec.symbol,
        "price": render.price(spec, limit_price),
        "qty": render.qty(spec, quantity),
        "side": Side.of(record.side).value,
        "isLeverage": "",
        "positionIdx": position_idx(record.position_side),
        "orderStatus": status.value,
        "createType": _create_type(view).value,
        "cancelType": _cancel_type(view, status),
        "rejectReason": view.info.reject_reason,
        "avgPrice": render.price(spec, cum_quote / executed) if executed else "",
        "leavesQty": render.qty(spec, leaves),
        "leavesValue": render.money(leaves * limit_price),
        "cumExecQty": render.qty(spec, executed),
        "cumExecValue": render.money(cum_quote),
        "cumExecFee": render.money(fee),
        "cumFeeDetail": {SETTLE_COIN: render.money(fee)} if fee else {},
        "timeInForce": "IOC" if not is_limit else TimeInForce.POST_ONLY.value if tif == "GTX" else tif,
        "orderType": (OrderType.LIMIT if is_limit else OrderType.MARKET).value,
        "stopOrderType": (ROLE_TYPES[algo.role][0] if algo is not None else StopOrderType.NONE).value,
        "orderIv": "",
        "marketUnit": "",
        "triggerPrice": _opt(spec, _trigger_price(algo)) if algo is not None else "",
        "takeProfit": _opt(spec, take_profit.trigger_price) if take_profit else "",
        "stopLoss": _opt(spec, stop_loss.trigger_price) if stop_loss else "",
        "tpslMode": _tpsl_mode(attached[0].role).value if attached else "",
        "ocoTriggerBy": "",
        "tpLimitPrice": render.price(spec, take_profit.limit_price) if take_profit else "0",
        "slLimitPrice": render.price(spec, stop_loss.limit_price) if stop_loss else "0",
        "tpTriggerBy": TriggerBy.of(take_profit.working_type).value if take_profit else "",
        "slTriggerBy": TriggerBy.of(stop_loss.working_type).value if stop_loss else "",
        "triggerDirection": int(trigger_direction(algo) if algo is not None else TriggerDirection.NONE),
        "triggerBy": TriggerBy.of(algo.working_type).value if algo is not None else "",
        "lastPriceOnCreated": "",
        "basePrice": "",
        "reduceOnly": record.reduce_only or record.close_position,
        "closeOnTrigger": view.info.close_on_trigger or (algo is not None and algo.close_position),
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "slippageToleranceType": "UNKNOWN",
        "slippageTolerance": "0",
        "parentOrderLinkId": algo.parent_client_id if algo is not None else "",
        "createdTime": str(view.created),
        "updatedTime": str(view.updated),
        "extraFees": "",
    }


def _tpsl_mode(role: str) -> TpslMode:
    return TpslMode.FULL if role in POSITION_ROLES else TpslMode.PARTIAL


def execution(spec: MarketSpec, account: Account, view: BybitOrder, trade: Trade, mark: Decimal) -> dict[str, Any]:
    rates = FEE_RATES[account.venue]
    regular = view.order
    assert regular is not None
    as_order = order(spec, account, view)
    return {
        "symbol": spec.symbol,
        "orderId": view.order_id,
        "orderLinkId": view.link_id,
        "side": Side.of(trade.side).value,
        "orderPrice": as_order["price"],
        "orderQty": as_order["qty"],
        "leavesQty": as_order["leavesQty"],
        "createType": as_order["createType"],
        "orderType": as_order["orderType"],
        "stopOrderType": as_order["stopOrderType"],
        "execFee": render.money(trade.commission),
        "execId": execution_id(trade.trade_id),
        "execPrice": render.price(spec, trade.price),
        "execQty": render.qty(spec, trade.qty),
        "execType": (ExecType.BUST_TRADE if trade.liquidation else ExecType.TRADE).value,
        "execValue": render.money(trade.quote_qty),
        "execTime": str(trade.time),
        "feeCurrency": SETTLE_COIN,
        "isMaker": trade.maker,
        "feeRate": render.dec(rates.maker if trade.maker else rates.taker, 4),
        "tradeIv": "",
        "markIv": "",
        "markPrice": render.price(spec, mark),
        "indexPrice": "",
        "underlyingPrice": "",
        "blockTradeId": "",
        "closedSize": render.qty(spec, trade.closed_qty),
        "marketUnit": "",
        "seq": trade.trade_id,
        "extraFees": "",
    }


def position(
    spec: MarketSpec, account: Account, p: PositionMetrics, metrics: AccountMetrics, stops: dict[str, AlgoOrder]
) -> dict[str, Any]:
    amount = p.amount
    trades = [t for t in account.trades if t.symbol == p.symbol and t.position_side == p.position_side]
    cum_realised = sum((t.realized_pnl - t.commission for t in trades), ZERO)
    liq = liquidation_price(metrics, p, spec) if amount else ZERO
    take_profit, stop_loss, trailing = (
        stops.get(r) for r in (StopRole.TAKE_PROFIT, StopRole.STOP_LOSS, StopRole.TRAILING)
    )
    value = abs(amount) * p.entry_price
    return {
        "positionIdx": position_idx(p.position_side),
        "riskId": spec.bracket_for(abs(p.notional)).bracket,
        "riskLimitValue": f"{spec.bracket_for(abs(p.notional)).notional_cap.normalize():f}",
        "symbol": p.symbol,
        "side": "" if amount == 0 else Side.BUY.value if amount > 0 else Side.SELL.value,
        "size": render.qty(spec, abs(amount)),
        "avgPrice": render.price(spec, p.entry_price) if amount else "0",
        "positionValue": render.money(value) if amount else "",
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 2 if amount else 0,
        "leverage": str(p.leverage),
        "positionBalance": render.money(p.initial_margin),
        "markPrice": render.price(spec, p.mark_price),
        "liqPrice": render.price(spec, liq) if liq else "",
        "bustPrice": "",
        "positionMM": render.money(p.maint_margin),
        "positionIM": render.money(p.initial_margin),
        "tpslMode": TpslMode.FULL.value,
        "takeProfit": _opt(spec, take_profit.trigger_price if take_profit else ZERO),
        "stopLoss": _opt(spec, stop_loss.trigger_price if stop_loss else ZERO),
        "trailingStop": render.price(spec, trailing.callback_distance or ZERO) if trailing else "0",
        "unrealisedPnl": render.money(p.unrealized_pnl) if amount else "",
        "curRealisedPnl": render.money(cum_realised if amount else ZERO),
        "cumRealisedPnl": render.money(cum_realised),
        "breakEvenPrice": render.price(spec, break_even_price(amount, p.entry_price)),
        "seq": max((t.trade_id for t in trades), default=-1),
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "sessionAvgPrice": "",
        "createdTime": str(min((t.time for t in trades), default=p.update_time)),
        "updatedTime": str(p.update_time),
    }


def wallet(account: Account, metrics: AccountMetrics) -> dict[str, Any]:
    m = metrics
    cum_realised = sum((t.realized_pnl - t.commission for t in account.trades), ZERO)
    equity = render.money(m.margin_balance)
    im_rate = m.initial_margin / m.margin_balance if m.margin_balance > 0 else ZERO
    mm_rate = m.maint_margin / m.margin_balance if m.margin_balance > 0 else ZERO
    return {
        "accountType": "UNIFIED",
        "totalEquity": equity,
        "totalWalletBalance": render.money(m.wallet_balance),
        "totalMarginBalance": equity,
        "totalAvailableBalance": render.money(m.available_balance),
        "totalPerpUPL": render.money(m.unrealized_pnl),
        "totalInitialMargin": render.money(m.initial_margin),
        "totalMaintenanceMargin": render.money(m.maint_margin),
        "accountIMRate": render.dec(im_rate, 4),
        "accountMMRate": render.dec(mm_rate, 4),
        "accountLTV": "0",
        "coin": [
            {
                "coin": SETTLE_COIN,
                "equity": equity,
                "usdValue": equity,
                "walletBalance": render.money(m.wallet_balance),
                "locked": "0",
                "spotHedgingQty": "0",
                "borrowAmount": "0",
                "accruedInterest": "0",
                "totalOrderIM": render.money(m.open_order_initial_margin),
                "totalPositionIM": render.money(m.position_initial_margin),
                "totalPositionMM": render.money(m.maint_margin),
                "unrealisedPnl": render.money(m.unrealized_pnl),
                "cumRealisedPnl": render.money(cum_realised),
                "bonus": "0",
                "marginCollateral": True,
                "collateralSwitch": True,
                "availableToWithdraw": "",
                "availableToBorrow": "",
            }
        ],
    }


def closed_pnl(spec: MarketSpec, account: Account, view: BybitOrder, closing: list[Trade]) -> dict[str, Any]:
    """One closing order's result (``/v5/position/closed-pnl``): its closing fills against the entry they closed.
    ``closedPnl`` is their realized PnL less the closing order's fees (Bybit also takes a share of the opening fee)."""
    as_order = order(spec, account, view)
    closed = sum((t.closed_qty for t in closing), ZERO)
    entry_value = sum((t.closed_qty * t.entry_price for t in closing), ZERO)
    exit_value = sum((t.closed_qty * t.price for t in closing), ZERO)
    pnl = sum((t.realized_pnl - t.commission for t in closing), ZERO)
    return {
        "symbol": spec.symbol,
        "orderType": as_order["orderType"],
        "leverage": str(account.setting(spec.symbol).leverage),
        "updatedTime": str(closing[-1].time),
        "side": as_order["side"],
        "orderId": view.order_id,
        "closedPnl": render.money(pnl),
        "avgEntryPrice": render.price(spec, entry_value / closed),
        "qty": as_order["qty"],
        "cumEntryValue": render.money(entry_value),
        "createdTime": as_order["createdTime"],
        "orderPrice": as_order["price"],
        "closedSize": render.qty(spec, closed),
        "avgExitPrice": render.price(spec, exit_value / closed),
        "execType": (ExecType.BUST_TRADE if closing[0].liquidation else ExecType.TRADE).value,
        "fillCount": str(len(closing)),
        "cumExitValue": render.money(exit_value),
    }
