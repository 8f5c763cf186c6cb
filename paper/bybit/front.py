"""The Bybit V5 linear front: requests checked as Bybit checks them, then handed to the shared engine.

Bybit keeps regular and conditional orders in one list under one ``orderId``; the engine keeps conditional orders
apart (an algo order that becomes a regular order when it triggers). :class:`BybitOrder` is the one order the client
sees: its id is derived from the engine's ids (reversibly, so no map is kept), its status from the algo order
until it triggered and from the regular order after.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from paper.bybit import errors
from paper.bybit.vocab import (
    CONDITIONAL_STATUS,
    OPEN_STATUSES,
    POSITION_SIDES,
    REGULAR_STATUS,
    CancelType,
    MarginMode,
    OrderFilter,
    OrderStatus,
    OrderType,
    PositionMode,
    Side,
    TimeInForce,
    TpslMode,
    TriggerBy,
    TriggerDirection,
)
from paper.engine import marketable, reducible_qty
from paper.errors import VenueError
from paper.markets import MarketSpec
from paper.models import (
    POSITION_ROLES,
    ZERO,
    Account,
    AlgoOrder,
    AttachedStop,
    BybitOrderInfo,
    Order,
    StopRole,
    VenueName,
    only_reduces,
)
from paper.venue import Venue

MAX_CONDITIONAL_PER_SYMBOL = 10
MAX_ACTIVE_PER_SYMBOL = 500
_LINK_ID = re.compile(r"^[0-9A-Za-z_-]{1,36}$")
# The high bits of the UUIDs the front hands out say which engine record the low bits number.
_ORDER_TAG = 0xB1B1_0000
_ALGO_TAG = 0xB1B2_0000
_EXEC_TAG = 0xB1B3_0000
_LOW_BITS = 96


def _uuid(tag: int, number: int) -> str:
    return str(uuid.UUID(int=(tag << _LOW_BITS) | number))


def execution_id(trade_id: int) -> str:
    return _uuid(_EXEC_TAG, trade_id)


def _parse_uuid(value: str) -> tuple[int, int] | None:
    try:
        number = uuid.UUID(value).int
    except ValueError:
        return None
    return number >> _LOW_BITS, number & ((1 << _LOW_BITS) - 1)


def trigger_direction(algo: AlgoOrder) -> TriggerDirection:
    """Which way the price must go to trigger ``algo``: up for a buy stop or a sell take profit, else down (a
    trailing stop is a stop)."""
    stop = not algo.order_type.startswith("TAKE_PROFIT")
    return TriggerDirection.RISE if stop == (algo.side == Side.BUY.engine) else TriggerDirection.FALL


@dataclass(frozen=True)
class BybitOrder:
    """One order as Bybit shows it: a regular order, or a conditional one (its algo order, then what it became)."""

    order_id: str
    algo: AlgoOrder | None
    order: Order | None  # for a conditional order: once it triggered
    info: BybitOrderInfo

    @property
    def status(self) -> OrderStatus:
        if self.order is not None:
            return REGULAR_STATUS[self.order.status]
        assert self.algo is not None
        return CONDITIONAL_STATUS[self.algo.algo_status]

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def symbol(self) -> str:
        return self.algo.symbol if self.algo is not None else self.order.symbol  # type: ignore[union-attr]

    @property
    def link_id(self) -> str:
        """The client's ``orderLinkId``; "" for orders the venue made (a liquidation, a close on the website)."""
        if self.algo is not None:
            return self.algo.client_algo_id
        assert self.order is not None
        return self.order.client_order_id if self.order.source == "api" else ""

    @property
    def created(self) -> int:
        return self.algo.create_time if self.algo is not None else self.order.time  # type: ignore[union-attr]

    def passes(self, order_filter: OrderFilter | None) -> bool:
        """Whether ``orderFilter`` lets the order through: Order = active orders (a triggered conditional order is
        one), StopOrder = untriggered conditional orders, tpslOrder = a position's untriggered TP/SL."""
        if order_filter is None:
            return True
        untriggered = self.algo is not None and self.order is None
        if order_filter is OrderFilter.ORDER:
            return not untriggered
        plain = self.algo is not None and self.algo.role == StopRole.PLAIN
        return untriggered and plain == (order_filter is OrderFilter.STOP_ORDER)

    @property
    def updated(self) -> int:
        times = [r.update_time for r in (self.algo, self.order) if r is not None]
        return max(times)


