"""The Binance USDⓈ-M adapter: its endpoints, records, client setup and capabilities behind the venue port
(``controller.exchange.port``). Wire facts: ``shared/reference/binance-usdm-wire.md``.

Numbers are read from the exchange's raw strings (``info``), never from ccxt's parsed floats.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from controller.api.v1alpha1 import OrderState, PositionMode, Side
from controller.audit.store import Fill
from controller.exchange.fills import FillOwner
from controller.exchange.gateway import ENDED, VenueGateway, dec, kept
from controller.exchange.port import BudgetUnit, PushedOrder, PushedPosition, RequestBudget, UserStream
from controller.exchange.responses import PARSE_ERRORS, parses_answers
from controller.reconcile.model import (
    Action,
    CancelOrder,
    MarketRules,
    ObservedOrder,
    OpenOrder,
    OrderSide,
    PlaceLimitOrder,
    PlaceMarketOrder,
    PlaceStopOrder,
    PlaceTrailingStopOrder,
    Purpose,
    Reads,
    SetLeverage,
    SetMarginMode,
    Snapshot,
    Trade,
)
from controller.reconcile.venue import Capabilities, ConditionalCap, LookupRetention, Scope, TrailingSupport

CAPABILITIES = Capabilities(
    trailing=TrailingSupport.ORDER,
    attached_stop=False,
    pre_armed_stop=True,
    conditional_cap=ConditionalCap(200, Scope.ACCOUNT),  # open algo orders per account
    position_modes=frozenset(PositionMode),
    margin_mode_scope=Scope.SYMBOL,
    client_id_pattern=r"^[\.A-Z\:/a-z0-9_-]{1,36}$",
    lookup=LookupRetention.DURABLE,
)
BUDGET = RequestBudget(BudgetUnit.WEIGHT, 2400, 60.0)  # the default request weight per IP per minute

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


# Weights of the all-symbol forms (openOrders / openAlgoOrders: 40 each, premiumIndex: 10) against 1 per symbol.
_ALL_OPEN_ORDERS_WEIGHT = 40
_ALL_MARKS_WEIGHT = 10


# Binance names the orders it sends itself when it liquidates or auto-deleverages a position.
_LIQUIDATION_PREFIXES = ("autoclose-", "adl_autoclose")


@dataclass(frozen=True)
class _RegularFields:
    """Where a regular order's fields are: the REST record names them in full, ``ORDER_TRADE_UPDATE`` in letters."""

    client_id: str
    order_id: str
    status: str
    quantity: str
    filled: str
    average: str


_REST_REGULAR = _RegularFields("clientOrderId", "orderId", "status", "origQty", "executedQty", "avgPrice")
_PUSHED_REGULAR = _RegularFields("c", "i", "X", "q", "z", "ap")  # ccxt.pro keeps the event's ``o`` as ``info``


def _regular_order(info: dict[str, Any], fields: _RegularFields) -> ObservedOrder:
    average = dec(info.get(fields.average))
    return ObservedOrder(
        client_order_id=str(info[fields.client_id]),
        exchange_order_id=str(info[fields.order_id]),
        state=_REGULAR_STATES.get(str(info[fields.status]), OrderState.OPEN),
        amount=dec(info.get(fields.quantity)),
        filled=dec(info.get(fields.filled)),
        average_price=average or None,
    )


def parse_regular_order(info: dict[str, Any]) -> ObservedOrder:
    return _regular_order(info, _REST_REGULAR)


def pushed_regular(push: dict[str, Any]) -> ObservedOrder | None:
    """The regular order an ``ORDER_TRADE_UPDATE`` push (as ccxt.pro hands it over) describes."""
    try:
        return _regular_order(push["info"], _PUSHED_REGULAR)
    except PARSE_ERRORS:
        return None  # not a regular order's push (an algo one), or not one to rely on: the read still comes


@dataclass(frozen=True)
class _AlgoFields:
    """Where an algo order's fields are: the REST record names them in full, the ``ALGO_UPDATE`` push in letters."""

    client_id: str
    algo_id: str
    status: str
    quantity: str
    trigger: str
    actual_order: str


_REST_ALGO = _AlgoFields("clientAlgoId", "algoId", "algoStatus", "quantity", "triggerPrice", "actualOrderId")
_PUSHED_ALGO = _AlgoFields("caid", "aid", "X", "q", "tp", "ai")  # ccxt.pro keeps the event's ``o`` as ``info``


