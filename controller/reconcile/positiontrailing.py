"""The venue position's own trailing stop (``TrailingSupport.POSITION``, Bybit ``trading-stop``).

It has no client id and closes the whole venue position of the symbol's side, so it is used only while one Position
owns that side (``Context.trails_position``); Warden's own reduce-only stop keeps resting beneath it. The intent is
recorded in ``status.venueTrailing`` before the venue is asked, and the position's read (``Observation.
position_trailing``) says whether it is in force: a crash between the two is repaired by reading, and setting the
same value again is harmless. Where it must no longer be in force (another Position came to the side, or this one
closes) it is cleared, and a newcomer's entry waits until the side shows none.
"""

from __future__ import annotations

from decimal import Decimal

from controller.api.v1alpha1 import PositionStatus, TrailingMode, VenueTrailingState
from controller.api.vocabulary import ConditionType, EventType, Reason
from controller.reconcile.context import Context
from controller.reconcile.model import Note, SetPositionTrailing, Step, to_tick
from controller.reconcile.status import replace_status


def wait_for_side(ctx: Context, status: PositionStatus) -> Step | None:
    """Before an entry: wait while the side carries a position-level trailing stop, or another Position has one
    recorded (set, or about to be), or has a pre-armed stop that may rest (``controller.reconcile.prearm``): a fill
    now would join the venue position it closes. The Position that set it removes it once it sees this one."""
    where = f"{ctx.spec.symbol} {ctx.spec.side}"
    if ctx.obs.position_trailing or ctx.obs.trailing_elsewhere:
        reason = Reason.VENUE_TRAILING_ON_SIDE
        message = (
            f"waiting to enter: the venue's {where} position carries a trailing stop "
            "(it would close this Position's fill too); it is cleared by the Position that set it"
        )
    elif ctx.obs.pre_armed_elsewhere:
        reason = Reason.PRE_ARMED_STOP_ON_SIDE
        message = (
            f"waiting to enter: another Position's pre-armed stop rests on the {where} side (it would close this "
            "Position's fill too); it is cancelled by that Position once its own stop covers what it holds"
        )
    else:
        return None
    waiting = any(c.reason == reason for c in status.conditions)
    after = ctx.condition(status, ConditionType.READY, False, reason, message)
    return Step(after, notes=() if waiting else (Note(EventType.ENTRY_WAITING, message),))


def read_back(ctx: Context, status: PositionStatus, *, wanted: bool) -> PositionStatus:
    """What the venue position shows settles the record: a set one is in force; one that is not ``wanted`` and is not
    shown (cleared, never arrived, or gone with the position) is forgotten."""
    record = status.venueTrailing
    if record is None or record.state is VenueTrailingState.REJECTED:  # kept: it says why the trailing is emulated
        return status
    seen = ctx.obs.position_trailing
    if not wanted and (seen == 0 or ctx.obs.position_size == 0):
        return replace_status(status, venueTrailing=None)
    if record.state is VenueTrailingState.INTENDED and seen == record.distance:
        return replace_status(status, venueTrailing=record.model_copy(update={"state": VenueTrailingState.SET}))
    return status


def clear_position_trailing(ctx: Context, status: PositionStatus, why: str) -> Step | None:
    """Clear the trailing stop Warden set on the venue position (distance 0) while the position shows one."""
    record = status.venueTrailing
    if record is None or record.state is VenueTrailingState.REJECTED:
        return None
    if ctx.obs.position_trailing == 0 or ctx.obs.position_size == 0:
        return None
    clearing = record.model_copy(update={"state": VenueTrailingState.CLEARING})
    note = Note(EventType.TRAILING_STOP_CLEAR, f"clearing the venue position's trailing stop: {why}")
    action = SetPositionTrailing(ctx.spec.side, Decimal(0))
    return ctx.act(status, replace_status(status, venueTrailing=clearing), action, note)


def unshared(ctx: Context, status: PositionStatus) -> Step | None:
    """The venue trailing stop must go once this Position no longer trails there alone."""
    if ctx.trails_position():
        return None
    trailing = ctx.spec.trailingStop
    if trailing is None or trailing.mode is not TrailingMode.NATIVE:
        why = "the spec no longer asks for a native trailing stop"
    elif not ctx.obs.alone_on_side:
        why = f"another Position shares the {ctx.spec.symbol} {ctx.spec.side} side; trailing is emulated from now on"
    else:
        why = "the trailing stop is emulated"
    return clear_position_trailing(ctx, status, why)


def trailing_distance(ctx: Context, reference: Decimal) -> Decimal:
    """The callback as a price distance at the reference (the activation, else the average entry), rounded down to
    the tick (it trails by at most the callback), at least one tick."""
    trailing = ctx.spec.trailingStop
    assert trailing is not None
    tick = ctx.rules.price_tick
    return max(to_tick(reference * trailing.callbackPercent / 100, tick, up=False), tick)
