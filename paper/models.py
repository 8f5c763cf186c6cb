"""State records of the paper venue (all money and quantities are ``Decimal``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)


class VenueName(StrEnum):
    """Which venue's API an account speaks (``POST /_paper/accounts`` ``venue``); both share one engine."""

    BINANCE_USDM = "binanceusdm"
    BYBIT = "bybit"


class StopRole(StrEnum):
    """What a conditional order is for. PLAIN is an order the client placed as such; the others protect a position
    and are made by the venue (Bybit's position TP/SL and trailing stop, and the TP/SL attached to an entry):
    the FULL ones close whatever the position holds and go when it closes, the PARTIAL ones have their own qty."""

    PLAIN = "plain"
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    TRAILING = "trailing"
    PARTIAL_TAKE_PROFIT = "partial_take_profit"
    PARTIAL_STOP_LOSS = "partial_stop_loss"


# Roles that close the whole position (quantity follows it) and are cancelled when it closes. A set, not a method:
# saved state reloads roles as plain strings.
POSITION_ROLES = frozenset({StopRole.TAKE_PROFIT, StopRole.STOP_LOSS, StopRole.TRAILING})


CONDITIONAL_TYPES = frozenset({"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"})
REGULAR_TYPES = frozenset({"LIMIT", "MARKET"})
OPEN_ORDER_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
OPEN_ALGO_STATUSES = frozenset({"NEW", "TRIGGERING"})
POSITION_SIDES = frozenset({"BOTH", "LONG", "SHORT"})
# Hedge-mode orders that can only close: selling the LONG side, buying back the SHORT side.
_CLOSING_SIDES = frozenset({("LONG", "SELL"), ("SHORT", "BUY")})


def only_reduces(side: str, position_side: str, reduce_only: bool, close_position: bool) -> bool:
    """Whether an order may never open or increase a position (reduceOnly, closePosition or a hedge-mode close)."""
    return reduce_only or close_position or (position_side, side) in _CLOSING_SIDES


@dataclass
class Position:
    symbol: str
    position_side: str = "BOTH"  # BOTH in one-way mode; LONG (amount >= 0) or SHORT (amount <= 0) in hedge mode
    amount: Decimal = ZERO  # signed: > 0 long, < 0 short
    entry_price: Decimal = ZERO
    update_time: int = 0
    isolated_wallet: Decimal = ZERO  # margin set aside for an isolated position; zero when cross


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
    source: str = "api"  # api | trigger | admin | liquidation
    parent_algo_id: int | None = None
    position_side: str = "BOTH"
    attached: tuple[AttachedStop, ...] = ()  # protection the venue places as this order fills (Bybit)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER_STATUSES

    @property
    def only_reduces(self) -> bool:
        return only_reduces(self.side, self.position_side, self.reduce_only, self.close_position)

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
    callback_distance: Decimal | None = None  # a trailing stop's distance as a price (Bybit) instead of a rate
    actual_order_id: int | None = None
    actual_price: Decimal = ZERO
    trigger_time: int = 0
    replica: str | None = None
    source: str = "api"
    position_side: str = "BOTH"
    role: StopRole = StopRole.PLAIN
    parent_client_id: str = ""  # the entry whose attached TP/SL this is
    attached: tuple[AttachedStop, ...] = ()  # handed to the order it becomes

    @property
    def is_open(self) -> bool:
        return self.algo_status in OPEN_ALGO_STATUSES

    @property
    def only_reduces(self) -> bool:
        return only_reduces(self.side, self.position_side, self.reduce_only, self.close_position)


@dataclass(frozen=True)
class AttachedStop:
    """A take profit or stop loss sent with an entry order; the venue places it as the entry fills: FULL for the
    whole position (replacing an earlier one), else (PARTIAL) for the filled qty. ``limit_price`` zero: market."""

    role: StopRole
    trigger_price: Decimal
    working_type: str
    limit_price: Decimal = ZERO


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
    position_side: str = "BOTH"
    liquidation: bool = False  # the forced close of a position whose margin ran out
    closed_qty: Decimal = ZERO  # the part that reduced a position (Bybit's closedSize)
    entry_price: Decimal = ZERO  # the position's entry price that part closed against


