"""The stop loss: a reduce-only stop covering exactly the exposure, moved by an emulated trailing stop.

Never amended in place: a new stop is placed under a new client id and the old one is cancelled only once the
new one rests (it waits in ``retiredOrders``), so there is never a moment without a stop.
"""

from __future__ import annotations

from decimal import Decimal

from controller.api.display import plain
from controller.api.v1alpha1 import OrderRecord, OrderState, Phase, PositionStatus, TrailingState
from controller.api.vocabulary import ConditionType, EventType, ExitReason, Reason
from controller.reconcile.closing import start_closing
from controller.reconcile.context import HIT, Context
from controller.reconcile.model import Note, PlaceStopOrder, Purpose, Step, beyond, exit_side, following, to_tick
from controller.reconcile.status import TRAILING_MIN_INTERVAL, replace_status

"""An emulated trailing stop moves at most this often: each move is a place and a cancel on the exchange."""


def base_stop_price(ctx: Context, status: PositionStatus) -> Decimal:
    stop = ctx.spec.stopLoss
    if stop.price is not None:
        return stop.price
    assert stop.percent is not None, "validated: exactly one of price or percent"
    return ctx.from_entry(status, stop.percent, toward_profit=False)


def activation_price(ctx: Context, status: PositionStatus) -> Decimal | None:
    trailing = ctx.spec.trailingStop
    if trailing is None or trailing.activationPrice is not None:
        return trailing.activationPrice if trailing else None
    if trailing.activationPercent is None:
        return None
    return ctx.from_entry(status, trailing.activationPercent, toward_profit=True)


def track_best_price(ctx: Context, status: PositionStatus) -> PositionStatus:
    """The emulated trailing stop's memory: activation and the best price since, kept in status."""
    if not ctx.emulating():
        return status
    mark = ctx.obs.mark_price
    state = status.trailing or TrailingState()
    if not state.activated:
        activation = activation_price(ctx, status)
        if activation is not None and beyond(activation, mark, above=ctx.long):
            return replace_status(status, trailing=state) if status.trailing is None else status
        state = state.model_copy(update={"activated": True, "highWaterMark": mark})
        ctx.notes = (
            *ctx.notes,
            Note(EventType.TRAILING_ACTIVATED, f"the trailing stop is active from {ctx.rules.price(mark)}"),
        )
    best = state.highWaterMark if state.highWaterMark is not None else mark
    best = max(best, mark) if ctx.long else min(best, mark)
    if best != state.highWaterMark or status.trailing != state:
        state = state.model_copy(update={"highWaterMark": best})
        return replace_status(status, trailing=state)
    return status


def reach_breakeven(ctx: Context, status: PositionStatus) -> PositionStatus:
    """Remember (in status, never forgotten) when the breakeven was reached: the mark went far enough into profit,
    or the named take profit triggered."""
    breakeven = ctx.spec.stopLoss.breakeven
    if breakeven is None or status.breakevenAt is not None or status.averageEntryPrice is None:
        return status
    if breakeven.afterPercent is not None:
        threshold = ctx.from_entry(status, breakeven.afterPercent, toward_profit=True)
        if beyond(threshold, ctx.obs.mark_price, above=ctx.long):
            return status
        what = f"the mark {ctx.rules.price(ctx.obs.mark_price)} reached {plain(breakeven.afterPercent)}% in profit"
    else:
        index = (breakeven.afterTakeProfit or 0) - 1
        if not any(r.target == index and r.state in HIT for r in status.takeProfitOrders):
            return status
        what = f"take profit {index + 1} triggered"
    status = replace_status(status, breakevenAt=ctx.now)
    price = breakeven_price(ctx, status)
    assert price is not None, "reached just now"
    note = Note(EventType.BREAKEVEN_REACHED, f"{what}: the stop moves to the breakeven {ctx.rules.price(price)}")
    ctx.notes = (*ctx.notes, note)
    return status


def breakeven_price(ctx: Context, status: PositionStatus) -> Decimal | None:
    """The entry plus the offset, once the breakeven was reached."""
    breakeven = ctx.spec.stopLoss.breakeven
    if breakeven is None or status.breakevenAt is None:
        return None
    return ctx.from_entry(status, breakeven.offsetPercent or Decimal(0), toward_profit=True)


def trailing_price(ctx: Context, status: PositionStatus) -> Decimal | None:
    """Where an active emulated trailing stop would rest: the callback behind the best price."""
    trailing, state = ctx.spec.trailingStop, status.trailing
    if not ctx.emulating() or trailing is None or state is None or state.highWaterMark is None:
        return None
    if not state.activated:
        return None
    distance = trailing.callbackPercent / 100
    best = state.highWaterMark
    # Rounded towards the best price: the stop trails by at most the callback.
    raw = best * (1 - distance) if ctx.long else best * (1 + distance)
    return to_tick(raw, ctx.rules.price_tick, up=ctx.long)


def stop_price(ctx: Context, status: PositionStatus) -> Decimal:
    """The tightest of the stop loss, the breakeven and the trailing stop: none moves the stop back."""
    prices = [base_stop_price(ctx, status), breakeven_price(ctx, status), trailing_price(ctx, status)]
    known = [p for p in prices if p is not None]
    return max(known) if ctx.long else min(known)


