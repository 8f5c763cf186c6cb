"""Observe per account, not per Position: one read of the account feeds every Position's reconcile.

A cycle reads positions, open algo orders (the stops), the regular open orders of the symbols where a Position
has or may send one (``Watcher.regular_orders``) and the marks no position carries, in a constant number of calls
(``VenuePort.snapshot``; what it weighs is what it asked for, ``Snapshot.reads``), keeps the result, and wakes
exactly the Positions whose slice of it changed (their exchange position, their own orders, their mark if they
follow it). The cycle's pace comes from a request-weight budget per account, so the weight per minute is flat in
the number of Positions. A Position
that just acted asks for a newer snapshot; concurrent asks share one read. With the user-data stream on,
any pushed account event starts a read soon; the timed cycle stays as the safety net. Every read, timed,
pushed or asked for, spends from one token bucket, so pushes buy speed, never extra weight.

What changes a Position's exposure or protection goes ahead of the budget: a fill of its entry, one of its
resting stops ending (triggered, cancelled by someone else, expired) or its exchange position shrinking, told by
the stream's pushes (the order's client id, status and filled quantity; the position's size) or, without the
stream, a fill found by a peek at the resting entries. What that calls for (a stop, a stop again, closing the
books) must not wait behind the routine reads that 1 Hz marks and moving trailing stops keep asking for; such
events are as many as fills and closes, not a rate, so the weight stays flat in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import Enum
from typing import Any

import ccxt

from controller.api.v1alpha1 import Side
from controller.exchange.errors import describe
from controller.exchange.gateway import kept
from controller.exchange.port import PushedOrder, VenuePort
from controller.handlers.marks import MarkFeed
from controller.reconcile.model import (
    CLIENT_ID_PREFIX_LENGTH,
    OpenOrder,
    Purpose,
    Reads,
    Snapshot,
    is_warden_order,
    purpose_of,
)
from controller.reconcile.status import MarkWatch

log = logging.getLogger("warden.observer")
_POSITIONS_WEIGHT = 5
_FAILURE_BACKOFF_SECONDS = 1.0
_PUSH_SETTLE_SECONDS = 0.02
_PEEK_SECONDS = 0.5
_PEEK_SHARE = 0.5
"""At most this share of the budget goes to peeks at resting entries (they go before the timed cycle)."""
_BURST_CYCLES = 3
_BUDGET_SLACK_SECONDS = 0.005
_QUIET_KEEPALIVES = 1.5
"""The user-data stream counts as alive while a frame (a pong, a push) came within this many keep-alives."""
_MARKS_FRESH_S = 3.0
"""The venue pushes a followed mark every second: older than this, the timed reads bring the marks again."""


class _Read(Enum):
    """What a push calls for."""

    NOW = "now"
    """A read at once: it changes a Position's exposure or protection."""
    SOON = "soon"
    """A read within the budget."""
    NONE = "none"
    """No read: it only confirms what a Position sent."""


@dataclass(frozen=True)
class Revaluation:
    """When an open Position's unrealized PnL is due again (``controller.reconcile.valuation``): its mark moved
    by more than a tick from the one it was valued at, and ``due`` (monotonic) has passed. Marks alone wake no
    one else, so a Position that has nothing to do is not woken at every price change."""

    mark: Decimal
    tick: Decimal
    due: float

    def wanted(self, mark: Decimal | None, now: float) -> bool:
        return mark is not None and now >= self.due and abs(mark - self.mark) > self.tick


@dataclass
class ValuationBudget:
    """How many Positions a second may be woken only to refresh their unrealized PnL, for the whole process (a
    token bucket): each such wake is a status write, and a thousand Positions whose marks all move would
    otherwise write 1,000 / ``WARDEN_PNL_REFRESH`` times a second. Past the budget a refresh waits for a later
    snapshot; nothing that acts is ever held back by it."""

    per_second: float
    _tokens: float = 0.0
    _at: float = -math.inf

    def take(self, now: float) -> bool:
        burst = max(self.per_second, 1.0)
        self._tokens = burst if self._at == -math.inf else min(burst, self._tokens + (now - self._at) * self.per_second)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


