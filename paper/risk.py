"""Margin arithmetic of a USDⓈ-M account (pure functions, ``Decimal`` only).

Model (also in ``docs/paper-exchange.md``):

* Position initial margin is ``|amount| * mark / leverage``; maintenance margin is
  ``|notional| * maintMarginRatio - cum`` of the leverage bracket the notional falls in.
* Cross positions share the cross wallet (wallet balance minus every isolated wallet) and their unrealized PnL.
  An isolated position has its own wallet: ``qty * fill price / leverage`` is set aside on every opening fill and
  released pro rata on every closing fill; realized PnL and fees always settle in the account's wallet balance.
* Available balance = cross wallet + cross unrealized PnL - cross position initial margin - open-order initial margin.
* Liquidation price: the mark at which the margin of the position (isolated wallet, or cross wallet with the other
  cross positions' unrealized PnL and maintenance margin held at their current values) equals its maintenance margin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from paper.markets import MarketSpec
from paper.models import ZERO, Account, Position, VenueName

EIGHT = Decimal("0.00000001")
TAKER_FEE_RATE = Decimal("0.0005")
MAKER_FEE_RATE = Decimal("0.0002")


@dataclass(frozen=True)
class FeeRates:
    maker: Decimal
    taker: Decimal


# Each venue's non-VIP USDT-perpetual rates: Binance 0.02 % / 0.05 %, Bybit 0.02 % / 0.055 % (its ``feeRate``).
FEE_RATES: dict[str, FeeRates] = {
    VenueName.BINANCE_USDM: FeeRates(MAKER_FEE_RATE, TAKER_FEE_RATE),
    VenueName.BYBIT: FeeRates(MAKER_FEE_RATE, Decimal("0.00055")),
}


def q8(value: Decimal) -> Decimal:
    """Round to Binance's 8 decimal places for money."""
    return value.quantize(EIGHT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PositionMetrics:
    symbol: str
    position_side: str
    amount: Decimal
    entry_price: Decimal
    mark_price: Decimal
    notional: Decimal  # signed
    unrealized_pnl: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    leverage: int
    isolated: bool
    isolated_wallet: Decimal
    update_time: int


@dataclass(frozen=True)
class AccountMetrics:
    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    unrealized_pnl: Decimal
    cross_unrealized_pnl: Decimal
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
    settings = account.setting(pos.symbol)
    notional = pos.amount * mark
    bracket = spec.bracket_for(abs(notional))
    return PositionMetrics(
        symbol=pos.symbol,
        position_side=pos.position_side,
        amount=pos.amount,
        entry_price=pos.entry_price,
        mark_price=mark,
        notional=notional,
        unrealized_pnl=pos.amount * (mark - pos.entry_price),
        initial_margin=abs(notional) / settings.leverage,
        maint_margin=max(ZERO, abs(notional) * bracket.maint_margin_ratio - bracket.cum),
        leverage=settings.leverage,
        isolated=settings.margin_type == "ISOLATED",
        isolated_wallet=pos.isolated_wallet,
        update_time=pos.update_time,
    )


def open_order_margin(account: Account) -> Decimal:
    """Initial margin held by resting limit orders that may open (remaining notional at the limit / leverage)."""
    total = ZERO
    for order in account.open_orders.values():
        if order.is_open and not order.only_reduces:
            total += order.remaining * order.price / account.setting(order.symbol).leverage
    return total


def _shown_positions(account: Account) -> list[Position]:
    """Open positions; in hedge mode with the flat opposite side too, as Binance lists both sides of a symbol."""
    held = account.open_positions()
    if account.dual_side_position:
        symbols = sorted({pos.symbol for pos in held})
        return [account.position(symbol, side) for symbol in symbols for side in ("LONG", "SHORT")]
    return held


def account_metrics(
    account: Account, markets: Mapping[str, MarketSpec], marks: Mapping[str, Decimal]
) -> AccountMetrics:
    positions = tuple(
        position_metrics(account, pos, markets[pos.symbol], marks[pos.symbol]) for pos in _shown_positions(account)
    )
    cross = [p for p in positions if not p.isolated]
    upnl = sum((p.unrealized_pnl for p in positions), ZERO)
    cross_upnl = sum((p.unrealized_pnl for p in cross), ZERO)
    cross_wallet = account.wallet_balance - sum((p.isolated_wallet for p in positions), ZERO)
    oim = open_order_margin(account)
    available = cross_wallet + cross_upnl - sum((p.initial_margin for p in cross), ZERO) - oim
    return AccountMetrics(
        wallet_balance=account.wallet_balance,
        cross_wallet_balance=cross_wallet,
        unrealized_pnl=upnl,
        cross_unrealized_pnl=cross_upnl,
        margin_balance=account.wallet_balance + upnl,
        position_initial_margin=sum((p.initial_margin for p in positions), ZERO),
        open_order_initial_margin=oim,
        maint_margin=sum((p.maint_margin for p in positions), ZERO),
        available_balance=available,
        max_withdraw_amount=max(ZERO, min(available, cross_wallet)),
        positions=positions,
    )


def liquidation_price(metrics: AccountMetrics, target: PositionMetrics, spec: MarketSpec) -> Decimal:
    """The mark at which ``target`` is liquidated (Binance's published one-position formula); zero when none."""
    qty = abs(target.amount)
    if qty == 0:
        return ZERO
    side = Decimal(1) if target.amount > 0 else Decimal(-1)
    if target.isolated:
        collateral = target.isolated_wallet
    else:
        others = [
            p
            for p in metrics.positions
            if not p.isolated and (p.symbol, p.position_side) != (target.symbol, target.position_side)
        ]
        other_mm = sum((p.maint_margin for p in others), ZERO)
        other_upnl = sum((p.unrealized_pnl for p in others), ZERO)
        collateral = metrics.cross_wallet_balance - other_mm + other_upnl
    bracket = spec.bracket_for(abs(target.notional))
    denominator = qty * bracket.maint_margin_ratio - side * qty
    if denominator == 0:
        return ZERO
    price = (collateral + bracket.cum - side * qty * target.entry_price) / denominator
    return price if price > 0 else ZERO


def break_even_price(amount: Decimal, entry: Decimal) -> Decimal:
    """Price at which closing returns the taker fees paid on opening and closing."""
    if amount > 0:
        return entry * (1 + TAKER_FEE_RATE) / (1 - TAKER_FEE_RATE)
    if amount < 0:
        return entry * (1 - TAKER_FEE_RATE) / (1 + TAKER_FEE_RATE)
    return ZERO
