"""v1alpha1 of trading.warden.dev: ExchangeAccount, Position and SignalSource."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.api.types import (
    BaseUrl,
    CallbackPercent,
    Duration,
    Fraction,
    Percent,
    PositiveDecimal,
    SignedDecimal,
    Symbol,
)

GROUP = "trading.warden.dev"
VERSION = "v1alpha1"

IMMUTABLE = "self == oldSelf"


class WireModel(BaseModel):
    """Camel-case fields exactly as in the manifests; unknown fields are refused by the API server."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _immutable(message: str) -> Callable[[dict[str, Any]], None]:
    return _rules((IMMUTABLE, message))


def _rules(*rules: tuple[str, str]) -> Callable[[dict[str, Any]], None]:
    """CEL rules with the message a trader sees when the API server refuses the manifest; added to the rules the
    field's type may carry already."""

    def add(schema: dict[str, Any]) -> None:
        # A new list: the type's list may be shared by every schema generated from it.
        added = [{"rule": rule, "message": message} for rule, message in rules]
        schema["x-kubernetes-validations"] = [*schema.get("x-kubernetes-validations", []), *added]

    return add


def _one_of(model: BaseModel, first: str, second: str, where: str) -> None:
    """The pydantic twin of the CEL rule ``has(first) != has(second)``, for callers that skip the API server."""
    if (getattr(model, first) is None) == (getattr(model, second) is None):
        raise ValueError(f"{where}: set exactly one of {first} or {second}")


# --- ExchangeAccount -------------------------------------------------------------------------------


class SecretRef(WireModel):
    name: str = Field(min_length=1, max_length=253, description="Name of a Secret in the same namespace.")


class RiskLimits(WireModel):
    """Account-wide limits; a Position that would break one ends `Failed` (reason RiskLimit) before any order."""

    maxOpenPositions: int | None = Field(
        default=None,
        description="How many Positions may hold or seek exposure at once.",
        json_schema_extra=_rules(("self >= 1", "maxOpenPositions must be at least 1")),
    )
    maxPositionNotional: PositiveDecimal | None = Field(
        default=None, description="Largest notional (amount x entry price, quote currency) of one Position."
    )
    maxTotalNotional: PositiveDecimal | None = Field(
        default=None, description="Largest notional of all live Positions of the account together."
    )
    dailyLossLimit: PositiveDecimal | None = Field(
        default=None, description="No new entries once today's (UTC) realized loss reaches this amount."
    )
    cooldownAfterLoss: Duration | None = Field(
        default=None, description='No new entry on a symbol this long after a loss on it, e.g. "30m".'
    )


class UntrackedPositions(StrEnum):
    IGNORE = "Ignore"
    ALERT = "Alert"
    ADOPT = "Adopt"


class PositionMode(StrEnum):
    ONE_WAY = "oneWay"
    HEDGE = "hedge"


class ExchangeAccountSpec(WireModel):
    model_config = ConfigDict(
        json_schema_extra=_rules(
            (
                "self.untrackedPositions != 'Adopt' || has(self.adoptionStopLossPercent)",
                "untrackedPositions: Adopt needs adoptionStopLossPercent: an adopted position gets a stop loss at once",
            )
        )
    )

    exchange: Literal["binanceusdm", "bybit"] = Field(
        description="ccxt exchange id: `binanceusdm` (Binance USDⓈ-M) or `bybit` (Bybit V5 USDT perpetuals, "
        "unified account)."
    )
    apiBaseUrl: BaseUrl | None = Field(
        default=None,
        description="Overrides the exchange's API host, e.g. the Warden paper exchange or Bybit's demo host "
        "`https://api-demo.bybit.com`.",
    )
    credentialsSecretRef: SecretRef = Field(
        description="Secret with keys `apiKey` and `secret`. Keys are read only from this Secret."
    )
    risk: RiskLimits | None = Field(default=None, description="Limits checked before every new entry.")
    untrackedPositions: UntrackedPositions = Field(
        default=UntrackedPositions.ALERT,
        description="What to do about exchange positions no Position owns: `Ignore`, `Alert` or `Adopt`.",
    )
    adoptionStopLossPercent: Percent | None = Field(
        default=None,
        description="The stop loss of an adopted position, in percent from the exchange's entry price "
        "(required with `untrackedPositions: Adopt`).",
    )
    positionMode: PositionMode = Field(
        default=PositionMode.ONE_WAY,
        description="The account's Binance position mode: `oneWay` (reduce-only exits) or `hedge` (positionSide).",
    )

    @model_validator(mode="after")
    def _adoption(self) -> Self:
        if self.untrackedPositions is UntrackedPositions.ADOPT and self.adoptionStopLossPercent is None:
            raise ValueError("untrackedPositions: Adopt needs adoptionStopLossPercent")
        return self


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(WireModel):
    type: str = Field(max_length=64)
    status: ConditionStatus
    reason: str = Field(max_length=128)
    message: str = Field(default="", max_length=4096)
    observedGeneration: int | None = None
    lastTransitionTime: datetime


