"""Observe and act on one exchange account through ccxt, in Warden's own terms (Decimal, client ids).

Numbers are read from the exchange's raw strings (``info``), never from ccxt's parsed floats.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import ccxt

from controller.api.v1alpha1 import OrderRecord, OrderState, PositionSpec, PositionStatus, Side
from controller.reconcile.model import (
    Action,
    CancelStopOrder,
    MarketRules,
    Observation,
    ObservedOrder,
    PlaceMarketOrder,
    PlaceStopOrder,
    Trade,
)

_REGULAR_STATES = {
    "NEW": OrderState.OPEN,
    "PARTIALLY_FILLED": OrderState.OPEN,
    "FILLED": OrderState.FILLED,
    "CANCELED": OrderState.CANCELED,
    "EXPIRED": OrderState.CANCELED,
    "EXPIRED_IN_MATCH": OrderState.CANCELED,
    "REJECTED": OrderState.REJECTED,
}
_ALGO_STATES = {
    "NEW": OrderState.OPEN,
    "TRIGGERING": OrderState.TRIGGERED,
    "TRIGGERED": OrderState.TRIGGERED,
    "FINISHED": OrderState.TRIGGERED,
    "CANCELED": OrderState.CANCELED,
    "EXPIRED": OrderState.CANCELED,
    "REJECTED": OrderState.REJECTED,
}


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def parse_regular_order(info: dict[str, Any]) -> ObservedOrder:
    average = _dec(info.get("avgPrice"))
    return ObservedOrder(
        client_order_id=str(info["clientOrderId"]),
        exchange_order_id=str(info["orderId"]),
        state=_REGULAR_STATES.get(str(info["status"]), OrderState.OPEN),
        amount=_dec(info.get("origQty")),
        filled=_dec(info.get("executedQty")),
        average_price=average or None,
    )


def parse_algo_order(info: dict[str, Any]) -> ObservedOrder:
    triggered = info.get("actualOrderId")
    return ObservedOrder(
        client_order_id=str(info["clientAlgoId"]),
        exchange_order_id=str(info["algoId"]),
        state=_ALGO_STATES.get(str(info.get("algoStatus")), OrderState.OPEN),
        amount=_dec(info.get("quantity")),
        filled=Decimal(0),
        trigger_price=_dec(info.get("triggerPrice")) or None,
        triggered_order_id=str(triggered) if triggered not in (None, "", 0, "0") else None,
    )


def rules_from_market(market: dict[str, object]) -> MarketRules:
    """Market precision from a ccxt market (TICK_SIZE precision mode: precision values are step sizes)."""
    precision = market["precision"]
    limits = market["limits"]
    assert isinstance(precision, dict) and isinstance(limits, dict)
    return MarketRules(
        amount_step=Decimal(str(precision["amount"])),
        min_amount=Decimal(str(limits["amount"]["min"] or 0)),
        min_notional=Decimal(str((limits.get("cost") or {}).get("min") or 0)),
        price_tick=Decimal(str(precision["price"])),
    )


class Gateway:
    """One ccxt client per ExchangeAccount; markets are loaded once and reused."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._markets_loaded = False

    async def close(self) -> None:
        await self.client.close()

    async def load_markets(self) -> None:
        if not self._markets_loaded:
            await self.client.load_markets()
            self._markets_loaded = True

    async def rules(self, symbol: str) -> MarketRules:
        await self.load_markets()
        if symbol not in self.client.markets:
            raise ccxt.BadSymbol(f"unknown symbol {symbol}")
        return rules_from_market(self.client.market(symbol))

    async def observe(self, spec: PositionSpec, status: PositionStatus) -> Observation:
        symbol = spec.symbol
        rules = await self.rules(symbol)
        mark = await self.client.fetch_mark_price(symbol)
        size = await self.position_size(symbol, spec.side)
        orders: dict[str, ObservedOrder | None] = {}
        for record, algo in ((status.entryOrder, False), (status.closeOrder, False), (status.stopOrder, True)):
            if record is not None:
                orders[record.clientOrderId] = await self.find_order(symbol, record, algo)
        trades: tuple[Trade, ...] = ()
        if size == 0 and status.entryOrder is not None and status.entryOrder.exchangeOrderId is not None:
            trades = await self.trades(symbol)
        return Observation(_dec(mark["info"]["markPrice"]), size, rules, orders, trades)

    async def position_size(self, symbol: str, side: Side) -> Decimal:
        positions = await self.client.fetch_positions([symbol])
        signed = sum((_dec(p["info"].get("positionAmt")) for p in positions if p["symbol"] == symbol), Decimal(0))
        return max(signed, Decimal(0)) if side is Side.LONG else max(-signed, Decimal(0))

    async def find_order(self, symbol: str, record: OrderRecord, algo: bool) -> ObservedOrder | None:
        params: dict[str, Any] = {"clientOrderId": record.clientOrderId}
        if algo:
            params["trigger"] = True
        try:
            order = await self.client.fetch_order(None, symbol, params)
        except ccxt.OrderNotFound:
            return None
        return parse_algo_order(order["info"]) if algo else parse_regular_order(order["info"])

    async def trades(self, symbol: str) -> tuple[Trade, ...]:
        raw = await self.client.fetch_my_trades(symbol)
        return tuple(
            Trade(
                trade_id=str(t["info"]["id"]),
                order_id=str(t["info"]["orderId"]),
                amount=_dec(t["info"]["qty"]),
                price=_dec(t["info"]["price"]),
                realized_pnl=_dec(t["info"].get("realizedPnl")),
                fee=_dec(t["info"].get("commission")),
            )
            for t in raw
        )

    async def execute(self, symbol: str, action: Action) -> str | None:
        """Send the action; returns the exchange's order id (None for a cancel)."""
        if isinstance(action, PlaceMarketOrder):
            params: dict[str, Any] = {"clientOrderId": action.client_order_id}
            if action.reduce_only:
                params["reduceOnly"] = True
            order = await self.client.create_order(
                symbol, "market", action.side.value, str(action.amount), None, params
            )
            return str(order["info"]["orderId"])
        if isinstance(action, PlaceStopOrder):
            params = {
                "stopLossPrice": str(action.trigger_price),
                "reduceOnly": True,
                "workingType": "MARK_PRICE",
                "clientOrderId": action.client_order_id,
            }
            order = await self.client.create_order(
                symbol, "market", action.side.value, str(action.amount), None, params
            )
            return str(order["info"]["algoId"])
        if isinstance(action, CancelStopOrder):
            with contextlib.suppress(ccxt.OrderNotFound):  # already gone: the goal of a cancel is reached
                await self.client.cancel_order(None, symbol, {"trigger": True, "clientOrderId": action.client_order_id})
            return None
        raise TypeError(f"unknown action {action!r}")
