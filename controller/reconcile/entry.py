"""Entry validation and sizing: the amount to enter (as written, or resolved from a notional or a risk at the
entry's reference price), or what would make an order of this Position fail (prices off the tick, a stop or take
profit on the wrong side, an amount off the step or below the minimum), found before the first order.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from controller.api.display import plain
from controller.api.v1alpha1 import PositionSpec, Side
from controller.api.vocabulary import ExitReason
from controller.reconcile.model import MarketRules, beyond, floor_to_step, percent_away

Problem = tuple[ExitReason, str]


def checked_entry(spec: PositionSpec, rules: MarketRules, ref: Decimal) -> Decimal | Problem:
    """The amount to enter at the reference price ``ref``, or everything that would make an order of this
    Position fail, found before the first order."""
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
            f"stop loss {plain(stop)} is not {below} the {where} {rules.price(ref)}; "
            f"a {spec.side}'s stop must be {below} the price",
        )
    for i, target in enumerate(spec.takeProfit, start=1):
        if target.price is not None and not beyond(target.price, ref, above=long):
            return (
                ExitReason.TAKE_PROFIT_ON_WRONG_SIDE,
                f"take profit {i} at {plain(target.price)} is not {above} the {where} {rules.price(ref)}",
            )
    sized = resolve_amount(spec, rules, ref)
    if not isinstance(sized, Decimal):
        return sized
    amount = sized
    if spec.amount is not None and (amount < rules.min_amount or amount != floor_to_step(amount, rules.amount_step)):
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
    return amount


def resolve_amount(spec: PositionSpec, rules: MarketRules, ref: Decimal) -> Decimal | Problem:
    """The size in the base asset: ``amount`` as written, or ``notional`` / ``risk`` at the reference price, rounded
    down to the lot step (a trader's budget is never exceeded); refused when that leaves less than the minimum."""
    if spec.amount is not None:
        return spec.amount
    if spec.notional is not None:
        how = f"notional {plain(spec.notional)} at {rules.price(ref)}"
        raw = spec.notional / ref
    else:
        assert spec.risk is not None, "validated: exactly one of amount, notional or risk"
        stop = planned_stop(spec, rules, ref)
        distance = abs(ref - stop)
        if distance == 0:
            return (ExitReason.INVALID_PRICE, f"the stop loss {plain(stop)} is at the entry price: risk cannot size it")
        how = f"risk {plain(spec.risk)} over the stop distance {plain(distance)} ({rules.price(ref)} to {plain(stop)})"
        raw = spec.risk / distance
    amount = floor_to_step(raw, rules.amount_step)
    if amount < rules.min_amount:
        return (
            ExitReason.AMOUNT_BELOW_MINIMUM,
            f"{how} sizes {plain(raw.quantize(rules.amount_step / 1000, rounding=ROUND_HALF_EVEN))} {spec.symbol}, "
            f"below the minimum amount {plain(rules.min_amount)} (lot step {plain(rules.amount_step)})",
        )
    return amount


def planned_stop(spec: PositionSpec, rules: MarketRules, ref: Decimal) -> Decimal:
    """The stop loss price if the entry fills at ``ref`` (a percent stop is measured from the entry)."""
    stop = spec.stopLoss
    if stop.price is not None:
        return stop.price
    assert stop.percent is not None, "validated: exactly one of price or percent"
    return percent_away(ref, stop.percent, rules.price_tick, up=spec.side is not Side.LONG)


def fixed_prices(spec: PositionSpec) -> list[tuple[str, Decimal]]:
    prices = [
        ("limit price", spec.entry.price),
        ("stop loss", spec.stopLoss.price),
        ("trailing activation price", spec.trailingStop.activationPrice if spec.trailingStop else None),
        *((f"take profit {i}", t.price) for i, t in enumerate(spec.takeProfit, start=1)),
    ]
    return [(name, price) for name, price in prices if price is not None]
