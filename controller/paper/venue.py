"""State and matching of the paper venue: accounts, positions, orders, algo orders, trades and mark prices.

Pure Python, no I/O. Every public method runs to completion without awaiting, so one HTTP request is one atomic
state transition on the single asyncio loop. Fills happen at the mark price (market orders, triggered market
stops, limit orders crossing on entry) or at the limit price (resting limit orders the mark crosses later).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TypeVar

from controller.paper import errors
from controller.paper.filters import check_client_id, check_percent_price, check_price, check_quantity
from controller.paper.markets import MarketSpec, load_markets
from controller.paper.models import (
    CONDITIONAL_TYPES,
    REGULAR_TYPES,
    ZERO,
    Account,
    AlgoOrder,
    AlgoRequest,
    Order,
    OrderRequest,
    Position,
    SymbolStats,
    Trade,
)
from controller.paper.risk import MAKER_FEE_RATE, TAKER_FEE_RATE, AccountMetrics, account_metrics, q8

MAX_OPEN_ALGO_ORDERS = 200
TIME_IN_FORCE = frozenset({"GTC", "IOC", "FOK", "GTX"})
WORKING_TYPES = frozenset({"MARK_PRICE", "CONTRACT_PRICE"})
SIDES = frozenset({"BUY", "SELL"})
MIN_CALLBACK_RATE = Decimal("0.1")
MAX_CALLBACK_RATE = Decimal("20")

_Order = TypeVar("_Order", Order, AlgoOrder)


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


def _reducible(position: Decimal, side: str) -> Decimal:
    """How much an order on ``side`` can trade without increasing or flipping the position."""
    if side == "SELL" and position > 0:
        return position
    if side == "BUY" and position < 0:
        return -position
    return ZERO


class Venue:
    """An in-memory Binance USDⓈ-M futures venue (one-way position mode, cross margin arithmetic)."""

    def __init__(
        self,
        markets: Mapping[str, MarketSpec] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.markets: dict[str, MarketSpec] = dict(markets if markets is not None else load_markets())
        self._clock = clock or _wall_clock_ms
        self.marks: dict[str, Decimal] = {s: spec.initial_mark_price for s, spec in self.markets.items()}
        self.stats: dict[str, SymbolStats] = {
            s: SymbolStats(open_price=p, high=p, low=p) for s, p in self.marks.items()
        }
        self.accounts: dict[str, Account] = {}
        self.order_log: list[Order | AlgoOrder] = []
        self.trade_log: list[Trade] = []
        self.start_time = self._clock()
        self._next_order_id = 4000000001
        self._next_algo_id = 2000000001
        self._next_trade_id = 600000001

    # ------------------------------------------------------------------ basics

    def now(self) -> int:
        return self._clock()

    def market(self, symbol: str | None) -> MarketSpec:
        spec = self.markets.get(symbol or "")
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    def mark(self, symbol: str) -> Decimal:
        return self.marks[self.market(symbol).symbol]

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

    # ---------------------------------------------------------------- accounts

    def create_account(self, api_key: str, secret: str, balance: Decimal) -> tuple[Account, bool]:
        """Create an account; returns ``(account, created)``. Same key and secret again is a no-op."""
        existing = self.accounts.get(api_key)
        if existing is not None:
            if existing.secret != secret:
                raise ValueError("apiKey already exists with a different secret")
            return existing, False
        if balance < 0:
            raise ValueError("balance must not be negative")
        account = Account(api_key=api_key, secret=secret, wallet_balance=balance, update_time=self.now())
        self.accounts[api_key] = account
        return account, True

    def account(self, api_key: str | None) -> Account:
        account = self.accounts.get(api_key or "")
        if account is None:
            raise errors.invalid_api_key()
        return account

    def set_leverage(self, account: Account, symbol: str, leverage: int) -> tuple[int, Decimal]:
        spec = self.market(symbol)
        if leverage < 1 or leverage > spec.max_leverage:
            raise errors.invalid_leverage(str(leverage))
        account.setting(symbol).leverage = leverage
        return leverage, spec.max_notional_for_leverage(leverage)

    def set_margin_type(self, account: Account, symbol: str, margin_type: str) -> None:
        self.market(symbol)
        settings = account.setting(symbol)
        if settings.margin_type == margin_type:
            raise errors.margin_type_unchanged()
        if account.position(symbol).amount != 0:
            raise errors.margin_type_position()
        if any(o.is_open and o.symbol == symbol for o in account.orders.values()) or any(
            a.is_open and a.symbol == symbol for a in account.algo_orders.values()
        ):
            raise errors.margin_type_open_orders()
        settings.margin_type = margin_type

    # ------------------------------------------------------------ fills

    def _fill(self, account: Account, order: Order, qty: Decimal, price: Decimal, *, maker: bool) -> Trade:
        """Execute ``qty`` of ``order`` at ``price``: position, realized PnL, commission, wallet, trade."""
        now = self.now()
        pos = account.position(order.symbol)
        signed = qty if order.side == "BUY" else -qty
        realized = ZERO
        old = pos.amount
        if old == 0 or (old > 0) == (signed > 0):
            new_amount = old + signed
            pos.entry_price = q8((abs(old) * pos.entry_price + qty * price) / abs(new_amount))
            pos.amount = new_amount
        else:
            closed = min(qty, abs(old))
            direction = Decimal(1) if old > 0 else Decimal(-1)
            realized = q8(closed * (price - pos.entry_price) * direction)
            pos.amount = old + signed
            if pos.amount == 0:
                pos.entry_price = ZERO
            elif (pos.amount > 0) != (old > 0):  # flipped through zero: the excess opens at the fill price
                pos.entry_price = price
        pos.update_time = now
        notional = qty * price
        commission = q8(notional * (MAKER_FEE_RATE if maker else TAKER_FEE_RATE))
        account.wallet_balance += realized - commission
        account.update_time = now
        order.executed_qty += qty
        order.cum_quote += notional
        order.update_time = now
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
        )
        account.trades.append(trade)
        self.trade_log.append(trade)
        self._record_stats(trade)
        return trade

    def _record_stats(self, trade: Trade) -> None:
        stats = self.stats[trade.symbol]
        stats.volume += trade.qty
        stats.quote_volume += trade.quote_qty
        stats.count += 1
        stats.first_trade_id = stats.first_trade_id or trade.trade_id
        stats.last_trade_id = trade.trade_id
        stats.last_qty = trade.qty

    def _fill_rest(self, account: Account, order: Order, price: Decimal, *, maker: bool) -> None:
        """Fill what may be filled of ``order`` at ``price``; the rest is expired."""
        qty = order.remaining
        if order.reduce_only:
            qty = min(qty, _reducible(account.position(order.symbol).amount, order.side))
        if qty > 0:
            self._fill(account, order, qty, price, maker=maker)
        order.status = "FILLED" if order.remaining == 0 else "EXPIRED"
        order.update_time = self.now()

    def _execute_taker(self, account: Account, order: Order) -> None:
        """Fill what may be filled of ``order`` at the mark now; the rest is expired (market / IOC semantics)."""
        self._fill_rest(account, order, self.marks[order.symbol], maker=False)

    @staticmethod
    def _crosses(side: str, limit: Decimal, mark: Decimal) -> bool:
        return mark <= limit if side == "BUY" else mark >= limit

    def _opening_qty(self, account: Account, symbol: str, side: str, qty: Decimal) -> Decimal:
        return max(ZERO, qty - _reducible(account.position(symbol).amount, side))

    def _check_margin(self, account: Account, symbol: str, side: str, qty: Decimal, price: Decimal) -> None:
        opening = self._opening_qty(account, symbol, side, qty)
        if opening == 0:
            return
        required = opening * price / account.setting(symbol).leverage
        if required > self.metrics(account).available_balance:
            raise errors.margin_insufficient()

    # ----------------------------------------------------------- regular orders

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
        stop_price: Decimal = ZERO,
        parent_algo_id: int | None = None,
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
            close_position=False,
            working_type=working_type,
            price_protect=False,
            time=now,
            update_time=now,
            stop_price=stop_price,
            replica=replica,
            source=source,
            parent_algo_id=parent_algo_id,
        )
        account.orders[order.order_id] = order
        account.client_order_ids.setdefault(client_order_id, order.order_id)
        self.order_log.append(order)
        return order

    def place_order(self, account: Account, req: OrderRequest) -> Order:
        spec = self.market(req.symbol)
        if req.side not in SIDES:
            raise errors.invalid_side()
        if req.type in CONDITIONAL_TYPES:
            raise errors.use_algo_endpoint()
        if req.type not in REGULAR_TYPES:
            raise errors.invalid_order_type()
        if req.position_side != "BOTH":
            raise errors.position_side_mismatch()
        if req.close_position:
            raise errors.not_required("closePosition")
        client_id = req.client_order_id or f"paper_{self._next_order_id}"
        check_client_id(client_id)
        if client_id in account.client_order_ids:
            raise errors.duplicate_client_order_id()
        if req.quantity is None:
            raise errors.mandatory("quantity")
        is_market = req.type == "MARKET"
        check_quantity(spec, req.quantity, market=is_market)
        mark = self.marks[spec.symbol]
        tif = "GTC"
        price = ZERO
        if is_market:
            if req.price is not None:
                raise errors.not_required("price")
        else:
            if req.price is None:
                raise errors.mandatory("price")
            if req.time_in_force is None:
                raise errors.mandatory("timeInForce")
            if req.time_in_force not in TIME_IN_FORCE:
                raise errors.invalid_time_in_force()
            tif = req.time_in_force
            price = req.price
            check_price(spec, price)
            check_percent_price(spec, req.side, price, mark)
        position = account.position(spec.symbol).amount
        if req.reduce_only and _reducible(position, req.side) == 0:
            raise errors.reduce_only_rejected()
        ref_price = mark if is_market else price
        if not req.reduce_only and req.quantity * ref_price < spec.min_notional:
            raise errors.min_notional(f"{spec.min_notional.normalize():f}")
        crosses = is_market or self._crosses(req.side, price, mark)
        if not is_market:
            if tif == "GTX" and crosses:
                raise errors.post_only_rejected()
            if tif == "FOK" and not crosses:
                raise errors.fok_not_fillable()
            open_count = sum(1 for o in account.orders.values() if o.is_open and o.symbol == spec.symbol)
            if not crosses and open_count >= spec.max_num_orders:
                raise errors.max_open_orders()
        if not req.reduce_only:
            self._check_margin(account, spec.symbol, req.side, req.quantity, mark if crosses else price)
        order = self._new_order(
            account,
            spec,
            client_order_id=client_id,
            side=req.side,
            order_type=req.type,
            orig_type=req.type,
            quantity=req.quantity,
            price=price,
            time_in_force=tif,
            reduce_only=req.reduce_only,
            working_type=req.working_type,
            replica=req.replica,
            source="api",
        )
        if crosses:
            self._execute_taker(account, order)
        elif tif == "IOC":
            order.status = "EXPIRED"
        return order

    def find_order(self, account: Account, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        """Any order (open or not) by id or client id; -2013 when absent."""
        spec = self.market(symbol)
        if order_id is None and client_id is None:
            raise errors.either_mandatory("origClientOrderId", "orderId")
        if order_id is None:
            order_id = account.client_order_ids.get(client_id or "")
        order = account.orders.get(order_id) if order_id is not None else None
        if order is None or order.symbol != spec.symbol:
            raise errors.order_does_not_exist()
        if client_id is not None and order.client_order_id != client_id:
            raise errors.order_does_not_exist()
        return order

    def _cancel(self, find: Callable[[], _Order]) -> _Order:
        """Cancel the order ``find`` looks up; -2011 when it does not exist or is no longer open."""
        try:
            order = find()
        except errors.VenueError as exc:
            if exc.code == -2013:
                raise errors.unknown_order() from None
            raise
        if not order.is_open:
            raise errors.unknown_order()
        order.cancel(self.now())
        return order

    def _cancel_all(self, orders: list[_Order]) -> list[_Order]:
        now = self.now()
        for order in orders:
            order.cancel(now)
        return orders

    def _open(self, orders: Iterable[_Order], symbol: str | None) -> list[_Order]:
        if symbol is not None:
            self.market(symbol)
        return [o for o in orders if o.is_open and (symbol is None or o.symbol == symbol)]

    def cancel_order(self, account: Account, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        return self._cancel(lambda: self.find_order(account, symbol, order_id, client_id))

    def open_orders(self, account: Account, symbol: str | None) -> list[Order]:
        return self._open(account.orders.values(), symbol)

    def cancel_all_orders(self, account: Account, symbol: str) -> list[Order]:
        return self._cancel_all(self.open_orders(account, self.market(symbol).symbol))

    def all_orders(self, account: Account, symbol: str) -> list[Order]:
        spec = self.market(symbol)
        return [o for o in account.orders.values() if o.symbol == spec.symbol]

    # ------------------------------------------------------------ algo orders

    def place_algo_order(self, account: Account, req: AlgoRequest) -> AlgoOrder:
        spec = self.market(req.symbol)
        if req.side not in SIDES:
            raise errors.invalid_side()
        if req.order_type not in CONDITIONAL_TYPES:
            raise errors.invalid_order_type()
        if req.position_side != "BOTH":
            raise errors.position_side_mismatch()
        if req.working_type not in WORKING_TYPES:
            raise errors.invalid_param("workingType")
        client_id = req.client_algo_id or f"paper_algo_{self._next_algo_id}"
        check_client_id(client_id)
        if client_id in account.client_algo_ids:
            raise errors.duplicate_client_order_id()
        is_trailing = req.order_type == "TRAILING_STOP_MARKET"
        is_limit = req.order_type in ("STOP", "TAKE_PROFIT")
        mark = self.marks[spec.symbol]
        trigger = ZERO
        if is_trailing:
            if req.callback_rate is None:
                raise errors.mandatory("callbackRate")
            if not MIN_CALLBACK_RATE <= req.callback_rate <= MAX_CALLBACK_RATE:
                raise errors.invalid_param("callbackRate")
            if req.activate_price is not None:
                check_price(spec, req.activate_price)
        else:
            if req.trigger_price is None:
                raise errors.mandatory("triggerPrice")
            trigger = req.trigger_price
            check_price(spec, trigger)
        price = ZERO
        tif = req.time_in_force or "GTC"
        if tif not in TIME_IN_FORCE:
            raise errors.invalid_time_in_force()
        if is_limit:
            if req.price is None:
                raise errors.mandatory("price")
            price = req.price
            check_price(spec, price)
        elif req.price is not None:
            raise errors.not_required("price")
        quantity = ZERO
        if req.close_position:
            if req.order_type not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
                raise errors.close_position_invalid(req.order_type)
            if req.quantity is not None:
                raise errors.not_required("quantity")
            if req.reduce_only:
                raise errors.not_required("reduceOnly")
        else:
            if req.quantity is None:
                raise errors.mandatory("quantity")
            quantity = req.quantity
            check_quantity(spec, quantity, market=not is_limit)
        position = account.position(spec.symbol).amount
        if req.reduce_only and _reducible(position, req.side) == 0:
            raise errors.reduce_only_rejected()
        if not req.reduce_only and not req.close_position:
            ref = price if is_limit else (trigger if not is_trailing else (req.activate_price or mark))
            if quantity * ref < spec.min_notional:
                raise errors.min_notional(f"{spec.min_notional.normalize():f}")
        if self._would_trigger(req.order_type, req.side, trigger, req.activate_price, mark):
            raise errors.would_immediately_trigger()
        if sum(1 for a in account.algo_orders.values() if a.is_open) >= MAX_OPEN_ALGO_ORDERS:
            raise errors.max_stop_orders()
        now = self.now()
        algo = AlgoOrder(
            algo_id=self._algo_id(),
            api_key=account.api_key,
            symbol=spec.symbol,
            client_algo_id=client_id,
            side=req.side,
            order_type=req.order_type,
            quantity=quantity,
            price=price,
            trigger_price=trigger,
            time_in_force=tif,
            working_type=req.working_type,
            reduce_only=req.reduce_only,
            close_position=req.close_position,
            price_protect=req.price_protect,
            create_time=now,
            update_time=now,
            activate_price=req.activate_price if is_trailing else None,
            callback_rate=req.callback_rate if is_trailing else None,
            trailing_extreme=mark if is_trailing and req.activate_price is None else None,
            replica=req.replica,
        )
        account.algo_orders[algo.algo_id] = algo
        account.client_algo_ids[client_id] = algo.algo_id
        self.order_log.append(algo)
        return algo

    @staticmethod
    def _would_trigger(order_type: str, side: str, trigger: Decimal, activate: Decimal | None, mark: Decimal) -> bool:
        if order_type == "TRAILING_STOP_MARKET":
            if activate is None:
                return False
            return activate <= mark if side == "SELL" else activate >= mark
        if order_type in ("STOP", "STOP_MARKET"):
            return mark >= trigger if side == "BUY" else mark <= trigger
        return mark <= trigger if side == "BUY" else mark >= trigger

    def find_algo(self, account: Account, symbol: str | None, algo_id: int | None, client_id: str | None) -> AlgoOrder:
        if algo_id is None and client_id is None:
            raise errors.either_mandatory("clientAlgoId", "algoId")
        if algo_id is None:
            algo_id = account.client_algo_ids.get(client_id or "")
        algo = account.algo_orders.get(algo_id) if algo_id is not None else None
        if algo is None or (symbol is not None and algo.symbol != symbol):
            raise errors.order_does_not_exist()
        if client_id is not None and algo.client_algo_id != client_id:
            raise errors.order_does_not_exist()
        return algo

    def cancel_algo(
        self, account: Account, symbol: str | None, algo_id: int | None, client_id: str | None
    ) -> AlgoOrder:
        if symbol is not None:
            self.market(symbol)
        return self._cancel(lambda: self.find_algo(account, symbol, algo_id, client_id))

    def open_algo_orders(self, account: Account, symbol: str | None) -> list[AlgoOrder]:
        return self._open(account.algo_orders.values(), symbol)

    def all_algo_orders(self, account: Account, symbol: str) -> list[AlgoOrder]:
        spec = self.market(symbol)
        return [a for a in account.algo_orders.values() if a.symbol == spec.symbol]

    def cancel_all_algo_orders(self, account: Account, symbol: str) -> list[AlgoOrder]:
        return self._cancel_all(self.open_algo_orders(account, self.market(symbol).symbol))

    # ------------------------------------------------------------ price moves

    def set_mark_price(self, symbol: str, price: Decimal) -> None:
        """Move the mark (= last) price and run every resting order of every account against it."""
        spec = self.market(symbol)
        if price <= 0:
            raise ValueError("price must be positive")
        self.marks[spec.symbol] = price
        stats = self.stats[spec.symbol]
        stats.high = max(stats.high, price)
        stats.low = min(stats.low, price)
        for account in list(self.accounts.values()):
            for algo in sorted(self.open_algo_orders(account, spec.symbol), key=lambda a: a.algo_id):
                if self._algo_fires(algo, price):
                    self._trigger(account, algo, spec)
            for order in sorted(self.open_orders(account, spec.symbol), key=lambda o: o.order_id):
                if order.type == "LIMIT" and self._crosses(order.side, order.price, price):
                    self._fill_rest(account, order, order.price, maker=True)

    def _algo_fires(self, algo: AlgoOrder, mark: Decimal) -> bool:
        if algo.order_type == "TRAILING_STOP_MARKET":
            return self._trailing_fires(algo, mark)
        return self._would_trigger(algo.order_type, algo.side, algo.trigger_price, None, mark)

    @staticmethod
    def _trailing_fires(algo: AlgoOrder, mark: Decimal) -> bool:
        rate = (algo.callback_rate or ZERO) / 100
        if algo.trailing_extreme is None:
            activate = algo.activate_price
            activated = activate is None or (mark >= activate if algo.side == "SELL" else mark <= activate)
            if not activated:
                return False
            algo.trailing_extreme = mark
        if algo.side == "SELL":
            algo.trailing_extreme = max(algo.trailing_extreme, mark)
            return mark <= algo.trailing_extreme * (1 - rate)
        algo.trailing_extreme = min(algo.trailing_extreme, mark)
        return mark >= algo.trailing_extreme * (1 + rate)

    def _trigger(self, account: Account, algo: AlgoOrder, spec: MarketSpec) -> None:
        now = self.now()
        algo.algo_status = "TRIGGERED"
        algo.trigger_time = now
        algo.update_time = now
        reducible = _reducible(account.position(spec.symbol).amount, algo.side)
        qty = reducible if algo.close_position else algo.quantity
        if algo.reduce_only:
            qty = min(qty, reducible)
        if qty == 0:
            algo.algo_status = "EXPIRED"
            return
        is_limit = algo.order_type in ("STOP", "TAKE_PROFIT")
        mark = self.marks[spec.symbol]
        crosses = not is_limit or self._crosses(algo.side, algo.price, mark)
        if not (algo.reduce_only or algo.close_position):
            try:
                self._check_margin(account, spec.symbol, algo.side, qty, mark if crosses else algo.price)
            except errors.VenueError:
                algo.algo_status = "REJECTED"
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
            stop_price=algo.trigger_price,
            parent_algo_id=algo.algo_id,
        )
        if crosses:
            self._execute_taker(account, order)
        elif order.time_in_force in ("IOC", "FOK"):
            order.status = "EXPIRED"
        algo.actual_order_id = order.order_id
        algo.actual_price = order.avg_price
        algo.algo_status = "FINISHED"
        algo.update_time = self.now()

    # ------------------------------------------------------------ admin actions

    def close_position(self, api_key: str, symbol: str, replica: str | None = None) -> Order | None:
        """Close the position at the mark by hand (like a person on the website); ``None`` when flat."""
        account = self.account(api_key)
        spec = self.market(symbol)
        amount = account.position(spec.symbol).amount
        if amount == 0:
            return None
        order = self._new_order(
            account,
            spec,
            client_order_id=f"web_close_{self._next_order_id}",
            side="SELL" if amount > 0 else "BUY",
            order_type="MARKET",
            orig_type="MARKET",
            quantity=abs(amount),
            price=ZERO,
            time_in_force="GTC",
            reduce_only=True,
            working_type="CONTRACT_PRICE",
            replica=replica,
            source="admin",
        )
        self._execute_taker(account, order)
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

    def position(self, account: Account, symbol: str) -> Position:
        return account.position(self.market(symbol).symbol)
