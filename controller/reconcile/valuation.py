"""What an open Position is worth at the mark, and the status figures a person reads. Pure.

Unrealized PnL is refreshed from the observation every step already makes, but written at most every
``WARDEN_PNL_REFRESH`` and only when it moved by more than a tick's worth (one tick times the open amount): a
thousand quiet Positions must not patch their status at every mark change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from controller.api.v1alpha1 import Phase, PositionStatus, Side, StatusDisplay
from controller.reconcile.model import MarketRules
from controller.reconcile.status import replace_status
from controller.settings import ObservationSettings

DEFAULT_REFRESH = timedelta(seconds=ObservationSettings().pnl_refresh_s)
"""WARDEN_PNL_REFRESH's default, for callers that do not configure it."""
VALUED = frozenset({Phase.ENTRY_PLACED, Phase.PROTECTED})
"""Phases whose open amount is valued; a Closing position is being sold at market and is valued by its fills."""


def unrealized(side: Side, amount: Decimal, entry: Decimal, mark: Decimal, fees: Decimal | None) -> Decimal:
    """``amount`` held since ``entry`` and worth ``mark`` now, net of the fees already paid."""
    gross = (mark - entry) * amount if side is Side.LONG else (entry - mark) * amount
    return gross - (fees or Decimal(0))


def revalued(
    status: PositionStatus,
    *,
    side: Side,
    amount: Decimal,
    mark: Decimal,
    rules: MarketRules,
    now: datetime,
    every: timedelta | None,
) -> PositionStatus:
    """``status`` with its unrealized PnL refreshed if due: the first valuation at once, later ones once ``every``
    has passed and the value moved by more than ``rules.price_tick`` x ``amount`` (``every`` None: the shell has no
    refresh to spend on this pass, only the first). Outside the valued phases, or with nothing held, there is no
    unrealized PnL."""
    entry = status.averageEntryPrice
    if status.phase not in VALUED or amount <= 0 or entry is None:
        if status.unrealizedPnl is None and status.unrealizedPnlMark is None:
            return status
        return replace_status(status, unrealizedPnl=None, unrealizedPnlMark=None, unrealizedPnlAt=None)
    value = unrealized(side, amount, entry, mark, status.fees)
    last, at = status.unrealizedPnl, status.unrealizedPnlAt
    moved = last is None or abs(value - last) > rules.price_tick * amount
    if at is not None and (every is None or now - at < every or not moved):
        return status
    return replace_status(status, unrealizedPnl=value, unrealizedPnlMark=mark, unrealizedPnlAt=now)


def with_fees_paid(status: PositionStatus, fees: Decimal) -> PositionStatus:
    """``status`` once the fees paid so far are known (the entry's trades were read): the unrealized PnL last
    valued is the same valuation, net of what is now known to have been paid."""
    if fees == status.fees:
        return status
    value = status.unrealizedPnl
    if value is not None:
        value -= fees - (status.fees or Decimal(0))
    return replace_status(status, fees=fees, unrealizedPnl=value)


def shown(status: PositionStatus, rules: MarketRules) -> PositionStatus:
    """``status`` with ``display`` made from its full-precision figures (``controller.api.display``'s rule)."""
    stop = status.stopOrder.triggerPrice if status.stopOrder is not None else None
    display: StatusDisplay | None = StatusDisplay(
        amount=None if status.amount is None else rules.size(status.amount),
        entry=None if status.averageEntryPrice is None else rules.price(status.averageEntryPrice),
        stop=None if stop is None else rules.price(stop),
        realizedPnl=None if status.realizedPnl is None else rules.money(status.realizedPnl),
        unrealizedPnl=None if status.unrealizedPnl is None else rules.money(status.unrealizedPnl),
    )
    if display == StatusDisplay():
        display = None
    return status if display == status.display else replace_status(status, display=display)