def protect(ctx: Context, status: PositionStatus) -> Step | None:
    exposure = ctx.exposure(status)
    if exposure < ctx.rules.min_amount:
        return None
    price = stop_price(ctx, status)
    stop = status.stopOrder
    matches = stop is not None and stop.amount == exposure and stop.triggerPrice == price
    trailing_wait = stop is not None and stop.amount == exposure and trailing_too_soon(ctx, status)
    if stop is not None and stop.state is OrderState.OPEN and (matches or trailing_wait):
        return None
    if not beyond(price, ctx.obs.mark_price, above=not ctx.long):
        # The price already passed where the stop would rest: it would trigger at once, so exit now.
        message = f"the price passed the stop ({ctx.rules.price(price)}) before it could rest"
        return start_closing(ctx, status, ExitReason.STOP_LOSS, message)
    if stop is not None and stop.state is OrderState.INTENDED and (matches or ctx.absent(stop)):
        # A recorded intent goes out under its own id: as recorded (it may have been sent: the venue refuses a
        # second copy), or, when the venue has no order under that id, sized to what is held now. The id was
        # durable before the send; a crash after it is repaired by the look-up, never by a second stop.
        record = stop.model_copy(update={"amount": exposure, "triggerPrice": price})
        placing = f"placing the recorded reduce-only stop for {_at(ctx, record)}"
        note = Note(EventType.STOP_INTENT, placing if ctx.absent(stop) else "re-sending the recorded stop")
        return ctx.act(status, replace_status(status, stopOrder=record), stop_action(ctx, record), note)
    return replace_stop(ctx, status, stop, exposure, price)


def trailing_too_soon(ctx: Context, status: PositionStatus) -> bool:
    state = status.trailing
    if not ctx.emulating() or state is None or state.lastMoveAt is None:
        return False
    return ctx.now - state.lastMoveAt < TRAILING_MIN_INTERVAL


def replace_stop(
    ctx: Context, status: PositionStatus, old: OrderRecord | None, amount: Decimal, price: Decimal
) -> Step:
    sequence = status.stopSequence + 1
    record = ctx.intent(Purpose.STOP, sequence, amount, price)
    # The stop after this one is recorded with it: when this one must be replaced, the replacement goes out first.
    after = replace_status(
        status, stopOrder=record, stopSequence=sequence, nextStopOrderId=following(record.clientOrderId)
    )
    notes = [
        Note(
            EventType.STOP_INTENT,
            f"placing a reduce-only stop for {ctx.rules.size(amount)} at {ctx.rules.price(price)}",
        )
    ]
    if old is not None and ctx.on_exchange(old):
        # The old stop keeps protecting until the new one rests; then it is cancelled.
        after = replace_status(after, retiredOrders=[*status.retiredOrders, old])
        move = f"{_at(ctx, old)} -> {ctx.rules.size(amount)} at {ctx.rules.price(price)}"
        notes[0] = Note(EventType.STOP_MOVE, f"moving the stop {move}")
        if ctx.emulating() and old.amount == amount and status.trailing is not None:
            after = replace_status(after, trailing=status.trailing.model_copy(update={"lastMoveAt": ctx.now}))
            notes[0] = Note(EventType.TRAILING_MOVED, f"trailing the stop {move}")
    elif old is not None and old.state is OrderState.REJECTED:
        message = f"the stop was rejected ({old.message or 'no reason given'}); placing it again"
        after = ctx.condition(after, ConditionType.PROTECTED, False, Reason.STOP_REJECTED, message)
        after, escalated = ctx.escalation(after, "placing the stop")
        notes = [Note(EventType.STOP_RETRY, message, warning=True), *escalated, *notes]
    elif old is not None and old.state is not OrderState.INTENDED:  # an intent that never arrived is no drift
        after = ctx.condition(
            after, ConditionType.PROTECTED, False, Reason.STOP_MISSING, "the stop disappeared; re-placing"
        )
        notes.insert(0, Note(EventType.DRIFT_STOP_MISSING, f"stop {old.clientOrderId} is gone", warning=True))
    return ctx.act(status, after, stop_action(ctx, record), *notes)


def _at(ctx: Context, stop: OrderRecord) -> str:
    """A stop as a trader reads it: ``0.01 at 3168.00``."""
    trigger = "" if stop.triggerPrice is None else f" at {ctx.rules.price(stop.triggerPrice)}"
    return f"{ctx.rules.size(stop.amount)}{trigger}"


def stop_action(ctx: Context, record: OrderRecord, purpose: Purpose = Purpose.STOP) -> PlaceStopOrder:
    """A reduce-only conditional exit (stop loss or take profit) for the record."""
    assert record.triggerPrice is not None
    return PlaceStopOrder(
        record.clientOrderId,
        exit_side(ctx.spec.side),
        record.amount,
        record.triggerPrice,
        purpose=purpose,
        working_type=ctx.spec.stopLoss.workingType,
    )


def mark_protected(ctx: Context, status: PositionStatus) -> Step | None:
    stop = status.stopOrder
    if stop is None or stop.state is not OrderState.OPEN:
        return None
    if status.phase is Phase.PROTECTED:
        return None
    status = replace_status(status, phase=Phase.PROTECTED)
    status = ctx.condition(status, ConditionType.READY, True, Reason.PROTECTED, "filled and protected by a stop loss")
    return Step(status, notes=(Note(EventType.STOP_PLACED, f"stop {stop.clientOrderId} rests at {_at(ctx, stop)}"),))


def protection_restored(ctx: Context, status: PositionStatus) -> PositionStatus:
    """Protected is True only while a resting stop covers the whole exposure."""
    stop = status.stopOrder
    if stop is None or stop.state is not OrderState.OPEN or stop.amount < ctx.exposure(status):
        return status
    return ctx.condition(status, ConditionType.PROTECTED, True, Reason.STOP_RESTING, f"stop for {_at(ctx, stop)}")
