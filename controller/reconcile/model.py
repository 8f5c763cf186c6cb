"""Inputs and outputs of the planner: what was observed on the exchange, and what to do about it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from controller.api.v1alpha1 import OrderState, PositionStatus, Side


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


def entry_side(side: Side) -> OrderSide:
    return OrderSide.BUY if side is Side.LONG else OrderSide.SELL


def exit_side(side: Side) -> OrderSide:
    return OrderSide.SELL if side is Side.LONG else OrderSide.BUY


class Purpose(StrEnum):
    ENTRY = "en"
    STOP = "sl"
    CLOSE = "cl"


def client_order_id(position_uid: str, purpose: Purpose, sequence: int = 0) -> str:
    """Deterministic id, unique per Position and purpose; fits Binance's ``^[.A-Z:/a-z0-9_-]{1,36}$``.

    A hash of the uid keeps it short (88 bits: collisions are irrelevant) and leaves room for a
    10-digit sequence in the suffix.
    """
    digest = hashlib.sha256(position_uid.encode()).hexdigest()[:22]
    suffix = f"{purpose.value}{sequence}" if sequence else purpose.value
    return f"w{digest}-{suffix}"


@dataclass(frozen=True)
class MarketRules:
    amount_step: Decimal
    min_amount: Decimal
    min_notional: Decimal
    price_tick: Decimal


@dataclass(frozen=True)
class ObservedOrder:
    client_order_id: str
    exchange_order_id: str
    state: OrderState
    amount: Decimal
    filled: Decimal
    average_price: Decimal | None = None
    trigger_price: Decimal | None = None
    triggered_order_id: str | None = None  # the market order a triggered stop became


@dataclass(frozen=True)
class Trade:
    trade_id: str
    order_id: str
    amount: Decimal
    price: Decimal
    realized_pnl: Decimal
    fee: Decimal


@dataclass(frozen=True)
class Observation:
    """What the exchange says now. ``orders`` maps each client id in status to its order, or None if absent."""

    mark_price: Decimal
    position_size: Decimal  # on the Position's side, >= 0
    market: MarketRules
    orders: Mapping[str, ObservedOrder | None] = field(default_factory=dict)
    trades: tuple[Trade, ...] = ()


@dataclass(frozen=True)
class PlaceMarketOrder:
    purpose: Purpose
    client_order_id: str
    side: OrderSide
    amount: Decimal
    reduce_only: bool


@dataclass(frozen=True)
class PlaceStopOrder:
    client_order_id: str
    side: OrderSide
    amount: Decimal
    trigger_price: Decimal


@dataclass(frozen=True)
class CancelStopOrder:
    client_order_id: str


Action = PlaceMarketOrder | PlaceStopOrder | CancelStopOrder


@dataclass(frozen=True)
class Note:
    """Something worth telling a human and the audit history (an event type from docs/audit-events.md)."""

    type: str
    message: str
    warning: bool = False
    client_order_id: str | None = None


@dataclass(frozen=True)
class Step:
    """The next status to record and at most one exchange action to take after recording it."""

    status: PositionStatus
    action: Action | None = None
    notes: tuple[Note, ...] = ()
