"""Observe and act on one exchange account through ccxt, in Warden's own terms (Decimal, client ids).

Numbers are read from the exchange's raw strings (``info``), never from ccxt's parsed floats.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import ccxt

from controller.api.v1alpha1 import OrderState, PositionSpec, PositionStatus, Side
from controller.exchange.responses import PARSE_ERRORS, explain, parses_answers
from controller.reconcile.model import (
    Action,
    CancelOrder,
    MarketRules,
    Observation,
    ObservedOrder,
    OpenOrder,
    OrderSide,
    PlaceLimitOrder,
    PlaceMarketOrder,
    PlaceStopOrder,
    PlaceTrailingStopOrder,
    Purpose,
    SetLeverage,
    SetMarginMode,
    Snapshot,
    Trade,
    records_to_observe,
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


# Weights of the all-symbol forms (openOrders / openAlgoOrders: 40, premiumIndex: 10) against 1 per symbol.
_ALL_OPEN_ORDERS_WEIGHT = 80
_ENDED = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED})
_ANSWERS_KEPT = 4096
_ALL_MARKS_WEIGHT = 10


# Binance names the orders it sends itself when it liquidates or auto-deleverages a position.
_LIQUIDATION_PREFIXES = ("autoclose-", "adl_autoclose")


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


def parse_pushed_algo_order(info: dict[str, Any]) -> ObservedOrder:
    """An ``ALGO_UPDATE`` push's order (ccxt.pro keeps the event's ``o`` object as the order's ``info``)."""
    triggered = info.get("ai")
    return ObservedOrder(
        client_order_id=str(info["caid"]),
        exchange_order_id=str(info["aid"]),
        state=_ALGO_STATES.get(str(info.get("X")), OrderState.OPEN),
        amount=_dec(info.get("q")),
        filled=Decimal(0),
        trigger_price=_dec(info.get("tp")) or None,
        triggered_order_id=str(triggered) if triggered not in (None, "", 0, "0") else None,
    )


def pushed_end(info: dict[str, Any]) -> ObservedOrder | None:
    """The conditional order a push describes, if the push says it ended: only an end is final, and a push of
    anything else may be older than what Warden already knows."""
    try:
        order = parse_pushed_algo_order(info)
    except PARSE_ERRORS:
        return None  # the read it would have saved still comes
    return order if order.state in _ENDED else None


def rules_from_market(market: dict[str, object]) -> MarketRules:
    """Market precision from a ccxt market (TICK_SIZE precision mode: precision values are step sizes)."""
    precision = market["precision"]
    limits = market["limits"]
    assert isinstance(precision, dict) and isinstance(limits, dict)
    # Market orders (entries, stops, closes) have a smaller lot limit than limit orders (MARKET_LOT_SIZE).
    lot = (limits.get("market") or {}).get("max") or limits["amount"].get("max")
    return MarketRules(
        amount_step=Decimal(str(precision["amount"])),
        min_amount=Decimal(str(limits["amount"]["min"] or 0)),
        min_notional=Decimal(str((limits.get("cost") or {}).get("min") or 0)),
        price_tick=Decimal(str(precision["price"])),
        max_amount=Decimal(str(lot)) if lot else None,
        # PnL and fees of a linear perpetual are counted in its settle currency (USDT for BTC/USDT:USDT).
        quote=str(market.get("settle") or market["quote"]),
    )