def _algo_order(info: dict[str, Any], fields: _AlgoFields) -> ObservedOrder:
    triggered = info.get(fields.actual_order)
    return ObservedOrder(
        client_order_id=str(info[fields.client_id]),
        exchange_order_id=str(info[fields.algo_id]),
        state=_ALGO_STATES.get(str(info.get(fields.status)), OrderState.OPEN),
        amount=dec(info.get(fields.quantity)),
        filled=Decimal(0),
        trigger_price=dec(info.get(fields.trigger)) or None,
        triggered_order_id=str(triggered) if triggered not in (None, "", 0, "0") else None,
    )


def parse_algo_order(info: dict[str, Any]) -> ObservedOrder:
    return _algo_order(info, _REST_ALGO)


def pushed_end(push: dict[str, Any]) -> ObservedOrder | None:
    """The conditional order an ``ALGO_UPDATE`` push (as ccxt.pro hands it over) says has ended."""
    try:
        order = _algo_order(push["info"], _PUSHED_ALGO)
    except PARSE_ERRORS:
        return None  # not an algo push, or not one to rely on: the read it would have saved still comes
    return order if order.state in ENDED else None


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


def request_weight(action: Action) -> int:
    """The request weight of the action's call: placing orders weighs 0 (orders count against the order rate
    limits instead); cancelling one, or changing a setting, weighs 1."""
    return 1 if isinstance(action, CancelOrder | SetMarginMode | SetLeverage) else 0


def pushed_order(push: dict[str, Any]) -> PushedOrder:
    """An order push as ccxt.pro parses Binance's ORDER_TRADE_UPDATE."""
    filled = Decimal(str(push.get("filled") or 0))
    return PushedOrder(str(push.get("clientOrderId") or ""), push.get("status") == "open", filled)


def pushed_trade(info: dict[str, Any]) -> Trade:
    """The trade an ORDER_TRADE_UPDATE of execution type TRADE reports, as a read of ``userTrades`` gives it."""
    client_id = str(info.get("c") or "")
    return Trade(
        trade_id=str(info["t"]),
        order_id=str(info["i"]),
        amount=dec(info.get("l")),
        price=dec(info.get("L")),
        realized_pnl=dec(info.get("rp")),
        fee=dec(info.get("n")),
        liquidation=client_id.startswith(_LIQUIDATION_PREFIXES),
        traded_at_ms=int(info["T"]) if info.get("T") is not None else None,
        client_order_id=client_id,
    )


def pushed_position(push: dict[str, Any]) -> PushedPosition:
    """A position push as ccxt.pro parses Binance's ACCOUNT_UPDATE (no side: flat)."""
    side = push.get("side")
    size = Decimal(str(push.get("contracts") or 0))
    return PushedPosition(str(push.get("symbol")), Side(side) if side in set(Side) else None, size)


def snapshot_reads(
    symbols: frozenset[str], regular: frozenset[str], positioned: frozenset[str], orders: bool = True
) -> Reads:
    """What a snapshot asks for: algo orders (the stops) of every symbol, regular ones only where asked for, and
    marks only of the symbols with no position to carry them (positionRisk's rows have ``markPrice``)."""
    return Reads(symbols if orders else frozenset(), regular & symbols if orders else frozenset(), symbols - positioned)


