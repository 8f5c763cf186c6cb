"""EntryPlaced and Protected: keep a stop covering exactly the filled amount, and notice every way out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from controller.api.v1alpha1 import OrderRecord, OrderState, PositionStatus
from controller.api.vocabulary import ConditionType, EventType, ExitReason, Reason
from controller.reconcile.closing import closed, exited, start_closing
from controller.reconcile.context import HIT, Context
from controller.reconcile.model import Note, Purpose, Step, Trade, client_id_prefix, exit_side, purpose_of
from controller.reconcile.positiontrailing import read_back, unshared
from controller.reconcile.prearm import retire
from controller.reconcile.status import condition_is, own_order_ids, replace_status
from controller.reconcile.stops import (
    base_stop_price,
    breakeven_price,
    mark_protected,
    protect,
    protection_restored,
    reach_breakeven,
    track_best_price,
)
from controller.reconcile.targets import (
    cancel_replaced,
    drop_removed_targets,
    take_profits,
    trail_natively,
    trail_position,
)


def entered(ctx: Context, status: PositionStatus) -> Step:
    entry = status.entryOrder
    assert entry is not None, "an open phase always has an entry record"
    filled = entry.filled or Decimal(0)
    status = replace_status(status, filled=filled, averageEntryPrice=entry.averagePrice)
    exit_ = exit_by_our_orders(ctx, status)
    if exit_ is not None:
        return start_closing(ctx, status, *exit_)
    if filled > 0 and (ctx.obs.position_size == 0 or ctx.obs.flat_pushed):
        return flat_while_open(ctx, status)
    if condition_is(status, ConditionType.VANISHED):
        status = ctx.condition(
            status, ConditionType.VANISHED, False, Reason.REAPPEARED, "the exchange reports the position again"
        )
    if ctx.wants_closed:
        reason = ExitReason.DELETED if ctx.deleting else ExitReason.REQUESTED
        return start_closing(ctx, status, reason, "closing on request")
    if filled == 0:
        return unfilled(ctx, status, entry)
    status = read_back(ctx, status, wanted=ctx.trails_position())
    status = drop_removed_targets(ctx, reach_breakeven(ctx, track_best_price(ctx, status)))
    step = protect(ctx, status)
    if step is not None:
        return step
    status = protection_restored(ctx, status)
    for decide in (
        mark_protected,
        retire,
        unshared,
        cancel_replaced,
        expire_entry,
        trail_natively,
        trail_position,
        take_profits,
    ):
        step = decide(ctx, status)
        if step is not None:
            return step
    return Step(status)


def exit_by_our_orders(ctx: Context, status: PositionStatus) -> tuple[ExitReason, str] | None:
    for record in [status.stopOrder, status.trailingOrder, status.preArmedStop, *status.retiredOrders]:
        if record is None or record.state not in HIT:
            continue
        purpose = purpose_of(record.clientOrderId)
        if purpose is Purpose.TRAILING or (purpose is Purpose.STOP and trailed(ctx, status, record)):
            return ExitReason.TRAILING_STOP, f"the trailing stop triggered at {record.triggerPrice or 'its trail'}"
        if purpose is Purpose.STOP:
            return ExitReason.STOP_LOSS, f"the stop loss at {record.triggerPrice} triggered on the exchange"
        if purpose is Purpose.PRE_ARMED:
            return ExitReason.STOP_LOSS, f"the pre-armed stop at {record.triggerPrice} triggered on the exchange"
    return None


def trailed(ctx: Context, status: PositionStatus, stop: OrderRecord) -> bool:
    """Whether an emulated trailing stop had moved this stop away from the stop loss (and the breakeven)."""
    set_by_others = (base_stop_price(ctx, status), breakeven_price(ctx, status))
    return status.trailing is not None and status.trailing.activated and stop.triggerPrice not in set_by_others


def flat_while_open(ctx: Context, status: PositionStatus) -> Step:
    """The exchange holds nothing although this Position filled: find out why before closing the books.

    Told only by a push (``flat_pushed``; the snapshot still shows the position), the exit must be a trade of an
    order known to be another's, after this Position's own: a push can be older than the fill it arrives after.
    Anything else waits for the read the push asked for."""
    if ctx.obs.position_size > 0:
        foreign = closed_by_another(ctx.obs.trades, status, client_id_prefix(ctx.uid))
        if not foreign:
            return Step(status)
    else:
        ours = own_order_ids(status)
        foreign = [t for t in ctx.obs.trades if t.order_id not in ours]
    if any(t.liquidation for t in foreign):
        return exited(ctx, status, ExitReason.LIQUIDATION, "the exchange liquidated the position")
    if status.venueTrailing is not None and any(t.position_trailing is exit_side(ctx.spec.side) for t in foreign):
        return exited(ctx, status, ExitReason.TRAILING_STOP, "the venue position's trailing stop closed it")
    if foreign:
        return exited(ctx, status, ExitReason.EXTERNAL_CLOSE, "the position was closed outside Warden")
    if any(r.state in HIT for r in status.takeProfitOrders + status.retiredOrders):
        return exited(ctx, status, ExitReason.TAKE_PROFIT, "the take profits closed the position")
    # Nothing explains it: say so, and touch nothing (a stale position report must not cancel the stop).
    message = f"the exchange reports no {ctx.spec.symbol} position, and no trade explains it"
    reported = condition_is(status, ConditionType.VANISHED)
    notes = () if reported else (Note(EventType.DRIFT_POSITION_VANISHED, message, warning=True),)
    return Step(ctx.condition(status, ConditionType.VANISHED, True, Reason.NO_EXPLAINING_TRADE, message), notes=notes)


def closed_by_another(trades: Sequence[Trade], status: PositionStatus, prefix: str) -> list[Trade]:
    """The trades of orders known to be another's (``prefix``: this Position's client ids) that the venue's clock
    puts after every one of this Position's own. Only such an order: its own stop, triggered, trades under an order
    id not recorded yet."""
    ours = own_order_ids(status)
    known = [
        t
        for t in trades
        if t.order_id not in ours and t.client_order_id is not None and not t.client_order_id.startswith(prefix)
    ]
    return after_own_trades(known, [t for t in trades if t.order_id in ours])


def after_own_trades(foreign: list[Trade], own: list[Trade]) -> list[Trade]:
    """The foreign trades the venue's clock puts after every one of this Position's own (none if it cannot tell)."""
    own_times = [t.traded_at_ms for t in own]
    if not own or None in own_times:
        return []
    last = max(t for t in own_times if t is not None)
    return [t for t in foreign if t.traded_at_ms is not None and t.traded_at_ms > last]


def expired(ctx: Context, status: PositionStatus) -> bool:
    after = ctx.spec.entry.expireAfter
    return after is not None and status.entryPlacedAt is not None and ctx.now >= status.entryPlacedAt + after


def unfilled(ctx: Context, status: PositionStatus, entry: OrderRecord) -> Step:
    retiring = retire(ctx, status)
    if retiring is not None:
        return retiring
    if entry.state in (OrderState.CANCELED, OrderState.REJECTED):
        reason = ExitReason.ENTRY_EXPIRED if expired(ctx, status) else ExitReason.ENTRY_CANCELED
        return closed(ctx, replace_status(status, exitReason=reason))
    if entry.state is OrderState.OPEN and expired(ctx, status):
        step = ctx.cancel(status, entry, "the entry expired unfilled")
        return replace(step, notes=(Note(EventType.ENTRY_EXPIRED, "the entry expired unfilled"), *step.notes))
    return Step(status)


def expire_entry(ctx: Context, status: PositionStatus) -> Step | None:
    entry = status.entryOrder
    if entry is not None and entry.state is OrderState.OPEN and expired(ctx, status):
        step = ctx.cancel(status, entry, "the entry expired; the filled part stays protected")
        return replace(
            step, notes=(Note(EventType.ENTRY_EXPIRED, "the unfilled rest of the entry expired"), *step.notes)
        )
    return None