ORPHANED_LIMIT = 256


class ExchangeAccountStatus(WireModel):
    observedGeneration: int | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    orphanedPositions: list[str] = Field(
        default_factory=list,
        max_length=ORPHANED_LIMIT,
        description="Client-id prefixes of Positions deleted with deletionPolicy Orphan, newest last: "
        "their orders are left alone by the orphan-order sweep.",
    )


# --- Position --------------------------------------------------------------------------------------


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class DesiredState(StrEnum):
    OPEN = "Open"
    CLOSED = "Closed"


class Phase(StrEnum):
    PENDING = "Pending"
    ENTRY_PLACED = "EntryPlaced"
    PROTECTED = "Protected"
    CLOSING = "Closing"
    CLOSED = "Closed"
    FAILED = "Failed"


def _refuse_namespace(schema: dict[str, Any]) -> None:
    """Declared only to be refused with a reason: pruned as an unknown field, it would silently vanish."""
    schema["properties"]["namespace"] = {
        "type": "string",
        "description": "Not allowed: the ExchangeAccount is always in the Position's namespace.",
    }
    schema["x-kubernetes-validations"] = [
        {
            "rule": "!has(self.__namespace__)",
            "message": "accountRef takes only a name: a Position uses an ExchangeAccount in its own namespace",
        }
    ]


class AccountRef(WireModel):
    model_config = ConfigDict(json_schema_extra=_refuse_namespace)

    name: str = Field(
        min_length=1, max_length=253, description="An ExchangeAccount in the same namespace as the Position."
    )


class EntryType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"


class Entry(WireModel):
    model_config = ConfigDict(
        json_schema_extra=_rules(
            ("self.type != 'limit' || has(self.price)", "a limit entry needs a price"),
            (
                "self.type == 'limit' || (!has(self.price) && !has(self.timeInForce) && !has(self.expireAfter))",
                "price, timeInForce and expireAfter belong to a limit entry; a market entry takes none of them",
            ),
        )
    )

    type: EntryType = Field(default=EntryType.MARKET, description="How to enter: `market` or `limit`.")
    price: PositiveDecimal | None = Field(default=None, description="Limit price (a limit entry only).")
    timeInForce: TimeInForce | None = Field(
        default=None, description="`GTC` (default), `IOC`, `FOK` or `GTX` (post-only); a limit entry only."
    )
    expireAfter: Duration | None = Field(
        default=None,
        description='Cancel what is still unfilled this long after the entry was placed, e.g. "15m".',
    )

    @model_validator(mode="after")
    def _limit_fields(self) -> Self:
        if self.type is EntryType.LIMIT and self.price is None:
            raise ValueError("a limit entry needs a price")
        if self.type is EntryType.MARKET and (self.price, self.timeInForce, self.expireAfter) != (None, None, None):
            raise ValueError("price, timeInForce and expireAfter belong to a limit entry")
        return self


class WorkingType(StrEnum):
    MARK_PRICE = "MARK_PRICE"
    CONTRACT_PRICE = "CONTRACT_PRICE"


_EXACTLY_ONE_PRICE = ("has(self.price) != has(self.percent)", "set exactly one of price or percent")
MAX_TAKE_PROFITS = 8
_EXACTLY_ONE_TRIGGER = (
    "has(self.afterPercent) != has(self.afterTakeProfit)",
    "set exactly one of afterPercent or afterTakeProfit",
)