class BinanceUsdm(VenueGateway):
    """Binance USDⓈ-M futures.

    ``hedged``: exits name the position side instead of being reduce-only (Binance refuses reduceOnly there;
    ccxt maps ``hedged`` to positionSide)."""

    capabilities = CAPABILITIES
    budget = BUDGET
    stream = UserStream(orders="watch_orders", positions="watch_positions", marks="watch_mark_prices", mark_field="p")

    def __init__(self, client: Any, *, hedged: bool = False) -> None:
        super().__init__(client, hedged=hedged)
        self._sent_by_venue: OrderedDict[str, bool] = OrderedDict()
        """Order id -> whether the exchange sent it itself (a liquidation), as looked up (pushed ones are not)."""
        self._pushed_clients: OrderedDict[str, str] = OrderedDict()
        """Order id -> its client id, as the user-data stream pushed it (a trade carries none)."""

    def rules_from_market(self, market: dict[str, Any]) -> MarketRules:
        return rules_from_market(market)

    @parses_answers
    async def snapshot(
        self,
        symbols: frozenset[str],
        every_position: bool = True,
        orders: bool = True,
        regular: frozenset[str] | None = None,
    ) -> Snapshot:
        """The account's positions (every symbol; or, not ``every_position``, the one symbol asked for) and, for
        ``symbols``, mark prices and (``orders``) open algo orders, and the regular open orders of ``regular``
        (None: of every symbol; see ``snapshot_reads``).

        Positions are read before orders: an order that fills or triggers while the snapshot is taken then shows
        up as no longer open (and is looked up by its client id) rather than as open beside a stale size. A mark
        comes with its symbol's position (positionRisk's ``markPrice``); only symbols without one have it read.
        A read of one symbol alone (a Position's own, after it acted) asks for its mark beside its position: one
        round trip, for 1 weight more. Per-symbol calls weigh 1 each; past a handful of symbols the all-symbol
        forms are cheaper."""
        started = time.monotonic()
        await self.load_markets()
        ordered = sorted(s for s in symbols if s in self.client.markets)  # an unknown symbol fails one Position
        one = not every_position and len(ordered) == 1
        only = {"symbol": self.client.market_id(ordered[0])} if one else {}
        rows, beside = await asyncio.gather(
            self.client.fapiPrivateV3GetPositionRisk(only), self.marks(ordered if one else [])
        )
        sizes, entries, carried = self._positions(rows)
        asked = frozenset(ordered)
        positioned = frozenset() if one else frozenset(carried)  # (one: its mark is already read)
        reads = self.snapshot_reads(asked, asked if regular is None else regular, positioned, orders)
        fetched, open_orders = await asyncio.gather(
            self.marks(sorted(reads.marks.difference(beside))),
            self.open_orders(sorted(reads.regular), sorted(reads.orders)),
        )
        marks = {s: carried[s] for s in ordered if s in carried} | beside | fetched
        return Snapshot(started, sizes, entries, open_orders, marks, reads=reads)

    def snapshot_reads(
        self, symbols: frozenset[str], regular: frozenset[str], positioned: frozenset[str], orders: bool = True
    ) -> Reads:
        return snapshot_reads(symbols, regular, positioned, orders)

    async def marks(self, symbols: list[str]) -> dict[str, Decimal]:
        if len(symbols) > _ALL_MARKS_WEIGHT:
            every = await self.client.fetch_mark_prices()
            return {s: dec(every[s]["info"]["markPrice"]) for s in symbols if s in every}
        found = await asyncio.gather(*(self.client.fetch_mark_price(s) for s in symbols))
        return {s: dec(m["info"]["markPrice"]) for s, m in zip(symbols, found, strict=True)}

    @parses_answers
    async def resting_orders(self, symbols: list[str]) -> dict[str, OpenOrder]:
        """The regular open orders of a few symbols: 1 weight each, where a snapshot costs 5 plus 1 to 3 per symbol."""
        return await self.open_orders(symbols, [])

    @parses_answers
    async def account_view(self) -> Snapshot:
        """Every position and every open order of the account, whatever the symbol (for the orphan sweep)."""
        await self.load_markets()
        started = time.monotonic()
        sizes, entries, _ = self._positions(await self.client.fapiPrivateV3GetPositionRisk())
        return Snapshot(started, sizes, entries, await self.open_orders(None, None), {})

    async def open_orders(self, regular: list[str] | None, algo: list[str] | None) -> dict[str, OpenOrder]:
        """Open regular orders of the symbols ``regular`` and algo orders of ``algo`` (None: of all symbols).

        Each list is read per symbol (1 weight each) or, past ``_ALL_OPEN_ORDERS_WEIGHT`` symbols, in one
        all-symbol call (40). Read through ccxt's raw endpoints: only the exchange's own fields are used, and
        ccxt's order parsing of every open order of the account, every cycle, is a large share of the controller's
        CPU with many Positions."""
        client = self.client

        def scope(symbols: list[str] | None) -> list[dict[str, str]]:
            if symbols is None or len(symbols) > _ALL_OPEN_ORDERS_WEIGHT:
                return [{}]
            return [{"symbol": client.market_id(s)} for s in symbols]

        regular_calls, algo_calls = scope(regular), scope(algo)
        batches = await asyncio.gather(
            *(client.fapiPrivateGetOpenOrders(p) for p in regular_calls),
            *(client.fapiPrivateGetOpenAlgoOrders(p) for p in algo_calls),
        )
        found: dict[str, OpenOrder] = {}
        for index, batch in enumerate(batches):
            # Algo orders are the conditional ones: they count against the account's cap of 200.
            conditional = index >= len(regular_calls)
            parse = parse_algo_order if conditional else parse_regular_order
            for info in batch:
                order = parse(info)
                symbol = client.safe_symbol(str(info["symbol"]), None, None, "swap")
                side = str(info.get("side", "")).lower()
                found[order.client_order_id] = OpenOrder(symbol, side, order, conditional)
        return found

    def _positions(
        self, rows: list[dict[str, Any]]
    ) -> tuple[dict[tuple[str, Side], Decimal], dict[tuple[str, Side], Decimal], dict[str, Decimal]]:
        """Size (>= 0) and entry price per (symbol, side), and the mark of each symbol with a position, from the
        exchange's own position rows (read raw: ccxt's parsing of every row was most of a snapshot's time).
        One-way mode reports one signed amount per symbol."""
        sizes: dict[tuple[str, Side], Decimal] = {}
        entries: dict[tuple[str, Side], Decimal] = {}
        marks: dict[str, Decimal] = {}
        for row in rows:
            amount = dec(row.get("positionAmt"))
            if not amount:
                continue
            symbol = self.client.safe_symbol(str(row["symbol"]), None, None, "swap")
            if self.hedged:
                side = Side.LONG if row.get("positionSide") == "LONG" else Side.SHORT
            else:
                side = Side.LONG if amount >= 0 else Side.SHORT
            sizes[(symbol, side)] = sizes.get((symbol, side), Decimal(0)) + abs(amount)
            entries[(symbol, side)] = dec(row.get("entryPrice"))
            if mark := dec(row.get("markPrice")):
                marks[symbol] = mark
        return sizes, entries, marks

    async def find_order(self, symbol: str, client_id: str, conditional: bool) -> ObservedOrder | None:
        algo = conditional  # Binance keeps conditional orders on its algo endpoints
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
                amount=dec(info["qty"]),
                price=dec(info["price"]),
                realized_pnl=dec(info.get("realizedPnl")),
                fee=dec(info.get("commission")),
                liquidation=str(info["orderId"]) in liquidations,
                traded_at_ms=int(info["time"]) if info.get("time") is not None else None,
                client_order_id=self._pushed_clients.get(str(info["orderId"])),
            )
            for info in infos
        )

    async def liquidation_orders(self, symbol: str, order_ids: set[str]) -> set[str]:
        """Which of these orders the exchange sent itself; trades carry no client id, so an order the stream did not
        push is looked up. Only called when the position is flat, over the few orders since the entry: at once, and
        once each (who sent an order never changes), so the passes that close the books after an outside close look
        up nothing."""
        pushed = {i: c.startswith(_LIQUIDATION_PREFIXES) for i in order_ids if (c := self._pushed_clients.get(i))}
        unknown = sorted(order_ids - pushed.keys() - self._sent_by_venue.keys())
        for order_id, by_venue in zip(
            unknown, await asyncio.gather(*(self._sent_by_the_venue(symbol, i) for i in unknown)), strict=True
        ):
            if by_venue is not None:
                kept(self._sent_by_venue, order_id, by_venue)
        return {i for i in order_ids if pushed.get(i) or self._sent_by_venue.get(i)}

    async def _sent_by_the_venue(self, symbol: str, order_id: str) -> bool | None:
        try:
            order = await self.client.fetch_order(order_id, symbol)
        except ccxt.OrderNotFound:
            return None  # not known yet: asked again next time
        return str(order["info"].get("clientOrderId", "")).startswith(_LIQUIDATION_PREFIXES)

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
            self.remember(sent_at, order["info"], parse_regular_order)
            return str(order["info"]["orderId"])
        if isinstance(action, PlaceLimitOrder):
            params = {"clientOrderId": action.client_order_id, "timeInForce": action.time_in_force.value}
            if self.hedged:
                params["hedged"] = True
            order = await client.create_order(
                symbol, "limit", action.side.value, str(action.amount), str(action.price), params
            )
            self.remember(sent_at, order["info"], parse_regular_order)
            return str(order["info"]["orderId"])
        if isinstance(action, PlaceStopOrder):
            # ccxt routes stopLossPrice/takeProfitPrice to Binance's algo endpoint as STOP_MARKET/TAKE_PROFIT_MARKET.
            trigger = "takeProfitPrice" if action.purpose is Purpose.TAKE_PROFIT else "stopLossPrice"
            params = {
                **self.exit_params(action.client_order_id, action.side),
                trigger: str(action.trigger_price),
                "workingType": action.working_type.value,
            }
            if action.close_position:
                # No quantity (ccxt leaves it out) and no reduceOnly (Binance refuses it beside closePosition).
                params.pop("reduceOnly", None)
                params["closePosition"] = True
            order = await client.create_order(symbol, "market", action.side.value, str(action.amount), None, params)
            self.remember(sent_at, order["info"], parse_algo_order)
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
            self.remember(sent_at, order["info"], parse_algo_order)
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

    def action_cost(self, action: Action) -> int:
        return request_weight(action)

    def pushed_order(self, push: dict[str, Any]) -> PushedOrder:
        order = pushed_order(push)
        info = push.get("info") or {}
        if info.get("i") is not None:  # a regular order (ORDER_TRADE_UPDATE; an algo order's id is another series)
            # Who sent an order never changes, and the push names it: an outside close's or a liquidation's trades
            # are then told apart with no look-up (``liquidation_orders``), and a triggered stop's from both.
            kept(self._pushed_clients, str(info["i"]), order.client_id)
            if info.get("x") == "TRADE":
                with contextlib.suppress(*PARSE_ERRORS):  # only a shortcut: the trades are read instead
                    self.pushed_trade(str(push.get("symbol")), pushed_trade(info))
        return order

    def pushed_end(self, push: dict[str, Any]) -> ObservedOrder | None:
        return pushed_end(push)

    def pushed_regular(self, push: dict[str, Any]) -> ObservedOrder | None:
        return pushed_regular(push)

    def pushed_position(self, push: dict[str, Any]) -> PushedPosition:
        return pushed_position(push)

    async def fills(
        self, symbol: str, order_ids: Collection[str], owner: FillOwner, since: datetime | None
    ) -> list[Fill]:
        """Trades of the given orders (in Binance's default window, whatever ``since``); values come from the raw
        strings the exchange sent, never from floats."""
        if not order_ids:
            return []
        trades = await self.client.fetch_my_trades(symbol)
        return [
            owner.fill(
                symbol,
                str(info["id"]),
                str(info["orderId"]),
                str(info["side"]),
                Decimal(info["qty"]),
                Decimal(info["price"]),
                Decimal(info.get("commission") or "0"),
                info.get("commissionAsset"),
                Decimal(info.get("realizedPnl") or "0"),
                info.get("maker"),
                int(info["time"]),
            )
            for info in (t["info"] for t in trades)
            if str(info["orderId"]) in order_ids
        ]


