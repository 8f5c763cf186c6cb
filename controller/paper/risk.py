"""Margin arithmetic for a cross-margin, one-way-mode USDⓈ-M account (pure functions, ``Decimal`` only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from controller.paper.markets import MarketSpec
from controller.paper.models import ZERO, Account, Position

EIGHT = Decimal("0.00000001")
TAKER_FEE_RATE = Decimal("0.0005")
MAKER_FEE_RATE = Decimal("0.0002")


def q8(value: Decimal) -> Decimal:
    """Round to Binance's 8 decimal places for money."""
    return value.quantize(EIGHT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PositionMetrics:
    symbol: str
    amount: Decimal
    entry_price: Decimal
    mark_price: Decimal
    notional: Decimal  # signed
    unrealized_pnl: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    leverage: int
    update_time: int


@dataclass(frozen=True)
class AccountMetrics:
    wallet_balance: Decimal
    unrealized_pnl: Decimal
    margin_balance: Decimal
    position_initial_margin: Decimal
    open_order_initial_margin: Decimal
    maint_margin: Decimal
    available_balance: Decimal
    max_withdraw_amount: Decimal
    positions: tuple[PositionMetrics, ...]

    @property
    def initial_margin(self) -> Decimal:
        return self.position_initial_margin + self.open_order_initial_margin


def position_metrics(account: Account, pos: Position, spec: MarketSpec, mark: Decimal) -> PositionMetrics:
    leverage = account.setting(pos.symbol).leverage
    notional = pos.amount * mark
    bracket = spec.bracket_for(abs(notional))
    return PositionMetrics(
        symbol=pos.symbol,
        amount=pos.amount,
        entry_price=pos.entry_price,
        mark_price=mark,
        notional=notional,
        unrealized_pnl=pos.amount * (mark - pos.entry_price),
        initial_margin=abs(notional) / leverage,
        maint_margin=max(ZERO, abs(notional) * bracket.maint_margin_ratio - bracket.cum),
        leverage=leverage,
        update_time=pos.update_time,
    )


def open_order_margin(account: Account) -> Decimal:
    """Initial margin held by resting, non-reduce-only limit orders (notional at the limit price / leverage)."""
    total = ZERO
    for order in account.orders.values():
        if order.is_open and not order.reduce_only:
            total += order.remaining * order.price / account.setting(order.symbol).leverage
    return total


def account_metrics(
    account: Account, markets: Mapping[str, MarketSpec], marks: Mapping[str, Decimal]
) -> AccountMetrics:
    positions = tuple(
        position_metrics(account, pos, markets[symbol], marks[symbol])
        for symbol, pos in sorted(account.positions.items())
        if pos.amount != 0
    )
    upnl = sum((p.unrealized_pnl for p in positions), ZERO)
    pim = sum((p.initial_margin for p in positions), ZERO)
    oim = open_order_margin(account)
    margin_balance = account.wallet_balance + upnl
    available = margin_balance - pim - oim
    return AccountMetrics(
        wallet_balance=account.wallet_balance,
        unrealized_pnl=upnl,
        margin_balance=margin_balance,
        position_initial_margin=pim,
        open_order_initial_margin=oim,
        maint_margin=sum((p.maint_margin for p in positions), ZERO),
        available_balance=available,
        max_withdraw_amount=max(ZERO, min(available, account.wallet_balance)),
        positions=positions,
    )


def liquidation_price(metrics: AccountMetrics, target: PositionMetrics, spec: MarketSpec) -> Decimal:
    """Cross-margin, one-way liquidation price of ``target`` (Binance's published formula); zero when none."""
    qty = abs(target.amount)
    if qty == 0:
        return ZERO
    side = Decimal(1) if target.amount > 0 else Decimal(-1)
    others = [p for p in metrics.positions if p.symbol != target.symbol]
    other_mm = sum((p.maint_margin for p in others), ZERO)
    other_upnl = sum((p.unrealized_pnl for p in others), ZERO)
    bracket = spec.bracket_for(abs(target.notional))
    numerator = metrics.wallet_balance - other_mm + other_upnl + bracket.cum - side * qty * target.entry_price
    denominator = qty * bracket.maint_margin_ratio - side * qty
    if denominator == 0:
        return ZERO
    price = numerator / denominator
    return price if price > 0 else ZERO


def break_even_price(amount: Decimal, entry: Decimal) -> Decimal:
    """Price at which closing returns the taker fees paid on opening and closing."""
    if amount > 0:
        return entry * (1 + TAKER_FEE_RATE) / (1 - TAKER_FEE_RATE)
    if amount < 0:
        return entry * (1 - TAKER_FEE_RATE) / (1 + TAKER_FEE_RATE)
    return ZERO
