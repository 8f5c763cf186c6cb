"""Inputs and outputs of the planner: what was observed on the exchange, and what to do about it."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from enum import StrEnum

from controller.api.display import at_step, money
from controller.api.v1alpha1 import (
    MarginMode,
    OrderState,
    PositionStatus,
    Side,
    TimeInForce,
    WorkingType,
)
from controller.api.vocabulary import EventType, RiskLimit
from controller.reconcile.venue import Capabilities


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
    TAKE_PROFIT = "tp"
    TRAILING = "ts"
    CLOSE = "cl"
    PRE_ARMED = "pa"
    """A stop rested before the entry (``spec.stopLoss.preArm``) that closes the whole venue position of the side."""

    @property
    def conditional(self) -> bool:
        """Orders that rest until a trigger price: they count against a venue's conditional-order cap, and some
        venues keep them apart (Binance: its algo endpoints, ccxt ``{'trigger': True}``)."""
        return self in (Purpose.STOP, Purpose.TAKE_PROFIT, Purpose.TRAILING, Purpose.PRE_ARMED)


def client_order_id(position_uid: str, purpose: Purpose, sequence: int = 0) -> str:
    """Deterministic id, unique per Position, purpose and sequence; fits every supported venue's alphabet (Binance
    ``^[.A-Z:/a-z0-9_-]{1,36}$``, Bybit ``[0-9A-Za-z_-]``, at most 36): see ``Capabilities.client_id_pattern``.

    A hash of the uid keeps it short (88 bits: collisions are irrelevant) and leaves room for a
    10-digit sequence in the suffix.
    """
    suffix = f"{purpose.value}{sequence}" if sequence else purpose.value
    return f"{client_id_prefix(position_uid)}-{suffix}"


def client_id_prefix(position_uid: str) -> str:
    """What every client order id of one Position starts with."""
    return "w" + hashlib.sha256(position_uid.encode()).hexdigest()[:22]


CLIENT_ID_PREFIX_LENGTH = 23  # "w" + 22 hex of the Position's uid: what client_id_prefix returns
_WARDEN_CLIENT_ID = re.compile(r"^w[0-9a-f]{22}-[a-z]{2}[0-9]*$")


def is_warden_order(client_id: str) -> bool:
    """Whether an order on the exchange was made by Warden (by the shape of its client id)."""
    return _WARDEN_CLIENT_ID.match(client_id) is not None


def purpose_of(client_id: str) -> Purpose:
    """The purpose a Warden client order id was made for (the letters of its suffix)."""
    return Purpose(client_id.rsplit("-", 1)[-1].rstrip("0123456789"))


def following(client_id: str) -> str:
    """The client id after ``client_id`` in its Position's sequence of the same purpose."""
    head, suffix = client_id.rsplit("-", 1)
    letters = suffix.rstrip("0123456789")
    return f"{head}-{letters}{int(suffix[len(letters) :] or 0) + 1}"


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def to_tick(value: Decimal, tick: Decimal, *, up: bool) -> Decimal:
    return (value / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR) * tick


def percent_away(average: Decimal, percent: Decimal, tick: Decimal, *, up: bool) -> Decimal:
    """A price ``percent`` above (``up``) or below ``average``, rounded to the tick towards it (never further than
    asked)."""
    price = average * (1 + percent / 100) if up else average * (1 - percent / 100)
    return to_tick(price, tick, up=not up)


def beyond(price: Decimal, mark: Decimal, *, above: bool) -> bool:
    return price > mark if above else price < mark


@dataclass(frozen=True)
class MarketRules:
    amount_step: Decimal
    min_amount: Decimal
    min_notional: Decimal
    price_tick: Decimal
    max_amount: Decimal | None = None  # the market-order lot limit, when the exchange has one
    quote: str = "USDT"  # the currency prices, PnL and fees are counted in (USDⓈ-M and linear perpetuals: USDT)

    # What a person reads (controller.api.display): prices at the tick, amounts at the step, money at the quote's.
    def price(self, value: Decimal) -> str:
        return at_step(value, self.price_tick)

    def size(self, value: Decimal) -> str:
        return at_step(value, self.amount_step)

    def money(self, value: Decimal) -> str:
        return money(value, self.quote)


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
    liquidation: bool = False  # the exchange force-closed the position (Binance: an ``autoclose-`` order)
    position_trailing: OrderSide | None = None
    """Made by the venue position's own trailing stop (no client id): the side it traded, i.e. which position it
    closed."""
    traded_at_ms: int | None = None
    """When, by the venue's clock (which alone orders one symbol's trades); None: not told."""
    client_order_id: str | None = None
    """The client id of the order that traded, where the venue or a push told it ("": an order without one)."""