@dataclass
class Watcher:
    """One Position's interest in the account's state."""

    symbol: str
    side: Side
    prefix: str
    follows_mark: MarkWatch | None
    """Which marks can call for its action (None: it does not follow them)."""
    wake: asyncio.Event
    seen: Hashable = None
    acted_at: float | None = None
    """When the Position last sent an order or a cancel (monotonic; None: nothing sent since the last snapshot
    that woke it): the first snapshot taken after that wakes it whatever it shows, because a change and its
    reversal between two snapshots (a stop placed, then cancelled by the venue) leave the slice as it was."""
    resting: bool = False
    """Its entry rests on the book and may fill at any moment (without the user-data stream, peeked at often)."""
    protecting: frozenset[str] = frozenset()
    """Client ids of its resting stops: a push that says one ended is read at once."""
    regular_orders: bool = False
    """It has, or its next pass may send, a regular (not conditional) order (``has_regular_orders``): its symbol's
    regular open orders are read. Stops are read whatever it says."""
    revaluation: Revaluation | None = None
    revalue: bool = False
    """Woken to refresh its unrealized PnL, with a token of the valuation budget: the pass it wakes may write it."""


def cycle_weight(orders: int, regular: int | None = None, marks: int | None = None) -> int:
    """Request weight of one snapshot that reads ``orders`` symbols' open algo orders, ``regular`` symbols' regular
    open orders and ``marks`` symbols' mark prices (None: as many as ``orders``): the positions (5), then 1 a
    symbol for each, capped by the all-symbol forms (``BinanceUsdm.snapshot``). Bybit counts requests, a snapshot
    being a few of them whatever it reads, so this pace keeps it well inside its limits too."""
    regular = orders if regular is None else regular
    marks = orders if marks is None else marks
    return _POSITIONS_WEIGHT + min(orders, 40) + min(regular, 40) + min(marks, 10)


def reads_weight(reads: Reads) -> int:
    return cycle_weight(len(reads.orders), len(reads.regular), len(reads.marks))


def cycle_interval(weight: int, weight_per_minute: int, floor_seconds: float) -> float:
    """Seconds between timed cycles of ``weight`` each so that they spend at most ``weight_per_minute``."""
    return max(floor_seconds, weight * 60 / weight_per_minute)


def peek_weight(symbols: int) -> int:
    """Request weight of one peek at ``symbols`` symbols' regular open orders (see ``VenuePort.resting_orders``)."""
    return min(symbols, 40)


def heard_at(stream_client: Any) -> float | None:
    """Wall-clock milliseconds of the newest frame (a pong answering ccxt's ping, a push) on an open connection
    of a ccxt.pro client; None without one."""
    heard = [
        connection.last_message_at
        for connection in (getattr(stream_client, "clients", None) or {}).values()
        if not connection.closed() and connection.last_message_at
    ]
    return max(heard, default=None)


def _read_failed(read: asyncio.Future[Snapshot]) -> bool:
    return read.done() and (read.cancelled() or read.exception() is not None)


def _entries(orders: dict[str, OpenOrder], prefixes: set[str]) -> set[tuple[str, Decimal]]:
    return {
        (client_id, open_order.order.filled)
        for client_id, open_order in orders.items()
        if client_id[:CLIENT_ID_PREFIX_LENGTH] in prefixes
        and is_warden_order(client_id)
        and purpose_of(client_id) is Purpose.ENTRY
    }


