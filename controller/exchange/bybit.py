"""The Bybit V5 adapter: USDT perpetuals (category ``linear``) on a unified trading account, behind the venue port
(``controller.exchange.port``). Wire facts: ``shared/reference/bybit-v5-wire.md`` (cited as §n).

What differs from Binance and is handled here (§11):
- Conditional orders are ordinary orders with a ``triggerPrice`` in the same list, under the same ids through the
  trigger. Warden's stops trigger on the mark (``triggerBy: MarkPrice``; Bybit's default is the last price), are
  ``reduceOnly`` and ``closeOnTrigger`` (a triggered close may cancel other orders when margin is short).
- Hedge mode: every order names its ``positionIdx`` (1 long side, 2 short side); an exit names the side it closes.
- Post-only is ``postOnly`` (ccxt drops ``GTX`` silently, leaving a GTC order).
- Placement answers are acknowledgements only (``orderId``, ``orderLinkId``): no status, no fill.
- Lookups by client id go to the implicit endpoints with ``orderLinkId`` (ccxt's ``fetch_order`` cannot), realtime
  first, then history; neither keeps every ended order (§6), so "not found" is weak evidence
  (``LookupRetention.BOUNDED``).
- Liquidations are executions (``execType BustTrade``; ``createType CreateByLiq`` / ``CreateByTakeOver_PassThrough``),
  read without ccxt's default ``execType=Trade`` filter. Executions carry no realized PnL: it is derived from the
  fills since the entry.
- Marks come from tickers (``fetch_mark_price`` is not supported); the market-order maximum from
  ``info.lotSizeFilter.maxMktOrderQty`` (ccxt does not map it).
- Re-applying a setting is success: leverage 110043, margin mode 110026, position mode 110025. A duplicate client id
  (110072) means the order was sent already: look it up. The margin mode is account-wide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from controller.api.v1alpha1 import OrderState, PositionMode, Side, TimeInForce, WorkingType
from controller.audit.store import Fill
from controller.exchange.errors import describe
from controller.exchange.fills import FillOwner
from controller.exchange.gateway import ENDED, VenueGateway, dec
from controller.exchange.port import BudgetUnit, PushedOrder, PushedPosition, RequestBudget, UserStream
from controller.exchange.responses import PARSE_ERRORS, parses_answers
from controller.reconcile.model import (
    CLIENT_ID_PREFIX_LENGTH,
    Action,
    CancelOrder,
    MarketRules,
    ObservedOrder,
    OpenOrder,
    OrderSide,
    Outcome,
    PlaceLimitOrder,
    PlaceMarketOrder,
    PlaceStopOrder,
    Purpose,
    Reads,
    SetLeverage,
    SetMarginMode,
    SetPositionTrailing,
    Snapshot,
    Trade,
    entry_side,
)
from controller.reconcile.venue import Capabilities, ConditionalCap, LookupRetention, Scope, TrailingSupport

CAPABILITIES = Capabilities(
    trailing=TrailingSupport.POSITION,
    attached_stop=True,
    conditional_cap=ConditionalCap(10, Scope.SYMBOL),  # conditional orders per symbol per account (§5)
    position_modes=frozenset(PositionMode),
    margin_mode_scope=Scope.ACCOUNT,
    client_id_pattern=r"^[0-9A-Za-z_-]{1,36}$",
    lookup=LookupRetention.BOUNDED,
)
# Per IP: 600 requests per 5 s; per account: order create / amend / cancel 10 per second per endpoint (§9).
BUDGET = RequestBudget(BudgetUnit.REQUESTS, 600, 5.0, per_endpoint_per_second=10)

log = logging.getLogger("warden.bybit")
CATEGORY = "linear"
SETTLE = "USDT"  # the settle coin of the perpetuals Warden trades: every position and order list is asked by it
_PAGE = {"position": 200, "order": 50, "execution": 100}  # the largest page of each list (§7)
_EXECUTION_WINDOW_MS = 7 * 24 * 3600 * 1000  # the widest startTime..endTime span of /v5/execution/list

DUPLICATE_CLIENT_ID = 110072
ALREADY_SET = frozenset({110025, 110026, 110043})
"""Position mode, margin mode, leverage: not modified because it is already so (§3)."""
TPSL_NOT_MODIFIED = 34040
"""``trading-stop`` asked for what is already so: the goal is reached."""

_REGULAR_STATES = {
    "New": OrderState.OPEN,
    "PartiallyFilled": OrderState.OPEN,
    "Untriggered": OrderState.OPEN,
    "Triggered": OrderState.OPEN,
    "Filled": OrderState.FILLED,
    "Cancelled": OrderState.CANCELED,
    "PartiallyFilledCanceled": OrderState.CANCELED,
    "Deactivated": OrderState.CANCELED,
    "Rejected": OrderState.REJECTED,
}
# A conditional order keeps its ids through the trigger and then executes itself (§5): once triggered, the order it
# became is itself.
_CONDITIONAL_STATES = {
    "Untriggered": OrderState.OPEN,
    "Triggered": OrderState.TRIGGERED,
    "New": OrderState.TRIGGERED,
    "PartiallyFilled": OrderState.TRIGGERED,
    "Filled": OrderState.TRIGGERED,
    "PartiallyFilledCanceled": OrderState.TRIGGERED,
    "Deactivated": OrderState.CANCELED,
    "Cancelled": OrderState.CANCELED,
    "Rejected": OrderState.REJECTED,
}
_OPEN_STATUSES = frozenset({"New", "PartiallyFilled", "Untriggered", "Triggered"})
# Executions that are trades of the position (not funding, delivery or settlement), and the venue's own closes.
_TRADE_TYPES = frozenset({"Trade", "BustTrade", "AdlTrade"})
_LIQUIDATION_TYPES = frozenset({"BustTrade", "AdlTrade"})
_LIQUIDATION_CREATORS = frozenset({"CreateByLiq", "CreateByTakeOver_PassThrough", "CreateByAdl_PassThrough"})
BySide = dict[tuple[str, Side], Decimal]
TRAILING_CREATOR = "CreateByTrailingStop"  # the order a position's trailing stop became (§7)
_RET_CODE = re.compile(r'"retCode"\s*:\s*"?(\d+)')


def number(value: Any) -> Decimal:
    """A field Warden cannot do without: missing, empty or not a number raises (the call reports a malformed
    answer), where ``dec`` would read it as zero (a size of zero is a flat position, a mark of zero a price)."""
    found = Decimal(str(value)) if isinstance(value, str | int) and not isinstance(value, bool) else None
    if found is None or not found.is_finite():
        raise ValueError(f"{value!r} is not a number")
    return found


def ret_code(error: Exception) -> int | None:
    """Bybit's ``retCode`` in a ccxt error (its message carries the answer's body)."""
    found = _RET_CODE.search(str(error))
    return int(found.group(1)) if found else None


def is_conditional(info: dict[str, Any]) -> bool:
    return str(info.get("stopOrderType") or "") not in ("", "UNKNOWN") or dec(info.get("triggerPrice")) > 0


def parse_order(info: dict[str, Any]) -> ObservedOrder:
    """An order record (§7); a venue-made child without a client id (an attached stop) is named by its order id."""
    order_id = str(info["orderId"])
    status = str(info["orderStatus"])
    if is_conditional(info):
        return ObservedOrder(
            client_order_id=str(info.get("orderLinkId") or order_id),
            exchange_order_id=order_id,
            state=_CONDITIONAL_STATES.get(status, OrderState.OPEN),
            amount=number(info["qty"]),
            filled=Decimal(0),
            trigger_price=dec(info.get("triggerPrice")) or None,
            triggered_order_id=order_id if _CONDITIONAL_STATES.get(status) is OrderState.TRIGGERED else None,
        )
    return ObservedOrder(
        client_order_id=str(info.get("orderLinkId") or order_id),
        exchange_order_id=order_id,
        state=_REGULAR_STATES.get(status, OrderState.OPEN),
        amount=number(info["qty"]),
        filled=number(info["cumExecQty"]),
        average_price=dec(info.get("avgPrice")) or None,
    )


def rules_from_instrument(info: dict[str, Any], settle: str) -> MarketRules:
    """Market rules from the instrument's own strings (§7): ccxt keeps them as floats and drops the market-order
    maximum."""
    lot, prices = info["lotSizeFilter"], info["priceFilter"]
    market_max = dec(lot.get("maxMktOrderQty")) or dec(lot.get("maxOrderQty"))
    return MarketRules(
        amount_step=Decimal(lot["qtyStep"]),
        min_amount=dec(lot.get("minOrderQty")),
        min_notional=dec(lot.get("minNotionalValue")),
        price_tick=Decimal(prices["tickSize"]),
        max_amount=market_max or None,
        quote=settle,
    )


def position_index(hedged: bool, side: OrderSide, *, closing: bool) -> int:
    """Which position an order acts on (§8): 0 in one-way mode; in hedge mode 1 (long) or 2 (short), for an exit
    the side it closes (a sell closes the long)."""
    if not hedged:
        return 0
    buys_long = side is OrderSide.BUY
    return (2 if buys_long else 1) if closing else (1 if buys_long else 2)


def execution_trade(info: dict[str, Any], realized_pnl: Decimal) -> Trade:
    """An execution row (of ``/v5/execution/list`` or the ``execution`` topic) as a trade of the position."""
    return Trade(
        trade_id=str(info["execId"]),
        order_id=str(info["orderId"]),
        amount=number(info["execQty"]),
        price=number(info["execPrice"]),
        realized_pnl=realized_pnl,
        fee=dec(info.get("execFee")),
        liquidation=info.get("execType") in _LIQUIDATION_TYPES or info.get("createType") in _LIQUIDATION_CREATORS,
        position_trailing=OrderSide(str(info["side"]).lower()) if info.get("createType") == TRAILING_CREATOR else None,
        traded_at_ms=int(info["execTime"]) if info.get("execTime") is not None else None,
        client_order_id=str(info.get("orderLinkId") or ""),
    )


def realized(executions: list[dict[str, Any]], hedged: bool = False) -> dict[str, Decimal]:
    """Realized PnL per execution id, derived from the fills since the position opened (Bybit's REST executions
    carry none). In hedge mode the long and the short are two positions whose fills interleave, and an execution
    does not name its side: a fill that closed nothing (``closedSize`` 0) opened its own side (a buy the long), one
    that closed something reduced the other side (a sell the long)."""
    if not hedged:
        return _realized_one_position(executions)
    found: dict[str, Decimal] = {}
    for opening in ("Buy", "Sell"):
        found |= _realized_one_position(
            [e for e in executions if (e.get("side") == opening) == (number(e["closedSize"]) == 0)]
        )
    return found


# Realized PnL to 8 decimals, as Binance states it: the average entry is a quotient, and an unbounded one is no
# amount of money (the Position's status refuses more than 18 decimals, and a refused status write strands it).
_PNL_STEP = Decimal("1e-8")


def _realized_one_position(executions: list[dict[str, Any]]) -> dict[str, Decimal]:
    """A fill against the signed position closes up to its size at the average entry, the rest opens at its price."""
    size, average = Decimal(0), Decimal(0)
    found: dict[str, Decimal] = {}
    for info in sorted(executions, key=lambda e: int(e["execTime"])):
        qty, price = number(info["execQty"]), number(info["execPrice"])
        sign = 1 if info.get("side") == "Buy" else -1
        closed = min(qty, abs(size)) if size * sign < 0 else Decimal(0)
        pnl = (price - average) * closed * (1 if size > 0 else -1)
        # Rounding named: ccxt sets the thread's decimal context to half up whenever it rounds a number.
        found[str(info["execId"])] = pnl.quantize(_PNL_STEP, rounding=ROUND_HALF_EVEN)
        size += sign * closed
        opened = qty - closed
        if opened:
            average = (average * abs(size) + price * opened) / (abs(size) + opened)
            size += sign * opened
    return found


class Bybit(VenueGateway):
    """Bybit V5, linear USDT perpetuals, unified account."""

    capabilities = CAPABILITIES
    budget = BUDGET
    # The ``order`` topic's pushes carry no trade: the ``execution`` topic's do.
    stream = UserStream(
        orders="watch_orders",
        positions="watch_positions",
        marks="watch_tickers",
        mark_field="markPrice",
        trades="watch_my_trades",
    )

    def rules_from_market(self, market: dict[str, Any]) -> MarketRules:
        return rules_from_instrument(market["info"], str(market.get("settle") or SETTLE))

    def _id(self, symbol: str) -> str:
        return str(self.client.market_id(symbol))

    def _symbol(self, market_id: str) -> str:
        return str(self.client.safe_symbol(market_id, None, None, "swap"))

    async def _pages(
        self, call: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]], params: dict[str, Any], page: int
    ) -> list[dict[str, Any]]:
        """Every row of a list endpoint, following ``nextPageCursor`` (``""`` or a short page ends it)."""
        rows: list[dict[str, Any]] = []
        cursor = ""
        while True:
            answer = await call({**params, "limit": page, **({"cursor": cursor} if cursor else {})})
            result = answer["result"]
            batch = result["list"]
            rows.extend(batch)
            cursor = str(result.get("nextPageCursor") or "")
            if not cursor or len(batch) < page:
                return rows

    @parses_answers
    async def snapshot(
        self,
        symbols: frozenset[str],
        every_position: bool = True,
        orders: bool = True,
        regular: frozenset[str] | None = None,
    ) -> Snapshot:
        """Positions, marks and open orders (regular and conditional come in one list, so ``regular`` saves
        nothing here: every symbol's are read). Positions are read before orders, as on Binance: an order that
        fills meanwhile shows up as no longer open, not beside a stale size."""
        started = time.monotonic()
        await self.load_markets()
        ordered = sorted(s for s in symbols if s in self.client.markets)
        one = not every_position and len(ordered) == 1
        scope = {"symbol": self._id(ordered[0])} if one else {"settleCoin": SETTLE}
        rows, marks = await asyncio.gather(
            self._pages(self.client.privateGetV5PositionList, {"category": CATEGORY, **scope}, _PAGE["position"]),
            self.marks(ordered),
        )
        open_orders = await self.open_orders(ordered) if orders else {}
        sizes, entries, trailing = self._positions(rows)
        reads = self.snapshot_reads(frozenset(ordered), frozenset(), frozenset(), orders)
        return Snapshot(started, sizes, entries, open_orders, marks, trailing, reads)

    def snapshot_reads(
        self, symbols: frozenset[str], regular: frozenset[str], positioned: frozenset[str], orders: bool = True
    ) -> Reads:
        """One list holds every open order, and one tickers call every mark: all of it, whatever is needed."""
        return Reads(symbols if orders else frozenset(), symbols if orders else frozenset(), symbols)

    async def marks(self, symbols: list[str]) -> dict[str, Decimal]:
        """Mark prices from the tickers: one symbol's, or every linear symbol's in one call."""
        if not symbols:
            return {}
        only = {"symbol": self._id(symbols[0])} if len(symbols) == 1 else {}
        answer = await self.client.publicGetV5MarketTickers({"category": CATEGORY, **only})
        every = {self._symbol(str(t["symbol"])): number(t["markPrice"]) for t in answer["result"]["list"]}
        return {s: every[s] for s in symbols if s in every}

    @parses_answers
    async def resting_orders(self, symbols: list[str]) -> dict[str, OpenOrder]:
        found = await self.open_orders(symbols)
        return {client_id: o for client_id, o in found.items() if not o.conditional}

    @parses_answers
    async def account_view(self) -> Snapshot:
        await self.load_markets()
        started = time.monotonic()
        params = {"category": CATEGORY, "settleCoin": SETTLE}
        rows = await self._pages(self.client.privateGetV5PositionList, params, _PAGE["position"])
        sizes, entries, trailing = self._positions(rows)
        return Snapshot(started, sizes, entries, await self.open_orders(None), {}, trailing)

    async def open_orders(self, symbols: list[str] | None) -> dict[str, OpenOrder]:
        """Open orders, regular and conditional, of one symbol or (several, None) of the whole settle coin: one
        list either way, read raw (§4)."""
        only = {"symbol": self._id(symbols[0])} if symbols is not None and len(symbols) == 1 else {}
        params = {"category": CATEGORY, **(only or {"settleCoin": SETTLE})}
        rows = await self._pages(self.client.privateGetV5OrderRealtime, params, _PAGE["order"])
        wanted = None if symbols is None else set(symbols)
        found: dict[str, OpenOrder] = {}
        for info in rows:
            symbol = self._symbol(str(info["symbol"]))
            if (wanted is not None and symbol not in wanted) or str(info["orderStatus"]) not in _OPEN_STATUSES:
                continue
            order = parse_order(info)
            side = str(info.get("side", "")).lower()
            found[order.client_order_id] = OpenOrder(symbol, side, order, is_conditional(info))
        return found

    def _positions(self, rows: list[dict[str, Any]]) -> tuple[BySide, BySide, BySide]:
        """Size, entry price and trailing-stop distance per (symbol, side): ``size`` is never negative; the side is
        the ``positionIdx`` in hedge mode (1 long, 2 short), else the row's ``side`` (§7). The row's
        ``trailingStop`` is the position-level trailing stop in force ("0": none), what Warden reads its own back
        from (it has no client id)."""
        sizes: BySide = {}
        entries: BySide = {}
        trailing: BySide = {}
        for row in rows:
            size = number(row["size"])
            if not size:
                continue
            index = int(row.get("positionIdx") or 0)
            long = index == 1 if index else row.get("side") == "Buy"
            key = (self._symbol(str(row["symbol"])), Side.LONG if long else Side.SHORT)
            sizes[key] = sizes.get(key, Decimal(0)) + size
            entries[key] = dec(row.get("avgPrice"))
            if distance := dec(row.get("trailingStop")):
                trailing[key] = distance
        return sizes, entries, trailing

    async def find_order(self, symbol: str, client_id: str, conditional: bool) -> ObservedOrder | None:
        """By ``orderLinkId``: realtime (any state, but only the latest 500 ended orders), then history (cancelled
        orders 24 h, others 7 days). Conditional orders are in the same lists as the others."""
        await self.load_markets()
        params = {"category": CATEGORY, "symbol": self._id(symbol), "orderLinkId": client_id}
        for call in (self.client.privateGetV5OrderRealtime, self.client.privateGetV5OrderHistory):
            rows = (await call(params))["result"]["list"]
            if rows:
                return parse_order(rows[0])
        return None

    async def executions(self, symbol: str, since: datetime | None) -> list[dict[str, Any]]:
        """The symbol's executions since ``since`` (the last 7 days without it), every type: ccxt's
        ``fetch_my_trades`` asks for ``execType=Trade`` only, which hides liquidations (§4). The endpoint answers at
        most 7 days per request, so a longer span is read in windows."""
        await self.load_markets()
        params: dict[str, Any] = {"category": CATEGORY, "symbol": self._id(symbol)}
        call = self.client.privateGetV5ExecutionList
        if since is None:
            return await self._pages(call, params, _PAGE["execution"])
        rows: list[dict[str, Any]] = []
        start, now = int(since.timestamp() * 1000), int(datetime.now(UTC).timestamp() * 1000)
        while start <= now:
            end = min(start + _EXECUTION_WINDOW_MS - 1, now)  # both ends are inclusive
            rows.extend(await self._pages(call, {**params, "startTime": start, "endTime": end}, _PAGE["execution"]))
            start = end + 1
        return rows

    async def trades(self, symbol: str, since: datetime | None) -> tuple[Trade, ...]:
        infos = [i for i in await self.executions(symbol, since) if i.get("execType") in _TRADE_TYPES]
        pnl = realized(infos, self.hedged)
        return tuple(execution_trade(info, pnl[str(info["execId"])]) for info in infos)

    def pushed_trades(self, pushes: list[dict[str, Any]]) -> None:
        """The ``execution`` topic's rows, as ccxt.pro passes them on (``info``). A row's realized PnL is its own
        ``execPnl``: it decides nothing here (``pushed_exit`` decides an exit; the books close on a read)."""
        for push in pushes:
            info = push.get("info") or {}
            if info.get("execType") not in _TRADE_TYPES:
                continue
            with contextlib.suppress(*PARSE_ERRORS):  # only a shortcut: the trades are read instead
                self.pushed_trade(str(push.get("symbol")), execution_trade(info, dec(info.get("execPnl"))))

    async def fills(
        self, symbol: str, order_ids: Collection[str], owner: FillOwner, since: datetime | None
    ) -> list[Fill]:
        if not order_ids:
            return []
        infos = [i for i in await self.executions(symbol, since) if i.get("execType") in _TRADE_TYPES]
        pnl = realized(infos, self.hedged)
        return [
            owner.fill(
                symbol,
                str(info["execId"]),
                str(info["orderId"]),
                str(info["side"]),
                number(info["execQty"]),
                number(info["execPrice"]),
                dec(info.get("execFee")),
                info.get("feeCurrency") or SETTLE,
                pnl[str(info["execId"])],
                info.get("isMaker"),
                int(info["execTime"]),
            )
            for info in infos
            if str(info["orderId"]) in order_ids
        ]

    def order_params(self, action: PlaceMarketOrder | PlaceLimitOrder | PlaceStopOrder) -> dict[str, Any]:
        """ccxt ``create_order`` parameters of a placement (the request each makes: tests/unit/test_bybit.py)."""
        closing = isinstance(action, PlaceStopOrder) or (isinstance(action, PlaceMarketOrder) and action.reduce_only)
        params: dict[str, Any] = {
            "clientOrderId": action.client_order_id,
            "positionIdx": position_index(self.hedged, action.side, closing=closing),
        }
        if closing:
            params["reduceOnly"] = True
        if isinstance(action, PlaceStopOrder):
            trigger = "takeProfitPrice" if action.purpose is Purpose.TAKE_PROFIT else "stopLossPrice"
            params[trigger] = str(action.trigger_price)
            params["triggerBy"] = "MarkPrice" if action.working_type is WorkingType.MARK_PRICE else "LastPrice"
            params["closeOnTrigger"] = True
        if not isinstance(action, PlaceStopOrder) and action.attached_stop is not None:
            # A safety-net stop Bybit places itself as the entry fills, for the quantity filled, on the mark.
            params["stopLoss"] = {"triggerPrice": str(action.attached_stop)}
            params["slTriggerBy"] = "MarkPrice"
            params["tpslMode"] = "Partial"
            params["slOrderType"] = "Market"
        if isinstance(action, PlaceLimitOrder):
            if action.time_in_force is TimeInForce.GTX:
                params["postOnly"] = True  # ccxt sends "timeInForce":"PostOnly"; a GTX would be dropped silently
            else:
                params["timeInForce"] = action.time_in_force.value
        return params

    @parses_answers
    async def execute(self, symbol: str, action: Action) -> str | None:
        client = self.client
        sent_at = time.monotonic()
        if isinstance(action, PlaceMarketOrder | PlaceLimitOrder | PlaceStopOrder):
            kind = "limit" if isinstance(action, PlaceLimitOrder) else "market"
            price = str(action.price) if isinstance(action, PlaceLimitOrder) else None
            params = self.order_params(action)
            order = await client.create_order(symbol, kind, action.side.value, str(action.amount), price, params)
            order_id = str(order["info"]["orderId"])
            # The answer is an acknowledgement only: the order rests (or is filling) as far as Warden knows.
            self.keep_answer(
                sent_at, ObservedOrder(action.client_order_id, order_id, OrderState.OPEN, action.amount, Decimal(0))
            )
            if action.purpose in (Purpose.STOP, Purpose.CLOSE):
                await self.retire_attached(symbol, action.client_order_id)
            return order_id
        if isinstance(action, CancelOrder):
            with contextlib.suppress(ccxt.OrderNotFound):  # already gone: the goal of a cancel is reached
                await client.cancel_order(None, symbol, {"orderLinkId": action.client_order_id})
            return None
        if isinstance(action, SetMarginMode | SetLeverage):
            try:
                if isinstance(action, SetMarginMode):
                    await client.set_margin_mode(action.mode.value, symbol)  # account-wide (§8)
                else:
                    await client.set_leverage(action.leverage, symbol)
            except ccxt.BaseError as error:
                if ret_code(error) not in ALREADY_SET:
                    raise
            return None
        if isinstance(action, SetPositionTrailing):
            await self.load_markets()
            try:
                await client.privatePostV5PositionTradingStop(self.trading_stop_params(symbol, action))
            except ccxt.BaseError as error:
                if ret_code(error) != TPSL_NOT_MODIFIED:
                    raise
            return None
        # PlaceTrailingStopOrder: Bybit trails a position, not an order (Capabilities.trailing); never planned here.
        raise TypeError(f"{action!r} is not an action Bybit takes")

    def trading_stop_params(self, symbol: str, action: SetPositionTrailing) -> dict[str, Any]:
        """The ``/v5/position/trading-stop`` request of a position trailing stop (§5): Full mode (the whole position
        side), the side's ``positionIdx`` (ccxt adds none), the distance ("0" clears it) and the activation."""
        params: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": self._id(symbol),
            "tpslMode": "Full",
            "positionIdx": position_index(self.hedged, entry_side(action.side), closing=False),
            "trailingStop": str(action.distance),
        }
        if action.activation_price is not None:
            params["activePrice"] = str(action.activation_price)
        return params

    async def retire_attached(self, symbol: str, client_id: str) -> None:
        """Cancel the stop Bybit attached to this Position's entry, once Warden's own stop rests (or its close is
        sent): from then on Warden's stop, under its own client id, is the protection it manages. The attached stop
        is a child without a client id, linked to the entry by ``parentOrderLinkId``; the orphan sweep never takes
        it for a Warden order. Best effort: a child made after this look (Bybit does not say when it creates it) is
        retired by the next stop or the close; both are reduce-only, so they never close more than the position."""
        entry = f"{client_id[:CLIENT_ID_PREFIX_LENGTH]}-{Purpose.ENTRY.value}"
        try:
            params = {"category": CATEGORY, "symbol": self._id(symbol)}
            rows = await self._pages(self.client.privateGetV5OrderRealtime, params, _PAGE["order"])
            for info in rows:
                if info.get("parentOrderLinkId") == entry and not info.get("orderLinkId") and is_conditional(info):
                    with contextlib.suppress(ccxt.OrderNotFound):
                        await self.client.cancel_order(str(info["orderId"]), symbol)
        except ccxt.BaseError as error:  # Warden's own order went out: that is what the caller is told about
            log.warning("retiring the stop attached to %s on %s failed: %s", entry, symbol, describe(error))

    def classify(self, error: Exception) -> Outcome:
        # ccxt raises InvalidOrder for a duplicate client id, but it means the order exists: look it up.
        if ret_code(error) == DUPLICATE_CLIENT_ID:
            return Outcome.UNKNOWN
        return super().classify(error)

    def action_cost(self, action: Action) -> int:
        return 1  # every request counts against the IP's 600 per 5 s

    def pushed_order(self, push: dict[str, Any]) -> PushedOrder:
        info = push.get("info") or {}
        return PushedOrder(
            str(info.get("orderLinkId") or ""),
            str(info.get("orderStatus")) in _OPEN_STATUSES,
            dec(info.get("cumExecQty")),
        )

    def pushed_end(self, push: dict[str, Any]) -> ObservedOrder | None:
        """An ``order`` topic push is the order record of §7: read as a read would read it, if it ended."""
        try:
            order = parse_order(push["info"])
        except PARSE_ERRORS:
            return None
        return order if order.state in ENDED and is_conditional(push["info"]) else None

    def pushed_regular(self, push: dict[str, Any]) -> ObservedOrder | None:
        try:
            order = parse_order(push["info"])
        except PARSE_ERRORS:
            return None
        return None if is_conditional(push["info"]) else order

    def pushed_position(self, push: dict[str, Any]) -> PushedPosition:
        info = push.get("info") or {}
        index = int(info.get("positionIdx") or 0)
        side = {1: Side.LONG, 2: Side.SHORT}.get(index) or {"Buy": Side.LONG, "Sell": Side.SHORT}.get(
            str(info.get("side"))
        )
        # The symbol as ccxt.pro names it (the stream's own client has the markets); numbers from Bybit's strings.
        return PushedPosition(str(push.get("symbol")), side, dec(info.get("size")))