class Gateway:
    """One ccxt client per ExchangeAccount; markets are loaded once and reused.

    ``hedged``: the account runs Binance's hedge position mode, where exits name the position side
    instead of being reduce-only (Binance refuses reduceOnly there; ccxt maps ``hedged`` to positionSide).
    """

    def __init__(self, client: Any, *, hedged: bool = False) -> None:
        self.client = client
        self.hedged = hedged
        self._markets_loaded = False
        self._answers: OrderedDict[str, tuple[float, ObservedOrder]] = OrderedDict()
        """Client id -> (monotonic send time, the order as the exchange's answer to its placement described it)."""

    async def close(self) -> None:
        await self.client.close()

    async def load_markets(self) -> None:
        if not self._markets_loaded:
            await self.client.load_markets(reload=True)  # ccxt would keep an empty answer for good
            if not self.client.markets:  # an answer without markets must not make every symbol unknown
                raise ccxt.BadResponse("the exchange listed no markets")
            self._markets_loaded = True

    async def rules(self, symbol: str) -> MarketRules:
        await self.load_markets()
        if symbol not in self.client.markets:
            raise ccxt.BadSymbol(f"unknown symbol {symbol}")
        try:
            return rules_from_market(self.client.market(symbol))
        except PARSE_ERRORS as error:
            self._markets_loaded = False  # read the list again next time, not this copy for good
            raise ccxt.BadResponse(f"the exchange's market {symbol} is malformed: {explain(error)}") from error

    @parses_answers
    async def snapshot(self, symbols: frozenset[str], every_position: bool = True, orders: bool = True) -> Snapshot:
        """The account's positions (every symbol; or, not ``every_position``, the one symbol asked for) and, for
        ``symbols``, mark prices and (``orders``) open orders.

        Positions are read before orders: an order that fills or triggers while the snapshot is taken then shows
        up as no longer open (and is looked up by its client id) rather than as open beside a stale size.
        Per-symbol calls weigh 1 each; past a handful of symbols the all-symbol forms are cheaper."""
        started = time.monotonic()
        await self.load_markets()
        ordered = sorted(s for s in symbols if s in self.client.markets)  # an unknown symbol fails one Position
        one = not every_position and len(ordered) == 1
        only = {"symbol": self.client.market_id(ordered[0])} if one else {}
        positions, marks = await asyncio.gather(self.client.fapiPrivateV3GetPositionRisk(only), self.marks(ordered))
        open_orders = (
            await self.open_orders(ordered if len(ordered) * 2 <= _ALL_OPEN_ORDERS_WEIGHT else None) if orders else {}
        )
        return Snapshot(started, *self._positions(positions), open_orders, marks)

    async def marks(self, symbols: list[str]) -> dict[str, Decimal]:
        if len(symbols) > _ALL_MARKS_WEIGHT:
            every = await self.client.fetch_mark_prices()
            return {s: _dec(every[s]["info"]["markPrice"]) for s in symbols if s in every}
        found = await asyncio.gather(*(self.client.fetch_mark_price(s) for s in symbols))
        return {s: _dec(m["info"]["markPrice"]) for s, m in zip(symbols, found, strict=True)}

    @parses_answers
    async def resting_orders(self, symbols: list[str]) -> dict[str, OpenOrder]:
        """The regular open orders of a few symbols: 1 weight each, where a snapshot costs 5 plus 3 per symbol."""
        return await self.open_orders(symbols if len(symbols) <= _ALL_OPEN_ORDERS_WEIGHT // 2 else None, False)

    @parses_answers
    async def account_view(self) -> Snapshot:
        """Every position and every open order of the account, whatever the symbol (for the orphan sweep)."""
        await self.load_markets()
        started = time.monotonic()
        positions = await self.client.fapiPrivateV3GetPositionRisk()
        return Snapshot(started, *self._positions(positions), await self.open_orders(None), {})

    async def open_orders(self, symbols: list[str] | None, conditional: bool = True) -> dict[str, OpenOrder]:
        """Open regular and (``conditional``) algo orders of these symbols (None: all symbols, in two calls).

        Read through ccxt's raw endpoints: only the exchange's own fields are used, and ccxt's order parsing
        of every open order of the account, every cycle, is a large share of the controller's CPU with many
        Positions."""
        client = self.client
        per_symbol: list[dict[str, str]] = (
            [{}] if symbols is None else [{"symbol": client.market_id(s)} for s in symbols]
        )
        batches = await asyncio.gather(
            *(client.fapiPrivateGetOpenOrders(p) for p in per_symbol),
            *(client.fapiPrivateGetOpenAlgoOrders(p) for p in per_symbol if conditional),
        )
        regular = [o for batch in batches[: len(per_symbol)] for o in batch]
        algo = [o for batch in batches[len(per_symbol) :] for o in batch]
        found: dict[str, OpenOrder] = {}
        for info, parse in [*((r, parse_regular_order) for r in regular), *((a, parse_algo_order) for a in algo)]:
            order = parse(info)
            symbol = client.safe_symbol(str(info["symbol"]), None, None, "swap")
            found[order.client_order_id] = OpenOrder(symbol, str(info.get("side", "")).lower(), order)
        return found

    def _positions(
        self, rows: list[dict[str, Any]]
    ) -> tuple[dict[tuple[str, Side], Decimal], dict[tuple[str, Side], Decimal]]:
        """Size (>= 0) and entry price per (symbol, side), from the exchange's own position rows (read raw:
        ccxt's parsing of every row was most of a snapshot's time). One-way mode reports one signed amount per
        symbol."""
        sizes: dict[tuple[str, Side], Decimal] = {}
        entries: dict[tuple[str, Side], Decimal] = {}
        for row in rows:
            amount = _dec(row.get("positionAmt"))
            if not amount:
                continue
            symbol = self.client.safe_symbol(str(row["symbol"]), None, None, "swap")
            if self.hedged:
                side = Side.LONG if row.get("positionSide") == "LONG" else Side.SHORT
            else:
                side = Side.LONG if amount >= 0 else Side.SHORT
            sizes[(symbol, side)] = sizes.get((symbol, side), Decimal(0)) + abs(amount)
            entries[(symbol, side)] = _dec(row.get("entryPrice"))
        return sizes, entries

    @parses_answers
    async def observe(
        self, spec: PositionSpec, status: PositionStatus, snapshot: Snapshot, unsent: frozenset[str] = frozenset()
    ) -> Observation:
        """One Position's view: the account snapshot, plus a lookup by client id for each of its orders that
        can still change and is not among the open ones (it filled, triggered, was cancelled, or never arrived).
        ``unsent``: intents this process recorded and has not sent, known absent without a look-up.

        A snapshot taken before the Position's entry was sent does not hold the fill its answer reported: that fill
        is added to the position's size, so the stop it calls for goes out on the answer, without a read first (the
        next read reconciles: where it disagrees, it wins)."""
        symbol = spec.symbol
        rules = await self.rules(symbol)
        orders: dict[str, ObservedOrder | None] = {}
        for client_id, purpose in records_to_observe(status):
            seen = snapshot.open_orders.get(client_id)
            ended = self.ended(client_id)
            if client_id in unsent:
                orders[client_id] = None
            elif ended is not None:  # an end is final: it wins over a snapshot that still shows the order open
                orders[client_id] = ended
            elif seen is not None:
                orders[client_id] = seen.order
            else:
                answered = self.answer(client_id, snapshot.taken_at)
                orders[client_id] = answered or await self.find_order(symbol, client_id, purpose.conditional)
        size = snapshot.sizes.get((symbol, spec.side), Decimal(0))
        entry_answer = self._answers.get(status.entryOrder.clientOrderId) if status.entryOrder is not None else None
        if entry_answer is not None and entry_answer[0] > snapshot.taken_at:
            size += entry_answer[1].filled
        trades: tuple[Trade, ...] = ()
        entry = status.entryOrder
        # An adopted position's entry is a record without an exchange order: it too has trades to account for.
        if size == 0 and entry is not None and (entry.exchangeOrderId is not None or spec.adopted):
            trades = await self.trades(symbol, status.entryPlacedAt)
        entry_price = snapshot.entry_prices.get((symbol, spec.side))
        return Observation(snapshot.marks[symbol], size, rules, orders, trades, entry_price)

    def answer(self, client_id: str, snapshot_taken_at: float) -> ObservedOrder | None:
        """The order as its placement's answer described it, where that tells more than a snapshot without it:
        the order had already ended (a market order filled), or it was sent after the snapshot began. Saves the
        look-up by client id on the way from an entry's fill to its stop."""
        known = self._answers.get(client_id)
        if known is None:
            return None
        sent_at, order = known
        return order if order.state in _ENDED or sent_at > snapshot_taken_at else None

    def ended(self, client_id: str) -> ObservedOrder | None:
        """The order as its placement's answer described it, if that answer says it had already ended (a market
        order that filled): nothing a later read can show changes it."""
        return self.answer(client_id, math.inf)

    def pushed(self, info: dict[str, Any]) -> ObservedOrder | None:
        """A conditional order the user-data stream says has ended (a stop the venue cancelled or expired): kept
        like a placement's answer, so the Position it protects replaces it on the push, with no read first."""
        order = pushed_end(info)
        if order is not None:
            self._remember(time.monotonic(), order)
        return order

    def _answered(self, sent_at: float, info: Any, parse: Callable[[dict[str, Any]], ObservedOrder]) -> None:
        try:
            order = parse(info)
        except PARSE_ERRORS:
            return  # only a shortcut: the order is looked up by its client id instead
        self._remember(sent_at, order)

    def _remember(self, sent_at: float, order: ObservedOrder) -> None:
        self._answers[order.client_order_id] = (sent_at, order)
        while len(self._answers) > _ANSWERS_KEPT:
            self._answers.popitem(last=False)

    async def find_order(self, symbol: str, client_id: str, algo: bool) -> ObservedOrder | None:
        params: dict[str, Any] = {"clientOrderId": client_id}
        if algo:
            params["trigger"] = True
        try:
            order = await self.client.fetch_order(None, symbol, params)
        except ccxt.OrderNotFound:
            return None
        return parse_algo_order(order["info"]) if algo else parse_regular_order(order["info"])

    async def trades(self, symbol: str, since: datetime | None) -> tuple[Trade, ...]:
        """The symbol's trades since the entry, with liquidations marked (they come from Binance's own orders)."""
        raw = await self.client.fetch_my_trades(symbol, int(since.timestamp() * 1000) if since else None)
        infos = [t["info"] for t in raw]
        liquidations = await self.liquidation_orders(symbol, {str(i["orderId"]) for i in infos})
        return tuple(
            Trade(
                trade_id=str(info["id"]),
                order_id=str(info["orderId"]),
                amount=_dec(info["qty"]),
                price=_dec(info["price"]),
                realized_pnl=_dec(info.get("realizedPnl")),
                fee=_dec(info.get("commission")),
                liquidation=str(info["orderId"]) in liquidations,
            )
            for info in infos
        )

    async def liquidation_orders(self, symbol: str, order_ids: set[str]) -> set[str]:
        """Which of these orders the exchange sent itself; trades carry no client id, so each is looked up.
        Only called when the position is flat, over the few orders since the entry."""
        found = set()
        for order_id in order_ids:
            try:
                order = await self.client.fetch_order(order_id, symbol)
            except ccxt.OrderNotFound:
                continue
            if str(order["info"].get("clientOrderId", "")).startswith(_LIQUIDATION_PREFIXES):
                found.add(order_id)
        return found

    def exit_params(self, client_id: str, side: OrderSide) -> dict[str, Any]:
        """Parameters of an order that may only shrink the position."""
        params: dict[str, Any] = {"clientOrderId": client_id}
        if self.hedged:
            # Closing a long sells the LONG side; ccxt derives positionSide from side and this flag.
            params["hedged"] = True
            params["positionSide"] = "LONG" if side is OrderSide.SELL else "SHORT"
        else:
            params["reduceOnly"] = True
        return params

    @parses_answers
    async def execute(self, symbol: str, action: Action) -> str | None:
        """Send the action; returns the exchange's order id (None for cancels and settings)."""
        client = self.client
        sent_at = time.monotonic()
        if isinstance(action, PlaceMarketOrder):
            if action.reduce_only:
                params = self.exit_params(action.client_order_id, action.side)
            else:
                params = {"clientOrderId": action.client_order_id, **({"hedged": True} if self.hedged else {})}
            order = await client.create_order(symbol, "market", action.side.value, str(action.amount), None, params)
            self._answered(sent_at, order["info"], parse_regular_order)
            return str(order["info"]["orderId"])
        if isinstance(action, PlaceLimitOrder):
            params = {"clientOrderId": action.client_order_id, "timeInForce": action.time_in_force.value}
            if self.hedged:
                params["hedged"] = True
            order = await client.create_order(
                symbol, "limit", action.side.value, str(action.amount), str(action.price), params
            )
            self._answered(sent_at, order["info"], parse_regular_order)
            return str(order["info"]["orderId"])
        if isinstance(action, PlaceStopOrder):
            # ccxt routes stopLossPrice/takeProfitPrice to Binance's algo endpoint as STOP_MARKET/TAKE_PROFIT_MARKET.
            trigger = "takeProfitPrice" if action.purpose is Purpose.TAKE_PROFIT else "stopLossPrice"
            params = {
                **self.exit_params(action.client_order_id, action.side),
                trigger: str(action.trigger_price),
                "workingType": action.working_type.value,
            }
            order = await client.create_order(symbol, "market", action.side.value, str(action.amount), None, params)
            self._answered(sent_at, order["info"], parse_algo_order)
            return str(order["info"]["algoId"])
        if isinstance(action, PlaceTrailingStopOrder):
            params = {
                **self.exit_params(action.client_order_id, action.side),
                "callbackRate": str(action.callback_percent),
                "workingType": action.working_type.value,
            }
            if action.activation_price is not None:
                params["activationPrice"] = str(action.activation_price)
            order = await client.create_order(
                symbol, "TRAILING_STOP_MARKET", action.side.value, str(action.amount), None, params
            )
            self._answered(sent_at, order["info"], parse_algo_order)
            return str(order["info"]["algoId"])
        if isinstance(action, CancelOrder):
            params = {"clientOrderId": action.client_order_id}
            if action.purpose.conditional:
                params["trigger"] = True
            with contextlib.suppress(ccxt.OrderNotFound):  # already gone: the goal of a cancel is reached
                await client.cancel_order(None, symbol, params)
            return None
        if isinstance(action, SetMarginMode):
            with contextlib.suppress(ccxt.MarginModeAlreadySet):  # already so: the goal is reached
                await client.set_margin_mode(action.mode.value, symbol)
            return None
        if isinstance(action, SetLeverage):
            await client.set_leverage(action.leverage, symbol)
            return None
        raise TypeError(f"unknown action {action!r}")
