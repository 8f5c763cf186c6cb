"""What every venue adapter shares: markets loaded once, one Position's observation from an account snapshot,
the answers to its own placements kept as a shortcut, and error classification.

Numbers are read from the exchange's raw strings (``info``), never from ccxt's parsed floats.
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import ccxt

from controller.api.v1alpha1 import OrderState, Phase, PositionSpec, PositionStatus, Side
from controller.audit.store import Fill
from controller.exchange import errors
from controller.exchange.fills import FillOwner
from controller.exchange.port import PushedOrder, PushedPosition, RequestBudget, UserStream
from controller.exchange.responses import PARSE_ERRORS, explain, parses_answers
from controller.reconcile.entered import closed_by_another
from controller.reconcile.model import (
    CLIENT_ID_PREFIX_LENGTH,
    Action,
    MarketRules,
    Observation,
    ObservedOrder,
    OpenOrder,
    Outcome,
    Reads,
    Snapshot,
    Trade,
    records_to_observe,
)
from controller.reconcile.status import all_records
from controller.reconcile.venue import Capabilities, LookupRetention, Scope

ENDED = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED})
_ANSWERS_KEPT = 4096
MARKETS_RETRY_S = 1.0
V = TypeVar("V")


def kept(memory: OrderedDict[str, V], key: str, value: V) -> None:
    """Remember ``value`` under ``key``, forgetting the oldest beyond ``_ANSWERS_KEPT``."""
    memory[key] = value
    while len(memory) > _ANSWERS_KEPT:
        memory.popitem(last=False)


def cancelled_unfilled(order: ObservedOrder) -> bool:
    """The end a cancel Warden sent has: cancelled with nothing filled."""
    return order.state is OrderState.CANCELED and not order.filled


def dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


class VenueGateway(ABC):
    """One ccxt client per ExchangeAccount; the adapters fill in the venue's endpoints and records.

    ``hedged``: the account runs the venue's hedge position mode (one position per side of a symbol)."""

    capabilities: Capabilities
    budget: RequestBudget
    stream: UserStream

    def __init__(self, client: Any, *, hedged: bool = False) -> None:
        self.client = client
        self.hedged = hedged
        self._markets_loaded = False
        self._markets_loading = asyncio.Lock()
        self._markets_failed: tuple[float, ccxt.BaseError] | None = None
        """When the last load failed, and how: every Position of the account asks again within a second."""
        self._answers: OrderedDict[str, tuple[float, ObservedOrder]] = OrderedDict()
        """Client id -> (monotonic send time, the order as the exchange's answer to its placement described it)."""
        self._placed_at: OrderedDict[str, float] = OrderedDict()
        """Client id -> when its placement was sent (monotonic), for the placements whose answers were kept."""
        self._flat_at: dict[tuple[str, Side | None], float] = {}
        """(symbol, side; None: one-way) -> when the stream last pushed that position flat (monotonic), until a
        push shows it held again."""
        self._pushed_trades: OrderedDict[str, tuple[str, Trade]] = OrderedDict()
        """Order id/trade id -> (symbol, the trade as the user-data stream pushed it), since the stream's last gap:
        the newest of an unbroken run of pushes, so a symbol's are every trade after its oldest one kept."""

    async def close(self) -> None:
        await self.client.close()

    async def load_markets(self) -> None:
        """One load at a time for all the account's Positions; a failed one is the answer for a second, so a
        venue in maintenance sees one request a second from an account, not one from each Position."""
        if self._markets_loaded:
            return
        async with self._markets_loading:
            if self._markets_loaded:
                return
            if self._markets_failed is not None and time.monotonic() - self._markets_failed[0] < MARKETS_RETRY_S:
                raise self._markets_failed[1].with_traceback(None)
            try:
                await self.client.load_markets(reload=True)  # ccxt would keep an empty answer for good
                if not self.client.markets:  # an answer without markets must not make every symbol unknown
                    raise ccxt.BadResponse("the exchange listed no markets")
            except ccxt.BaseError as error:
                self._markets_failed = (time.monotonic(), error)
                raise
            self._markets_loaded, self._markets_failed = True, None

    async def rules(self, symbol: str) -> MarketRules:
        await self.load_markets()
        if symbol not in self.client.markets:
            raise ccxt.BadSymbol(f"unknown symbol {symbol}")
        try:
            return self.rules_from_market(self.client.market(symbol))
        except PARSE_ERRORS as error:
            self._markets_loaded = False  # read the list again next time, not this copy for good
            raise ccxt.BadResponse(f"the exchange's market {symbol} is malformed: {explain(error)}") from error

    @abstractmethod
    def rules_from_market(self, market: dict[str, Any]) -> MarketRules: ...

    # Awaitables, not coroutines: the adapters' methods are wrapped by a decorator that says only that.
    @abstractmethod
    def snapshot(
        self,
        symbols: frozenset[str],
        every_position: bool = True,
        orders: bool = True,
        regular: frozenset[str] | None = None,
    ) -> Awaitable[Snapshot]: ...

    @abstractmethod
    def snapshot_reads(
        self, symbols: frozenset[str], regular: frozenset[str], positioned: frozenset[str], orders: bool = True
    ) -> Reads: ...

    @abstractmethod
    def resting_orders(self, symbols: list[str]) -> Awaitable[dict[str, OpenOrder]]: ...

    @abstractmethod
    def account_view(self) -> Awaitable[Snapshot]: ...

    @abstractmethod
    async def find_order(self, symbol: str, client_id: str, conditional: bool) -> ObservedOrder | None: ...

    @abstractmethod
    async def trades(self, symbol: str, since: datetime | None) -> tuple[Trade, ...]: ...

    @abstractmethod
    async def fills(
        self, symbol: str, order_ids: Collection[str], owner: FillOwner, since: datetime | None
    ) -> list[Fill]: ...

    @abstractmethod
    def execute(self, symbol: str, action: Action) -> Awaitable[str | None]: ...

    @abstractmethod
    def action_cost(self, action: Action) -> int: ...

    @abstractmethod
    def pushed_order(self, push: dict[str, Any]) -> PushedOrder: ...

    @abstractmethod
    def pushed_position(self, push: dict[str, Any]) -> PushedPosition: ...

    def classify(self, error: Exception) -> Outcome:
        return errors.classify(error)

    def conditional_count(self, snapshot: Snapshot, symbol: str) -> int:
        """Resting conditional orders within the venue's cap scope, as far as the snapshot saw them."""
        cap = self.capabilities.conditional_cap
        if cap is None:
            return 0
        return sum(
            1
            for o in snapshot.open_orders.values()
            if o.conditional and (cap.scope is Scope.ACCOUNT or o.symbol == symbol)
        )

    @parses_answers
    async def observe(
        self, spec: PositionSpec, status: PositionStatus, snapshot: Snapshot, unsent: frozenset[str] = frozenset()
    ) -> Observation:
        """One Position's view: the account snapshot, plus a lookup by client id for each of its orders that
        can still change and is not among the open ones (it filled, triggered, was cancelled, or never arrived).
        ``unsent``: intents this process recorded and has not sent, known absent without a look-up.

        Where the venue's lookups are not proof (``LookupRetention.BOUNDED``), an intent it has no record of is
        left out of ``orders`` (unknown) rather than reported absent (never sent); an order the venue acknowledged
        and no longer lists as open has ended, whatever a lookup finds.

        A snapshot taken before the Position's entry was sent does not hold the fill its answer reported: that fill
        is added to the position's size, so the stop it calls for goes out on the answer, without a read first (the
        next read reconciles: where it disagrees, it wins)."""
        symbol = spec.symbol
        rules = await self.rules(symbol)
        weak = self.capabilities.lookup is LookupRetention.BOUNDED
        acknowledged = {r.clientOrderId for r in all_records(status) if r.exchangeOrderId is not None}
        orders: dict[str, ObservedOrder | None] = {}
        for client_id, purpose in records_to_observe(status):
            seen = snapshot.open_orders.get(client_id)
            ended = self.ended(client_id)
            if client_id in unsent:
                orders[client_id] = None
            elif ended is not None:  # an end is final: it wins over a snapshot that still shows the order open
                orders[client_id] = ended
            elif seen is not None:
                orders[client_id] = seen.order
            else:
                found = self.answer(client_id, snapshot.taken_at) or await self.find_order(
                    symbol, client_id, purpose.conditional
                )
                if found is not None or not weak or client_id in acknowledged:
                    orders[client_id] = found
        size = snapshot.sizes.get((symbol, spec.side), Decimal(0))
        if status.entryOrder is not None:
            size += self.unseen_fill(status.entryOrder.clientOrderId, snapshot)
        flat_pushed = size > 0 and self.flat_since(symbol, spec.side, snapshot.taken_at)
        trades: tuple[Trade, ...] = ()
        entry = status.entryOrder
        # An adopted position's entry is a record without an exchange order: it too has trades to account for.
        if (size == 0 or flat_pushed) and entry is not None and (entry.exchangeOrderId is not None or spec.adopted):
            exit_ = self.pushed_exit(symbol, status) if flat_pushed and status.phase is not Phase.CLOSING else None
            trades = exit_ if exit_ is not None else await self.trades(symbol, status.entryPlacedAt)
        entry_price = snapshot.entry_prices.get((symbol, spec.side))
        return Observation(
            snapshot.marks[symbol],
            size,
            rules,
            orders,
            trades,
            entry_price,
            self.capabilities,
            self.conditional_count(snapshot, symbol),
            snapshot.trailing.get((symbol, spec.side), Decimal(0)),
            flat_pushed=flat_pushed,
        )

    def pushed_size(self, position: PushedPosition) -> None:
        """Keep what a position push says about flatness: a Position it closed (outside, liquidated) learns it
        from the push, with no read first; a push that shows the position held again forgets it."""
        if position.size == 0:
            self._flat_at[(position.symbol, position.side)] = time.monotonic()
        else:
            self._flat_at.pop((position.symbol, position.side), None)
            self._flat_at.pop((position.symbol, None), None)

    def pushed_trade(self, symbol: str, trade: Trade) -> None:
        """Keep a trade the user-data stream pushed (``pushed_exit`` tells an outside close by these)."""
        kept(self._pushed_trades, f"{trade.order_id}/{trade.trade_id}", (symbol, trade))

    def pushed_trades(self, pushes: list[dict[str, Any]]) -> None:
        """Keep the trades a stream of trades pushed (``UserStream.trades``): only a venue that has one follows it
        (where an order push carries its trade, ``pushed_order`` keeps it)."""
        raise NotImplementedError(f"{type(self).__name__} follows no stream of trades")

    def stream_gap(self) -> None:
        """The user-data stream broke: pushes may have been missed, so the trades kept no longer tell every one."""
        self._pushed_trades.clear()

    def pushed_exit(self, symbol: str, status: PositionStatus) -> tuple[Trade, ...] | None:
        """The symbol's pushed trades, if they show a position pushed flat closed by another's order after this
        Position's own (``closed_by_another``, as a read of its trades would): it then starts closing and removes its
        leftover stop on the push alone. None: its trades are read. Only the decision: the books close on a read."""
        entry = status.entryOrder
        if entry is None:
            return None
        trades = tuple(trade for kept_for, trade in self._pushed_trades.values() if kept_for == symbol)
        return trades if closed_by_another(trades, status, entry.clientOrderId[:CLIENT_ID_PREFIX_LENGTH]) else None

    def flat_since(self, symbol: str, side: Side, taken_at: float) -> bool:
        """Whether the stream pushed the position on ``side`` flat after a snapshot taken at ``taken_at``."""
        pushed = max(self._flat_at.get((symbol, side), -math.inf), self._flat_at.get((symbol, None), -math.inf))
        return pushed > taken_at

    def answer(self, client_id: str, snapshot_taken_at: float) -> ObservedOrder | None:
        """The order as its placement's answer described it, where that tells more than a snapshot without it:
        the order had already ended (a market order filled), or it was sent after the snapshot began. Saves the
        look-up by client id on the way from an entry's fill to its stop."""
        known = self._answers.get(client_id)
        if known is None:
            return None
        sent_at, order = known
        return order if order.state in ENDED or sent_at > snapshot_taken_at else None

    def ended(self, client_id: str) -> ObservedOrder | None:
        """The order as its placement's answer described it, if that answer says it had already ended (a market
        order that filled): nothing a later read can show changes it."""
        return self.answer(client_id, math.inf)

    @abstractmethod
    def pushed_end(self, push: dict[str, Any]) -> ObservedOrder | None:
        """The conditional order a stream push describes, if the push says it ended; None for anything else (only
        an end is final: a push of anything else may be older than what Warden already knows)."""

    def pushed(self, push: dict[str, Any]) -> ObservedOrder | None:
        """A conditional order the user-data stream says has ended (a stop the venue cancelled or expired): kept
        like a placement's answer, so the Position it protects replaces it on the push, with no read first."""
        order = self.pushed_end(push)
        if order is not None:
            self.keep_answer(time.monotonic(), order)
        return order

    @abstractmethod
    def pushed_regular(self, push: dict[str, Any]) -> ObservedOrder | None:
        """A regular (not conditional) order as a stream push describes it; None if the push is not one."""

    def pushed_fill(self, push: dict[str, Any]) -> ObservedOrder | None:
        """An order the user-data stream says has filled in full (a limit entry): kept like a market entry's
        answer, so the stop it calls for goes out on the push, with no read first (the read after it reconciles)."""
        return self._kept_fill(time.monotonic(), self.pushed_regular(push))

    async def looked_up_fill(self, symbol: str, client_id: str) -> ObservedOrder | None:
        """A regular order that left the book (a peek no longer lists it), looked up by its client id: if it filled
        in full, kept like a pushed fill, so the stop it calls for goes out with no account read first; None
        otherwise (cancelled, filled in part, not found: a read tells what happened)."""
        asked_at = time.monotonic()
        return self._kept_fill(asked_at, await self.find_order(symbol, client_id, conditional=False))

    def _kept_fill(self, told_at: float, order: ObservedOrder | None) -> ObservedOrder | None:
        """The order if it filled in full, kept like a market entry's answer (as told at ``told_at``); else None."""
        if order is None or order.state is not OrderState.FILLED:
            return None
        self.keep_answer(told_at, order)
        return order

    def pushed_cancel(self, push: dict[str, Any]) -> bool:
        """Whether a push says its order was cancelled with nothing filled; kept like a placement's answer (an end
        is final), so the Position's next observation has it with no read."""
        order = self.pushed_end(push) or self.pushed_regular(push)
        if order is None or not cancelled_unfilled(order):
            return False
        self.keep_answer(time.monotonic(), order)
        return True

    def unseen_fill(self, client_id: str, snapshot: Snapshot) -> Decimal:
        """What of an order's fill, as its answer or a push told it, the snapshot's positions do not hold yet: all
        of it if the snapshot predates the order; what it filled since, if the snapshot saw it open; else nothing
        (it had ended before the snapshot, whose positions hold its fills)."""
        told = self._answers.get(client_id)
        if told is None or told[0] <= snapshot.taken_at:
            return Decimal(0)
        filled = told[1].filled
        seen = snapshot.open_orders.get(client_id)
        if seen is not None:
            return max(filled - seen.order.filled, Decimal(0))
        placed_at = self._placed_at.get(client_id)
        return filled if placed_at is not None and placed_at > snapshot.taken_at else Decimal(0)

    def remember(self, sent_at: float, info: Any, parse: Callable[[Any], ObservedOrder]) -> None:
        try:
            order = parse(info)
        except PARSE_ERRORS:
            return  # only a shortcut: the order is looked up by its client id instead
        kept(self._placed_at, order.client_order_id, sent_at)
        self.keep_answer(sent_at, order)

    def keep_answer(self, sent_at: float, order: ObservedOrder) -> None:
        kept(self._answers, order.client_order_id, (sent_at, order))
