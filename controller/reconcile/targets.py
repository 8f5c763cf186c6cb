"""Beside the stop: cancelling replaced orders once their replacement rests, the native trailing stop, and
the take profits.
"""

from __future__ import annotations

from decimal import Decimal

from controller.api.v1alpha1 import (
    OrderRecord,
    OrderState,
    PositionStatus,
    TakeProfit,
    VenueTrailing,
    VenueTrailingState,
)
from controller.api.vocabulary import EventType
from controller.reconcile.context import HIT, Context
from controller.reconcile.model import (
    Note,
    PlaceTrailingStopOrder,
    Purpose,
    SetPositionTrailing,
    Step,
    beyond,
    exit_side,
    floor_to_step,
    purpose_of,
)
from controller.reconcile.positiontrailing import trailing_distance
from controller.reconcile.status import replace_status
from controller.reconcile.stops import activation_price, stop_action


def cancel_replaced(ctx: Context, status: PositionStatus) -> Step | None:
    for record in status.retiredOrders:
        if ctx.on_exchange(record) and replacement_rests(ctx, status, record):
            return ctx.cancel(status, record, "replaced by a resting order")
    return None


def replacement_rests(ctx: Context, status: PositionStatus, record: OrderRecord) -> bool:
    purpose = purpose_of(record.clientOrderId)
    if purpose is Purpose.STOP:
        current = status.stopOrder
    elif purpose is Purpose.TRAILING:
        current = status.trailingOrder
        if not ctx.native_trailing():
            return True
    else:
        if record.target is None or record.target >= len(ctx.spec.takeProfit):
            return True
        current = next((r for r in status.takeProfitOrders if r.target == record.target), None)
    return current is not None and current.state in (OrderState.OPEN, *HIT)


def drop_removed_targets(ctx: Context, status: PositionStatus) -> PositionStatus:
    """Orders for take profits (or a native trailing stop) the spec no longer has are retired."""
    count = len(ctx.spec.takeProfit)
    removed = [r for r in status.takeProfitOrders if r.target is None or r.target >= count]
    trailing = status.trailingOrder if not ctx.native_trailing() else None
    if not removed and trailing is None:
        return status
    retired = [r for r in [*removed, trailing] if r is not None and ctx.on_exchange(r)]
    return replace_status(
        status,
        takeProfitOrders=[r for r in status.takeProfitOrders if r not in removed],
        trailingOrder=status.trailingOrder if trailing is None else None,
        retiredOrders=[*status.retiredOrders, *retired],
    )


def trail_natively(ctx: Context, status: PositionStatus) -> Step | None:
    trailing = ctx.spec.trailingStop
    if trailing is None or not ctx.native_trailing():
        return None
    amount = ctx.exposure(status)
    current = status.trailingOrder
    if amount < ctx.rules.min_amount:
        return None
    if current is not None and ctx.on_exchange(current) and not ctx.unsent(current):
        if current.amount == amount:
            return None
    elif current is not None and ctx.unsent(current):
        return ctx.act(status, status, trailing_action(ctx, status, current))
    activation = activation_price(ctx, status)
    if activation is not None and not beyond(activation, ctx.obs.mark_price, above=ctx.long):
        activation = None  # already reached: Binance would refuse it; trail from the current price
    sequence = status.trailingSequence + 1
    record = ctx.intent(Purpose.TRAILING, sequence, amount, activation)
    after = replace_status(status, trailingOrder=record, trailingSequence=sequence)
    if current is not None and ctx.on_exchange(current):
        after = replace_status(after, retiredOrders=[*status.retiredOrders, current])
    notes = [Note(EventType.TRAILING_STOP_INTENT, f"trailing {trailing.callbackPercent}% for {ctx.rules.size(amount)}")]
    if current is not None and current.state is OrderState.REJECTED:
        after, escalated = ctx.escalation(after, "placing the trailing stop")
        notes.extend(escalated)
    return ctx.act(status, after, trailing_action(ctx, after, record), *notes)