def make_client(api_key: str, secret: str, headers: dict[str, str], *, pro: bool) -> Any:
    """A ccxt ``bybit`` client for linear perpetuals on a unified account (§1)."""
    return (ccxt_pro if pro else ccxt_async).bybit(
        {
            "apiKey": api_key,
            "secret": secret,
            "enableRateLimit": False,  # Warden paces its own reads (see binanceusdm.make_client)
            "headers": headers,
            # With a key set, load_markets() would first call the signed coin query, which restricted keys fail.
            "has": {"fetchCurrencies": False},
            "options": {
                "defaultType": "swap",
                "defaultSubType": "linear",
                "fetchMarkets": {"types": ["linear"]},
                # Without these, the first private call is preceded by two account-type queries.
                "enableUnifiedAccount": True,
                "enableUnifiedMargin": False,
                "recvWindow": 5000,
                # watch_positions would first read linear and inverse positions over REST; Warden reads its own.
                "watchPositions": {"fetchPositionsSnapshot": False},
            },
        }
    )


def point_at(exchange: Any, root: str, ws_root: str) -> None:
    """Every API host replaced: the whole REST group table (a group left out makes ``sign()`` raise rather than
    reach a real host) and the websocket table ccxt.pro adds."""
    exchange.urls["api"] = {
        **{group: root for group in ("spot", "futures", "v2", "public", "private")},
        "ws": {
            "public": {kind: f"{ws_root}/v5/public/{kind}" for kind in ("spot", "linear", "inverse", "option")},
            "private": {
                "spot": {"unified": f"{ws_root}/v5/private", "nonUnified": f"{ws_root}/v5/private"},
                "contract": f"{ws_root}/v5/private",
                "usdc": f"{ws_root}/v5/private",
                "trade": f"{ws_root}/v5/trade",
            },
        },
    }


# Bybit's own non-production REST hosts have their websockets elsewhere (§10).
_STREAM_HOSTS = {
    "https://api-demo.bybit.com": "wss://stream-demo.bybit.com",
    "https://api-testnet.bybit.com": "wss://stream-testnet.bybit.com",
}


def websocket_root(same_host: Callable[[str], str]) -> Callable[[str], str]:
    return lambda root: _STREAM_HOSTS.get(root) or same_host(root)
