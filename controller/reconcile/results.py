"""What an executed action means for status: the shell records it with these, then plans again. Pure.

Success resets the failure count; a failure counts, sets ``retryAfter`` (the planner waits until then)
and, when the exchange definitively refused an order, marks its record Rejected so the planner decides
what that means (fail before any exposure; keep retrying protection with exposure).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.api.v1alpha1 import OrderState, PositionStatus, VenueTrailingState
from controller.api.vocabulary import ExitReason
from controller.reconcile.model import (
    Action,
    CancelOrder,
    Outcome,
    PlaceMarketOrder,
    PlaceStopOrder,
    PlaceTrailingStopOrder,
    Purpose,
    SetLeverage,
    SetMarginMode,
    SetPositionTrailing,
)
from controller.reconcile.status import failed_status, replace_status, update_records

BACKOFF_BASE = timedelta(seconds=1)
BACKOFF_CAP = timedelta(seconds=30)
"""Capped low: an unprotected or unclosed position is the riskier state, so retries stay frequent."""
PROTECTION_RETRY = timedelta(seconds=1)
"""A stop or a close that could not be sent is retried on the next pass, however often it failed: filled
quantity without a stop is the state Warden must leave first (docs/RELIABILITY.md, invariant 1), and a closing
Position has no stop of its own."""


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s, … up to the cap, for the n-th consecutive failure."""
    exponent = min(max(attempts - 1, 0), 16)  # bounded: the cap is reached long before
    delay: timedelta = BACKOFF_BASE * (2**exponent)
    return min(delay, BACKOFF_CAP)


def describe_action(action: Action) -> str:
    if isinstance(action, SetMarginMode):
        return f"setting margin mode {action.mode}"
    if isinstance(action, SetLeverage):
        return f"setting leverage {action.leverage}"
    if isinstance(action, SetPositionTrailing):
        return f"setting {action}" if action.distance else str(action)
    verb = "cancelling" if isinstance(action, CancelOrder) else "placing"
    return f"{verb} {action.purpose.name.lower().replace('_', ' ')} order {action.client_order_id}"


def _protective(action: Action) -> bool:
    """A stop, a trailing stop or a close: what protects or ends filled quantity."""
    if isinstance(action, PlaceStopOrder | PlaceTrailingStopOrder):
        return action.purpose is not Purpose.TAKE_PROFIT
    return isinstance(action, PlaceMarketOrder) and action.purpose is Purpose.CLOSE


def record_success(status: PositionStatus, action: Action, exchange_order_id: str | None) -> PositionStatus:
    status = replace_status(status, failedAttempts=0, retryAfter=None)
    if isinstance(action, SetMarginMode):
        return replace_status(status, marginMode=action.mode)
    if isinstance(action, SetLeverage):
        return replace_status(status, leverage=action.leverage)
    if isinstance(action, SetPositionTrailing):
        return status  # the position's next read confirms it (positiontrailing.read_back)
    if isinstance(action, CancelOrder):
        return update_records(status, action.client_order_id, state=OrderState.CANCELED)
    return update_records(status, action.client_order_id, state=OrderState.OPEN, exchangeOrderId=exchange_order_id)


def record_failure(
    status: PositionStatus, action: Action, outcome: Outcome, message: str, *, now: datetime, generation: int
) -> PositionStatus:
    attempts = status.failedAttempts + 1
    delay = backoff(attempts)
    if _protective(action):
        delay = min(delay, PROTECTION_RETRY)
    status = replace_status(
        status,
        failedAttempts=attempts,
        lastFailure=f"{describe_action(action)}: {message}"[:1024],
        retryAfter=now + delay,
    )
    if outcome is not Outcome.REJECTED or isinstance(action, CancelOrder):
        # Unknown, retryable or account problems keep the intent: the next observation looks the order up.
        # A refused cancel changes nothing either: the next observation shows whether the order still rests.
        return status
    if isinstance(action, SetPositionTrailing):
        record = status.venueTrailing
        if not action.distance or record is None:
            return status  # a refused clear is tried again: the position's read shows whether it is still there
        # Warden's own stop rests beneath it: the trailing is emulated instead of retried (Context.keeps_emulating).
        refused = record.model_copy(update={"state": VenueTrailingState.REJECTED, "message": message[:1024]})
        return replace_status(status, venueTrailing=refused)
    if isinstance(action, SetMarginMode | SetLeverage):
        # Settings come before the entry, so nothing is exposed yet.
        message = f"the exchange refused {describe_action(action)}: {message}"
        return failed_status(status, ExitReason.SETTING_REJECTED, message, generation=generation, now=now)
    return update_records(status, action.client_order_id, state=OrderState.REJECTED, message=message[:1024])
