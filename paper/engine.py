"""The paper venue's matching engine: accounts, positions, orders, algo orders, trades and prices, and what moves
them (fills, triggers, resting orders reached by the price, liquidation). The Binance front (``venue.Venue``) checks
requests and hands the engine orders it may take; the Bybit front (``paper.bybit.front``) does the same with Bybit's
checks, over the same engine object.

Pure Python, no I/O. Every public method runs to completion without awaiting, so one HTTP request is one atomic
state transition on the single asyncio loop. Every order, algo-order and account change passes through
``_new_order``, ``_fill`` or ``_set_status``, which tell the listeners registered with ``subscribe``.

The model (also in ``docs/paper-exchange.md``):

* Prices. Each symbol has a mark price and a last (contract) price; ``set_prices`` moves either or both, and the
  history of last prices is kept as one-minute candles (the klines). MARKET orders and LIMIT orders that are
  marketable on arrival fill in full at the last price, as taker. A MARKET order is refused (-4131) while the last
  price lies outside the PERCENT_PRICE band around the mark. Conditional orders trigger on the mark (workingType
  MARK_PRICE) or the last price (CONTRACT_PRICE); with priceProtect they do not trigger while
  ``|last - mark| > mark * triggerProtect``.
* Depth. A resting LIMIT order fills as maker, at its own price, when the last price reaches it. Each update of
  the last price offers ``bookDepth`` (markets.json) per symbol and side, shared by the reached orders of all accounts
  in price-time priority; a larger order stays PARTIALLY_FILLED and continues on later updates that reach its price.
* Positions. One-way mode keeps one signed position per symbol (positionSide BOTH); hedge mode keeps LONG and
  SHORT apart, and an order selling LONG or buying SHORT can only close. Orders that can only reduce are cut to
  what is left of their position when they execute and expire beyond it, so reduce-only orders never flip a
  position, however many trigger at once (in algo-id order).
* Fees. Taker 0.05 %, maker 0.02 % of the fill notional; commission and realized PnL are rounded to 8 decimals, and
  the wallet moves by exactly realized PnL minus commission on every fill.
* Margin (see ``risk``). An order that may open needs ``opening qty * price / leverage`` of available balance
  (-2019), and the resulting position may not exceed the cap of the leverage's bracket (-2027).
* Liquidation. After each mark update, a position whose mark reached its liquidation price
  (``risk.liquidation_price``) is closed at that price (rounded to the tick in the trader's favour) by an IOC LIMIT
  order with client id ``autoclose-<time><id>`` whose trade is flagged ``liquidation``; the account's open regular
  orders on the symbol are cancelled first. Only the taker fee is charged (no insurance-fund clearance fee).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import TypeVar

from paper import errors
from paper.clock import Clock
from paper.markets import MarketSpec, load_markets
from paper.models import (
    POSITION_ROLES,
    ZERO,
    Account,
    AccountUpdate,
    AlgoOrder,
    AttachedStop,
    Candle,
    Listener,
    Order,
    OrderUpdate,
    Position,
    StopRole,
    SymbolStats,
    Trade,
    VenueName,
)
from paper.risk import FEE_RATES, AccountMetrics, account_metrics, liquidation_price, q8

MAX_OPEN_ALGO_ORDERS = 200  # across all symbols (Binance change log 2025-12-29)
TIME_IN_FORCE = frozenset({"GTC", "IOC", "FOK", "GTX"})
WORKING_TYPES = frozenset({"MARK_PRICE", "CONTRACT_PRICE"})
INDEX_PRICE = "INDEX_PRICE"  # Bybit's IndexPrice trigger; the paper venue's index is its mark
_MARK_DRIVEN = frozenset({"MARK_PRICE", INDEX_PRICE})
SIDES = frozenset({"BUY", "SELL"})
MIN_CALLBACK_RATE = Decimal("0.1")
MAX_CALLBACK_RATE = Decimal("20")
MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
KLINE_INTERVALS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
    "1M": 0,  # calendar months, see _bucket_start
}
_WEEK_OFFSET_MS = 4 * DAY_MS  # weekly klines open on Monday; 1970-01-01 was a Thursday

AnyOrder = TypeVar("AnyOrder", Order, AlgoOrder)


def reducible_qty(position: Decimal, side: str) -> Decimal:
    """How much an order on ``side`` can trade without increasing or flipping the position."""
    if side == "SELL" and position > 0:
        return position
    if side == "BUY" and position < 0:
        return -position
    return ZERO


def marketable(side: str, limit: Decimal, price: Decimal) -> bool:
    """Whether a limit order on ``side`` at ``limit`` is marketable at ``price``."""
    return price <= limit if side == "BUY" else price >= limit


def _bucket_start(at: int, interval: str) -> int:
    if interval == "1M":
        moment = datetime.fromtimestamp(at / 1000, UTC)
        return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp() * 1000)
    length = KLINE_INTERVALS[interval]
    offset = _WEEK_OFFSET_MS if interval == "1w" else 0
    return at - (at - offset) % length


def _next_bucket(start: int, interval: str) -> int:
    if interval == "1M":
        moment = datetime.fromtimestamp(start / 1000, UTC)
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)
    return start + KLINE_INTERVALS[interval]


class Engine:
    """In-memory state and matching of a USDⓈ-M-style futures venue (one-way and hedge mode, cross and isolated
    margin); it validates nothing a request says: its callers have."""

    def __init__(
        self,
        markets: Mapping[str, MarketSpec] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.markets: dict[str, MarketSpec] = dict(markets if markets is not None else load_markets())
        self.clock = clock if isinstance(clock, Clock) else Clock(clock)
        self.marks: dict[str, Decimal] = {s: spec.initial_mark_price for s, spec in self.markets.items()}
        self.lasts: dict[str, Decimal] = dict(self.marks)
        self.stats: dict[str, SymbolStats] = {
            s: SymbolStats(open_price=p, high=p, low=p) for s, p in self.marks.items()
        }
        self.accounts: dict[str, Account] = {}
        self.order_log: list[Order | AlgoOrder] = []
        self.trade_log: list[Trade] = []
        self.start_time = self.clock.now()
        minute = self.start_time - self.start_time % MINUTE_MS
        self.candles: dict[str, list[Candle]] = {s: [Candle(minute, p, p, p, p)] for s, p in self.lasts.items()}
        self.max_open_algo_orders = MAX_OPEN_ALGO_ORDERS
        self._next_order_id = 4000000001
        self._next_algo_id = 2000000001
        self._next_trade_id = 600000001
        self.listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(api_key, kind, payload)`` on every order, algo-order and account change (``Listener``)."""
        self.listeners.append(listener)

    def _emit(self, api_key: str, kind: str, payload: OrderUpdate | AlgoOrder | AccountUpdate) -> None:
        for listener in self.listeners:
            listener(api_key, kind, payload)

    def now(self) -> int:
        return self.clock.now()

    def market(self, symbol: str | None) -> MarketSpec:
        spec = self.markets.get(symbol or "")
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    def mark(self, symbol: str) -> Decimal:
        return self.marks[self.market(symbol).symbol]

    def last(self, symbol: str) -> Decimal:
        return self.lasts[self.market(symbol).symbol]

    def _working_price(self, symbol: str, working_type: str) -> Decimal:
        return self.marks[symbol] if working_type in _MARK_DRIVEN else self.lasts[symbol]

    def metrics(self, account: Account) -> AccountMetrics:
        return account_metrics(account, self.markets, self.marks)

    def _order_id(self) -> int:
        value = self._next_order_id
        self._next_order_id += 1
        return value

    def _algo_id(self) -> int:
        value = self._next_algo_id
        self._next_algo_id += 1
        return value

    def _trade_id(self) -> int:
        value = self._next_trade_id
        self._next_trade_id += 1
        return value

    def create_account(
        self, api_key: str, secret: str, balance: Decimal, venue: VenueName = VenueName.BINANCE_USDM
    ) -> tuple[Account, bool]:
        """Create an account; returns ``(account, created)``. Same key, secret and venue again is a no-op."""
        existing = self.accounts.get(api_key)
        if existing is not None:
            if existing.secret != secret or existing.venue != venue:
                raise ValueError("apiKey already exists with a different secret or venue")
            return existing, False
        if balance < 0:
            raise ValueError("balance must not be negative")
        account = Account(api_key=api_key, secret=secret, wallet_balance=balance, update_time=self.now(), venue=venue)
        self.accounts[api_key] = account
        return account, True

    def account(self, api_key: str | None, venue: VenueName | None = None) -> Account:
        """The account of ``api_key`` (that speaks ``venue``, if given: another venue does not know the key)."""
        account = self.accounts.get(api_key or "")
        if account is None or (venue is not None and account.venue != venue):
            raise errors.invalid_api_key()
        return account

    def _fill(
        self, account: Account, order: Order, qty: Decimal, price: Decimal, *, maker: bool, liquidation: bool = False
    ) -> Trade:
        """Execute ``qty`` of ``order`` at ``price``: position, margin, realized PnL, commission, wallet, trade."""
        now = self.now()
        settings = account.setting(order.symbol)
        pos = account.position(order.symbol, order.position_side)
        signed = qty if order.side == "BUY" else -qty
        realized = ZERO
        opened = qty
        closed = ZERO
        old, entry = pos.amount, pos.entry_price
        if old == 0 or (old > 0) == (signed > 0):
            new_amount = old + signed
            pos.entry_price = q8((abs(old) * pos.entry_price + qty * price) / abs(new_amount))
            pos.amount = new_amount
        else:
            closed = min(qty, abs(old))
            opened = qty - closed
            direction = Decimal(1) if old > 0 else Decimal(-1)
            realized = q8(closed * (price - pos.entry_price) * direction)
            pos.isolated_wallet = q8(pos.isolated_wallet * (abs(old) - closed) / abs(old))
            pos.amount = old + signed
            if pos.amount == 0:
                pos.entry_price = ZERO
            elif (pos.amount > 0) != (old > 0):  # flipped through zero: the excess opens at the fill price
                pos.entry_price = price
        if settings.margin_type == "ISOLATED" and opened > 0:
            pos.isolated_wallet += q8(opened * price / settings.leverage)
        pos.update_time = now
        notional = qty * price
        rates = FEE_RATES[account.venue]
        commission = q8(notional * (rates.maker if maker else rates.taker))
        account.wallet_balance += realized - commission
        account.update_time = now
        order.executed_qty += qty
        order.cum_quote += notional
        order.update_time = now
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        if not order.is_open:
            account.open_orders.pop(order.order_id, None)
        trade = Trade(
            trade_id=self._trade_id(),
            order_id=order.order_id,
            api_key=account.api_key,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=notional,
            commission=commission,
            realized_pnl=realized,
            maker=maker,
            time=now,
            position_side=order.position_side,
            liquidation=liquidation,
            closed_qty=closed,
            entry_price=entry if closed else ZERO,
        )
        account.trades.append(trade)
        self.trade_log.append(trade)
        self._record_trade(trade)
        self._emit(account.api_key, "order", OrderUpdate(order, "CALCULATED" if liquidation else "TRADE", trade))
        self._emit(account.api_key, "account", AccountUpdate("ORDER", order.symbol))
        if old != 0 and (pos.amount == 0 or (pos.amount > 0) != (old > 0)):  # closed, or flipped through zero
            self._clear_position_stops(account, pos)
        if pos.amount != 0 and opened > 0:
            for stop in order.attached:
                self._place_attached(account, order, stop, opened, first_fill=order.executed_qty == qty)
        return trade

    def _clear_position_stops(self, account: Account, pos: Position) -> None:
        """A position's venue-made stops go when it closes or flips (Bybit's CancelByTpSlTsClear)."""
        for algo in self.open_algo_orders(account, pos.symbol):
            if algo.role != StopRole.PLAIN and algo.position_side == pos.position_side:
                self._set_status(algo, "EXPIRED")

    def _place_attached(
        self, account: Account, entry: Order, stop: AttachedStop, filled: Decimal, *, first_fill: bool
    ) -> None:
        """Protect what ``entry`` just opened: a PARTIAL stop for ``filled``, or the FULL one (at its first fill)."""
        full = stop.role in POSITION_ROLES
        if full and not first_fill:
            return
        self.set_position_stop(
            account,
            self.markets[entry.symbol],
            entry.position_side,
            stop.role,
            trigger_price=stop.trigger_price,
            working_type=stop.working_type,
            side="SELL" if entry.side == "BUY" else "BUY",
            quantity=ZERO if full else filled,
            limit_price=stop.limit_price,
            parent_client_id=entry.client_order_id,
        )

    def set_position_stop(
        self,
        account: Account,
        spec: MarketSpec,
        position_side: str,
        role: StopRole,
        *,
        trigger_price: Decimal,
        working_type: str,
        side: str,
        quantity: Decimal = ZERO,
        limit_price: Decimal = ZERO,
        distance: Decimal | None = None,
        parent_client_id: str = "",
    ) -> AlgoOrder:
        """Place a stop that protects a position; a FULL role (zero ``quantity``) replaces the position's earlier one.

        ``distance`` makes it a trailing stop (a price distance, active from ``trigger_price`` on, or at once)."""
        if role in POSITION_ROLES:
            for algo in self.open_algo_orders(account, spec.symbol):
                if algo.role == role and algo.position_side == position_side:
                    self._set_status(algo, "CANCELED")
        trailing = distance is not None
        is_limit = limit_price > 0
        if trailing:
            order_type = "TRAILING_STOP_MARKET"
        else:
            reference = self._working_price(spec.symbol, working_type)
            rising = trigger_price > reference  # protection sits on the far side of the price, either way
            stop = rising == (side == "BUY")
            order_type = ("STOP" if stop else "TAKE_PROFIT") + ("" if is_limit else "_MARKET")
        return self._new_algo(
            account,
            spec,
            client_algo_id="",
            side=side,
            order_type=order_type,
            quantity=quantity,
            price=limit_price,
            trigger_price=ZERO if trailing else trigger_price,
            time_in_force="GTC",
            working_type=working_type,
            reduce_only=quantity > 0,
            close_position=quantity == 0,
            position_side=position_side,
            activate_price=trigger_price if trailing and trigger_price > 0 else None,
            callback_distance=distance,
            role=role,
            parent_client_id=parent_client_id,
        )

    def _new_algo(
        self,
        account: Account,
        spec: MarketSpec,
        *,
        client_algo_id: str,
        side: str,
        order_type: str,
        quantity: Decimal,
        price: Decimal,
        trigger_price: Decimal,
        time_in_force: str,
        working_type: str,
        reduce_only: bool,
        close_position: bool,
        position_side: str,
        price_protect: bool = False,
        activate_price: Decimal | None = None,
        callback_rate: Decimal | None = None,
        callback_distance: Decimal | None = None,
        replica: str | None = None,
        role: StopRole = StopRole.PLAIN,
        parent_client_id: str = "",
        attached: tuple[AttachedStop, ...] = (),
    ) -> AlgoOrder:
        now = self.now()
        trailing = order_type == "TRAILING_STOP_MARKET"
        algo = AlgoOrder(
            algo_id=self._algo_id(),
            api_key=account.api_key,
            symbol=spec.symbol,
            client_algo_id=client_algo_id,
            side=side,
            order_type=order_type,
            quantity=quantity,
            price=price,
            trigger_price=trigger_price,
            time_in_force=time_in_force,
            working_type=working_type,
            reduce_only=reduce_only,
            close_position=close_position,
            price_protect=price_protect,
            create_time=now,
            update_time=now,
            activate_price=activate_price if trailing else None,
            callback_rate=callback_rate if trailing else None,
            callback_distance=callback_distance if trailing else None,
            trailing_extreme=self._working_price(spec.symbol, working_type)
            if trailing and activate_price is None
            else None,
            replica=replica,
            source="api" if role == StopRole.PLAIN else "venue",
            position_side=position_side,
            role=role,
            parent_client_id=parent_client_id,
            attached=attached,
        )
        account.algo_orders[algo.algo_id] = algo
        account.open_algos[algo.algo_id] = algo
        if client_algo_id:
            account.client_algo_ids[client_algo_id] = algo.algo_id
        self.order_log.append(algo)
        self._emit(account.api_key, "algo", algo)
        return algo

    def _record_trade(self, trade: Trade) -> None:
        stats = self.stats[trade.symbol]
        stats.volume += trade.qty
        stats.quote_volume += trade.quote_qty
        stats.count += 1
        stats.first_trade_id = stats.first_trade_id or trade.trade_id
        stats.last_trade_id = trade.trade_id
        stats.last_qty = trade.qty
        candle = self._candle(trade.symbol, trade.time)
        candle.volume += trade.qty
        candle.quote_volume += trade.quote_qty
        candle.count += 1
        if (trade.side == "BUY") != trade.maker:  # the taker bought: our taker buy or the other side of our maker sell
            candle.taker_buy_volume += trade.qty
            candle.taker_buy_quote_volume += trade.quote_qty

    def _set_status(self, order: Order | AlgoOrder, status: str) -> None:
        """Move an order or algo order to ``status`` (not a fill) and tell the listeners."""
        order.update_time = self.now()
        account = self.accounts.get(order.api_key)
        if isinstance(order, Order):
            order.status = status
            if account is not None and not order.is_open:
                account.open_orders.pop(order.order_id, None)
            self._emit(order.api_key, "order", OrderUpdate(order, status))
        else:
            order.algo_status = status
            if account is not None and not order.is_open:
                account.open_algos.pop(order.algo_id, None)
            self._emit(order.api_key, "algo", order)

    def _reducible_for(self, account: Account, order: Order) -> Decimal:
        return reducible_qty(account.position(order.symbol, order.position_side).amount, order.side)

    def _take(self, account: Account, order: Order, price: Decimal) -> None:
        """Fill what may be filled of ``order`` at ``price`` as taker; the rest expires (market / IOC semantics)."""
        qty = order.remaining
        if order.only_reduces:
            qty = min(qty, self._reducible_for(account, order))
        if qty > 0:
            self._fill(account, order, qty, price, maker=False)
        if order.remaining > 0:
            self._set_status(order, "EXPIRED")

    def _check_margin(
        self, account: Account, spec: MarketSpec, side: str, position_side: str, qty: Decimal, price: Decimal
    ) -> None:
        """-2027 beyond the leverage bracket's cap, -2019 when the opening part's initial margin is not available."""
        pos = account.position(spec.symbol, position_side)
        opening = max(ZERO, qty - reducible_qty(pos.amount, side))
        if opening == 0:
            return
        leverage = account.setting(spec.symbol).leverage
        resulting = abs(pos.amount + (qty if side == "BUY" else -qty))
        if resulting * price > spec.max_notional_for_leverage(leverage):
            raise errors.exceeds_leverage_limit()
        if opening * price / leverage > self.metrics(account).available_balance:
            raise errors.margin_insufficient()

    def _new_order(
        self,
        account: Account,
        spec: MarketSpec,
        *,
        client_order_id: str,
        side: str,
        order_type: str,
        orig_type: str,
        quantity: Decimal,
        price: Decimal,
        time_in_force: str,
        reduce_only: bool,
        working_type: str,
        replica: str | None,
        source: str,
        position_side: str,
        close_position: bool = False,
        price_protect: bool = False,
        stop_price: Decimal = ZERO,
        parent_algo_id: int | None = None,
        attached: tuple[AttachedStop, ...] = (),
    ) -> Order:
        now = self.now()
        order = Order(
            order_id=self._order_id(),
            api_key=account.api_key,
            symbol=spec.symbol,
            client_order_id=client_order_id,
            side=side,
            type=order_type,
            orig_type=orig_type,
            quantity=quantity,
            price=price,
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            close_position=close_position,
            working_type=working_type,
            price_protect=price_protect,
            time=now,
            update_time=now,
            stop_price=stop_price,
            replica=replica,
            source=source,
            parent_algo_id=parent_algo_id,
            position_side=position_side,
            attached=attached,
        )
        account.orders[order.order_id] = order
        account.open_orders[order.order_id] = order
        account.client_order_ids.setdefault(client_order_id, order.order_id)
        self.order_log.append(order)
        self._emit(account.api_key, "order", OrderUpdate(order, "NEW"))
        return order

    @staticmethod
    def _would_trigger(order_type: str, side: str, trigger: Decimal, activate: Decimal | None, price: Decimal) -> bool:
        if order_type == "TRAILING_STOP_MARKET":
            if activate is None:
                return False
            return activate <= price if side == "SELL" else activate >= price
        if order_type in ("STOP", "STOP_MARKET"):
            return price >= trigger if side == "BUY" else price <= trigger
        return price <= trigger if side == "BUY" else price >= trigger

    def set_mark_price(self, symbol: str, price: Decimal) -> None:
        """Move the mark and the last price together to ``price``."""
        self.set_prices(symbol, mark=price, last=price)

    def set_prices(self, symbol: str, *, mark: Decimal | None = None, last: Decimal | None = None) -> None:
        """Move the mark and/or last price, then run triggers, resting limit orders and liquidations, in that order."""
        spec = self.market(symbol)
        if any(p is not None and p <= 0 for p in (mark, last)):
            raise ValueError("price must be positive")
        if mark is not None:
            self.marks[spec.symbol] = mark
        if last is not None:
            self.lasts[spec.symbol] = last
            self._record_price(spec.symbol, last)
        for account in list(self.accounts.values()):
            for algo in sorted(self.open_algo_orders(account, spec.symbol), key=lambda a: a.algo_id):
                if algo.is_open and self._algo_fires(algo, spec):  # an earlier trigger may have cleared it
                    self._trigger(account, algo, spec)
        if last is not None:
            self._match_resting(spec)
        if mark is not None:
            self._liquidate(spec)

    def _candle(self, symbol: str, at: int) -> Candle:
        """The one-minute candle holding time ``at``, opened at the current last price if it is a new minute."""
        candles = self.candles[symbol]
        minute = at - at % MINUTE_MS
        newest = candles[-1]
        if minute <= newest.open_time:  # a clock set back still lands in the newest minute, keeping the list sorted
            return newest
        last = self.lasts[symbol]
        candle = Candle(minute, last, last, last, last)
        candles.append(candle)
        return candle

    def _record_price(self, symbol: str, price: Decimal) -> None:
        stats = self.stats[symbol]
        stats.high = max(stats.high, price)
        stats.low = min(stats.low, price)
        candle = self._candle(symbol, self.now())
        candle.high = max(candle.high, price)
        candle.low = min(candle.low, price)
        candle.close = price

    def _algo_fires(self, algo: AlgoOrder, spec: MarketSpec) -> bool:
        mark = self.marks[spec.symbol]
        if algo.price_protect and abs(self.lasts[spec.symbol] - mark) > mark * spec.trigger_protect:
            return False
        price = self._working_price(spec.symbol, algo.working_type)
        if algo.order_type == "TRAILING_STOP_MARKET":
            return self._trailing_fires(algo, price)
        return self._would_trigger(algo.order_type, algo.side, algo.trigger_price, None, price)

    @staticmethod
    def trailing_trigger(algo: AlgoOrder) -> Decimal:
        """Where an activated trailing stop triggers now: its best price less the callback (rate or distance)."""
        extreme = algo.trailing_extreme or ZERO
        sign = Decimal(-1) if algo.side == "SELL" else Decimal(1)
        if algo.callback_distance is not None:
            return extreme + sign * algo.callback_distance
        return extreme * (1 + sign * (algo.callback_rate or ZERO) / 100)

    @classmethod
    def _trailing_fires(cls, algo: AlgoOrder, price: Decimal) -> bool:
        if algo.trailing_extreme is None:
            activate = algo.activate_price
            activated = activate is None or (price >= activate if algo.side == "SELL" else price <= activate)
            if not activated:
                return False
            algo.trailing_extreme = price
        if algo.side == "SELL":
            algo.trailing_extreme = max(algo.trailing_extreme, price)
            return price <= cls.trailing_trigger(algo)
        algo.trailing_extreme = min(algo.trailing_extreme, price)
        return price >= cls.trailing_trigger(algo)

    def _trigger(self, account: Account, algo: AlgoOrder, spec: MarketSpec) -> None:
        algo.trigger_time = self.now()
        self._set_status(algo, "TRIGGERED")
        reducible = reducible_qty(account.position(spec.symbol, algo.position_side).amount, algo.side)
        qty = reducible if algo.close_position else algo.quantity
        if algo.only_reduces:
            qty = min(qty, reducible)
        if qty == 0:  # what it was to reduce is gone (or was reduced by an earlier stop of this same update)
            self._set_status(algo, "EXPIRED")
            return
        is_limit = algo.order_type in ("STOP", "TAKE_PROFIT")
        last = self.lasts[spec.symbol]
        crosses = not is_limit or marketable(algo.side, algo.price, last)
        if not algo.only_reduces:
            try:
                self._check_margin(account, spec, algo.side, algo.position_side, qty, last if crosses else algo.price)
            except errors.VenueError:
                self._set_status(algo, "REJECTED")
                return
        order = self._new_order(
            account,
            spec,
            client_order_id=algo.client_algo_id,
            side=algo.side,
            order_type="LIMIT" if is_limit else "MARKET",
            orig_type=algo.order_type,
            quantity=qty,
            price=algo.price if is_limit else ZERO,
            time_in_force=algo.time_in_force if is_limit else "GTC",
            reduce_only=algo.reduce_only or algo.close_position,
            working_type=algo.working_type,
            replica=None,
            source="trigger",
            position_side=algo.position_side,
            close_position=algo.close_position,
            price_protect=algo.price_protect,
            stop_price=algo.trigger_price,
            parent_algo_id=algo.algo_id,
            attached=algo.attached,
        )
        if crosses:
            self._take(account, order, last)
        elif order.time_in_force in ("IOC", "FOK"):
            self._set_status(order, "EXPIRED")
        algo.actual_order_id = order.order_id
        algo.actual_price = order.avg_price
        self._set_status(algo, "FINISHED")

    def _match_resting(self, spec: MarketSpec) -> None:
        """Fill the resting LIMIT orders the last price reached, ``bookDepth`` per side (see the module docstring)."""
        last = self.lasts[spec.symbol]
        reached = [
            (account, order)
            for account in list(self.accounts.values())
            for order in self.open_orders(account, spec.symbol)
            if order.type == "LIMIT" and marketable(order.side, order.price, last)
        ]
        for side, best_first in (("BUY", Decimal(-1)), ("SELL", Decimal(1))):
            depth = spec.book_depth
            queue = sorted(
                (pair for pair in reached if pair[1].side == side),
                key=lambda pair: (best_first * pair[1].price, pair[1].order_id),
            )
            for account, order in queue:
                qty = min(order.remaining, depth)
                if order.only_reduces:
                    qty = min(qty, self._reducible_for(account, order))
                if qty > 0:
                    self._fill(account, order, qty, order.price, maker=True)
                    depth -= qty
                if order.is_open and order.only_reduces and self._reducible_for(account, order) == 0:
                    self._set_status(order, "EXPIRED")  # nothing left to reduce: the rest could only increase

    def _liquidate(self, spec: MarketSpec) -> None:
        """Close every position of ``spec`` whose mark reached its liquidation price (see the module docstring)."""
        mark = self.marks[spec.symbol]
        for account in list(self.accounts.values()):
            for pos in account.symbol_positions(spec.symbol):
                metrics = self.metrics(account)  # afresh: an earlier liquidation changed the cross wallet
                target = next(
                    p for p in metrics.positions if (p.symbol, p.position_side) == (pos.symbol, pos.position_side)
                )
                price = liquidation_price(metrics, target, spec)
                if price > 0 and (mark <= price if pos.amount > 0 else mark >= price):
                    self._force_close(account, spec, pos, price)

    def _force_close(self, account: Account, spec: MarketSpec, pos: Position, price: Decimal) -> None:
        rounding = ROUND_UP if pos.amount > 0 else ROUND_DOWN
        fill = max(spec.tick_size, (price / spec.tick_size).to_integral_value(rounding=rounding) * spec.tick_size)
        for order in self.open_orders(account, spec.symbol):
            self._set_status(order, "CANCELED")
        order = self._new_order(
            account,
            spec,
            client_order_id=f"autoclose-{self.now()}{self._next_order_id}",
            side="SELL" if pos.amount > 0 else "BUY",
            order_type="LIMIT",
            orig_type="LIMIT",
            quantity=abs(pos.amount),
            price=fill,
            time_in_force="IOC",
            reduce_only=True,
            working_type="CONTRACT_PRICE",
            replica=None,
            source="liquidation",
            position_side=pos.position_side,
        )
        self._fill(account, order, order.quantity, fill, maker=False, liquidation=True)

    def close_position(self, api_key: str, symbol: str, replica: str | None = None) -> Order | None:
        """Close a position at the last price by hand (like a person on the website); ``None`` when flat.

        In hedge mode this closes the LONG side first; call again for the SHORT side.
        """
        account = self.account(api_key)
        spec = self.market(symbol)
        held = account.symbol_positions(spec.symbol)
        if not held:
            return None
        pos = held[0]
        order = self._new_order(
            account,
            spec,
            client_order_id=f"web_close_{self._next_order_id}",
            side="SELL" if pos.amount > 0 else "BUY",
            order_type="MARKET",
            orig_type="MARKET",
            quantity=abs(pos.amount),
            price=ZERO,
            time_in_force="GTC",
            reduce_only=pos.position_side == "BOTH",
            working_type="CONTRACT_PRICE",
            replica=replica,
            source="admin",
            position_side=pos.position_side,
        )
        self._take(account, order, self.lasts[spec.symbol])
        return order

    def user_trades(
        self,
        account: Account,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[Trade]:
        spec = self.market(symbol)
        trades = [t for t in account.trades if t.symbol == spec.symbol]
        if order_id is not None:
            trades = [t for t in trades if t.order_id == order_id]
        if from_id is not None:
            return [t for t in trades if t.trade_id >= from_id][:limit]
        if start_time is not None:
            trades = [t for t in trades if t.time >= start_time]
        if end_time is not None:
            trades = [t for t in trades if t.time <= end_time]
        if start_time is not None:
            return trades[:limit]
        return trades[-limit:]

    def position(self, account: Account, symbol: str, position_side: str = "BOTH") -> Position:
        return account.position(self.market(symbol).symbol, position_side)

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[tuple[Candle, int]]:
        """``(candle, close time)`` per ``interval`` from the one-minute candles, oldest first.

        Intervals without a price update repeat the previous close with zero volume, as a quiet market does; nothing
        is returned from before the venue started.
        """
        spec = self.market(symbol)
        if interval not in KLINE_INTERVALS:
            raise errors.invalid_interval()
        candles = self.candles[spec.symbol]
        opens = [c.open_time for c in candles]
        now = self.now()
        end = now if end_time is None else min(end_time, now)
        first = _bucket_start(candles[0].open_time, interval)
        bucket = first if start_time is None else max(first, _bucket_start(start_time, interval))
        buckets: list[int] = []
        while bucket <= end and (start_time is None or len(buckets) < limit):
            buckets.append(bucket)
            bucket = _next_bucket(bucket, interval)
        rows: list[tuple[Candle, int]] = []
        for start in buckets[-limit:]:
            stop = _next_bucket(start, interval)
            low, high = bisect.bisect_left(opens, start), bisect.bisect_left(opens, stop)
            inside = candles[low:high]
            if not inside:
                close = candles[low - 1].close
                rows.append((Candle(start, close, close, close, close), stop - 1))
                continue
            rows.append(
                (
                    Candle(
                        open_time=start,
                        open=inside[0].open,
                        high=max(c.high for c in inside),
                        low=min(c.low for c in inside),
                        close=inside[-1].close,
                        volume=sum((c.volume for c in inside), ZERO),
                        quote_volume=sum((c.quote_volume for c in inside), ZERO),
                        count=sum(c.count for c in inside),
                        taker_buy_volume=sum((c.taker_buy_volume for c in inside), ZERO),
                        taker_buy_quote_volume=sum((c.taker_buy_quote_volume for c in inside), ZERO),
                    ),
                    stop - 1,
                )
            )
        return rows

    def _open(self, orders: Iterable[AnyOrder], symbol: str | None) -> list[AnyOrder]:
        if symbol is not None:
            self.market(symbol)
        return [o for o in orders if o.is_open and (symbol is None or o.symbol == symbol)]

    def open_orders(self, account: Account, symbol: str | None) -> list[Order]:
        return self._open(account.open_orders.values(), symbol)

    def open_algo_orders(self, account: Account, symbol: str | None) -> list[AlgoOrder]:
        return self._open(account.open_algos.values(), symbol)