@dataclass(frozen=True)
class Observation:
    """What the exchange says now.

    ``orders`` maps each client id the gateway looked up to its order, or None if the exchange has no
    such order; ids it did not look up are absent. ``trades`` are the symbol's trades since the entry,
    read when the position is flat.
    """

    mark_price: Decimal
    position_size: Decimal  # on the Position's side, >= 0
    market: MarketRules
    orders: Mapping[str, ObservedOrder | None] = field(default_factory=dict)
    trades: tuple[Trade, ...] = ()
    entry_price: Decimal | None = None  # the exchange's average entry price of the position, if any
    venue: Capabilities = field(default_factory=Capabilities)
    conditional_orders: int = 0
    """Resting conditional orders of every owner within the venue's cap scope (the account, or the symbol), as
    far as the snapshot saw them: what an entry's stop and take profits must fit beside."""
    position_trailing: Decimal = Decimal(0)
    """The trailing distance the venue position on this Position's side shows (``TrailingSupport.POSITION``); 0:
    none."""
    alone_on_side: bool = False
    """No other live Position of the account holds or seeks the symbol's side (the shell knows the fleet)."""
    trailing_elsewhere: bool = False
    """Another Position of the account's symbol side has a venue trailing stop recorded (set, or about to be)."""
    flat_pushed: bool = False
    """The user-data stream reported the position flat after the snapshot that ``position_size`` comes from: only
    a foreign trade after this Position's own ones confirms it (the push may be older than the fill it follows)."""
    pre_armed_elsewhere: bool = False
    """Another Position of the account's symbol side has a pre-armed stop that may rest (``Purpose.PRE_ARMED``)."""


@dataclass(frozen=True)
class OpenOrder:
    symbol: str
    side: str  # "buy" or "sell"
    order: ObservedOrder
    conditional: bool = False  # rests until a trigger price (counts against the venue's conditional-order cap)


@dataclass(frozen=True)
class Reads:
    """What one read of an account asks the venue for, by symbol: ``orders``, whose conditional (stop) orders;
    ``regular``, whose regular (entry, close) orders; ``marks``, whose mark price on its own (without one, the
    mark comes with the symbol's position). Stops are always read; regular orders only where a Position may have
    one; the rest is what the venue's endpoints let it save (``VenuePort.snapshot_reads``)."""

    orders: frozenset[str]
    regular: frozenset[str]
    marks: frozenset[str]


@dataclass(frozen=True)
class Snapshot:
    """One read of an account, shared by all its Positions. ``taken_at`` is the monotonic time the read began:
    a Position that acted after it needs a newer one."""

    taken_at: float
    sizes: dict[tuple[str, Side], Decimal]
    entry_prices: dict[tuple[str, Side], Decimal]
    open_orders: dict[str, OpenOrder]
    """Open orders (regular and algo) of the observed symbols, by client id; every owner, not only Warden."""
    marks: dict[str, Decimal]
    trailing: dict[tuple[str, Side], Decimal] = field(default_factory=dict)
    """Position-level trailing distances the venue shows (only where it trails positions), by symbol and side."""
    reads: Reads | None = None
    """What the read asked for; None: every open order of ``symbols`` (the sweep's view, a test's)."""

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self.marks)

    def lists_regular(self, symbol: str) -> bool:
        """Whether ``open_orders`` holds every regular open order of ``symbol``: a regular order absent from it has
        ended. Otherwise it was not asked for, and absence says nothing."""
        return self.reads is None or symbol in self.reads.regular


def records_to_observe(status: PositionStatus) -> list[tuple[str, Purpose]]:
    """Client ids whose state can still change, so the gateway looks them up (and no others)."""
    records = [
        status.entryOrder,
        status.stopOrder,
        status.closeOrder,
        status.trailingOrder,
        status.preArmedStop,
        *status.takeProfitOrders,
        *status.retiredOrders,
    ]
    observed = [
        (r.clientOrderId, purpose_of(r.clientOrderId))
        for r in records
        if r is not None
        and (
            r.state in (OrderState.INTENDED, OrderState.OPEN)
            or (r.state is OrderState.TRIGGERED and r.triggeredOrderId is None)
        )
    ]
    # The pre-recorded next stop may have gone out with no write after it (a crash right after the send).
    following_stop = status.nextStopOrderId
    if following_stop is not None and (status.stopOrder is None or status.stopOrder.clientOrderId != following_stop):
        observed.append((following_stop, Purpose.STOP))
    return observed


