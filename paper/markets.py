"""Market specifications of the paper venue, loaded from the shipped ``markets.json``.

``markets.json`` holds, per symbol, the Binance ``exchangeInfo`` symbol object verbatim (served as is), the leverage
brackets of ``/fapi/v1/leverageBracket``, the initial mark price and ``bookDepth``: the paper venue's depth model, the
quantity a resting limit order (all accounts together, per side) can fill on each contract-price update that reaches
its price (see ``paper.venue``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Bracket:
    bracket: int
    initial_leverage: int
    notional_floor: Decimal
    notional_cap: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal


@dataclass(frozen=True)
class MarketSpec:
    symbol: str
    base_asset: str
    quote_asset: str
    margin_asset: str
    price_precision: int
    quantity_precision: int
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    multiplier_up: Decimal
    multiplier_down: Decimal
    max_num_orders: int
    order_types: tuple[str, ...]
    time_in_force: tuple[str, ...]
    brackets: tuple[Bracket, ...]
    initial_mark_price: Decimal
    book_depth: Decimal
    trigger_protect: Decimal  # priceProtect threshold: max |last - mark| / mark at which a protected stop triggers
    exchange_info: dict[str, Any]
    bracket_info: list[dict[str, Any]]

    @property
    def max_leverage(self) -> int:
        return self.brackets[0].initial_leverage

    def bracket_for(self, notional: Decimal) -> Bracket:
        """The maintenance bracket that applies to an absolute position notional."""
        chosen = self.brackets[0]
        for bracket in self.brackets:
            if notional >= bracket.notional_floor:
                chosen = bracket
        return chosen

    def max_notional_for_leverage(self, leverage: int) -> Decimal:
        """Largest notional allowed at ``leverage`` (the cap of the last bracket that still allows it)."""
        cap = self.brackets[0].notional_cap
        for bracket in self.brackets:
            if bracket.initial_leverage >= leverage:
                cap = bracket.notional_cap
        return cap


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def _filters(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(f["filterType"]): f for f in info["filters"]}


def _parse_symbol(entry: dict[str, Any]) -> MarketSpec:
    info: dict[str, Any] = entry["exchangeInfo"]
    filters = _filters(info)
    price_filter = filters["PRICE_FILTER"]
    lot = filters["LOT_SIZE"]
    market_lot = filters["MARKET_LOT_SIZE"]
    percent = filters["PERCENT_PRICE"]
    brackets = tuple(
        Bracket(
            bracket=int(b["bracket"]),
            initial_leverage=int(b["initialLeverage"]),
            notional_floor=_dec(b["notionalFloor"]),
            notional_cap=_dec(b["notionalCap"]),
            maint_margin_ratio=_dec(b["maintMarginRatio"]),
            cum=_dec(b["cum"]),
        )
        for b in entry["brackets"]
    )
    return MarketSpec(
        symbol=str(info["symbol"]),
        base_asset=str(info["baseAsset"]),
        quote_asset=str(info["quoteAsset"]),
        margin_asset=str(info["marginAsset"]),
        price_precision=int(info["pricePrecision"]),
        quantity_precision=int(info["quantityPrecision"]),
        tick_size=_dec(price_filter["tickSize"]),
        min_price=_dec(price_filter["minPrice"]),
        max_price=_dec(price_filter["maxPrice"]),
        step_size=_dec(lot["stepSize"]),
        min_qty=_dec(lot["minQty"]),
        max_qty=_dec(lot["maxQty"]),
        market_step_size=_dec(market_lot["stepSize"]),
        market_min_qty=_dec(market_lot["minQty"]),
        market_max_qty=_dec(market_lot["maxQty"]),
        min_notional=_dec(filters["MIN_NOTIONAL"]["notional"]),
        multiplier_up=_dec(percent["multiplierUp"]),
        multiplier_down=_dec(percent["multiplierDown"]),
        max_num_orders=int(filters["MAX_NUM_ORDERS"]["limit"]),
        order_types=tuple(str(t) for t in info["orderTypes"]),
        time_in_force=tuple(str(t) for t in info["timeInForce"]),
        brackets=brackets,
        initial_mark_price=_dec(entry["markPrice"]),
        book_depth=_dec(entry["bookDepth"]),
        trigger_protect=_dec(info["triggerProtect"]),
        exchange_info=info,
        bracket_info=list(entry["brackets"]),
    )


def load_markets(text: str | None = None) -> dict[str, MarketSpec]:
    """Parse ``markets.json`` (the shipped file unless ``text`` is given) into specs keyed by symbol id."""
    if text is None:
        text = resources.files("paper").joinpath("markets.json").read_text(encoding="utf-8")
    data = json.loads(text)
    specs = [_parse_symbol(entry) for entry in data["symbols"]]
    return {spec.symbol: spec for spec in specs}