@dataclass
class AccountObserver:
    label: str
    gateway: VenuePort
    may_act: Callable[[], bool]
    weight_per_minute: int = 600
    floor_seconds: float = 1.0
    stream_client: Any = None
    marks: MarkFeed | None = None
    """The venue's mark-price stream, shared with its other accounts (None: the adapter has none, or no stream)."""
    safety_weight_per_minute: int = 24
    """What the timed reads spend while the stream is alive and no Position follows the mark (a safety net)."""
    keepalive_s: float = 10.0
    valuations: ValuationBudget = field(default_factory=lambda: ValuationBudget(math.inf))
    watchers: dict[str, Watcher] = field(default_factory=dict)
    _symbols: Counter[str] = field(default_factory=Counter)
    """How many watchers follow each symbol (kept as they come and go: every pass asks for the interval)."""
    _followed: Counter[str] = field(default_factory=Counter)
    """How many of them follow its mark (likewise: the interval depends on it)."""
    _regular: Counter[str] = field(default_factory=Counter)
    """How many of them have or may send a regular order (likewise: what a read asks for depends on it)."""
    _positioned: frozenset[str] = frozenset()
    """Symbols with a position in the latest snapshot: their marks are expected to come with it."""
    latest: Snapshot | None = None
    _inflight: asyncio.Future[Snapshot] | None = None
    _inflight_at: float = -math.inf
    _own_reads: dict[str, tuple[float, asyncio.Future[Snapshot]]] = field(default_factory=dict)
    """Per symbol: the newest read of that symbol's position and mark alone, asked for by a Position that acted
    (see ``snapshot``)."""
    _failed: tuple[float, ccxt.BaseError] | None = None
    _poke: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _urgent_read: asyncio.Task[None] | None = None
    _closed: bool = False
    # Monotonic times, -inf for "never": 0.0 would be "at boot", and on a machine booted less than an interval
    # ago the first read and peek would wait for it.
    _last_read: float = -math.inf
    _last_peek: float = -math.inf
    _tokens: float = 0.0
    _tokens_at: float = -math.inf
    _stream_failed_at: float = -math.inf
    """Wall-clock seconds of the stream's last failure: only frames after it prove it alive again."""
    _unwatched_push: bool = False
    """A push showed an order or a position no Position watches since the last sweep."""
    _last_sweep: float = -math.inf
    _marks_at: dict[str, float] = field(default_factory=dict)
    """Per symbol, when the mark-price stream last pushed its mark (monotonic)."""
    _sending: OrderedDict[str, bool] = field(default_factory=OrderedDict)
    """Client id -> whether what a Position is sending leaves the order resting (a placement) or not (a cancel),
    until the push that says so: that push tells Warden nothing it did not do itself, so it asks for no read."""

    def __post_init__(self) -> None:
        if self.stream_client is not None:
            # ccxt pings at this pace and drops the connection after two missed pongs; the pongs are the proof
            # of life that lets the timed reads slow down.
            streaming = getattr(self.stream_client, "streaming", None) or {}
            self.stream_client.streaming = {**streaming, "keepAlive": int(self.keepalive_s * 1000)}

    # --- Positions ------------------------------------------------------------------------------

    def watch(self, uid: str, watcher: Watcher) -> None:
        previous = self.watchers.get(uid)
        if previous is not None:
            watcher.seen, watcher.acted_at, watcher.revalue = previous.seen, previous.acted_at, previous.revalue
            self._count(previous, -1)
        self._count(watcher, 1)
        self.watchers[uid] = watcher
        # A pass that began before this account was replaced may still call here: a closed observer serves
        # that pass's reads but must not start its cycle again (each revived one read the account on its own).
        if not self._tasks and not self._closed:
            self._tasks.append(asyncio.create_task(self._cycle(), name=f"observe {self.label}"))
            if self.stream_client is not None:
                self._tasks.append(asyncio.create_task(self._stream(), name=f"user stream {self.label}"))

    def revaluing(self, uid: str) -> bool:
        """Whether this Position was woken to refresh its unrealized PnL (and the budget paid for it); once."""
        watcher = self.watchers.get(uid)
        if watcher is None or not watcher.revalue:
            return False
        watcher.revalue = False
        return True

    def acted(self, uid: str) -> None:
        watcher = self.watchers.get(uid)
        if watcher is not None:
            watcher.acted_at = time.monotonic()

    def placing_regular(self, uid: str) -> None:
        """The Position is about to send a regular order (an entry, a close): from now on every read lists its
        symbol's regular orders, so no snapshot begun after the send can leave it out as if it had ended. Called
        before the send; the watcher its next pass registers says so from the order's record."""
        watcher = self.watchers.get(uid)
        if watcher is not None and not watcher.regular_orders:
            self._count(watcher, -1)
            watcher.regular_orders = True
            self._count(watcher, 1)

    def sending(self, client_id: str, placing: bool) -> None:
        """A Position is about to place (``placing``) or cancel this order. A stop that follows the mark moves
        with it, and each move's two pushes (the new stop resting, the old one cancelled) would otherwise read the
        account: a rate that grows with the number of Positions, where the weight must stay flat. Called before
        the send: the push may come before the answer."""
        kept(self._sending, client_id, placing)

    def _own_news(self, push: dict[str, Any], order: PushedOrder) -> bool:
        """Whether the push only confirms what the Position sent: its placement resting with nothing filled, or
        its cancel done with nothing filled (a trigger or a fill meanwhile is news, and a read follows)."""
        placing = self._sending.get(order.client_id)
        if placing is None or order.filled or placing is not order.open:
            return False
        if not placing and not self.gateway.pushed_cancel(push):
            return False
        del self._sending[order.client_id]
        return True

    def unwatch(self, uid: str) -> None:
        previous = self.watchers.pop(uid, None)
        if previous is not None:
            self._count(previous, -1)

    def _count(self, watcher: Watcher, sign: int) -> None:
        self._symbols[watcher.symbol] += sign
        self._followed[watcher.symbol] += sign * (watcher.follows_mark is not None)
        self._regular[watcher.symbol] += sign * watcher.regular_orders

    async def snapshot(
        self,
        symbol: str,
        newer_than: float,
        acted_at: float = -math.inf,
        answered: bool = False,
        regular: bool = False,
    ) -> Snapshot:
        """A snapshot that covers ``symbol`` (and lists its regular orders, if ``regular``: the caller may have
        one) and began after ``newer_than`` and ``acted_at`` (monotonic).

        A Position that acted since the shared snapshot (which is otherwise fresh enough) and whose orders have all
        ended by their placements' own answers (``answered``: a market entry that filled) reads its symbol's
        position and mark alone, in one round trip begun after it acted: the stop that fill calls for waits for
        that (6 weight) instead of a whole account's read (up to 95), or one under way that began before the send.
        It is not shared as ``latest``: it says nothing of the other symbols, nor of open orders (peeks at resting
        entries and the wakes compare with ``latest``)."""
        since = max(newer_than, acted_at)
        while True:
            latest = self.latest
            # A read that failed after it makes it no answer: the failure is reported, or the read tried again
            # (with safety-net reads 20 s apart, the last good one stays "fresh enough" for most of a minute).
            superseded = self._failed is not None and (latest is None or self._failed[0] > latest.taken_at)
            covers = latest is not None and symbol in latest.symbols
            lists = latest is not None and (not regular or latest.lists_regular(symbol))
            if not superseded and latest is not None and latest.taken_at >= since and covers and lists:
                return latest
            if answered and latest is not None and latest.taken_at >= newer_than and symbol in latest.symbols:
                if self._inflight is not None and not self._inflight.done() and self._inflight_at >= acted_at:
                    return await asyncio.shield(self._inflight)
                return await self._own_read(symbol, acted_at)
            if self._failed is not None and self._failed[0] >= max(since, self._retry_after_failure()):
                # The exchange just failed a read that would have served this caller: no request storm. An older
                # failure does not stand in for a read: a stop must not wait for the timed cycle after one refusal.
                raise self._failed[1]
            await self.refresh()

    async def refresh(self) -> Snapshot:
        """Read the account now, or join the read already under way."""
        if self._inflight is None or self._inflight.done():
            self._inflight_at = time.monotonic()
            self._inflight = asyncio.ensure_future(self._take())
        return await asyncio.shield(self._inflight)

    async def _own_read(self, symbol: str, acted_at: float) -> Snapshot:
        """A read of ``symbol``'s position and mark begun after ``acted_at``: the one under way or just taken (or
        just failed: no request storm), else a new one."""
        known = self._own_reads.get(symbol)
        retry_after = self._retry_after_failure() if known is not None and _read_failed(known[1]) else -math.inf
        if known is None or known[0] < max(acted_at, retry_after):
            alone = frozenset({symbol})
            self._spend(reads_weight(self.gateway.snapshot_reads(alone, frozenset(), frozenset(), orders=False)))
            read = self.gateway.snapshot(alone, every_position=False, orders=False)
            known = self._own_reads[symbol] = (time.monotonic(), asyncio.ensure_future(read))
        return await asyncio.shield(known[1])

    @staticmethod
    def _retry_after_failure() -> float:
        """A failed read begun before this (monotonic) is read again when asked for, not re-raised."""
        return time.monotonic() - _FAILURE_BACKOFF_SECONDS

    def poke(self) -> None:
        """Something changed on the account (a pushed event): read it soon."""
        self._poke.set()

    # --- the cycle ------------------------------------------------------------------------------

    async def _take(self) -> Snapshot:
        symbols, regular = self._watched_symbols(), self._regular_symbols()
        started = self._last_read = time.monotonic()
        expected = reads_weight(self.gateway.snapshot_reads(symbols, regular, self._positioned))
        self._spend(expected)
        try:
            snapshot = await self.gateway.snapshot(symbols, regular=regular)
        except ccxt.BaseError as error:
            if self._failed is None:
                self._wake_all()  # each Position reports the failure in its own status
            self._failed = (started, error)
            raise
        if self._failed is not None:
            self._wake_all()  # and that it recovered
        self._failed = None
        if snapshot.reads is not None:  # a position closed since the last read: its mark was read on its own
            self.spent(reads_weight(snapshot.reads) - expected)
        if self.latest is None or snapshot.taken_at >= self.latest.taken_at:
            self.latest = snapshot
            self._positioned = frozenset(symbol for (symbol, _), size in snapshot.sizes.items() if size)
        self._wake_changed(snapshot)
        return snapshot

    def _wake_all(self) -> None:
        for watcher in self.watchers.values():
            watcher.wake.set()

    def _wake_changed(self, snapshot: Snapshot) -> None:
        by_owner: dict[str, list[Hashable]] = defaultdict(list)
        for client_id, open_order in sorted(snapshot.open_orders.items()):
            order = open_order.order
            by_owner[client_id[:CLIENT_ID_PREFIX_LENGTH]].append((client_id, order.state, order.filled))
        now = time.monotonic()
        for watcher in self.watchers.values():
            mark = snapshot.marks.get(watcher.symbol)
            seen = (
                snapshot.sizes.get((watcher.symbol, watcher.side)),
                tuple(by_owner.get(watcher.prefix, ())),
                mark if mark is not None and watcher.follows_mark and watcher.follows_mark.wakes(mark) else None,
            )
            revalue = watcher.revaluation is not None and watcher.revaluation.wanted(mark, now)
            if seen != watcher.seen or (watcher.acted_at is not None and watcher.acted_at <= snapshot.taken_at):
                watcher.seen, watcher.acted_at = seen, None
                watcher.wake.set()
            elif revalue and not watcher.revalue and self.valuations.take(now):
                watcher.revalue = True
                watcher.wake.set()

    def followed_symbols(self) -> set[str]:
        return {symbol for symbol, following in self._followed.items() if following}

    def _watched_symbols(self) -> frozenset[str]:
        return frozenset(symbol for symbol, watching in self._symbols.items() if watching)

    def _regular_symbols(self) -> frozenset[str]:
        return frozenset(symbol for symbol, needing in self._regular.items() if needing)

    def _cycle_weight(self) -> int:
        """What the next timed read is expected to weigh: what the watchers need, as the venue reads it."""
        reads = self.gateway.snapshot_reads(self._watched_symbols(), self._regular_symbols(), self._positioned)
        return reads_weight(reads)

    def stream_alive(self) -> bool:
        """The user-data stream is connected and a frame came within its keep-alive (and after its last failure):
        what changes on the account is pushed, so reads need not look for it."""
        heard = heard_at(self.stream_client) if self.stream_client is not None else None
        if heard is None or heard / 1000 <= self._stream_failed_at:
            return False
        return time.time() * 1000 - heard <= _QUIET_KEEPALIVES * self.keepalive_s * 1000

    def _safety_net(self) -> bool:
        """Timed reads only back the stream up: it is alive, and the marks Positions follow come pushed too."""
        now = time.monotonic()
        followed = self.followed_symbols()
        pushed = all(now - self._marks_at.get(symbol, -math.inf) <= _MARKS_FRESH_S for symbol in followed)
        return pushed and self.stream_alive()

    def interval(self) -> float:
        weight = min(self.weight_per_minute, self.safety_weight_per_minute) if self._safety_net() else None
        return cycle_interval(self._cycle_weight(), weight or self.weight_per_minute, self.floor_seconds)

    def sweep_due(self, every_s: float) -> bool:
        """Whether the account's sweep (every order and position of the account) should run now: always without
        a live stream; with one, every ``every_s`` seconds, or at once after a push about an order or a position
        no Position watches."""
        stale = time.monotonic() - self._last_sweep >= every_s
        return not self.stream_alive() or self._unwatched_push or stale

    def swept(self) -> None:
        self._last_sweep, self._unwatched_push = time.monotonic(), False

    async def _cycle(self) -> None:
        while True:
            now, last_read = time.monotonic(), self._last_read
            pushed = self._poke.is_set()
            # Pushes come in bursts: one read, a moment after the first, answers a burst.
            full_due = now + max(_PUSH_SETTLE_SECONDS, self._budget_wait()) if pushed else self._timed_due()
            resting = self._resting_symbols()
            peek_due = self._last_peek + self._peek_interval(resting) if resting else math.inf
            due = min(full_due, peek_due)
            if pushed:
                await asyncio.sleep(max(due - now, 0))
            else:
                # With a stream, look again within its keep-alive: if it went quiet, the pace goes back up at once.
                recheck = now + self.keepalive_s / 2 if self.stream_client is not None else math.inf
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._poke.wait(), max(min(due, recheck) - now, 0))
                if self._poke.is_set() or self._last_read != last_read or time.monotonic() < due:
                    continue  # a push came, a read or an action's weight moved the timed read, or a recheck
            # Peeks go on while a full read waits for the budget; a fill they find is read at once.
            if peek_due < full_due:
                peeked_at = time.monotonic()
                try:
                    changed = await self._peek(resting)
                except Exception:  # as a read's: the cycle outlives it, and the read after it tells what is there
                    log.exception("peeking at %s failed", self.label)
                    changed = True
                if changed:
                    await self._read_after(peeked_at)
                continue
            if self._budget_wait() > _BUDGET_SLACK_SECONDS:
                continue  # actions spent from the bucket meanwhile: they are paid for before the read
            self._poke.clear()
            if not self.watchers or not self.may_act():
                self._last_read = time.monotonic()  # nothing to read for now: look again in an interval
                continue
            try:
                await self.refresh()
            except ccxt.BaseError as error:  # each Position's pass reports it as its Synced condition
                log.warning("observing %s failed: %s", self.label, describe(error))
                await asyncio.sleep(_FAILURE_BACKOFF_SECONDS)
            except Exception:  # the cycle must outlive any one bad read; the trace is logged
                log.exception("observing %s failed", self.label)
                await asyncio.sleep(_FAILURE_BACKOFF_SECONDS)

    def _timed_due(self) -> float:
        return max(self._last_read + self.interval(), time.monotonic() + self._budget_wait())

    def _resting_symbols(self) -> list[str]:
        """Symbols with a resting entry, when no stream pushes its fill: a fill there calls for a stop at once."""
        if self.stream_client is not None:
            return []
        return sorted({w.symbol for w in self.watchers.values() if w.resting})

    def _peek_interval(self, symbols: list[str]) -> float:
        return max(_PEEK_SECONDS, peek_weight(len(symbols)) * 60 / (self.weight_per_minute * _PEEK_SHARE))

    async def _peek(self, symbols: list[str]) -> bool:
        """Whether a read must follow at once: a resting entry changed since the last snapshot, by the symbols'
        regular open orders (1 weight each), so REST-only observation sees a limit fill within ``_PEEK_SECONDS``
        instead of a full cycle. Peeks go before the timed cycle, which waits for what they spent; their pace keeps
        them within ``_PEEK_SHARE`` of the budget.

        An entry that left the book is looked up by its client id (1 weight): one that filled in full wakes its
        Position with the answer, as its push would, and the read after it waits for the budget; anything else (a
        partial fill, a cancel, a failed look-up) is read at once."""
        self._last_peek = time.monotonic()
        latest = self.latest
        if latest is None or not self.may_act():
            return False
        self._tokens = self._tokens_now() - peek_weight(len(symbols))
        prefixes = {w.prefix for w in self.watchers.values() if w.resting}
        try:
            now_open = await self.gateway.resting_orders(symbols)
        except ccxt.BaseError:
            return True  # the full read reports it
        now, before = _entries(now_open, prefixes), _entries(latest.open_orders, prefixes)
        if now == before:
            return False
        left = {client_id for client_id, _ in before} - {client_id for client_id, _ in now}
        if now - before or not left:
            return True  # one appeared or filled in part: only a read says what the account holds now
        self._spend(len(left))
        lookups = (self.gateway.looked_up_fill(latest.open_orders[c].symbol, c) for c in sorted(left))
        try:
            filled = await asyncio.gather(*lookups)
        except ccxt.BaseError:
            return True
        if not all(filled):
            return True
        owning = {client_id[:CLIENT_ID_PREFIX_LENGTH] for client_id in left}
        for watcher in self.watchers.values():  # as registered now: a pass may have replaced one meanwhile
            if watcher.prefix in owning:
                watcher.wake.set()
        self.poke()  # the read that reconciles, within the budget
        return False

    # --- the weight budget ----------------------------------------------------------------------

    def _tokens_now(self) -> float:
        """Weight the account's reads may spend now: refilled at ``weight_per_minute``, capped at a few cycles'
        worth (the burst that lets pushes be answered at once), spent by every read whoever asked for it."""
        now, capacity = time.monotonic(), _BURST_CYCLES * self._cycle_weight()
        if self._tokens_at == -math.inf:  # never refilled yet: a full bucket
            self._tokens = capacity
        else:
            self._tokens = min(capacity, self._tokens + (now - self._tokens_at) * self.weight_per_minute / 60)
        self._tokens_at = now
        return self._tokens

    def _budget_wait(self) -> float:
        """Seconds until the budget covers one more cycle."""
        missing = self._cycle_weight() - self._tokens_now()
        return max(missing * 60 / self.weight_per_minute, 0.0)

    def spent(self, weight: int) -> None:
        """Weight an action (a cancel, a setting) cost: it comes out of the bucket, and the next timed read comes
        that much later (the time the budget takes to refill it), so the account's weight per minute stays flat
        however often its Positions act (trailing stops move, and each move cancels). However busy the account,
        a read waits four intervals at most."""
        latest_due = time.monotonic() + (_BURST_CYCLES + 1) * self.interval()
        later = self._last_read + weight * 60 / self.weight_per_minute
        self._last_read = max(self._last_read, min(later, latest_due - self.interval()))
        # And from the bucket, which paces the reads pushes call for (the timed pace alone leaves it slack).
        floor = -_BURST_CYCLES * self._cycle_weight()
        self._tokens = max(self._tokens_now() - weight, min(self._tokens, floor))

    def _spend(self, weight: int) -> None:
        # A Position's own ask (after an entry or a close) and a fill's read are never refused, and never put
        # into debt: a burst of entries would otherwise hold back the timed cycle and every push (a stop the
        # venue cancelled would go unseen for seconds). After any burst the next cycle waits one interval
        # at most (plus what peeks spent).
        tokens = self._tokens_now()
        self._tokens = min(tokens, max(tokens - weight, 0.0))

    async def _stream(self) -> None:
        """ccxt.pro's user-data stream. A push only says where to look: what Positions act on is a REST read
        taken after it, so a missed or reordered push costs latency, never correctness. A push that changes a
        Position's exposure or protection starts that read at once; any other push waits for the budget."""
        stream = self.gateway.stream
        if self.marks is not None:
            self.marks.follow(self)
        followed = [stream.orders, stream.positions, *([stream.trades] if stream.trades is not None else [])]
        await asyncio.gather(*(self._follow(method) for method in followed))

    async def _follow(self, method: str) -> None:
        while True:
            if not self.may_act() or not self.watchers:
                self.gateway.stream_gap()  # what is pushed meanwhile goes unread
                await asyncio.sleep(self.floor_seconds)
                continue
            try:
                pushed = await getattr(self.stream_client, method)()
            except ccxt.BaseError as error:
                log.warning("user-data stream of %s: %s", self.label, describe(error))
                self._stream_failed_at = time.time()
                self.gateway.stream_gap()
                self.poke()  # the reads go back to their full pace, starting now
                await asyncio.sleep(_FAILURE_BACKOFF_SECONDS)
                continue
            if method == self.gateway.stream.orders:
                call = self._orders_call(pushed)
            elif method == self.gateway.stream.trades:
                self.gateway.pushed_trades(pushed)  # the order pushes beside them say what to read
                call = _Read.NONE
            else:
                call = _Read.NOW if self._positions_call(pushed) else _Read.SOON
            if call is _Read.NOW and (self._urgent_read is None or self._urgent_read.done()):
                self._urgent_read = asyncio.create_task(self._read_after(time.monotonic()))
            elif call is not _Read.NONE:
                self.poke()

    def marks_pushed(self, tickers: dict[str, Any]) -> None:
        """The venue's mark-price stream pushed these marks (no weight, so the timed reads can stay a safety net).
        They go into the latest snapshot (as a read would bring them) and wake who follows them; marks of symbols
        only other accounts follow are left to them."""
        now, marks, followed = time.monotonic(), {}, self.followed_symbols()
        for symbol, ticker in tickers.items():
            if symbol not in followed:
                continue
            with contextlib.suppress(KeyError, TypeError, ArithmeticError):
                marks[symbol] = Decimal(str(ticker["info"][self.gateway.stream.mark_field]))
                self._marks_at[symbol] = now
        latest = self.latest
        if latest is None:
            return
        moved = {s: m for s, m in marks.items() if s in latest.marks and latest.marks[s] != m}
        if moved:
            self.latest = replace(latest, marks={**latest.marks, **moved})
            self._wake_changed(self.latest)

    def _orders_call(self, orders: list[dict[str, Any]]) -> _Read:
        """``NOW`` if these pushed orders report a watched Position's entry filled in part further than Warden
        knows (from the last snapshot, or from the order's own answer: a market entry's fill is in hand), or one of
        its resting stops triggered. An entry filled in full, or a resting stop that the venue cancelled, wakes its
        Position at once, with no read: the gateway keeps the push as it keeps a placement's answer (an order's
        end is final), and the read the push also asks for comes after, within the budget (``SOON``). Pushes that
        only confirm a Position's own placements and cancels ask for no read (``NONE``): the answers already told
        its pass, and the timed reads reconcile."""
        owners = {w.prefix: w for w in self.watchers.values()}
        latest = self.latest
        call = _Read.NONE
        for push in orders:
            order = self.gateway.pushed_order(push)
            client_id = order.client_id
            owner = owners.get(client_id[:CLIENT_ID_PREFIX_LENGTH])
            if owner is None or not is_warden_order(client_id):
                self._unwatched_push = True  # an orphan, or someone else's: for the sweep to look at
                call = _Read.SOON
                continue
            if self._own_news(push, order):
                continue
            call = _Read.SOON
            if client_id in owner.protecting and not order.open:
                if self.gateway.pushed(push) is None:
                    return _Read.NOW  # triggered (the position shrinks): the read after it tells by how much
                # Cancelled or expired by the venue: the push itself is what the Position needs to replace it.
                owner.wake.set()
                continue
            if purpose_of(client_id) is not Purpose.ENTRY:
                continue
            if self.gateway.pushed_fill(push) is not None:
                # Filled in full: the push is what its stop needs, as a market entry's answer is (no read first).
                owner.wake.set()
                continue
            filled = order.filled
            seen = latest.open_orders.get(client_id) if latest is not None else None
            answered = self.gateway.ended(client_id)
            known = max(seen.order.filled if seen else Decimal(0), answered.filled if answered else Decimal(0))
            if filled > known:
                return _Read.NOW
        return call

    def _positions_call(self, positions: list[dict[str, Any]]) -> bool:
        """Whether these pushes report a watched Position's exchange position smaller than the last
        snapshot did (closed outside, liquidated, or its stop or take profit filled). A position pushed flat
        instead wakes its Positions at once, with no read: the gateway keeps the push, and a Position that a foreign
        trade closed removes its leftover orders on it; the read after it comes at the budget's pace, so it does not
        compete with that cancel (and reconciles: where it disagrees, it wins)."""
        latest = self.latest
        shrank = False
        for push in positions:
            position = self.gateway.pushed_position(push)
            self.gateway.pushed_size(position)
            if latest is None:
                continue
            symbol, size = position.symbol, position.size
            if size and not any(w.symbol == symbol and position.side is w.side for w in self.watchers.values()):
                self._unwatched_push = True  # a position no Position tracks: for the sweep to look at
            for watcher in self.watchers.values():
                if watcher.symbol != symbol or position.side not in (None, watcher.side):
                    continue
                if size < latest.sizes.get((symbol, watcher.side), Decimal(0)):
                    if size:
                        shrank = True
                    else:
                        watcher.wake.set()
        return shrank

    async def _read_after(self, since: float) -> None:
        """One read that began after ``since`` (a read already under way may predate what was seen). Not
        ``snapshot()``: the Position that called for it may be gone by now, and its symbol with it."""
        try:
            while self.latest is None or self.latest.taken_at < since:
                await self.refresh()
        except ccxt.BaseError as error:  # the timed cycle reads again; each Position reports the failure
            log.warning("observing %s after a push failed: %s", self.label, describe(error))

    async def close(self) -> None:
        self._closed = True
        if self.marks is not None:
            self.marks.unfollow(self)
        tasks = [*self._tasks, *([self._urgent_read] if self._urgent_read is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._inflight is not None:  # shielded from the cancels above: a read under way ends before its client
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._inflight
        if self.stream_client is not None:
            await self.stream_client.close()