class Outcome(StrEnum):
    """What a failed exchange action means for Warden (``controller.exchange.errors.classify`` decides)."""

    REJECTED = "Rejected"
    """The exchange definitively refused this order; sending it again would be refused again."""
    RETRY = "Retry"
    """Refused before execution (rate limit) or the venue is unavailable; the intent is kept and retried
    after a backoff, looked up by its client id first."""
    UNKNOWN = "Unknown"
    """The request may or may not have taken effect; observe (look the order up) before acting again."""
    ACCOUNT = "Account"
    """Credentials or permissions are wrong; nothing will work until a human fixes the account."""


# --- Actions: at most one per step; each is idempotent under its client order id ------------------


@dataclass(frozen=True)
class PlaceMarketOrder:
    purpose: Purpose
    client_order_id: str
    side: OrderSide
    amount: Decimal
    reduce_only: bool
    attached_stop: Decimal | None = None
    """An entry's safety-net stop loss, placed by the venue as the entry fills (``Capabilities.attached_stop``)."""


@dataclass(frozen=True)
class PlaceLimitOrder:
    """A limit entry (never reduce-only)."""

    client_order_id: str
    side: OrderSide
    amount: Decimal
    price: Decimal
    time_in_force: TimeInForce
    purpose: Purpose = Purpose.ENTRY
    attached_stop: Decimal | None = None


@dataclass(frozen=True)
class PlaceStopOrder:
    """A reduce-only conditional market order: a stop loss (STOP_MARKET) or a take profit (TAKE_PROFIT_MARKET)."""

    client_order_id: str
    side: OrderSide
    amount: Decimal
    trigger_price: Decimal
    purpose: Purpose = Purpose.STOP
    working_type: WorkingType = WorkingType.MARK_PRICE
    close_position: bool = False
    """Without a size: closes whatever the side holds when it triggers (``Capabilities.pre_armed_stop``); ``amount``
    is only what it is expected to close."""


@dataclass(frozen=True)
class PlaceTrailingStopOrder:
    """A reduce-only TRAILING_STOP_MARKET; without an activation price it trails from the current price."""

    client_order_id: str
    side: OrderSide
    amount: Decimal
    callback_percent: Decimal
    activation_price: Decimal | None
    working_type: WorkingType = WorkingType.MARK_PRICE
    purpose: Purpose = Purpose.TRAILING


@dataclass(frozen=True)
class SetPositionTrailing:
    """The venue position's own trailing stop (Bybit ``trading-stop``), a price distance behind the best price from
    the activation on (or at once); distance 0 clears it. No client id: the position's read says where it stands,
    and setting the same value again changes nothing."""

    side: Side
    distance: Decimal
    activation_price: Decimal | None = None
    purpose: Purpose = Purpose.TRAILING

    def __str__(self) -> str:
        if not self.distance:
            return "clearing the position's trailing stop"
        start = f" from {self.activation_price}" if self.activation_price is not None else ""
        return f"a position trailing stop of {self.distance}{start}"


@dataclass(frozen=True)
class CancelOrder:
    client_order_id: str
    purpose: Purpose


@dataclass(frozen=True)
class SetMarginMode:
    mode: MarginMode


@dataclass(frozen=True)
class SetLeverage:
    leverage: int


OrderAction = PlaceMarketOrder | PlaceLimitOrder | PlaceStopOrder | PlaceTrailingStopOrder | CancelOrder
Action = OrderAction | SetMarginMode | SetLeverage | SetPositionTrailing


@dataclass(frozen=True)
class Note:
    """Something worth telling a human and the audit history."""

    type: EventType
    message: str
    warning: bool = False
    client_order_id: str | None = None
    limit: RiskLimit | None = None  # a RiskRefused note's refusing limit
    amount: Decimal | None = None
    price: Decimal | None = None
    """The note's own figures (a fill's amount and price); without them the step's action's are its figures."""


@dataclass(frozen=True)
class Step:
    """The next status to record and at most one exchange action to take after recording it."""

    status: PositionStatus
    action: Action | None = None
    notes: tuple[Note, ...] = ()