@dataclass(frozen=True, kw_only=True)
class Protection:
    """A take profit or stop loss as a request states it (attached to an order, or ``trading-stop``)."""

    price: Decimal
    trigger_by: TriggerBy
    limit_price: Decimal = ZERO
    size: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class OrderRequest:
    """A parsed ``POST /v5/order/create``."""

    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    position_idx: int = 0
    link_id: str | None = None
    reduce_only: bool = False
    close_on_trigger: bool = False
    trigger_price: Decimal | None = None
    trigger_direction: int | None = None
    trigger_by: TriggerBy = TriggerBy.LAST_PRICE
    take_profit: Protection | None = None
    stop_loss: Protection | None = None
    tpsl_mode: TpslMode | None = None
    replica: str | None = None


class BybitFront:
    """Bybit's rules over ``venue``'s engine (``venue`` also serves Binance; both share accounts' books)."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    # ------------------------------------------------------------------ look-ups

    def account(self, api_key: str | None) -> Account:
        try:
            return self.venue.account(api_key, VenueName.BYBIT)
        except VenueError:
            raise errors.invalid_api_key() from None

    def market(self, symbol: str | None) -> MarketSpec:
        if symbol is None:
            raise errors.missing("symbol")
        spec = self.venue.markets.get(symbol)
        if spec is None:
            raise errors.bad_symbol()
        return spec

    @staticmethod
    def _info(account: Account, order_id: str) -> BybitOrderInfo:
        return account.bybit_orders.get(order_id) or BybitOrderInfo()

    def of_algo(self, account: Account, algo: AlgoOrder, child: Order | None = None) -> BybitOrder:
        order_id = _uuid(_ALGO_TAG, algo.algo_id)
        if child is None and algo.actual_order_id is not None:
            child = account.orders.get(algo.actual_order_id)
        return BybitOrder(order_id, algo, child, self._info(account, order_id))

    def of_order(self, account: Account, order: Order) -> BybitOrder:
        if order.parent_algo_id is not None:  # the order a conditional one became (maybe still becoming)
            return self.of_algo(account, account.algo_orders[order.parent_algo_id], order)
        order_id = _uuid(_ORDER_TAG, order.order_id)
        return BybitOrder(order_id, None, order, self._info(account, order_id))

    def orders(self, account: Account) -> list[BybitOrder]:
        """Every order of the account, newest first."""
        views = [self.of_algo(account, a) for a in account.algo_orders.values()]
        views += [self.of_order(account, o) for o in account.orders.values() if o.parent_algo_id is None]
        return newest_first(views)

    def open_orders(self, account: Account, symbol: str | None) -> list[BybitOrder]:
        views = [self.of_algo(account, a) for a in self.venue.open_algo_orders(account, symbol)]
        views += [self.of_order(account, o) for o in self.venue.open_orders(account, symbol)]
        unique = {v.order_id: v for v in views}  # a triggered order is open through its regular order
        return newest_first(unique.values())

    def find(self, account: Account, order_id: str | None, link_id: str | None) -> BybitOrder:
        """An order in any state by ``orderId`` (which wins) or ``orderLinkId``; 110001 when there is none."""
        if order_id is None:
            order_id = account.bybit_links.get(link_id or "")
        parsed = _parse_uuid(order_id) if order_id is not None else None
        if parsed is not None:
            tag, number = parsed
            if tag == _ALGO_TAG and number in account.algo_orders:
                return self.of_algo(account, account.algo_orders[number])
            if tag == _ORDER_TAG and number in account.orders:
                return self.of_order(account, account.orders[number])
        raise errors.order_not_found()

    @staticmethod
    def _position_side(account: Account, position_idx: int) -> str:
        if position_idx not in (0, 1, 2):
            raise errors.invalid("positionIdx")
        if (position_idx != 0) != account.dual_side_position:
            raise errors.position_idx_mismatch()
        return POSITION_SIDES[position_idx]

    # ------------------------------------------------------------------ orders

    @staticmethod
    def _check_qty(spec: MarketSpec, qty: Decimal, *, market: bool) -> None:
        if qty <= 0 or qty % spec.step_size != 0:
            raise errors.invalid("qty")
        if qty < spec.min_qty:
            raise errors.BybitError(10001, "The number of contracts exceeds minimum limit allowed")
        if qty > (spec.market_max_qty if market else spec.max_qty):
            raise errors.BybitError(10001, "The number of contracts exceeds maximum limit allowed: too large")

    @staticmethod
    def _check_price(spec: MarketSpec, price: Decimal, name: str) -> None:
        if price <= 0 or price % spec.tick_size != 0 or not spec.min_price <= price <= spec.max_price:
            raise errors.invalid(name)

    def _attached(self, spec: MarketSpec, req: OrderRequest, base: Decimal) -> tuple[AttachedStop, ...]:
        """The TP/SL sent with an entry, checked against the price it opens at (``base``)."""
        if (req.take_profit or req.stop_loss) and (req.reduce_only or req.close_on_trigger):
            raise errors.BybitError(110057, "TP/SL cannot be set on a reduce-only order")
        partial = req.tpsl_mode is TpslMode.PARTIAL
        stops: list[AttachedStop] = []
        for protection, roles, above_for_buy, name in (
            (req.take_profit, (StopRole.TAKE_PROFIT, StopRole.PARTIAL_TAKE_PROFIT), True, "TakeProfit"),
            (req.stop_loss, (StopRole.STOP_LOSS, StopRole.PARTIAL_STOP_LOSS), False, "StopLoss"),
        ):
            if protection is None:
                continue
            self._check_price(spec, protection.price, name[0].lower() + name[1:])
            above = protection.price > base
            if protection.price == base or above != (above_for_buy == (req.side is Side.BUY)):
                relation = "higher" if above_for_buy == (req.side is Side.BUY) else "lower"
                raise errors.BybitError(
                    10001, f"{name}:{protection.price} set for {req.side} position should be {relation} than {base}"
                )
            if protection.limit_price and not partial:
                raise errors.BybitError(110057, "limit TP/SL orders need tpslMode Partial")
            stops.append(
                AttachedStop(
                    role=roles[1] if partial else roles[0],
                    trigger_price=protection.price,
                    working_type=protection.trigger_by.working_type,
                    limit_price=protection.limit_price,
                )
            )
        return tuple(stops)

    def place_order(self, account: Account, req: OrderRequest) -> BybitOrder:
        spec = self.market(req.symbol)
        engine = self.venue
        position_side = self._position_side(account, req.position_idx)
        link_id = req.link_id or ""
        if link_id and not _LINK_ID.match(link_id):
            raise errors.invalid("orderLinkId")
        if link_id in account.bybit_links:
            raise errors.duplicate_link_id()
        is_market = req.order_type is OrderType.MARKET
        self._check_qty(spec, req.qty, market=is_market)
        price = ZERO
        if not is_market:
            if req.price is None:
                raise errors.missing("price")
            price = req.price
            self._check_price(spec, price, "price")
        tif = TimeInForce.IOC if is_market else req.time_in_force or TimeInForce.GTC
        side = req.side.engine
        reduce_only = req.reduce_only or req.close_on_trigger  # a close-on-trigger order can only close
        reduces = only_reduces(side, position_side, reduce_only, False)
        conditional = req.trigger_price is not None
        last = engine.lasts[spec.symbol]
        reference = price if not is_market else req.trigger_price if req.trigger_price is not None else last
        held = account.position(spec.symbol, position_side).amount
        if reduce_only and not conditional and reducible_qty(held, side) == 0:
            raise errors.reduce_only_nothing()
        if not reduces and req.qty * reference < spec.min_notional:
            raise errors.below_min_notional(f"{spec.min_notional.normalize():f}")
        attached = self._attached(spec, req, reference)
        if len(self.open_orders(account, spec.symbol)) >= MAX_ACTIVE_PER_SYMBOL:
            raise errors.too_many_active()
        info = BybitOrderInfo(close_on_trigger=req.close_on_trigger)
        if req.trigger_price is not None:
            algo = self._place_conditional(account, spec, req, price, tif, reduce_only, position_side, attached)
            return self._register(account, _uuid(_ALGO_TAG, algo.algo_id), link_id, info)
        crosses = is_market or marketable(side, price, last)
        if not reduces:
            try:
                engine._check_margin(account, spec, side, position_side, req.qty, last if crosses else price)
            except VenueError as exc:
                raise errors.translate(exc) from None
        order = engine._new_order(
            account,
            spec,
            client_order_id=link_id,
            side=side,
            order_type=req.order_type.upper(),
            orig_type=req.order_type.upper(),
            quantity=req.qty,
            price=price,
            time_in_force=tif.engine,
            reduce_only=reduce_only,
            working_type="CONTRACT_PRICE",
            replica=req.replica,
            source="api",
            position_side=position_side,
            attached=attached,
        )
        view = self._register(account, _uuid(_ORDER_TAG, order.order_id), link_id, info)
        if crosses and tif is TimeInForce.POST_ONLY:  # accepted, then cancelled by the matching engine
            info.reject_reason = "EC_PostOnlyWillTakeLiquidity"
            engine._set_status(order, "CANCELED")
        elif crosses:
            engine._take(account, order, last)
        elif tif in (TimeInForce.IOC, TimeInForce.FOK):
            engine._set_status(order, "EXPIRED")
        return view

    def _register(self, account: Account, order_id: str, link_id: str, info: BybitOrderInfo) -> BybitOrder:
        account.bybit_orders[order_id] = info
        if link_id:
            account.bybit_links[link_id] = order_id
        return self.find(account, order_id, None)

    def _place_conditional(
        self,
        account: Account,
        spec: MarketSpec,
        req: OrderRequest,
        price: Decimal,
        tif: TimeInForce,
        reduce_only: bool,
        position_side: str,
        attached: tuple[AttachedStop, ...],
    ) -> AlgoOrder:
        trigger = req.trigger_price
        assert trigger is not None
        self._check_price(spec, trigger, "triggerPrice")
        if req.trigger_direction not in (TriggerDirection.RISE, TriggerDirection.FALL):
            raise errors.missing("triggerDirection")
        rising = req.trigger_direction == TriggerDirection.RISE
        current = self.venue._working_price(spec.symbol, req.trigger_by.working_type)
        if (current >= trigger) if rising else (current <= trigger):
            raise errors.trigger_crossed(rising, f"{trigger:f}", f"{current:f}")
        conditional = [a for a in self.venue.open_algo_orders(account, spec.symbol) if a.role == StopRole.PLAIN]
        if len(conditional) >= MAX_CONDITIONAL_PER_SYMBOL:
            raise errors.too_many_conditional()
        stop = rising == (req.side is Side.BUY)  # buying higher or selling lower: a stop; else a take profit
        kind = "STOP" if stop else "TAKE_PROFIT"
        return self.venue._new_algo(
            account,
            spec,
            client_algo_id=req.link_id or "",
            side=req.side.engine,
            order_type=kind if req.order_type is OrderType.LIMIT else f"{kind}_MARKET",
            quantity=req.qty,
            price=price,
            trigger_price=trigger,
            time_in_force=tif.engine,
            working_type=req.trigger_by.working_type,
            reduce_only=reduce_only,
            close_position=False,
            position_side=position_side,
            replica=req.replica,
            attached=attached,
        )

    def amend_order(
        self,
        account: Account,
        symbol: str,
        found: BybitOrder,
        qty: Decimal | None,
        price: Decimal | None,
        trigger: Decimal | None,
    ) -> BybitOrder:
        spec = self.market(symbol)
        if not found.is_open or found.symbol != spec.symbol:
            raise errors.BybitError(110001, "order not exists or too late to replace")
        engine = self.venue
        algo, order = found.algo, found.order
        if order is None and algo is not None:  # not triggered yet
            if trigger is not None:
                self._check_price(spec, trigger, "triggerPrice")
                rising = trigger_direction(algo) is TriggerDirection.RISE
                current = engine._working_price(spec.symbol, algo.working_type)
                if (current >= trigger) if rising else (current <= trigger):
                    raise errors.trigger_crossed(rising, f"{trigger:f}", f"{current:f}")
                algo.trigger_price = trigger
            if qty is not None:
                self._check_qty(spec, qty, market=algo.order_type.endswith("_MARKET"))
                algo.quantity = qty
            if price is not None and algo.price > 0:
                self._check_price(spec, price, "price")
                algo.price = price
            engine._set_status(algo, algo.algo_status)  # tells the listeners
            return found
        assert order is not None
        if order.type != "LIMIT":
            raise errors.BybitError(110001, "order not exists or too late to replace")
        if qty is not None:
            self._check_qty(spec, qty, market=False)
            if qty <= order.executed_qty:
                raise errors.invalid("qty")
            order.quantity = qty
        if price is not None:
            self._check_price(spec, price, "price")
            order.price = price
        engine._set_status(order, order.status)
        last = engine.lasts[spec.symbol]
        if marketable(order.side, order.price, last):
            engine._take(account, order, last)
        return found

    def cancel(self, account: Account, found: BybitOrder, cancel_type: CancelType = CancelType.BY_USER) -> BybitOrder:
        if not found.is_open:
            raise errors.order_not_found()
        account.bybit_orders.setdefault(found.order_id, found.info).cancel_type = cancel_type
        target: Order | AlgoOrder | None = found.order if found.order is not None else found.algo
        assert target is not None
        self.venue._set_status(target, "CANCELED")
        return found

    def cancel_all(self, account: Account, symbol: str | None, order_filter: OrderFilter | None) -> list[BybitOrder]:
        return [self.cancel(account, v) for v in self.open_orders(account, symbol) if v.passes(order_filter)]

    # ------------------------------------------------------------------ settings

    def set_leverage(self, account: Account, symbol: str, buy: Decimal, sell: Decimal) -> None:
        spec = self.market(symbol)
        if buy != sell:
            raise errors.params_error("buyLeverage must be equal to sellLeverage")
        if buy != buy.to_integral_value():
            raise errors.params_error("leverage invalid")  # the paper venue keeps whole leverages
        if account.setting(spec.symbol).leverage == int(buy):
            raise errors.leverage_unchanged()
        try:
            self.venue.set_leverage(account, spec.symbol, int(buy))
        except VenueError as exc:
            raise errors.translate(exc) from None

    def switch_mode(self, account: Account, mode: PositionMode) -> None:
        """Account-wide in the paper venue (Bybit: per symbol or per settle coin)."""
        try:
            self.venue.set_position_mode(account, mode is PositionMode.HEDGE)
        except VenueError as exc:
            raise errors.translate(exc) from None

    def set_margin_mode(self, account: Account, mode: MarginMode) -> None:
        if mode is MarginMode.PORTFOLIO:
            raise errors.margin_mode_failed("3400210", "portfolio margin is not simulated")
        target = mode.engine
        if account.default_margin_type == target:
            raise errors.margin_mode_unchanged()
        if account.open_positions():
            raise errors.margin_mode_failed("110024", "You have an existing position")
        if account.open_orders or account.open_algos:
            raise errors.margin_mode_failed("110028", "Open orders exist")
        account.default_margin_type = target
        for settings in account.settings.values():
            settings.margin_type = target

    # ------------------------------------------------------------------ position TP/SL and trailing stop

    def trading_stop(
        self,
        account: Account,
        symbol: str,
        position_idx: int,
        mode: TpslMode,
        take_profit: Protection | None,
        stop_loss: Protection | None,
        trailing: Decimal | None,
        active_price: Decimal | None,
    ) -> None:
        """Set (or with a zero price, cancel) the position's TP, SL and trailing stop."""
        spec = self.market(symbol)
        position_side = self._position_side(account, position_idx)
        amount = account.position(spec.symbol, position_side).amount
        if amount == 0:
            raise errors.params_error("can not set tp/sl/ts for zero position")
        long = amount > 0
        exit_side = (Side.SELL if long else Side.BUY).engine
        partial = mode is TpslMode.PARTIAL
        for protection, roles, above_for_long, name in (
            (take_profit, (StopRole.TAKE_PROFIT, StopRole.PARTIAL_TAKE_PROFIT), True, "TakeProfit"),
            (stop_loss, (StopRole.STOP_LOSS, StopRole.PARTIAL_STOP_LOSS), False, "StopLoss"),
        ):
            if protection is None:
                continue
            role = roles[1] if partial else roles[0]
            if protection.price == 0:
                self._cancel_role(account, spec.symbol, position_side, role)
                continue
            self._check_price(spec, protection.price, name[0].lower() + name[1:])
            base = self.venue._working_price(spec.symbol, protection.trigger_by.working_type)
            if (protection.price > base) != (above_for_long == long):
                raise errors.params_error(f"{name}:{protection.price} is on the wrong side of {base}")
            size = ZERO
            if partial:
                if protection.size is None:
                    raise errors.missing("tpSize" if name == "TakeProfit" else "slSize")
                self._check_qty(spec, protection.size, market=False)
                size = protection.size
            self.venue.set_position_stop(
                account,
                spec,
                position_side,
                role,
                trigger_price=protection.price,
                working_type=protection.trigger_by.working_type,
                side=exit_side,
                quantity=size,
                limit_price=protection.limit_price,
            )
        if trailing is not None:
            if trailing == 0:
                self._cancel_role(account, spec.symbol, position_side, StopRole.TRAILING)
                return
            if active_price is not None:
                self._check_price(spec, active_price, "activePrice")
            self.venue.set_position_stop(
                account,
                spec,
                position_side,
                StopRole.TRAILING,
                trigger_price=active_price or ZERO,
                working_type=TriggerBy.LAST_PRICE.working_type,
                side=exit_side,
                distance=trailing,
            )

    def _cancel_role(self, account: Account, symbol: str, position_side: str, role: StopRole) -> None:
        for algo in self.venue.open_algo_orders(account, symbol):
            if algo.role == role and algo.position_side == position_side:
                self.cancel(account, self.of_algo(account, algo))

    @staticmethod
    def position_stops(account: Account, symbol: str, position_side: str) -> dict[str, AlgoOrder]:
        """The position's open FULL TP, SL and trailing stop by role."""
        return {
            a.role: a
            for a in account.open_algos.values()
            if a.symbol == symbol and a.position_side == position_side and a.role in POSITION_ROLES and a.is_open
        }


def newest_first(views: Iterable[BybitOrder]) -> list[BybitOrder]:
    return sorted(views, key=lambda v: (v.created, v.order_id), reverse=True)
