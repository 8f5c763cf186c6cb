"""Entry validation: what would make an order of this Position fail (prices off the tick, a stop or take
profit on the wrong side, an amount off the step or below the minimum), found before the first order.
"""

from __future__ import annotations

from decimal import Decimal

from controller.api.display import plain
from controller.api.v1alpha1 import PositionSpec, Side
from controller.api.vocabulary import ExitReason
from controller.reconcile.model import MarketRules, beyond, floor_to_step


def entry_problem(spec: PositionSpec, rules: MarketRules, ref: Decimal) -> tuple[ExitReason, str] | None:
    """Everything that would make an order of this Position fail, found before the first order."""
    long = spec.side is Side.LONG
    where = "limit price" if spec.entry.price is not None else "mark price"
    below, above = ("below", "above") if long else ("above", "below")
    for name, price in fixed_prices(spec):
        if price % rules.price_tick != 0:
            return (
                ExitReason.INVALID_PRICE,
                f"{name} {plain(price)} must be a multiple of the tick size {plain(rules.price_tick)}",
            )
    stop = spec.stopLoss.price
    if stop is not None and not beyond(stop, ref, above=not long):
        return (
            ExitReason.STOP_ON_WRONG_SIDE,
            f"stop loss {plain(stop)} is not {below} the {where} {plain(ref)}; "
            f"a {spec.side}'s stop must be {below} the price",
        )
    for i, target in enumerate(spec.takeProfit, start=1):
        if target.price is not None and not beyond(target.price, ref, above=long):
            return (
                ExitReason.TAKE_PROFIT_ON_WRONG_SIDE,
                f"take profit {i} at {plain(target.price)} is not {above} the {where} {plain(ref)}",
            )
    amount = floor_to_step(spec.amount, rules.amount_step)
    if amount < rules.min_amount or amount != spec.amount:
        return (
            ExitReason.INVALID_AMOUNT,
            f"amount {plain(spec.amount)} must be a multiple of {plain(rules.amount_step)} "
            f"and at least {plain(rules.min_amount)} for {spec.symbol}",
        )
    if rules.max_amount is not None and amount > rules.max_amount:
        maximum = plain(rules.max_amount)
        return (ExitReason.INVALID_AMOUNT, f"amount {plain(amount)} is above the maximum {maximum} for {spec.symbol}")
    if amount * ref < rules.min_notional:
        return (
            ExitReason.AMOUNT_BELOW_MINIMUM,
            f"amount {plain(amount)} is worth {rules.money(amount * ref)} at {rules.price(ref)}; "
            f"{spec.symbol} needs at least {plain(rules.min_notional)}",
        )
    for i, target in enumerate(spec.takeProfit, start=1):
        share = floor_to_step(target.portion * amount, rules.amount_step)
        if share < rules.min_amount:
            return (
                ExitReason.AMOUNT_BELOW_MINIMUM,
                f"take profit {i} would close {plain(share)} ({plain(target.portion)} of {plain(amount)}), "
                f"below the minimum {plain(rules.min_amount)} for {spec.symbol}",
            )
    return None


def fixed_prices(spec: PositionSpec) -> list[tuple[str, Decimal]]:
    prices = [
        ("limit price", spec.entry.price),
        ("stop loss", spec.stopLoss.price),
        ("trailing activation price", spec.trailingStop.activationPrice if spec.trailingStop else None),
        *((f"take profit {i}", t.price) for i, t in enumerate(spec.takeProfit, start=1)),
    ]
    return [(name, price) for name, price in prices if price is not None]
