"""The pre-armed stop (``spec.stopLoss.preArm`` where ``Capabilities.pre_armed_stop``: Binance's ``closePosition``
STOP_MARKET): a stop without a size, rested before the entry is sent, that closes whatever the symbol's side holds
when it triggers and expires if that is nothing. A fill is then covered from the moment it happens, whatever Warden
is doing (a kill between the entry's send and its stop leaves no naked window).

It closes the whole venue position of the side, so it rests only while this is the account's only live Position
there (``Observation.alone_on_side``), and a newcomer's entry waits until it is gone (``wait_for_side``). Like every
order its intent is recorded before the send, under its own client id (a crash after the send is repaired by the
look-up); the entry goes out once it rests. It is cancelled once Warden's own stop covers the exposure and either
the entry can fill no more, another Position came to the side, or the spec no longer asks for it at that price; and
on every way out (closing cancels it with the other leftovers). It is never placed twice: one cancelled before the
entry went out leaves the entry to go as without one.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from controller.api.v1alpha1 import OrderRecord, OrderState, PositionStatus
from controller.api.vocabulary import EventType
from controller.reconcile.context import LIVE, Context
from controller.reconcile.model import Note, PlaceStopOrder, Purpose, Step, beyond
from controller.reconcile.status import replace_status
from controller.reconcile.stops import stop_action


def refusal(ctx: Context) -> str | None:
    """Why a pre-armed stop is not placed for this entry (None: it is). Asked for on a venue whose entry carries its
    own stop (``Capabilities.attached_stop``), that stop is the pre-armed one: nothing to say."""
    spec, venue = ctx.spec, ctx.obs.venue
    if not spec.stopLoss.preArm or venue.attached_stop:
        return None
    if not venue.pre_armed_stop:
        return "the venue cannot rest a stop before the entry"
    if not ctx.obs.alone_on_side:
        return f"another Position shares the {spec.symbol} {spec.side} side (a stop for the whole side would close it)"
    price = spec.stopLoss.price
    if price is None or not beyond(price, ctx.obs.mark_price, above=not ctx.long):
        return "the mark has already passed the stop"
    return None


def unarmed_because(ctx: Context, status: PositionStatus) -> str | None:
    """Why an entry whose spec asks for a pre-armed stop goes out without one (None: it has one, or none was
    asked for): what the entry's intent tells."""
    record = status.preArmedStop
    if record is not None and record.state is OrderState.OPEN:
        return None
    if record is not None and record.state is OrderState.REJECTED:
        return f"the venue refused it ({record.message or 'no reason given'})"
    why = refusal(ctx)
    return "it is gone from the venue" if why is None and record is not None else why


def arming(ctx: Context) -> bool:
    """Whether this entry gets a pre-armed stop order of Warden's own."""
    return ctx.spec.stopLoss.preArm and not ctx.obs.venue.attached_stop and refusal(ctx) is None


def pre_arm(ctx: Context, status: PositionStatus, amount: Decimal) -> Step | None:
    """Before the entry is sent: rest the pre-armed stop (or send its recorded intent again), or retire one no longer
    wanted. None: the entry goes now (behind a resting pre-armed stop, or without one)."""
    retiring = retire(ctx, status)
    if retiring is not None:
        return retiring
    record = status.preArmedStop
    if record is not None and record.state is not OrderState.INTENDED:
        return None  # resting, or refused, or gone: the entry goes (a refused one is not asked for twice)
    if not arming(ctx):
        return None
    if record is not None:
        resend = Note(EventType.STOP_INTENT, "re-sending the recorded pre-armed stop")
        return ctx.act(status, status, action(ctx, record), resend)
    price = ctx.spec.stopLoss.price
    assert price is not None, "validated: preArm needs a stop price"
    record = ctx.intent(Purpose.PRE_ARMED, 0, amount, price)
    what = f"the whole {ctx.spec.symbol} {ctx.spec.side} position at {ctx.rules.price(price)}, before the entry"
    note = Note(EventType.STOP_INTENT, f"pre-arming a stop for {what}")
    return ctx.act(status, replace_status(status, preArmedStop=record), action(ctx, record), note)


def action(ctx: Context, record: OrderRecord) -> PlaceStopOrder:
    """The stop loss's order, sizeless: it closes whatever the side holds when it triggers."""
    return replace(stop_action(ctx, record, Purpose.PRE_ARMED), close_position=True)


def retire(ctx: Context, status: PositionStatus) -> Step | None:
    """Cancel the pre-armed stop once it is no longer needed, but never while it is the only stop covering a fill.
    An intent that never reached the venue is dropped instead, so a newcomer on the side does not wait for it."""
    record = status.preArmedStop
    if record is None or record.state not in LIVE:
        return None
    why = _done(ctx, status)
    if why is None:
        return None
    exposure = ctx.exposure(status)
    stop = status.stopOrder
    own_covers = stop is not None and stop.state is OrderState.OPEN and stop.amount >= exposure
    if exposure >= ctx.rules.min_amount and not own_covers:
        return None
    if ctx.absent(record):
        return Step(replace_status(status, preArmedStop=record.model_copy(update={"state": OrderState.CANCELED})))
    return ctx.cancel(status, record, f"the pre-armed stop is done: {why}")


def _done(ctx: Context, status: PositionStatus) -> str | None:
    entry = status.entryOrder
    if entry is not None and entry.state not in LIVE:
        return "the entry can fill no more"
    if not ctx.spec.stopLoss.preArm:
        return "the spec no longer asks for it"
    record = status.preArmedStop
    if record is not None and record.triggerPrice != ctx.spec.stopLoss.price:
        return "the spec's stop price changed"
    if not ctx.obs.alone_on_side:
        return f"another Position came to the {ctx.spec.symbol} {ctx.spec.side} side"
    why_not = refusal(ctx)
    if record is not None and record.state is OrderState.INTENDED and why_not is not None:
        return f"it can no longer be placed: {why_not}"
    return None


def disarm(ctx: Context, status: PositionStatus, why: str) -> Step | None:
    """On a way out with nothing filled (closed or failed before the entry, or the entry refused): cancel the
    pre-armed stop first if it may rest."""
    record = status.preArmedStop
    if record is None or not ctx.on_exchange(record):
        return None
    return ctx.cancel(status, record, why)