def make_client(api_key: str, secret: str, headers: dict[str, str], *, pro: bool) -> Any:
    """A ccxt ``binanceusdm`` client (ccxt.pro, with websockets, if ``pro``)."""
    return (ccxt_pro if pro else ccxt_async).binanceusdm(
        {
            "apiKey": api_key,
            "secret": secret,
            # Warden budgets request weight itself (one paced read per account, controller/handlers/observer.py);
            # ccxt's own throttle would hold every call for rateLimit x cost (250 ms for a positions read) and
            # queue a stop behind reads. The exchange's 429 stays the backstop (a retry with back-off).
            "enableRateLimit": False,
            "headers": headers,
            "options": {
                # load_markets() must touch only /fapi/v1/exchangeInfo, never the spot sapi hosts.
                "fetchCurrencies": False,
                "fetchMarkets": {"types": ["linear"]},
                "adjustForTimeDifference": False,
                "warnOnFetchOpenOrdersWithoutSymbol": False,
                "fetchOpenOrders": {"warnWithoutSymbol": False},
            },
        }
    )


def point_at(exchange: Any, root: str, ws_root: str) -> None:
    """Every API host replaced by ``root`` (``ws_root`` for the websocket)."""
    # Replace (not merge) the URL table: any API group left out raises NotSupported client-side
    # instead of reaching a real host.
    exchange.urls["api"] = {
        "fapiPublic": f"{root}/fapi/v1",
        "fapiPublicV2": f"{root}/fapi/v2",
        "fapiPublicV3": f"{root}/fapi/v3",
        "fapiPrivate": f"{root}/fapi/v1",
        "fapiPrivateV2": f"{root}/fapi/v2",
        "fapiPrivateV3": f"{root}/fapi/v3",
        "fapiData": f"{root}/futures/data",
        "ws": {"linear": f"{ws_root}/ws", "future": f"{ws_root}/ws"},
    }
    # ccxt applies the USDⓈ-M error map only for production hosts; without this merge, codes such as
    # -2019 or -2022 arrive as a bare ExchangeError and lose their retry/no-retry meaning.
    exchange.exceptions["exact"] = {
        **exchange.exceptions["exact"],
        **exchange.exceptions["linear"]["exact"],
    }
