"""Bybit V5's words (sides, order types, statuses, trigger prices, ...) and how they map onto the engine's."""

from __future__ import annotations

from enum import IntEnum, StrEnum

from paper.engine import INDEX_PRICE
from paper.models import StopRole

CATEGORY = "linear"
SETTLE_COIN = "USDT"
ACCOUNT_TYPE = "UNIFIED"


class Side(StrEnum):
    BUY = "Buy"
    SELL = "Sell"

    @property
    def engine(self) -> str:
        return self.value.upper()

    @classmethod
    def of(cls, engine_side: str) -> Side:
        return cls.BUY if engine_side == cls.BUY.engine else cls.SELL


class OrderType(StrEnum):
    MARKET = "Market"
    LIMIT = "Limit"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "PostOnly"

    @property
    def engine(self) -> str:
        return "GTX" if self is TimeInForce.POST_ONLY else self.value


class OrderStatus(StrEnum):
    NEW = "New"
    PARTIALLY_FILLED = "PartiallyFilled"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    UNTRIGGERED = "Untriggered"
    TRIGGERED = "Triggered"
    DEACTIVATED = "Deactivated"


OPEN_STATUSES = frozenset(
    {OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNTRIGGERED, OrderStatus.TRIGGERED}
)
# How long /v5/order/history keeps an order after it closed: cancelled ones a day, the rest a week.
SHORT_LIVED = frozenset({OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.DEACTIVATED})

# engine order status -> Bybit's (an IOC/market rest that expires is Cancelled on linear)
REGULAR_STATUS: dict[str, OrderStatus] = {
    "NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELLED,
    "EXPIRED": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
}
# engine algo status -> Bybit's, while the conditional order has not become a regular one
CONDITIONAL_STATUS: dict[str, OrderStatus] = {
    "NEW": OrderStatus.UNTRIGGERED,
    "TRIGGERING": OrderStatus.UNTRIGGERED,
    "TRIGGERED": OrderStatus.TRIGGERED,
    "FINISHED": OrderStatus.TRIGGERED,
    "CANCELED": OrderStatus.DEACTIVATED,
    "EXPIRED": OrderStatus.DEACTIVATED,
    "REJECTED": OrderStatus.REJECTED,
}


class TriggerBy(StrEnum):
    LAST_PRICE = "LastPrice"
    MARK_PRICE = "MarkPrice"
    INDEX_PRICE = "IndexPrice"

    @property
    def working_type(self) -> str:
        return _WORKING_TYPES[self]

    @classmethod
    def of(cls, working_type: str) -> TriggerBy:
        return next(t for t, w in _WORKING_TYPES.items() if w == working_type)


_WORKING_TYPES = {
    TriggerBy.LAST_PRICE: "CONTRACT_PRICE",
    TriggerBy.MARK_PRICE: "MARK_PRICE",
    TriggerBy.INDEX_PRICE: INDEX_PRICE,
}


class TriggerDirection(IntEnum):
    NONE = 0
    RISE = 1
    FALL = 2


class TpslMode(StrEnum):
    FULL = "Full"
    PARTIAL = "Partial"


class StopOrderType(StrEnum):
    NONE = ""
    STOP = "Stop"
    TAKE_PROFIT = "TakeProfit"
    STOP_LOSS = "StopLoss"
    TRAILING_STOP = "TrailingStop"
    PARTIAL_TAKE_PROFIT = "PartialTakeProfit"
    PARTIAL_STOP_LOSS = "PartialStopLoss"


class CreateType(StrEnum):
    BY_USER = "CreateByUser"
    BY_STOP_ORDER = "CreateByStopOrder"
    BY_TAKE_PROFIT = "CreateByTakeProfit"
    BY_STOP_LOSS = "CreateByStopLoss"
    BY_TRAILING_STOP = "CreateByTrailingStop"
    BY_PARTIAL_TAKE_PROFIT = "CreateByPartialTakeProfit"
    BY_PARTIAL_STOP_LOSS = "CreateByPartialStopLoss"
    BY_LIQ = "CreateByLiq"
    BY_CLOSING = "CreateByClosing"


# what a conditional order is for -> its stopOrderType, and how the order it becomes was created
ROLE_TYPES: dict[str, tuple[StopOrderType, CreateType]] = {
    StopRole.PLAIN: (StopOrderType.STOP, CreateType.BY_STOP_ORDER),
    StopRole.TAKE_PROFIT: (StopOrderType.TAKE_PROFIT, CreateType.BY_TAKE_PROFIT),
    StopRole.STOP_LOSS: (StopOrderType.STOP_LOSS, CreateType.BY_STOP_LOSS),
    StopRole.TRAILING: (StopOrderType.TRAILING_STOP, CreateType.BY_TRAILING_STOP),
    StopRole.PARTIAL_TAKE_PROFIT: (StopOrderType.PARTIAL_TAKE_PROFIT, CreateType.BY_PARTIAL_TAKE_PROFIT),
    StopRole.PARTIAL_STOP_LOSS: (StopOrderType.PARTIAL_STOP_LOSS, CreateType.BY_PARTIAL_STOP_LOSS),
}
# engine order source -> how Bybit says the order came about
SOURCE_CREATE_TYPES: dict[str, CreateType] = {
    "api": CreateType.BY_USER,
    "admin": CreateType.BY_CLOSING,
    "liquidation": CreateType.BY_LIQ,
}


class CancelType(StrEnum):
    UNKNOWN = "UNKNOWN"
    BY_USER = "CancelByUser"
    BY_REDUCE_ONLY = "CancelByReduceOnly"
    BY_TPSL_CLEAR = "CancelByTpSlTsClear"
    BY_ADMIN = "CancelByAdmin"


class ExecType(StrEnum):
    TRADE = "Trade"
    BUST_TRADE = "BustTrade"


class MarginMode(StrEnum):
    ISOLATED = "ISOLATED_MARGIN"
    REGULAR = "REGULAR_MARGIN"
    PORTFOLIO = "PORTFOLIO_MARGIN"

    @property
    def engine(self) -> str:
        """The engine's margin type (portfolio margin is not simulated: refused before this is asked)."""
        return "ISOLATED" if self is MarginMode.ISOLATED else "CROSSED"


class PositionMode(IntEnum):
    ONE_WAY = 0
    HEDGE = 3


class OrderFilter(StrEnum):
    ORDER = "Order"
    STOP_ORDER = "StopOrder"
    TPSL_ORDER = "tpslOrder"


# positionIdx <-> the engine's positionSide
POSITION_SIDES = ("BOTH", "LONG", "SHORT")


def position_idx(position_side: str) -> int:
    return POSITION_SIDES.index(position_side)