def trail_position(ctx: Context, status: PositionStatus) -> Step | None:
    """Keep the venue position's trailing stop at the recorded distance while this Position trails natively there."""
    if not ctx.trails_position() or ctx.exposure(status) < ctx.rules.min_amount:
        return None
    record = status.venueTrailing
    seen = ctx.obs.position_trailing  # a refused one never gets here: it is emulated (Context.keeps_emulating)
    if record is not None and record.state is VenueTrailingState.SET and seen == record.distance:
        return None
    if record is None or record.state is VenueTrailingState.CLEARING:
        activation = activation_price(ctx, status)
        if activation is not None and not beyond(activation, ctx.obs.mark_price, above=ctx.long):
            activation = None  # already reached: trail from the current price
        reference = activation or status.averageEntryPrice or ctx.obs.mark_price
        record = VenueTrailing(
            distance=trailing_distance(ctx, reference), activationPrice=activation, state=VenueTrailingState.INTENDED
        )
        start = f" from {ctx.rules.price(activation)}" if activation is not None else ""
        message = f"trailing the venue position {ctx.rules.price(record.distance)} behind the best price{start}"
        note = Note(EventType.TRAILING_STOP_INTENT, message, price=record.distance)
    elif record.state is VenueTrailingState.SET:
        message = f"the venue position no longer shows the trailing stop ({ctx.rules.price(record.distance)}); again"
        record = record.model_copy(update={"state": VenueTrailingState.INTENDED})
        note = Note(EventType.TRAILING_STOP_INTENT, message, warning=True, price=record.distance)
    else:  # recorded, and not (yet) shown: sending the same value again is harmless
        message = "re-sending the recorded position trailing stop"
        note = Note(EventType.TRAILING_STOP_INTENT, message, price=record.distance)
    action = SetPositionTrailing(ctx.spec.side, record.distance, record.activationPrice)
    return ctx.act(status, replace_status(status, venueTrailing=record), action, note)


def trailing_action(ctx: Context, status: PositionStatus, record: OrderRecord) -> PlaceTrailingStopOrder:
    trailing = ctx.spec.trailingStop
    assert trailing is not None
    return PlaceTrailingStopOrder(
        record.clientOrderId,
        exit_side(ctx.spec.side),
        record.amount,
        trailing.callbackPercent,
        record.triggerPrice,
        working_type=ctx.spec.stopLoss.workingType,
    )


def take_profit_price(ctx: Context, status: PositionStatus, target: TakeProfit) -> Decimal:
    if target.price is not None:
        return target.price
    assert target.percent is not None, "validated: exactly one of price or percent"
    return ctx.from_entry(status, target.percent, toward_profit=True)


def take_profits(ctx: Context, status: PositionStatus) -> Step | None:
    exposure = ctx.exposure(status)
    filled = status.filled or Decimal(0)
    for index, target in enumerate(ctx.spec.takeProfit):
        current = next((r for r in status.takeProfitOrders if r.target == index), None)
        if current is not None and current.state in HIT:
            continue
        amount = min(floor_to_step(target.portion * filled, ctx.rules.amount_step), exposure)
        price = take_profit_price(ctx, status, target)
        if amount < ctx.rules.min_amount or not beyond(price, ctx.obs.mark_price, above=ctx.long):
            continue  # not enough filled yet, or the price is already past it (it would trigger at once)
        matches = current is not None and current.amount == amount and current.triggerPrice == price
        if current is not None and matches and ctx.unsent(current):
            return ctx.act(status, status, stop_action(ctx, current, Purpose.TAKE_PROFIT))
        if current is not None and matches and ctx.on_exchange(current):
            continue
        return replace_take_profit(ctx, status, index, current, amount, price)
    return None


def replace_take_profit(
    ctx: Context, status: PositionStatus, index: int, old: OrderRecord | None, amount: Decimal, price: Decimal
) -> Step:
    sequence = status.takeProfitSequence + 1
    record = ctx.intent(Purpose.TAKE_PROFIT, sequence, amount, price, index)
    others = [r for r in status.takeProfitOrders if r.target != index]
    after = replace_status(status, takeProfitOrders=[*others, record], takeProfitSequence=sequence)
    notes = [
        Note(
            EventType.TAKE_PROFIT_INTENT,
            f"take profit {index + 1}: {ctx.rules.size(amount)} at {ctx.rules.price(price)}",
        )
    ]
    if old is not None and ctx.on_exchange(old):
        after = replace_status(after, retiredOrders=[*status.retiredOrders, old])
    elif old is not None and old.state is OrderState.CANCELED:
        notes.insert(
            0, Note(EventType.DRIFT_TAKE_PROFIT_MISSING, f"take profit {old.clientOrderId} is gone", warning=True)
        )
    return ctx.act(status, after, stop_action(ctx, record, Purpose.TAKE_PROFIT), *notes)
