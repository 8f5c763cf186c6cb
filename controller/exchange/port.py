"""The one interface Warden has to a venue: everything the reconciler, the observer and the sweep ask of an
exchange account, in Warden's own terms (Decimal, client ids, ``Action``s, ``Outcome``s).

An adapter per venue implements it (``controller.exchange.binanceusdm``, ``controller.exchange.bybit``; the shared
parts in ``controller.exchange.gateway``) and declares its ``Capabilities`` (``controller.reconcile.venue``), which
the planner decides from. ``controller.exchange.registry`` maps ``ExchangeAccount.spec.exchange`` to the adapter.
What a new venue must provide: ``docs/venues.md``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from controller.api.v1alpha1 import PositionSpec, PositionStatus, Side
from controller.audit.store import Fill
from controller.exchange.fills import FillOwner
from controller.reconcile.model import (
    Action,
    MarketRules,
    Observation,
    ObservedOrder,
    OpenOrder,
    Outcome,
    Reads,
    Snapshot,
    Trade,
)
from controller.reconcile.venue import Capabilities


class BudgetUnit(StrEnum):
    WEIGHT = "Weight"
    """Binance: each request weighs 1 to 40 against the IP's weight per minute."""
    REQUESTS = "Requests"
    """Bybit: every request counts 1 against the IP's limit (600 per 5 s); orders and settings also against a
    per-UID, per-endpoint limit per second (10/s for order create/amend/cancel)."""


@dataclass(frozen=True)
class RequestBudget:
    """What the venue lets one IP spend, in ``unit`` per ``window_seconds``; ``per_endpoint_per_second``: the tighter
    per-account limit on placing, amending and cancelling orders, where the venue has one."""

    unit: BudgetUnit
    limit: int
    window_seconds: float
    per_endpoint_per_second: int | None = None

    @property
    def per_minute(self) -> int:
        return int(self.limit * 60 / self.window_seconds)


@dataclass(frozen=True)
class PushedOrder:
    """What a user-data stream push says of one order: where to look, never what to act on."""

    client_id: str
    open: bool
    filled: Decimal


@dataclass(frozen=True)
class PushedPosition:
    symbol: str
    side: Side | None  # None: flat (the venue names no side)
    size: Decimal


@dataclass(frozen=True)
class UserStream:
    """The ccxt.pro calls that follow the account's orders and positions, and how a push of each is read; its
    trades (``trades``) where an order push does not carry them; and the public mark-price stream (``marks``,
    called with the symbols; the mark is ``info[mark_field]``), where the adapter has one: without it, Positions
    that follow the mark keep the timed reads at their full pace."""

    orders: str
    positions: str
    marks: str | None = None
    mark_field: str | None = None
    trades: str | None = None


class VenuePort(Protocol):
    """An exchange account, as Warden uses it."""

    capabilities: Capabilities
    budget: RequestBudget
    stream: UserStream

    @property
    def client(self) -> Any: ...

    async def close(self) -> None: ...

    async def rules(self, symbol: str) -> MarketRules:
        """Market rules (tick, step, minimums, the market-order maximum), from the venue's own strings."""
        ...

    # Awaitables, not coroutines: the adapters' methods are wrapped by a decorator that says only that.
    def snapshot(
        self,
        symbols: frozenset[str],
        every_position: bool = True,
        orders: bool = True,
        regular: frozenset[str] | None = None,
    ) -> Awaitable[Snapshot]:
        """Positions (every symbol, or the one asked for), marks and open orders: conditional ones of ``symbols``,
        regular ones of ``regular`` (None: of ``symbols``) at least. What it read is ``Snapshot.reads``."""
        ...

    def snapshot_reads(
        self, symbols: frozenset[str], regular: frozenset[str], positioned: frozenset[str], orders: bool = True
    ) -> Reads:
        """What a snapshot of ``symbols`` asks for, given the symbols whose regular orders are needed and those
        with a position (``positioned``), which may carry their mark: what the read's weight is counted from."""
        ...

    def resting_orders(self, symbols: list[str]) -> Awaitable[dict[str, OpenOrder]]: ...

    def account_view(self) -> Awaitable[Snapshot]:
        """Every position and open order of the account (the orphan sweep)."""
        ...

    def observe(
        self, spec: PositionSpec, status: PositionStatus, snapshot: Snapshot, unsent: frozenset[str] = ...
    ) -> Awaitable[Observation]: ...

    def ended(self, client_id: str) -> ObservedOrder | None: ...

    async def find_order(self, symbol: str, client_id: str, conditional: bool) -> ObservedOrder | None:
        """The order under this client id in any state; None: the venue has none it still reports."""
        ...

    async def trades(self, symbol: str, since: datetime | None) -> tuple[Trade, ...]:
        """The symbol's trades since the entry, liquidations marked."""
        ...

    async def fills(
        self, symbol: str, order_ids: Collection[str], owner: FillOwner, since: datetime | None
    ) -> list[Fill]:
        """The trades of these orders (``since``: the entry, where the venue needs a start)."""
        ...

    def execute(self, symbol: str, action: Action) -> Awaitable[str | None]:
        """Send the action; returns the venue's order id (None for cancels and settings)."""
        ...

    def classify(self, error: Exception) -> Outcome: ...

    def action_cost(self, action: Action) -> int:
        """What sending the action spends of ``budget``."""
        ...

    def pushed_order(self, push: dict[str, Any]) -> PushedOrder: ...

    def pushed(self, push: dict[str, Any]) -> ObservedOrder | None:
        """The conditional order a push says has ended, kept like a placement's answer; None for anything else."""
        ...

    def pushed_fill(self, push: dict[str, Any]) -> ObservedOrder | None:
        """The regular order a push says has filled in full, kept like a placement's answer; None otherwise."""
        ...

    async def looked_up_fill(self, symbol: str, client_id: str) -> ObservedOrder | None:
        """A regular order that left the book, looked up: kept like a pushed fill if it filled in full; else None."""
        ...

    def pushed_cancel(self, push: dict[str, Any]) -> bool:
        """Whether a push says its order was cancelled with nothing filled (the end a cancel Warden sent has),
        kept like a placement's answer."""
        ...

    def pushed_position(self, push: dict[str, Any]) -> PushedPosition: ...

    def pushed_size(self, position: PushedPosition) -> None:
        """Keep a position push's flatness for the Positions' next observations (see ``Observation.flat_pushed``)."""
        ...

    def flat_since(self, symbol: str, side: Side, taken_at: float) -> bool:
        """Whether the stream pushed that position flat after ``taken_at`` (monotonic)."""
        ...

    def pushed_trades(self, pushes: list[dict[str, Any]]) -> None:
        """Keep the trades the stream of ``UserStream.trades`` pushed (see ``VenueGateway.pushed_exit``)."""
        ...

    def stream_gap(self) -> None:
        """The user-data stream broke or went unread: pushes may have been missed."""
        ...
