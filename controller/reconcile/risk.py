"""Account risk limits, checked before a Position's entry. Pure: the shell summarizes the account in a Book."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from controller.api.display import plain
from controller.api.v1alpha1 import Phase, PositionSpec, PositionStatus, RiskLimits
from controller.api.vocabulary import RiskLimit
from controller.reconcile.model import MarketRules


@dataclass(frozen=True)
class Book:
    """The account's other live Positions (those holding or seeking exposure) and today's (UTC) results."""

    open_positions: int = 0
    total_notional: Decimal = Decimal(0)
    realized_pnl_today: Decimal = Decimal(0)
    last_loss_at: Mapping[str, datetime] = field(default_factory=dict)  # symbol -> when a loss last closed


@dataclass(frozen=True)
class Refusal:
    limit: RiskLimit
    message: str


@dataclass(frozen=True)
class RiskContext:
    """What the planner needs to check a new entry: the account's limits and its book."""

    limits: RiskLimits | None
    book: Book


def check_risk(
    spec: PositionSpec,
    amount: Decimal,
    limits: RiskLimits | None,
    book: Book,
    *,
    price: Decimal,
    now: datetime,
    rules: MarketRules,
) -> Refusal | None:
    """Whether entering ``amount`` of ``spec`` at ``price`` stays within the account's limits (figures shown by
    ``rules``)."""
    if limits is None:
        return None
    notional = amount * price
    if limits.maxOpenPositions is not None and book.open_positions >= limits.maxOpenPositions:
        return Refusal(
            RiskLimit.MAX_OPEN_POSITIONS,
            f"the account already has {book.open_positions} open Positions "
            f"(maxOpenPositions {limits.maxOpenPositions})",
        )
    if limits.maxPositionNotional is not None and notional > limits.maxPositionNotional:
        return Refusal(
            RiskLimit.MAX_POSITION_NOTIONAL,
            f"{plain(amount)} {spec.symbol} at {rules.price(price)} is worth {rules.money(notional)}, above "
            f"maxPositionNotional {plain(limits.maxPositionNotional)}",
        )
    if limits.maxTotalNotional is not None and book.total_notional + notional > limits.maxTotalNotional:
        return Refusal(
            RiskLimit.MAX_TOTAL_NOTIONAL,
            f"the account's open notional {rules.money(book.total_notional)} plus {rules.money(notional)} exceeds "
            f"maxTotalNotional {plain(limits.maxTotalNotional)}",
        )
    if limits.dailyLossLimit is not None and -book.realized_pnl_today >= limits.dailyLossLimit:
        return Refusal(
            RiskLimit.DAILY_LOSS_LIMIT,
            f"today's realized loss {rules.money(-book.realized_pnl_today)} reached dailyLossLimit "
            f"{plain(limits.dailyLossLimit)}",
        )
    last_loss = book.last_loss_at.get(spec.symbol)
    if limits.cooldownAfterLoss is not None and last_loss is not None and now - last_loss < limits.cooldownAfterLoss:
        return Refusal(
            RiskLimit.COOLDOWN_AFTER_LOSS,
            f"{spec.symbol} closed at a loss at {last_loss.isoformat()}; no new entry before "
            f"{(last_loss + limits.cooldownAfterLoss).isoformat()} (cooldownAfterLoss)",
        )
    return None


def book_from(positions: list[tuple[PositionSpec, PositionStatus]], now: datetime) -> Book:
    """The book of an account from its other Positions (spec, status). A Position counts as open once its
    entry intent is recorded, so two entries decided one after the other under the account lock both see it;
    an unfilled entry counts at its limit price (a market intent has no price yet and counts when it fills)."""
    open_positions = 0
    total = Decimal(0)
    realized_today = Decimal(0)
    last_loss: dict[str, datetime] = {}
    for spec, status in positions:
        if status.phase in (Phase.CLOSED, Phase.FAILED):
            pnl = status.realizedPnl
            if status.closedAt is not None and pnl is not None:
                if status.closedAt.date() == now.date():
                    realized_today += pnl
                if pnl < 0 and status.closedAt > last_loss.get(spec.symbol, status.closedAt - timedelta(1)):
                    last_loss[spec.symbol] = status.closedAt
            continue
        if status.entryOrder is None:
            continue
        open_positions += 1
        if status.filled and status.averageEntryPrice is not None:
            total += status.filled * status.averageEntryPrice
        elif status.entryOrder.price is not None:
            total += status.entryOrder.amount * status.entryOrder.price
    return Book(open_positions, total, realized_today, last_loss)
