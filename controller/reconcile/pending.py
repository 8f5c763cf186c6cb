"""Pending: nothing is on the exchange yet, or the entry's intent is recorded."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from controller.api.v1alpha1 import OrderRecord, OrderState, Phase, PositionStatus, TimeInForce
from controller.api.vocabulary import ConditionType, EventType, ExitReason, Reason
from controller.reconcile.context import Context
from controller.reconcile.entered import entered
from controller.reconcile.entry import checked_entry, planned_stop
from controller.reconcile.model import (
    Note,
    PlaceLimitOrder,
    PlaceMarketOrder,
    Purpose,
    SetLeverage,
    SetMarginMode,
    Step,
    beyond,
    client_order_id,
    entry_side,
    floor_to_step,
    following,
)
from controller.reconcile.positiontrailing import wait_for_side
from controller.reconcile.prearm import arming, disarm, pre_arm, unarmed_because
from controller.reconcile.risk import check_risk
from controller.reconcile.status import closed_before_entry, replace_status
from controller.reconcile.stops import base_stop_price
from controller.reconcile.venue import LookupRetention, Scope

MAX_ATTEMPTS_BEFORE_EXPOSURE = 5
"""Consecutive failures after which a Position that holds nothing gives up (Failed)."""


def pending(ctx: Context, status: PositionStatus) -> Step:
    entry = status.entryOrder
    if ctx.spec.adopted and entry is None:
        return adopt(ctx, status)
    if entry is None or ctx.unsent(entry):
        if ctx.wants_closed:
            return disarm(ctx, status, "closed before the entry") or closed_before_entry(
                status, generation=ctx.generation, now=ctx.now
            )
        if status.failedAttempts >= MAX_ATTEMPTS_BEFORE_EXPOSURE and (entry is None or ctx.absent(entry)):
            return failing(
                ctx,
                status,
                ExitReason.RETRIES_EXHAUSTED,
                f"gave up after {status.failedAttempts} failed attempts before any exposure: "
                f"{status.lastFailure or 'unknown error'}",
            )
        if entry is not None:
            notes = (Note(EventType.ENTRY_INTENT, "re-sending the recorded entry under the same id"),)
            return ctx.act(status, status, entry_action(ctx, entry), *notes)
        setting = account_setting(ctx, status)
        if setting is not None:
            # A margin mode the venue keeps account-wide changes every symbol's: the record says so.
            whole = isinstance(setting, SetMarginMode) and ctx.obs.venue.margin_mode_scope is Scope.ACCOUNT
            what = f"setting {setting}{' for the whole account' if whole else ''} before entry"
            return ctx.act(status, status, setting, Note(EventType.SETTING_INTENT, what))
        waiting = wait_for_side(ctx, status)
        if waiting is not None:
            return waiting
        return place_entry(ctx, status)
    if entry.state is OrderState.REJECTED:
        message = f"the exchange rejected the entry: {entry.message or ''}"
        return failing(ctx, status, ExitReason.ENTRY_REJECTED, message)
    status = replace_status(status, phase=Phase.ENTRY_PLACED)
    status = ctx.condition(
        status, ConditionType.READY, False, Reason.ENTRY_PLACED, "entry order placed; waiting for the fill"
    )
    # Decided in the same step: a market entry is filled by now, and its stop goes out with this record
    # (one audit write and one status write nearer) instead of after a step that only moves the phase.
    step = entered(ctx, status)
    if step.status.phase in (Phase.PROTECTED, Phase.CLOSING):
        # A stop already rests (a status older than the exchange, e.g. restored), or the filled Position is to
        # close (deleted, stopped out, closed outside): EntryPlaced is recorded first, as its own transition, so the
        # audit's chain passes through it as the exposure did, whatever a lost status write left behind; the next
        # step goes on from there.
        return Step(status)
    return step


def adopt(ctx: Context, status: PositionStatus) -> Step:
    """An exchange position Warden found and now owns: it is the entry (filled, at the exchange's price)."""
    size = floor_to_step(ctx.obs.position_size, ctx.rules.amount_step)
    if size == 0:
        status = replace_status(
            status, phase=Phase.CLOSED, exitReason=ExitReason.ADOPTED_POSITION_GONE, closedAt=ctx.now
        )
        message = f"the {ctx.spec.symbol} {ctx.spec.side} position to adopt is gone from the exchange"
        status = ctx.condition(status, ConditionType.READY, True, Reason.CLOSED, message)
        return Step(status, notes=(Note(EventType.POSITION_CLOSED, message),))
    price = ctx.obs.entry_price or ctx.obs.mark_price
    record = OrderRecord(
        clientOrderId=client_order_id(ctx.uid, Purpose.ENTRY),
        state=OrderState.FILLED,
        amount=size,
        filled=size,
        averagePrice=price,
    )
    status = replace_status(status, entryOrder=record, entryPlacedAt=ctx.now, phase=Phase.ENTRY_PLACED, amount=size)
    what = f"{ctx.rules.size(size)} {ctx.spec.symbol} {ctx.spec.side} at {ctx.rules.price(price)}"
    message = f"adopted {what} from the exchange"
    return Step(status, notes=(Note(EventType.POSITION_ADOPTED, message, warning=True),))


def account_setting(ctx: Context, status: PositionStatus) -> SetMarginMode | SetLeverage | None:
    """Account settings for the symbol, before the entry: the margin mode cannot change once a position exists."""
    if ctx.spec.marginMode is not None and status.marginMode is not ctx.spec.marginMode:
        return SetMarginMode(ctx.spec.marginMode)
    if ctx.spec.leverage is not None and status.leverage != ctx.spec.leverage:
        return SetLeverage(ctx.spec.leverage)
    return None


def failing(ctx: Context, status: PositionStatus, reason: ExitReason, message: str) -> Step:
    """Fail before any exposure, once a pre-armed stop that may rest is cancelled."""
    return disarm(ctx, status, f"the Position fails: {reason}") or ctx.fail(status, reason, message)


def place_entry(ctx: Context, status: PositionStatus) -> Step:
    checked = checked_entry(ctx.spec, ctx.rules, ctx.reference_price())
    if not isinstance(checked, Decimal):
        return failing(ctx, status, *checked)
    amount = checked
    if ctx.risk is not None:
        refused = check_risk(
            ctx.spec, amount, ctx.risk.limits, ctx.risk.book, price=ctx.reference_price(), now=ctx.now, rules=ctx.rules
        )
        if refused is not None:
            message = f"refused by the account's {refused.limit}: {refused.message}"
            step = failing(ctx, status, ExitReason.RISK_LIMIT, message)
            if step.action is not None:
                return step
            return replace(
                step,
                notes=(
                    Note(EventType.RISK_REFUSED, f"{refused.limit}: {refused.message}", limit=refused.limit),
                    *step.notes,
                ),
            )
    crowded = conditional_room(ctx)
    if crowded is not None:
        return failing(ctx, status, ExitReason.CONDITIONAL_ORDER_CAP, crowded)
    armed = pre_arm(ctx, status, amount)
    if armed is not None:
        return armed
    entry = ctx.spec.entry
    record = OrderRecord(
        clientOrderId=client_order_id(ctx.uid, Purpose.ENTRY),
        state=OrderState.INTENDED,
        amount=amount,
        price=entry.price,
    )
    # Resolved once: a re-sent intent keeps this amount, whatever the price does meanwhile.
    after = replace_status(status, entryOrder=record, entryPlacedAt=ctx.now, amount=amount)
    if entry.price is None or ctx.obs.venue.lookup is LookupRetention.DURABLE:
        # The stop a fill calls for is recorded with the entry, so it goes out on the fill (a market entry's own
        # answer, a resting limit's push) with no status write ahead of it: its id is durable; its size and trigger
        # are the fill's. A resting limit's stop waits as an intent only where a lookup proves it was never sent:
        # after a restart, one that cannot would stay unknown while the entry rests.
        stop = ctx.intent(Purpose.STOP, 1, amount, base_stop_price(ctx, status))
        after = replace_status(after, stopOrder=stop, stopSequence=1, nextStopOrderId=following(stop.clientOrderId))
    action = entry_action(ctx, record)
    kind = "market" if entry.price is None else f"limit at {ctx.rules.price(entry.price)}"
    unarmed = unarmed_because(ctx, status)
    unarmed = "" if unarmed is None else f"; not pre-armed: {unarmed}"
    return ctx.act(
        status,
        after,
        action,
        Note(EventType.ENTRY_INTENT, f"placing {kind} {action.side} {ctx.rules.size(record.amount)}{unarmed}"),
    )


def conditional_room(ctx: Context) -> str | None:
    """Why the venue's cap on resting conditional orders leaves no room for this Position (None: it fits). Counted:
    its stop, its take profits, a native trailing order, and one more for a stop's replacement, which is placed
    before the order it replaces is cancelled. Checked before the entry, so no exposure is taken that could not be
    protected."""
    cap = ctx.obs.venue.conditional_cap
    if cap is None:
        return None
    parts = [
        "a stop",
        f"{len(ctx.spec.takeProfit)} take profits",
        *(["a trailing stop"] if ctx.native_trailing() or ctx.trails_position() else []),
        *(["a pre-armed stop"] if arming(ctx) else []),
    ]
    needed = len(parts) - 1 + len(ctx.spec.takeProfit) + 1
    resting = ctx.obs.conditional_orders
    if resting + needed <= cap.limit:
        return None
    where = ctx.spec.symbol if cap.scope is Scope.SYMBOL else "the account"
    return (
        f"{resting} conditional orders already rest for {where}; this Position needs room for {needed} "
        f"({', '.join(parts)} and a stop's replacement) under the venue's cap of {cap.limit} per "
        f"{cap.scope.value.lower()}"
    )


def entry_action(ctx: Context, record: OrderRecord) -> PlaceMarketOrder | PlaceLimitOrder:
    side = entry_side(ctx.spec.side)
    attached = attached_stop(ctx, record)
    if record.price is None:
        return PlaceMarketOrder(Purpose.ENTRY, record.clientOrderId, side, record.amount, False, attached)
    tif = ctx.spec.entry.timeInForce or TimeInForce.GTC
    return PlaceLimitOrder(record.clientOrderId, side, record.amount, record.price, tif, attached_stop=attached)


def attached_stop(ctx: Context, record: OrderRecord) -> Decimal | None:
    """Where the venue can attach a stop loss to the entry (``Capabilities.attached_stop``), the planned stop rides
    on it as a safety net: the venue places it as the entry fills, before Warden has seen the fill. Warden's own
    stop still follows and is what Warden manages; the adapter retires the attached one once Warden's rests. Left
    off where the mark has already passed it (a re-sent entry): the venue would refuse the entry with it."""
    if not ctx.obs.venue.attached_stop:
        return None
    ref = record.price if record.price is not None else ctx.obs.mark_price
    stop = planned_stop(ctx.spec, ctx.rules, ref)
    safe = beyond(stop, ctx.obs.mark_price, above=not ctx.long) and beyond(stop, ref, above=not ctx.long)
    return stop if safe else None
