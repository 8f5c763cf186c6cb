"""Closing: stop more fills, drop the take profits, flatten, remove the rest, account. A Position alone on its side
that nothing protects flattens before it drops its take profits."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from controller.api.v1alpha1 import OrderRecord, OrderState, Phase, PositionStatus
from controller.api.vocabulary import ConditionType, EventType, ExitReason, Reason
from controller.reconcile.context import HIT, Context
from controller.reconcile.model import (
    Note,
    PlaceMarketOrder,
    Purpose,
    Step,
    client_order_id,
    exit_side,
    floor_to_step,
    purpose_of,
)
from controller.reconcile.positiontrailing import clear_position_trailing, read_back
from controller.reconcile.status import own_order_ids, replace_status

EXTERNAL_EXITS = (ExitReason.EXTERNAL_CLOSE, ExitReason.LIQUIDATION)
EXITS = frozenset({Purpose.STOP, Purpose.TRAILING, Purpose.CLOSE, Purpose.PRE_ARMED})  # each covers all it saw


def start_closing(ctx: Context, status: PositionStatus, reason: ExitReason, message: str) -> Step:
    status = replace_status(status, phase=Phase.CLOSING, exitReason=reason)
    status = ctx.condition(status, ConditionType.READY, False, Reason.CLOSING, message)
    notes = [Note(EventType.CLOSE_STARTED, f"{reason}: {message}")]
    if reason in EXTERNAL_EXITS:
        notes.insert(0, Note(EventType.DRIFT_EXTERNAL_CLOSE, f"{reason}: {message}", warning=True))
    return Step(status, notes=tuple(notes))


def exited(ctx: Context, status: PositionStatus, reason: ExitReason, message: str) -> Step:
    """The venue already flattened the Position (closed outside, liquidated, the take profits filled): it starts
    closing and, in the same step, removes its first leftover order, so the cleanup waits for no second pass."""
    started = start_closing(ctx, status, reason, message)
    then = closing(ctx, started.status)
    if then.action is None:
        return started  # nothing to remove: the next pass closes the books, with the trades in hand
    return replace(then, notes=(*started.notes, *then.notes))


def closing(ctx: Context, status: PositionStatus) -> Step:
    status = read_back(ctx, status, wanted=False)
    entry = status.entryOrder
    if entry is not None and entry.state is OrderState.OPEN:
        return ctx.cancel(status, entry, "closing: no more fills")
    size = floor_to_step(min(ctx.obs.position_size, still_held(ctx, status)), ctx.rules.amount_step)
    exposed = size >= ctx.rules.min_amount
    # The take profits go first so that none fills beside the close and takes a share of another Position on the
    # side. Alone there, reduce-only caps them at what is left; unprotected, every cancel that waits on the
    # venue (a 502, a backoff) would be time with no stop, so the close goes first.
    if not (exposed and ctx.obs.alone_on_side and not protected(ctx, status)):
        for record in status.takeProfitOrders:
            if ctx.on_exchange(record):
                return ctx.cancel(status, record, "closing")
    if exposed:
        return close_position(ctx, status, size)
    # Flat, the venue dropped it with the position; still held by others (they came while it closed), it must go.
    unshared = clear_position_trailing(ctx, status, "the Position closed")
    if unshared is not None:
        return unshared
    for leftover in [status.stopOrder, status.trailingOrder, status.preArmedStop, *status.retiredOrders]:
        if leftover is not None and ctx.on_exchange(leftover):
            return ctx.cancel(status, leftover, "the position is flat")
    return closed(ctx, status)


def protected(ctx: Context, status: PositionStatus) -> bool:
    """A stop of this Position is seen resting, or the venue position trails. An intent not yet seen does not
    count: it may never have been sent."""
    stops = (status.stopOrder, status.trailingOrder, status.preArmedStop)
    seen = [ctx.obs.orders.get(r.clientOrderId) for r in stops if r is not None]
    return ctx.obs.position_trailing > 0 or any(o is not None and o.state is OrderState.OPEN for o in seen)


def still_held(ctx: Context, status: PositionStatus) -> Decimal:
    """What this Position may still hold after its exit began. The exchange's size alone is not it: another
    Position can hold the same symbol, and after an outside close, a liquidation, or the take profits,
    nothing of this one is left; after its stop fired, what the stop covered is gone."""
    entry = status.entryOrder
    filled = status.filled or (entry.filled if entry is not None else None) or Decimal(0)
    if status.exitReason in (*EXTERNAL_EXITS, ExitReason.TAKE_PROFIT):
        return Decimal(0)
    exits = (status.stopOrder, status.trailingOrder, status.closeOrder, status.preArmedStop, *status.retiredOrders)
    fired = [r.amount for r in exits if r is not None and r.state in HIT and purpose_of(r.clientOrderId) in EXITS]
    return max(filled - sum(fired, Decimal(0)), Decimal(0)) if fired else filled


def close_position(ctx: Context, status: PositionStatus, size: Decimal) -> Step:
    close = status.closeOrder
    if close is not None and close.state is OrderState.OPEN:
        return Step(status)
    amount = size  # already no more than this Position holds (still_held)
    if close is not None and ctx.unsent(close):
        return ctx.act(status, status, close_action(ctx, close))
    placed = max(status.closeSequence, 1 if close is not None else 0)
    number = placed + 1
    cid = client_order_id(ctx.uid, Purpose.CLOSE, number if number > 1 else 0)
    record = OrderRecord(clientOrderId=cid, state=OrderState.INTENDED, amount=amount)
    after = replace_status(status, closeOrder=record, closeSequence=number)
    notes = [Note(EventType.CLOSE_INTENT, f"reduce-only market {exit_side(ctx.spec.side)} {ctx.rules.size(amount)}")]
    if close is not None and close.state is OrderState.FILLED:
        after = replace_status(after, retiredOrders=[*status.retiredOrders, close])  # its fills count
    if close is not None and close.state is OrderState.REJECTED:
        message = f"the close was rejected ({close.message or 'no reason given'}); trying again"
        after = ctx.condition(after, ConditionType.READY, False, Reason.CLOSE_FAILING, message)
        after, escalated = ctx.escalation(after, "closing")
        notes = [Note(EventType.CLOSE_RETRY, message, warning=True), *escalated, *notes]
    return ctx.act(status, after, close_action(ctx, record), *notes)


def close_action(ctx: Context, record: OrderRecord) -> PlaceMarketOrder:
    side = exit_side(ctx.spec.side)
    return PlaceMarketOrder(Purpose.CLOSE, record.clientOrderId, side, record.amount, reduce_only=True)


def closed(ctx: Context, status: PositionStatus) -> Step:
    ours = own_order_ids(status)
    if status.exitReason in EXTERNAL_EXITS:
        trades = list(ctx.obs.trades)  # the outside orders that closed it are part of its result
    else:
        # The venue position's trailing stop trades under no order of Warden's; it was this Position's alone.
        trailed = exit_side(ctx.spec.side) if status.exitReason == ExitReason.TRAILING_STOP else None
        trades = [t for t in ctx.obs.trades if t.order_id in ours or (trailed and t.position_trailing is trailed)]
    fees = sum((t.fee for t in trades), Decimal(0))
    pnl = sum((t.realized_pnl for t in trades), Decimal(0)) - fees
    status = replace_status(status, phase=Phase.CLOSED, realizedPnl=pnl, fees=fees, closedAt=ctx.now)
    status = ctx.condition(status, ConditionType.PROTECTED, False, Reason.FLAT, "no position is open")
    status = ctx.condition(
        status,
        ConditionType.READY,
        True,
        Reason.CLOSED,
        f"closed ({status.exitReason}); realized PnL {ctx.rules.money(pnl)}",
    )
    return Step(
        status,
        notes=(
            Note(
                EventType.POSITION_CLOSED,
                f"{status.exitReason}; realized PnL {ctx.rules.money(pnl)}, fees {ctx.rules.money(fees)}",
            ),
        ),
    )
