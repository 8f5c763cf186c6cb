"""The Binance USDⓈ-M front of the paper venue: request validation, as Binance answers it (the filters, the
position mode, reduce-only, the algo endpoints' rules and error codes), then the engine (``engine.Engine``) takes the
order. Pure Python, no I/O: see ``engine`` for the model."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from paper import errors
from paper.engine import (
    MAX_CALLBACK_RATE,
    MIN_CALLBACK_RATE,
    SIDES,
    TIME_IN_FORCE,
    WORKING_TYPES,
    AnyOrder,
    Engine,
    marketable,
    reducible_qty,
)
from paper.filters import check_client_id, check_percent_price, check_price, check_quantity
from paper.models import (
    CONDITIONAL_TYPES,
    POSITION_SIDES,
    REGULAR_TYPES,
    ZERO,
    Account,
    AlgoOrder,
    AlgoRequest,
    Order,
    OrderRequest,
    only_reduces,
)


class Venue(Engine):
    """An in-memory Binance USDⓈ-M futures venue (one-way and hedge mode, cross and isolated margin)."""

    def set_leverage(self, account: Account, symbol: str, leverage: int) -> tuple[int, Decimal]:
        spec = self.market(symbol)
        if leverage < 1 or leverage > spec.max_leverage:
            raise errors.invalid_leverage(str(leverage))
        cap = spec.max_notional_for_leverage(leverage)
        held = sum((abs(p.amount) for p in account.symbol_positions(spec.symbol)), ZERO)
        if held * self.marks[spec.symbol] > cap:
            raise errors.exceeds_leverage_limit()
        account.setting(spec.symbol).leverage = leverage
        return leverage, cap

    @staticmethod
    def _has_open_orders(account: Account, symbol: str | None) -> bool:
        orders: list[Order | AlgoOrder] = [*account.open_orders.values(), *account.open_algos.values()]
        return any(o.is_open and (symbol is None or o.symbol == symbol) for o in orders)

    def set_margin_type(self, account: Account, symbol: str, margin_type: str) -> None:
        spec = self.market(symbol)
        settings = account.setting(spec.symbol)
        if settings.margin_type == margin_type:
            raise errors.margin_type_unchanged()
        if account.symbol_positions(spec.symbol):
            raise errors.margin_type_position()
        if self._has_open_orders(account, spec.symbol):
            raise errors.margin_type_open_orders()
        settings.margin_type = margin_type

    def set_position_mode(self, account: Account, dual_side: bool) -> None:
        """Switch one-way / hedge mode; Binance refuses while any order is open or any position is held."""
        if account.dual_side_position == dual_side:
            raise errors.position_side_unchanged()
        if self._has_open_orders(account, None):
            raise errors.position_side_open_orders()
        if account.open_positions():
            raise errors.position_side_position()
        account.dual_side_position = dual_side

    @staticmethod
    def _position_side(account: Account, requested: str, reduce_only: bool) -> str:
        """The positionSide an order applies to, checked against the account's position mode."""
        if requested not in POSITION_SIDES:
            raise errors.invalid_param("positionSide")
        if account.dual_side_position:
            if requested == "BOTH":
                raise errors.position_side_mismatch()
            if reduce_only:  # hedge mode closes by side; Binance refuses the flag
                raise errors.not_required("reduceonly")
        elif requested != "BOTH":
            raise errors.position_side_mismatch()
        return requested

    def place_order(self, account: Account, req: OrderRequest) -> Order:
        spec = self.market(req.symbol)
        if req.side not in SIDES:
            raise errors.invalid_side()
        if req.type in CONDITIONAL_TYPES:
            raise errors.use_algo_endpoint()
        if req.type not in REGULAR_TYPES:
            raise errors.invalid_order_type()
        position_side = self._position_side(account, req.position_side, req.reduce_only)
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
        mark, last = self.marks[spec.symbol], self.lasts[spec.symbol]
        tif = "GTC"
        price = ZERO
        if is_market:
            if req.price is not None:
                raise errors.not_required("price")
            if last > mark * spec.multiplier_up if req.side == "BUY" else last < mark * spec.multiplier_down:
                raise errors.percent_price_market()
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
        reduces = only_reduces(req.side, position_side, req.reduce_only, False)
        if reduces and reducible_qty(account.position(spec.symbol, position_side).amount, req.side) == 0:
            raise errors.reduce_only_rejected()
        if not reduces and req.quantity * (last if is_market else price) < spec.min_notional:
            raise errors.min_notional(f"{spec.min_notional.normalize():f}")
        crosses = is_market or marketable(req.side, price, last)
        if not is_market:
            if tif == "GTX" and crosses:
                raise errors.post_only_rejected()
            if tif == "FOK" and not crosses:
                raise errors.fok_not_fillable()
            open_count = sum(1 for o in account.open_orders.values() if o.is_open and o.symbol == spec.symbol)
            if not crosses and open_count >= spec.max_num_orders:
                raise errors.max_open_orders()
        if not reduces:
            self._check_margin(account, spec, req.side, position_side, req.quantity, last if crosses else price)
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
            position_side=position_side,
            price_protect=req.price_protect,
        )
        if crosses:
            self._take(account, order, last)
        elif tif == "IOC":
            self._set_status(order, "EXPIRED")
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

    def _cancel(self, find: Callable[[], AnyOrder]) -> AnyOrder:
        """Cancel the order ``find`` looks up; -2011 when it does not exist or is no longer open."""
        try:
            order = find()
        except errors.VenueError as exc:
            if exc.code == -2013:
                raise errors.unknown_order() from None
            raise
        if not order.is_open:
            raise errors.unknown_order()
        self._set_status(order, "CANCELED")
        return order

    def _cancel_all(self, orders: list[AnyOrder]) -> list[AnyOrder]:
        for order in orders:
            self._set_status(order, "CANCELED")
        return orders

    def cancel_order(self, account: Account, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        return self._cancel(lambda: self.find_order(account, symbol, order_id, client_id))

    def cancel_all_orders(self, account: Account, symbol: str) -> list[Order]:
        return self._cancel_all(self.open_orders(account, self.market(symbol).symbol))

    def all_orders(self, account: Account, symbol: str) -> list[Order]:
        spec = self.market(symbol)
        return [o for o in account.orders.values() if o.symbol == spec.symbol]

    def place_algo_order(self, account: Account, req: AlgoRequest) -> AlgoOrder:
        spec = self.market(req.symbol)
        if req.side not in SIDES:
            raise errors.invalid_side()
        if req.order_type not in CONDITIONAL_TYPES:
            raise errors.invalid_order_type()
        position_side = self._position_side(account, req.position_side, req.reduce_only)
        if req.working_type not in WORKING_TYPES:
            raise errors.invalid_param("workingType")
        client_id = req.client_algo_id or f"paper_algo_{self._next_algo_id}"
        check_client_id(client_id)
        if client_id in account.client_algo_ids:
            raise errors.duplicate_client_order_id()
        is_trailing = req.order_type == "TRAILING_STOP_MARKET"
        is_limit = req.order_type in ("STOP", "TAKE_PROFIT")
        reference = self._working_price(spec.symbol, req.working_type)
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
        reduces = only_reduces(req.side, position_side, req.reduce_only, req.close_position)
        position = account.position(spec.symbol, position_side).amount
        # closePosition stops may be placed while flat (they expire if still flat when they trigger)
        if reduces and not req.close_position and reducible_qty(position, req.side) == 0:
            raise errors.reduce_only_rejected()
        if not reduces:
            ref = price if is_limit else (trigger if not is_trailing else (req.activate_price or reference))
            if quantity * ref < spec.min_notional:
                raise errors.min_notional(f"{spec.min_notional.normalize():f}")
        if self._would_trigger(req.order_type, req.side, trigger, req.activate_price, reference):
            raise errors.would_immediately_trigger()
        if sum(1 for a in account.open_algos.values() if a.is_open) >= self.max_open_algo_orders:
            raise errors.max_stop_orders()
        return self._new_algo(
            account,
            spec,
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
            position_side=position_side,
            price_protect=req.price_protect,
            activate_price=req.activate_price,
            callback_rate=req.callback_rate,
            replica=req.replica,
        )

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

    def all_algo_orders(self, account: Account, symbol: str) -> list[AlgoOrder]:
        spec = self.market(symbol)
        return [a for a in account.algo_orders.values() if a.symbol == spec.symbol]

    def cancel_all_algo_orders(self, account: Account, symbol: str) -> list[AlgoOrder]:
        return self._cancel_all(self.open_algo_orders(account, self.market(symbol).symbol))