class Breakeven(WireModel):
    """Once reached, the stop moves to the average entry price (plus the offset) and never back."""

    model_config = ConfigDict(json_schema_extra=_rules(_EXACTLY_ONE_TRIGGER))

    afterPercent: Percent | None = Field(
        default=None, description='Reached once the mark price is this far in profit from the average entry, e.g. "1".'
    )
    afterTakeProfit: int | None = Field(
        default=None,
        description="Reached once this take profit (1 is the first in spec.takeProfit) has triggered.",
        json_schema_extra=_rules(
            (f"self >= 1 && self <= {MAX_TAKE_PROFITS}", f"afterTakeProfit must be between 1 and {MAX_TAKE_PROFITS}")
        ),
    )
    offsetPercent: Percent | None = Field(
        default=None,
        description='The stop rests this far in profit from the entry instead of at it (to cover fees), e.g. "0.1".',
    )

    @model_validator(mode="after")
    def _one_trigger(self) -> Self:
        _one_of(self, "afterPercent", "afterTakeProfit", "breakeven")
        if self.afterTakeProfit is not None and not 1 <= self.afterTakeProfit <= MAX_TAKE_PROFITS:
            raise ValueError(f"afterTakeProfit must be between 1 and {MAX_TAKE_PROFITS}")
        return self


_PRE_ARM_PRICE = (
    "!has(self.preArm) || !self.preArm || has(self.price)",
    "stopLoss.preArm needs stopLoss.price: a percent is measured from the fill, which is not known before the entry",
)


class StopLoss(WireModel):
    model_config = ConfigDict(json_schema_extra=_rules(_EXACTLY_ONE_PRICE, _PRE_ARM_PRICE))

    price: PositiveDecimal | None = Field(
        default=None, description="Trigger price of the reduce-only stop. Below the entry for a long."
    )
    percent: Percent | None = Field(
        default=None, description='Trigger distance from the average entry price, in percent, e.g. "2".'
    )
    workingType: WorkingType = Field(
        default=WorkingType.MARK_PRICE, description="Which price triggers: `MARK_PRICE` or `CONTRACT_PRICE`."
    )
    breakeven: Breakeven | None = Field(
        default=None, description="Move the stop to the entry price once the Position is this far in profit."
    )
    preArm: bool = Field(
        default=False,
        description="Rest a stop at `price` before the entry is sent, so a fill is never without one, even if Warden "
        "is down at that moment (needs `price`). On Binance it is a `closePosition` STOP_MARKET on the mark, which "
        "closes whatever the account holds on the symbol's side: it is placed only while this is the account's "
        "only live Position on that side (otherwise the entry goes as without it, and its EntryIntent event says "
        "why), a newcomer's entry on the side waits until it is gone, and it is cancelled once Warden's own stop "
        "covers the fill and the entry can fill no more, when another Position comes to the side, and on every way "
        "out. On Bybit the entry always carries such a stop (its attached stop loss); this changes nothing there.",
    )

    @model_validator(mode="after")
    def _one_price(self) -> Self:
        _one_of(self, "price", "percent", "stopLoss")
        if self.preArm and self.price is None:
            raise ValueError(_PRE_ARM_PRICE[1])
        return self


class TakeProfit(WireModel):
    model_config = ConfigDict(json_schema_extra=_rules(_EXACTLY_ONE_PRICE))

    price: PositiveDecimal | None = Field(default=None, description="Trigger price. Above the entry for a long.")
    percent: Percent | None = Field(
        default=None, description="Trigger distance from the average entry price, in percent."
    )
    portion: Fraction = Field(description='Share of the filled amount this target takes, e.g. "0.5".')

    @model_validator(mode="after")
    def _one_price(self) -> Self:
        _one_of(self, "price", "percent", "takeProfit")
        return self


class TrailingMode(StrEnum):
    NATIVE = "native"
    EMULATED = "emulated"


class TrailingStop(WireModel):
    model_config = ConfigDict(
        json_schema_extra=_rules(
            (
                "!(has(self.activationPrice) && has(self.activationPercent))",
                "set at most one of activationPrice or activationPercent",
            )
        )
    )

    callbackPercent: CallbackPercent = Field(description="Distance from the best price reached, in percent.")
    activationPrice: PositiveDecimal | None = Field(
        default=None, description="Start trailing once the price reaches this (default: at once)."
    )
    activationPercent: Percent | None = Field(
        default=None, description="Start trailing once the price is this far in profit from the average entry."
    )
    mode: TrailingMode = Field(
        default=TrailingMode.NATIVE,
        description="`native` (the venue trails: a Binance TRAILING_STOP_MARKET order, or Bybit's position-level "
        "trailing stop) or `emulated` (Warden moves its stop loss). A position-level trailing stop closes the whole "
        "venue position, so on Bybit `native` is only used while this is the account's only Position on the "
        "symbol's side; otherwise it is emulated. When a second Position appears on the side, the first clears the "
        "venue's trailing stop and emulates from then on (it never switches back once filled), and the newcomer's "
        "entry waits until the venue position shows no trailing stop. Warden's own stop loss rests either way. "
        "`status.trailingMode` says which is in effect.",
    )

    @model_validator(mode="after")
    def _one_activation(self) -> Self:
        if self.activationPrice is not None and self.activationPercent is not None:
            raise ValueError("trailingStop: set at most one of activationPrice or activationPercent")
        return self


