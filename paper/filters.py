"""Symbol filter checks (precision, LOT_SIZE, PRICE_FILTER, client ids) as Binance applies them to new orders."""

from __future__ import annotations

import re
from decimal import Decimal

from paper import errors
from paper.markets import MarketSpec

_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def check_quantity(spec: MarketSpec, qty: Decimal, *, market: bool) -> None:
    """LOT_SIZE (MARKET_LOT_SIZE for market orders) and quantity precision."""
    if qty <= 0:
        raise errors.qty_not_positive()
    if decimal_places(qty) > spec.quantity_precision:
        raise errors.precision_over_maximum()
    if market:
        step, low, high, name = spec.market_step_size, spec.market_min_qty, spec.market_max_qty, "MARKET_LOT_SIZE"
    else:
        step, low, high, name = spec.step_size, spec.min_qty, spec.max_qty, "LOT_SIZE"
    if qty % step != 0 or not low <= qty <= high:
        raise errors.lot_size(name)


def check_price(spec: MarketSpec, price: Decimal) -> None:
    """PRICE_FILTER and price precision (applies to limit prices and trigger prices)."""
    if price <= 0 or price < spec.min_price:
        raise errors.price_below_min()
    if decimal_places(price) > spec.price_precision:
        raise errors.precision_over_maximum()
    if price % spec.tick_size != 0:
        raise errors.price_not_tick()
    if price > spec.max_price:
        raise errors.price_above_cap()


def check_percent_price(spec: MarketSpec, side: str, price: Decimal, mark: Decimal) -> None:
    """PERCENT_PRICE: a limit buy may not exceed mark * multiplierUp, a sell may not go below mark * multiplierDown."""
    if side == "BUY" and price > mark * spec.multiplier_up:
        raise errors.price_above_cap()
    if side == "SELL" and price < mark * spec.multiplier_down:
        raise errors.price_below_floor()


def check_client_id(client_id: str) -> None:
    if not _CLIENT_ID.match(client_id):
        raise errors.invalid_client_order_id()