@dataclass
class Account:
    api_key: str
    secret: str
    wallet_balance: Decimal
    update_time: int
    positions: dict[str, dict[str, Position]] = field(default_factory=dict)  # symbol -> positionSide -> position
    settings: dict[str, SymbolSettings] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    algo_orders: dict[int, AlgoOrder] = field(default_factory=dict)
    client_order_ids: dict[str, int] = field(default_factory=dict)
    client_algo_ids: dict[str, int] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    dual_side_position: bool = False  # hedge mode: separate LONG and SHORT positions per symbol
    venue: str = VenueName.BINANCE_USDM
    default_margin_type: str = "CROSSED"  # of symbols not configured yet (Bybit's margin mode is account-wide)
    bybit_orders: dict[str, BybitOrderInfo] = field(default_factory=dict)  # Bybit orderId -> what the front adds
    bybit_links: dict[str, str] = field(default_factory=dict)  # orderLinkId -> Bybit orderId

    def __post_init__(self) -> None:
        # The open subset of ``orders`` / ``algo_orders`` (id order), kept by the venue as statuses change, so that
        # requests scan the open book rather than the whole history. Not a field: never saved, rebuilt on load.
        self.open_orders: dict[int, Order] = {i: o for i, o in self.orders.items() if o.is_open}
        self.open_algos: dict[int, AlgoOrder] = {i: a for i, a in self.algo_orders.items() if a.is_open}

    def position(self, symbol: str, position_side: str = "BOTH") -> Position:
        sides = self.positions.setdefault(symbol, {})
        pos = sides.get(position_side)
        if pos is None:
            pos = sides[position_side] = Position(symbol, position_side)
        return pos

    def open_positions(self) -> list[Position]:
        """Non-zero positions ordered by symbol, then positionSide (BOTH, LONG, SHORT)."""
        return [
            pos
            for symbol in sorted(self.positions)
            for _, pos in sorted(self.positions[symbol].items())
            if pos.amount != 0
        ]

    def symbol_positions(self, symbol: str) -> list[Position]:
        return [pos for pos in self.open_positions() if pos.symbol == symbol]

    def setting(self, symbol: str) -> SymbolSettings:
        cfg = self.settings.get(symbol)
        if cfg is None:
            cfg = self.settings[symbol] = SymbolSettings(margin_type=self.default_margin_type)
        return cfg


@dataclass
class BybitOrderInfo:
    """What a Bybit order says beyond the engine's record of it (``paper.bybit``); keyed by its Bybit orderId."""

    close_on_trigger: bool = False
    reject_reason: str = "EC_NoError"
    cancel_type: str = "UNKNOWN"


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


@dataclass
class Candle:
    """One minute of a symbol's contract-price path and the volume traded in it (the base of every kline)."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    count: int = 0
    taker_buy_volume: Decimal = ZERO
    taker_buy_quote_volume: Decimal = ZERO


@dataclass(frozen=True)
class OrderUpdate:
    """Payload of an ``"order"`` event: ``order`` as it is right now, what happened to it, the fill if any.

    ``execution`` is Binance's ``ORDER_TRADE_UPDATE`` execution type: NEW, TRADE, CANCELED, EXPIRED, CALCULATED
    (a liquidation fill).
    """

    order: Order
    execution: str
    trade: Trade | None = None


@dataclass(frozen=True)
class AccountUpdate:
    """Payload of an ``"account"`` event: the wallet or a position of ``symbol`` changed, for ``reason``.

    ``reason`` is Binance's ``ACCOUNT_UPDATE`` event reason (ORDER, MARGIN_TYPE_CHANGE, ...).
    """

    reason: str
    symbol: str


# ``(api_key, kind, payload)`` with kind/payload: "order"/OrderUpdate, "algo"/AlgoOrder, "account"/AccountUpdate.
# Called synchronously inside the state transition: render what you need at once, never call back into the venue.
Listener = Callable[[str, str, "OrderUpdate | AlgoOrder | AccountUpdate"], None]