class MarginMode(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class DeletionPolicy(StrEnum):
    CLOSE = "Close"
    ORPHAN = "Orphan"


_LIMIT = "has(self.entry) && self.entry.type == 'limit' && has(self.entry.price)"
_LIMIT_SIDES = (
    # double(): exact enough for prices a tick apart; the planner checks ticks and market prices at runtime.
    (
        f"!({_LIMIT} && has(self.stopLoss) && has(self.stopLoss.price)) || (self.side == 'long' ? "
        "double(self.stopLoss.price) < double(self.entry.price) : "
        "double(self.stopLoss.price) > double(self.entry.price))",
        "the stop loss must be below the limit entry price for a long and above it for a short",
    ),
    (
        f"!({_LIMIT} && has(self.takeProfit)) || self.takeProfit.all(t, !has(t.price) || (self.side == 'long' ? "
        "double(t.price) > double(self.entry.price) : double(t.price) < double(self.entry.price)))",
        "take-profit prices must be above the limit entry price for a long and below it for a short",
    ),
)


_SIZES = ("amount", "notional", "risk")
_SIZE_COUNT = " + ".join(f"(has(self.{name}) ? 1 : 0)" for name in _SIZES)
_SIZING = (
    (f"{_SIZE_COUNT} >= 1", "set the size: one of amount, notional or risk"),
    (f"{_SIZE_COUNT} <= 1", "set only one of amount, notional or risk"),
)


_BREAKEVEN_TARGET = (
    "!has(self.stopLoss.breakeven) || !has(self.stopLoss.breakeven.afterTakeProfit) || "
    "(has(self.takeProfit) && self.stopLoss.breakeven.afterTakeProfit <= size(self.takeProfit))",
    "stopLoss.breakeven.afterTakeProfit names a take profit the Position does not have",
)


class PositionSpec(WireModel):
    model_config = ConfigDict(json_schema_extra=_rules(*_SIZING, _BREAKEVEN_TARGET, *_LIMIT_SIDES))

    accountRef: AccountRef = Field(json_schema_extra=_immutable("accountRef cannot be changed after creation"))
    symbol: Symbol = Field(
        description="ccxt unified symbol, e.g. `BTC/USDT:USDT`.",
        json_schema_extra=_immutable("symbol cannot be changed after creation; create a new Position"),
    )
    side: Side = Field(
        description="`long` or `short`.",
        json_schema_extra=_immutable("side cannot be changed after creation; create a new Position"),
    )
    amount: PositiveDecimal | None = Field(
        default=None, description='Size in the base asset, as a decimal string, e.g. "0.01".'
    )
    notional: PositiveDecimal | None = Field(
        default=None,
        description='Size as a value in the quote currency, e.g. "500": amount = notional / entry price, '
        "resolved once at entry and rounded down to the lot step.",
    )
    risk: PositiveDecimal | None = Field(
        default=None,
        description='Size as the quote currency lost if the stop triggers, e.g. "10": amount = risk / '
        "|entry price - stop price|, resolved once at entry and rounded down to the lot step.",
    )
    entry: Entry = Field(default_factory=Entry)
    stopLoss: StopLoss = Field(description="Required: every filled Position rests behind a stop loss.")
    takeProfit: list[TakeProfit] = Field(
        default_factory=list,
        max_length=MAX_TAKE_PROFITS,
        description="Reduce-only take-profit targets, each closing a portion of the filled amount.",
        json_schema_extra=_rules(
            (
                # Portions have at most 6 decimals and there are at most 8: the slack absorbs double rounding only.
                "self.map(t, double(t.portion)).sum() <= 1.0000000001",
                "the take-profit portions add up to more than 1 (the whole filled amount)",
            )
        ),
    )
    trailingStop: TrailingStop | None = Field(default=None, description="Trail the stop behind the best price.")
    leverage: int | None = Field(
        default=None,
        description="Leverage set on the symbol before the entry (1 to 125).",
        json_schema_extra=_rules(("self >= 1 && self <= 125", "leverage must be between 1 and 125")),
    )
    marginMode: MarginMode | None = Field(
        default=None, description="`cross` or `isolated`, set on the symbol before the entry."
    )
    state: DesiredState = Field(
        default=DesiredState.OPEN, description="`Open`, or `Closed` to close the Position at market."
    )
    deletionPolicy: DeletionPolicy = Field(
        default=DeletionPolicy.CLOSE,
        description="On delete: `Close` the position first, or `Orphan` it (leave the exchange untouched).",
    )
    adopted: bool = Field(
        default=False,
        description="Set by Warden on a Position it created for an exchange position it found (untrackedPositions: "
        "Adopt): there is no entry order, the exchange position is the entry.",
    )

    @model_validator(mode="after")
    def _portions(self) -> Self:
        sizes = sum(getattr(self, name) is not None for name in _SIZES)
        if sizes != 1:
            raise ValueError(_SIZING[0][1] if sizes == 0 else _SIZING[1][1])
        if sum((t.portion for t in self.takeProfit), Decimal(0)) > 1:
            raise ValueError("the take-profit portions add up to more than 1 (the whole filled amount)")
        if self.leverage is not None and not 1 <= self.leverage <= 125:
            raise ValueError("leverage must be between 1 and 125")
        breakeven = self.stopLoss.breakeven
        if breakeven is not None and (breakeven.afterTakeProfit or 0) > len(self.takeProfit):
            raise ValueError(_BREAKEVEN_TARGET[1])
        limit = self.entry.price if self.entry.type is EntryType.LIMIT else None
        if limit is None:
            return self
        below, above = (operator.lt, operator.gt) if self.side is Side.LONG else (operator.gt, operator.lt)
        if self.stopLoss.price is not None and not below(self.stopLoss.price, limit):
            raise ValueError(_LIMIT_SIDES[0][1])
        if any(t.price is not None and not above(t.price, limit) for t in self.takeProfit):
            raise ValueError(_LIMIT_SIDES[1][1])
        return self


class OrderState(StrEnum):
    """Lifecycle of one order as Warden records it; ``Intended`` is written before the exchange call."""

    INTENDED = "Intended"
    OPEN = "Open"
    FILLED = "Filled"
    CANCELED = "Canceled"
    REJECTED = "Rejected"
    TRIGGERED = "Triggered"


class OrderRecord(WireModel):
    clientOrderId: str = Field(max_length=36, pattern=r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
    exchangeOrderId: str | None = Field(default=None, max_length=64)
    state: OrderState
    amount: PositiveDecimal
    filled: SignedDecimal | None = None
    averagePrice: SignedDecimal | None = None
    triggerPrice: SignedDecimal | None = None
    price: SignedDecimal | None = Field(default=None, description="Limit price of a limit order.")
    target: int | None = Field(default=None, description="Which take-profit target (index in spec) this serves.")
    triggeredOrderId: str | None = Field(
        default=None, max_length=64, description="The order a triggered stop or take profit became."
    )
    message: str | None = Field(default=None, max_length=1024)


class BufferedAuditEvent(WireModel):
    """An audit event kept in status while the audit store is down; flushed (exactly once, by id) when it returns."""

    id: str = Field(max_length=36)
    type: str = Field(max_length=64)
    occurredAt: str = Field(max_length=40)
    data: str = Field(max_length=4096, description="The event as JSON.")


AUDIT_BACKLOG_LIMIT = 64


class VenueTrailingState(StrEnum):
    INTENDED = "Intended"
    """Recorded before the venue is asked to set it; the position's next read says whether it is in force."""
    SET = "Set"
    """Read back on the venue position."""
    CLEARING = "Clearing"
    """Recorded before the venue is asked to clear it; forgotten once the position shows none."""
    REJECTED = "Rejected"
    """The venue refused it: the trailing stop is emulated instead."""


class VenueTrailing(WireModel):
    """A position-level trailing stop Warden asked the venue for (Bybit ``trading-stop``): it has no client id, so
    the venue position's own fields are what is read back."""

    distance: PositiveDecimal = Field(description="The trailing distance, in price (the callback at the reference).")
    activationPrice: PositiveDecimal | None = Field(default=None, description="Trailing starts once reached.")
    state: VenueTrailingState
    message: str | None = Field(default=None, max_length=1024)


class TrailingState(WireModel):
    """Kept in status so a restart continues trailing from the best price seen, not from the current one."""

    activated: bool = False
    highWaterMark: SignedDecimal | None = Field(
        default=None, description="Best mark price since activation: the highest for a long, the lowest for a short."
    )
    lastMoveAt: datetime | None = None


class StatusDisplay(WireModel):
    """Status figures as ``kubectl get`` shows them (``controller.api.display``): prices at the market's tick,
    money at the quote's precision. Decisions never read these; the full-precision fields beside them decide."""

    amount: str | None = Field(
        default=None, max_length=40, description="The amount entered (resolved), at the lot step."
    )
    entry: str | None = Field(default=None, max_length=40, description="Average entry price.")
    stop: str | None = Field(default=None, max_length=40, description="The stop's trigger price.")
    realizedPnl: str | None = Field(default=None, max_length=40)
    unrealizedPnl: str | None = Field(default=None, max_length=40)


class PositionStatus(WireModel):
    phase: Phase = Phase.PENDING
    observedGeneration: int | None = None
    amount: SignedDecimal | None = Field(
        default=None, description="The size in the base asset, resolved at entry from amount, notional or risk."
    )
    entryOrder: OrderRecord | None = None
    stopOrder: OrderRecord | None = None
    closeOrder: OrderRecord | None = None
    stopSequence: int = Field(default=0, description="How many stops were placed; part of the next stop's id.")
    nextStopOrderId: str | None = Field(
        default=None,
        max_length=36,
        description="The client id the next stop goes out under, recorded with the stop before it: a stop the venue "
        "cancels, or one a move replaces, is sent with no status write first (after a restart it is looked up).",
    )
    takeProfitOrders: list[OrderRecord] = Field(default_factory=list, max_length=MAX_TAKE_PROFITS)
    takeProfitSequence: int = Field(default=0, description="How many take profits were placed.")
    trailingOrder: OrderRecord | None = Field(default=None, description="The native trailing stop order.")
    trailingSequence: int = Field(default=0, description="How many native trailing stops were placed.")
    closeSequence: int = Field(default=0, description="How many close orders were placed.")
    retiredOrders: list[OrderRecord] = Field(
        default_factory=list,
        max_length=32,
        description="Replaced orders: cancelled once their replacement rests; kept while their fills count.",
    )
    preArmedStop: OrderRecord | None = Field(
        default=None,
        description="The stop rested before the entry was sent (spec.stopLoss.preArm): it closes the whole venue "
        "position of the side, and is cancelled once Warden's own stop covers the fill.",
    )
    venueTrailing: VenueTrailing | None = Field(
        default=None, description="The venue position's trailing stop Warden set (a venue that trails positions)."
    )
    trailing: TrailingState | None = Field(default=None, description="Emulated trailing stop's memory.")
    trailingMode: TrailingMode | None = Field(
        default=None,
        description="The trailing stop in effect: `native` (the venue trails) or `emulated` (Warden moves its "
        "stop), decided from what the venue can do and, where it trails whole positions, whether this Position is "
        "alone on the symbol's side.",
    )
    breakevenAt: datetime | None = Field(
        default=None,
        description="When the breakeven was reached: from then on the stop never rests below the entry (plus offset).",
    )
    leverage: int | None = Field(default=None, description="Leverage Warden set on the symbol.")
    marginMode: MarginMode | None = Field(default=None, description="Margin mode Warden set on the symbol.")
    entryPlacedAt: datetime | None = Field(default=None, description="When the entry's intent was recorded.")
    closedAt: datetime | None = None
    failedAttempts: int = Field(default=0, description="Consecutive failed exchange actions.")
    lastFailure: str | None = Field(default=None, max_length=1024)
    retryAfter: datetime | None = Field(default=None, description="No exchange action before this time.")
    filled: SignedDecimal | None = None
    averageEntryPrice: SignedDecimal | None = None
    realizedPnl: SignedDecimal | None = Field(default=None, description="Net of fees, from the exchange's trades.")
    fees: SignedDecimal | None = Field(
        default=None, description="Fees paid: the entry's while open (from its trades), every fill's once Closed."
    )
    unrealizedPnl: SignedDecimal | None = Field(
        default=None,
        description="While open: (mark - average entry) x open amount (negated for a short), net of the fees paid. "
        "Refreshed at most every WARDEN_PNL_REFRESH, and only when it moved by more than a tick's worth.",
    )
    unrealizedPnlMark: SignedDecimal | None = Field(default=None, description="The mark unrealizedPnl is valued at.")
    unrealizedPnlAt: datetime | None = Field(default=None, description="When unrealizedPnl was valued.")
    display: StatusDisplay | None = Field(
        default=None, description="The figures a person reads (printer columns), rounded for display only."
    )
    exitReason: str | None = Field(default=None, max_length=64)
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    auditBacklog: list[BufferedAuditEvent] = Field(
        default_factory=list,
        max_length=AUDIT_BACKLOG_LIMIT,
        description="Risk-reducing steps' audit events waiting for the audit store (bounded).",
    )
    auditBacklogOverflow: int = Field(
        default=0, description="Events that did not fit in the backlog; counted and alerted, see the runbook."
    )


# --- SignalSource ----------------------------------------------------------------------------------


class SignalTemplate(WireModel):
    """Position fields a signal may leave out; what a signal carries wins."""

    model_config = ConfigDict(json_schema_extra=_rules(_SIZING[1]))

    amount: PositiveDecimal | None = Field(default=None, description="Size in the base asset.")
    notional: PositiveDecimal | None = Field(default=None, description="Size in the quote currency.")
    risk: PositiveDecimal | None = Field(default=None, description="Quote currency lost if the stop triggers.")
    stopLoss: StopLoss | None = Field(default=None, description="The stop loss of a signal that carries none.")
    takeProfit: list[TakeProfit] = Field(default_factory=list, max_length=MAX_TAKE_PROFITS)
    trailingStop: TrailingStop | None = None
    leverage: int | None = Field(
        default=None, json_schema_extra=_rules(("self >= 1 && self <= 125", "leverage must be between 1 and 125"))
    )
    marginMode: MarginMode | None = None

    @model_validator(mode="after")
    def _one_size(self) -> Self:
        if sum(getattr(self, name) is not None for name in _SIZES) > 1:
            raise ValueError(_SIZING[1][1])
        return self


class SignalLimits(WireModel):
    maxNotional: PositiveDecimal | None = Field(
        default=None,
        description="Largest notional (quote currency) of one signal: a notional, or an amount at the venue's "
        "price; a signal above it is refused (422).",
    )
    perMinute: int = Field(
        default=60,
        description="Signals answered per minute (per receiver replica); more are answered 429.",
        json_schema_extra=_rules(("self >= 1", "perMinute must be at least 1")),
    )


MAX_ALLOWED_SYMBOLS = 64


class SignalSourceSpec(WireModel):
    accountRef: AccountRef = Field(description="The ExchangeAccount (same namespace) the signals' Positions trade on.")
    secretRef: SecretRef = Field(description="Secret whose key `token` is the shared secret of the signals.")
    allowedSymbols: list[Symbol] = Field(
        min_length=1,
        max_length=MAX_ALLOWED_SYMBOLS,
        description="The ccxt unified symbols a signal may trade; any other is refused (422).",
    )
    template: SignalTemplate = Field(default_factory=SignalTemplate)
    limits: SignalLimits = Field(default_factory=SignalLimits)
    maxAge: Duration = Field(
        default=timedelta(seconds=60), description='A signal whose `time` is older is refused (409), e.g. "60s".'
    )
    dryRun: bool = Field(default=False, description="Answer with the Position a signal would create; create none.")
    requireSignature: bool = Field(
        default=False,
        description="Refuse a token in the body: accept only `X-Warden-Signature: sha256=<HMAC-SHA256 of the raw "
        "body with the token>`.",
    )


class SignalSourceStatus(WireModel):
    observedGeneration: int | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    accepted: int = Field(default=0, description="Signals that created (or, in a dry run, would create) a Position.")
    refused: int = Field(default=0, description="Signals refused (any answer 4xx).")
    duplicate: int = Field(default=0, description="Signals whose Position existed already (a resend or a replay).")
    lastSignalTime: datetime | None = Field(default=None, description="When the last signal was received.")
