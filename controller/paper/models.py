"""State records of the paper venue (all money and quantities are ``Decimal``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)

CONDITIONAL_TYPES = frozenset({"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"})
REGULAR_TYPES = frozenset({"LIMIT", "MARKET"})
OPEN_ORDER_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
OPEN_ALGO_STATUSES = frozenset({"NEW", "TRIGGERING"})


@dataclass
class Position:
    symbol: str
    amount: Decimal = ZERO  # signed: > 0 long, < 0 short
    entry_price: Decimal = ZERO
    update_time: int = 0


DEFAULT_LEVERAGE = 20  # Binance's default for a symbol never configured


@dataclass
class SymbolSettings:
    leverage: int = DEFAULT_LEVERAGE
    margin_type: str = "CROSSED"


@dataclass
class Order:
    """A regular (``/fapi/v1/order``) order."""

    order_id: int
    api_key: str
    symbol: str
    client_order_id: str
    side: str
    type: str
    orig_type: str
    quantity: Decimal
    price: Decimal
    time_in_force: str
    reduce_only: bool
    close_position: bool
    working_type: str
    price_protect: bool
    time: int
    update_time: int
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    stop_price: Decimal = ZERO
    replica: str | None = None
    source: str = "api"
    parent_algo_id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER_STATUSES

    def cancel(self, now: int) -> None:
        self.status, self.update_time = "CANCELED", now

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO


@dataclass
class AlgoOrder:
    """A conditional (``/fapi/v1/algoOrder``, ``algoType=CONDITIONAL``) order."""

    algo_id: int
    api_key: str
    symbol: str
    client_algo_id: str
    side: str
    order_type: str
    quantity: Decimal  # zero with closePosition=true
    price: Decimal
    trigger_price: Decimal
    time_in_force: str
    working_type: str
    reduce_only: bool
    close_position: bool
    price_protect: bool
    create_time: int
    update_time: int
    algo_status: str = "NEW"
    activate_price: Decimal | None = None
    callback_rate: Decimal | None = None
    trailing_extreme: Decimal | None = None  # best price seen since activation (trailing stops)
    actual_order_id: int | None = None
    actual_price: Decimal = ZERO
    trigger_time: int = 0
    replica: str | None = None
    source: str = "api"

    @property
    def is_open(self) -> bool:
        return self.algo_status in OPEN_ALGO_STATUSES

    def cancel(self, now: int) -> None:
        self.algo_status, self.update_time = "CANCELED", now


@dataclass
class Trade:
    trade_id: int
    order_id: int
    api_key: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    realized_pnl: Decimal
    maker: bool
    time: int


@dataclass
class Account:
    api_key: str
    secret: str
    wallet_balance: Decimal
    update_time: int
    positions: dict[str, Position] = field(default_factory=dict)
    settings: dict[str, SymbolSettings] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    algo_orders: dict[int, AlgoOrder] = field(default_factory=dict)
    client_order_ids: dict[str, int] = field(default_factory=dict)
    client_algo_ids: dict[str, int] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        return pos

    def setting(self, symbol: str) -> SymbolSettings:
        cfg = self.settings.get(symbol)
        if cfg is None:
            cfg = self.settings[symbol] = SymbolSettings()
        return cfg


@dataclass(frozen=True, kw_only=True)
class NewOrderRequest:
    """What a parsed ``POST /fapi/v1/order`` and ``POST /fapi/v1/algoOrder`` have in common."""

    symbol: str
    side: str
    quantity: Decimal | None = None
    price: Decimal | None = None
    time_in_force: str | None = None
    reduce_only: bool = False
    close_position: bool = False
    position_side: str = "BOTH"
    working_type: str = "CONTRACT_PRICE"
    price_protect: bool = False
    replica: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderRequest(NewOrderRequest):
    """A parsed ``POST /fapi/v1/order``."""

    type: str
    client_order_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class AlgoRequest(NewOrderRequest):
    """A parsed ``POST /fapi/v1/algoOrder`` (``algoType=CONDITIONAL``)."""

    order_type: str
    trigger_price: Decimal | None = None
    client_algo_id: str | None = None
    activate_price: Decimal | None = None
    callback_rate: Decimal | None = None


@dataclass
class SymbolStats:
    """Since-start statistics behind the 24hr ticker."""

    open_price: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    count: int = 0
    first_trade_id: int = 0
    last_trade_id: int = 0
    last_qty: Decimal = ZERO
