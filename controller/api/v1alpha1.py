"""v1alpha1 of trading.warden.dev: ExchangeAccount and Position."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.api.types import PositiveDecimal, SignedDecimal

GROUP = "trading.warden.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

SYMBOL_PATTERN = r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}:[A-Z0-9]{1,20}$"
IMMUTABLE = "self == oldSelf"


class WireModel(BaseModel):
    """Camel-case fields exactly as in the manifests; unknown fields are refused by the API server."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _immutable(message: str) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": IMMUTABLE, "message": message}]}


# --- ExchangeAccount -------------------------------------------------------------------------------


class SecretRef(WireModel):
    name: str = Field(min_length=1, max_length=253, description="Name of a Secret in the same namespace.")


class ExchangeAccountSpec(WireModel):
    exchange: Literal["binanceusdm"] = Field(description="ccxt exchange id.")
    apiBaseUrl: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://",
        description="Overrides the exchange's API host, e.g. the Warden paper exchange.",
    )
    credentialsSecretRef: SecretRef = Field(
        description="Secret with keys `apiKey` and `secret`. Keys are read only from this Secret."
    )


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


class ExchangeAccountStatus(WireModel):
    observedGeneration: int | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16)


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


class AccountRef(WireModel):
    name: str = Field(
        min_length=1, max_length=253, description="An ExchangeAccount in the same namespace as the Position."
    )


class Entry(WireModel):
    type: Literal["market"] = Field(default="market", description="How to enter: `market`.")


class StopLoss(WireModel):
    price: PositiveDecimal = Field(
        description="Trigger price of the reduce-only stop (mark price). Below the entry for a long."
    )


class PositionSpec(WireModel):
    accountRef: AccountRef = Field(json_schema_extra=_immutable("accountRef cannot be changed after creation"))
    symbol: str = Field(
        max_length=64,
        pattern=SYMBOL_PATTERN,
        description="ccxt unified symbol, e.g. `BTC/USDT:USDT`.",
        json_schema_extra=_immutable("symbol cannot be changed after creation; create a new Position"),
    )
    side: Side = Field(
        description="`long` or `short`.",
        json_schema_extra=_immutable("side cannot be changed after creation; create a new Position"),
    )
    amount: PositiveDecimal = Field(description='Size in the base asset, as a decimal string, e.g. "0.01".')
    entry: Entry = Field(default_factory=Entry)
    stopLoss: StopLoss = Field(description="Required: every filled Position rests behind a stop loss.")
    state: DesiredState = Field(
        default=DesiredState.OPEN, description="`Open`, or `Closed` to close the Position at market."
    )


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
    message: str | None = Field(default=None, max_length=1024)


class BufferedAuditEvent(WireModel):
    """An audit event kept in status while the audit store is down; flushed (exactly once, by id) when it returns."""

    id: str = Field(max_length=36)
    type: str = Field(max_length=64)
    occurredAt: str = Field(max_length=40)
    data: str = Field(max_length=4096, description="The event as JSON.")


AUDIT_BACKLOG_LIMIT = 64


class PositionStatus(WireModel):
    phase: Phase = Phase.PENDING
    observedGeneration: int | None = None
    entryOrder: OrderRecord | None = None
    stopOrder: OrderRecord | None = None
    closeOrder: OrderRecord | None = None
    stopSequence: int = Field(default=0, description="How many stops were placed; part of the next stop's id.")
    filled: SignedDecimal | None = None
    averageEntryPrice: SignedDecimal | None = None
    realizedPnl: SignedDecimal | None = Field(default=None, description="Net of fees, from the exchange's trades.")
    fees: SignedDecimal | None = None
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
