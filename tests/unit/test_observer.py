"""Per-account observation: pacing by weight, shared reads, waking only the Positions whose slice changed.

The gateway here is a stand-in returning prepared snapshots (a pure unit of the observer's own logic);
the real read against the paper exchange is covered end to end."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from controller.api.v1alpha1 import ConditionStatus, OrderState, Phase, PositionSpec, PositionStatus, Side
from controller.api.vocabulary import ConditionType
from controller.exchange import binanceusdm
from controller.exchange.binanceusdm import request_weight
from controller.exchange.bybit import Bybit
from controller.exchange.port import PushedPosition
from controller.handlers import observer as observer_module
from controller.handlers.marks import MarkFeed
from controller.handlers.observer import (
    AccountObserver,
    Revaluation,
    ValuationBudget,
    Watcher,
    cycle_interval,
    cycle_weight,
    reads_weight,
)
from controller.reconcile.model import (
    CancelOrder,
    ObservedOrder,
    OpenOrder,
    OrderSide,
    PlaceStopOrder,
    Purpose,
    Reads,
    Snapshot,
    client_id_prefix,
    client_order_id,
)
from controller.reconcile.status import MarkWatch, has_regular_orders, recheck_after
from tests.fakes import FakeGateway

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def test_a_cycle_weighs_the_same_for_any_number_of_positions_and_stays_in_budget() -> None:
    assert cycle_weight(1) == 5 + 2 + 1  # everything read: positions, algo and regular orders, the mark
    assert cycle_weight(200) == cycle_weight(1000) == 5 + 80 + 10  # the all-symbol forms cap it
    for symbols in (1, 3, 10, 40, 300):
        interval = cycle_interval(cycle_weight(symbols), 420, 1.0)
        assert cycle_weight(symbols) * 60 / interval <= 420
    assert cycle_interval(cycle_weight(1), 420, 1.0) == pytest.approx(8 * 60 / 420)


@pytest.mark.parametrize(
    ("symbols", "regular", "positioned", "weight"),
    [
        # The bench's drift shape: 4 symbols, every Position protected (no regular order), each with a position
        # carrying its mark: positions and the stops alone.
        (4, 0, 4, 5 + 4),
        (4, 0, 3, 5 + 4 + 1),  # a position closed outside: that symbol's mark is read on its own
        (4, 1, 4, 5 + 4 + 1),  # one symbol has a resting entry or a close under way: its regular orders too
        (4, 4, 0, 17),  # nothing saved: today's full read
        (1, 1, 0, 8),
        (60, 60, 0, 5 + 40 + 40 + 10),  # the all-symbol forms cap each part
        (60, 2, 60, 5 + 40 + 2),
        (0, 0, 0, 5),
    ],
)
def test_a_cycle_weighs_what_the_watchers_need(symbols: int, regular: int, positioned: int, weight: int) -> None:
    names = [f"S{i}/USDT:USDT" for i in range(symbols)]
    reads = binanceusdm.snapshot_reads(frozenset(names), frozenset(names[:regular]), frozenset(names[:positioned]))
    assert reads_weight(reads) == weight
    assert reads.orders == frozenset(names)  # stops are always read
    assert cycle_interval(weight, 360, 1.0) == max(1.0, weight / 6)


def test_bybit_reads_every_order_and_mark_whatever_is_needed() -> None:
    """Its one order list and one tickers call hold everything: it paces as the full read it is."""
    gateway = Bybit.__new__(Bybit)
    reads = gateway.snapshot_reads(frozenset({BTC, ETH}), frozenset(), frozenset({BTC, ETH}))
    assert reads_weight(reads) == cycle_weight(2)


@pytest.mark.parametrize(
    ("case", "needs"),
    [
        ("no entry yet", True),
        ("market entry intended", True),
        ("limit entry resting", True),
        ("protected", False),
        ("protected, stop intended", False),
        ("protected, close asked for", True),
        ("closing", True),
        ("close intended", True),
        ("closed", False),
    ],
)
def test_a_position_needs_its_regular_orders_read_while_it_has_or_may_send_one(case: str, needs: bool) -> None:
    spec = PositionSpec.model_validate(
        {
            "accountRef": {"name": "paper"},
            "symbol": BTC,
            "side": "long",
            "amount": "0.01",
            "entry": {"type": "market"},
            "stopLoss": {"price": "60000"},
            "state": "Closed" if case == "protected, close asked for" else "Open",
        }
    )
    uid = "uid-a"

    def record(purpose: Purpose, state: OrderState, price: str | None = None) -> dict[str, Any]:
        return {
            "clientOrderId": client_order_id(uid, purpose),
            "state": state,
            "amount": "0.01",
            **({"price": price} if price else {}),
        }

    entry = record(Purpose.ENTRY, OrderState.FILLED)
    stop = record(Purpose.STOP, OrderState.OPEN)
    statuses: dict[str, dict[str, Any]] = {
        "no entry yet": {"phase": "Pending"},
        "market entry intended": {"phase": "Pending", "entryOrder": record(Purpose.ENTRY, OrderState.INTENDED)},
        "limit entry resting": {"phase": "EntryPlaced", "entryOrder": record(Purpose.ENTRY, OrderState.OPEN, "60000")},
        "protected": {"phase": "Protected", "entryOrder": entry, "stopOrder": stop},
        "protected, stop intended": {
            "phase": "Protected",
            "entryOrder": entry,
            "stopOrder": record(Purpose.STOP, OrderState.INTENDED),
        },
        "protected, close asked for": {"phase": "Protected", "entryOrder": entry, "stopOrder": stop},
        "closing": {"phase": "Closing", "entryOrder": entry},
        "close intended": {
            "phase": "Protected",
            "entryOrder": entry,
            "stopOrder": stop,
            "closeOrder": record(Purpose.CLOSE, OrderState.INTENDED),
        },
        "closed": {"phase": "Closed", "entryOrder": entry, "closeOrder": record(Purpose.CLOSE, OrderState.FILLED)},
    }
    assert has_regular_orders(spec, PositionStatus.model_validate(statuses[case])) is needs


def snap(
    taken_at: float, size: str = "0.01", stop_state: OrderState = OrderState.OPEN, mark: str = "65000"
) -> Snapshot:
    stop = client_order_id("uid-a", Purpose.STOP, 1)
    orders = {stop: OpenOrder(BTC, "sell", ObservedOrder(stop, "9", OrderState.OPEN, Decimal("0.01"), Decimal(0)))}
    return Snapshot(taken_at, {(BTC, Side.LONG): Decimal(size)}, {}, orders, {BTC: Decimal(mark), ETH: Decimal(3000)})


EVERY_MOVE = MarkWatch()


def observer(gateway: Any, **options: Any) -> AccountObserver:
    return AccountObserver("ns/paper", gateway, lambda: True, **({"floor_seconds": 3600} | options))


def watcher(
    uid: str, symbol: str = BTC, follows_mark: MarkWatch | None = None, regular_orders: bool = False
) -> Watcher:
    return Watcher(
        symbol, Side.LONG, client_id_prefix(uid), follows_mark, asyncio.Event(), regular_orders=regular_orders
    )


async def test_concurrent_asks_share_one_read_and_wake_only_changed_positions() -> None:
    gateway = FakeGateway(snapshots=[snap(10.0), snap(20.0, mark="65100"), snap(30.0, size="0")])
    obs = observer(gateway)
    a, b, c = watcher("uid-a"), watcher("uid-b", ETH), watcher("uid-c", follows_mark=EVERY_MOVE)
    for uid, w in (("uid-a", a), ("uid-b", b), ("uid-c", c)):
        obs.watch(uid, w)
    got = await asyncio.gather(*(obs.snapshot(BTC, 0.0) for _ in range(20)))
    assert gateway.reads == 1 and {s.taken_at for s in got} == {10.0}
    assert gateway.symbols_asked == [frozenset({BTC, ETH})]
    assert a.wake.is_set() and b.wake.is_set() and c.wake.is_set()  # first sight wakes everyone
    for w in (a, b, c):
        w.wake.clear()
    await obs.refresh()  # only the mark moved: only the Position that follows it wakes
    assert (a.wake.is_set(), b.wake.is_set(), c.wake.is_set()) == (False, False, True)
    c.wake.clear()
    await obs.refresh()  # the stop's position is gone: its owner wakes, the ETH Position does not
    assert (a.wake.is_set(), b.wake.is_set()) == (True, False)
    await obs.close()


async def test_a_valued_position_wakes_for_its_mark_only_once_its_valuation_is_due_and_moved() -> None:
    gateway = FakeGateway(snapshots=[snap(10.0), snap(20.0, mark="65000.1"), snap(30.0, mark="65000.2")])
    obs = observer(gateway)
    now = time.monotonic()
    later = watcher("uid-a")
    later.revaluation = Revaluation(Decimal("65000"), Decimal("0.1"), now + 3600)  # not due for an hour
    due = watcher("uid-b")
    due.revaluation = Revaluation(Decimal("65000"), Decimal("0.1"), now - 1)
    obs.watch("uid-a", later)
    obs.watch("uid-b", due)
    await obs.refresh()
    for w in (later, due):
        w.wake.clear()
    await obs.refresh()  # a tick's move is not more than a tick
    assert (later.wake.is_set(), due.wake.is_set()) == (False, False)
    await obs.refresh()  # two ticks: the due one wakes, the other is not due however far the mark went
    assert (later.wake.is_set(), due.wake.is_set()) == (False, True)
    # Its pass may refresh it, once; other passes (an idle re-check) may not.
    assert (obs.revaluing("uid-b"), obs.revaluing("uid-b"), obs.revaluing("uid-a")) == (True, False, False)
    await obs.close()


def test_the_valuation_budget_lets_so_many_writes_a_second_through() -> None:
    budget = ValuationBudget(2.0)
    assert [budget.take(100.0) for _ in range(3)] == [True, True, False]  # a burst of one second's worth
    assert budget.take(100.4) is False and budget.take(100.5) is True  # then one every half second
    unbounded = ValuationBudget(math.inf)
    assert all(unbounded.take(100.0) for _ in range(1000))


async def test_revaluations_past_the_budget_wait_for_a_later_snapshot() -> None:
    gateway = FakeGateway(snapshots=[snap(10.0), snap(20.0, mark="65001"), snap(30.0, mark="65002")])
    obs = observer(gateway, valuations=ValuationBudget(1e-9))  # one token, then none for ages
    due = [watcher(uid) for uid in ("uid-a", "uid-b")]
    for uid, w in zip(("uid-a", "uid-b"), due, strict=True):
        w.revaluation = Revaluation(Decimal("65000"), Decimal("0.1"), time.monotonic() - 1)
        obs.watch(uid, w)
    await obs.refresh()  # first sight wakes both (not a revaluation)
    for w in due:
        w.wake.clear()
    await obs.refresh()
    assert sum(w.wake.is_set() for w in due) == 1  # the one token
    await obs.close()


async def test_a_position_that_acted_gets_a_newer_snapshot_and_a_failure_is_not_retried_per_caller() -> None:
    # The prepared reads were taken before the failed one below, on its clock (which reads a few seconds on a
    # machine booted moments ago: t is then below zero, and no "never acted" default may stand for 0.0).
    t = time.monotonic() - 60
    gateway = FakeGateway(snapshots=[snap(t + 10), snap(t + 50)])
    obs = observer(gateway)
    obs.watch("uid-a", watcher("uid-a"))
    assert (await obs.snapshot(BTC, t)).taken_at == t + 10
    assert (await obs.snapshot(BTC, t)).taken_at == t + 10 and gateway.reads == 1
    assert (await obs.snapshot(BTC, t + 40)).taken_at == t + 50 and gateway.reads == 2
    gateway.fail = True
    with pytest.raises(ccxt.NetworkError):
        await obs.refresh()
    failed_at = obs._failed[0] if obs._failed else 0.0
    with pytest.raises(ccxt.NetworkError):
        await asyncio.gather(*(obs.snapshot(BTC, failed_at) for _ in range(10)))
    assert gateway.reads == 3  # ten callers, no new request
    await obs.close()


async def test_a_position_whose_orders_all_ended_reads_its_symbol_alone_after_acting() -> None:
    gateway = FakeGateway(snapshots=[snap(0.0)], clock=time.monotonic)
    obs = observer(gateway)
    obs.watch("uid-a", watcher("uid-a"))
    obs.watch("uid-b", watcher("uid-b", ETH))
    shared = await obs.snapshot(BTC, 0.0)
    assert gateway.symbols_asked == [frozenset({BTC, ETH})] and gateway.every_position == [True]
    acted_at = time.monotonic()  # a market entry was sent (and filled) after the shared read, still fresh enough
    got = await asyncio.gather(*(obs.snapshot(BTC, shared.taken_at, acted_at, answered=True) for _ in range(5)))
    assert {s.taken_at for s in got} == {got[0].taken_at} and got[0].taken_at >= acted_at
    assert gateway.symbols_asked[1:] == [frozenset({BTC})]
    assert gateway.every_position[1:] == gateway.orders[1:] == [False]  # its position and mark, in one trip
    assert obs.latest is shared  # it says nothing of ETH, nor of open orders: never shared as the account's
    # Taken after the send already: asked again, it is not read again; a later send needs a later read.
    assert (await obs.snapshot(BTC, shared.taken_at, acted_at, answered=True)) is got[0] and gateway.reads == 2
    assert (await obs.snapshot(BTC, shared.taken_at, time.monotonic(), answered=True)).taken_at > got[0].taken_at
    # An order that may still change (a limit entry resting) needs the account's read, shared from then on.
    after = await obs.snapshot(BTC, shared.taken_at, time.monotonic())
    assert after is obs.latest and gateway.every_position[-1] is True and gateway.orders[-1] is True
    # So does one without a usable shared snapshot (too old).
    assert (await obs.snapshot(BTC, time.monotonic(), acted_at, answered=True)).symbols == frozenset({BTC, ETH})
    await obs.close()


async def test_an_older_failure_does_not_stand_in_for_a_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # A refused read (a 418 in a chaos run) must not hold a Position that needs a newer snapshot (to re-place a
    # refused stop) until the timed cycle reads again: after the back-off, its ask reads, once for all callers.
    monkeypatch.setattr(observer_module, "_FAILURE_BACKOFF_SECONDS", 0.05)
    gateway = FakeGateway(snapshots=[snap(0.0)], clock=time.monotonic)
    obs = observer(gateway)
    obs.watch("uid-a", watcher("uid-a"))
    acted_at = time.monotonic()
    gateway.fail = True
    with pytest.raises(ccxt.NetworkError):
        await obs.snapshot(BTC, 0.0, acted_at)
    with pytest.raises(ccxt.NetworkError):
        await asyncio.gather(*(obs.snapshot(BTC, 0.0, acted_at) for _ in range(10)))
    assert gateway.reads == 1  # within the back-off: the failure answers them all
    gateway.fail = False
    await asyncio.sleep(0.06)
    got = await asyncio.gather(*(obs.snapshot(BTC, 0.0, acted_at) for _ in range(10)))
    assert gateway.reads == 2 and all(s.taken_at >= acted_at for s in got)
    # The same for a Position's read of its own symbol (a market entry that filled).
    shared, acted_at = obs.latest, time.monotonic()
    assert shared is not None
    gateway.fail = True
    for _ in range(2):
        with pytest.raises(ccxt.NetworkError):
            await obs.snapshot(BTC, shared.taken_at, acted_at, answered=True)
    assert gateway.reads == 3
    gateway.fail = False
    await asyncio.sleep(0.06)
    assert (await obs.snapshot(BTC, shared.taken_at, acted_at, answered=True)).taken_at >= acted_at
    assert gateway.reads == 4 and gateway.every_position[-1] is False
    await obs.close()


async def test_a_position_that_sent_an_order_is_woken_by_the_next_snapshot_even_if_its_slice_looks_unchanged() -> None:
    # Its stop was placed and then cancelled by the venue between two snapshots: the slice is as it was.
    gateway = FakeGateway(snapshots=[snap(10.0), snap(20.0), snap(40.0)])
    obs = observer(gateway)
    a = watcher("uid-a")
    obs.watch("uid-a", a)
    await obs.refresh()
    a.wake.clear()
    a.acted_at = 30.0  # as obs.acted("uid-a") sets it, on a clock the prepared snapshots share
    await obs.refresh()  # began before the send: says nothing about it
    assert not a.wake.is_set()
    await obs.refresh()
    assert a.wake.is_set() and a.acted_at is None
    a.wake.clear()
    await obs.refresh()  # and only once
    assert not a.wake.is_set()
    obs.acted("uid-a")
    assert a.acted_at is not None
    await obs.close()


async def test_pushes_are_answered_at_once_but_never_spend_more_than_the_weight_budget() -> None:
    gateway = FakeGateway(snapshots=[snap(10.0)])
    # One cycle of one symbol weighs 8: a budget of 8 a second, and no timed cycle within the test.
    obs = observer(gateway, weight_per_minute=8 * 60)
    obs.watch("uid-a", watcher("uid-a"))
    for _ in range(75):  # 1.5 s of pushes, 50 a second
        obs.poke()
        await asyncio.sleep(0.02)
    await obs.close()
    # The first read, the burst of three cycles, then one a second: pushes were answered, and within budget.
    assert 3 <= gateway.reads <= 1 + 3 + 2


def resting_entry() -> tuple[str, dict[str, OpenOrder], Snapshot]:
    """uid-a's limit entry resting on the book, and a snapshot that lists it."""
    entry = client_order_id("uid-a", Purpose.ENTRY)
    resting = {entry: OpenOrder(BTC, "buy", ObservedOrder(entry, "7", OrderState.OPEN, Decimal("0.01"), Decimal(0)))}
    before = snap(10.0)
    before.open_orders.update(resting)
    return entry, resting, before


async def test_without_the_stream_a_resting_entry_is_peeked_at_and_its_fill_starts_a_read() -> None:
    _, resting, before = resting_entry()
    gateway = FakeGateway(snapshots=[before, snap(20.0)], clock=time.monotonic, resting=dict(resting))
    obs = observer(gateway, weight_per_minute=600)
    a = watcher("uid-a")
    a.resting = True
    obs.watch("uid-a", a)
    await asyncio.sleep(1.2)  # the first read, then two peeks that find the entry still resting
    assert gateway.reads == 1 and gateway.peeks >= 2
    gateway.resting = {}  # it filled
    await asyncio.sleep(0.7)
    await obs.close()
    assert gateway.reads == 2


@pytest.mark.parametrize(
    ("found", "woken_before_a_read"),
    [
        (OrderState.FILLED, True),  # the look-up's answer is what its stop needs, as a push would be
        (OrderState.CANCELED, False),  # anything else is read at once, as before
        (None, False),
    ],
)
async def test_without_the_stream_an_entry_that_left_the_book_is_looked_up_and_a_full_fill_wakes_it_at_once(
    found: OrderState | None, woken_before_a_read: bool
) -> None:
    entry, resting, before = resting_entry()
    gateway = FakeGateway(snapshots=[before, snap(20.0)], clock=time.monotonic, resting=dict(resting))
    if found is not None:
        filled = Decimal("0.01") if found is OrderState.FILLED else Decimal(0)
        gateway.found[entry] = ObservedOrder(entry, "7", found, Decimal("0.01"), filled)
    obs = observer(gateway, weight_per_minute=600)  # a peek every 0.5 s; no timed read within the test
    a = watcher("uid-a")
    a.resting = True
    obs.watch("uid-a", a)
    await asyncio.sleep(0.7)
    assert gateway.reads == 1 and gateway.peeks >= 1 and not gateway.lookups
    a.wake.clear()
    gateway.resting = {}  # it left the book
    for _ in range(100):
        await asyncio.sleep(0.005)
        if a.wake.is_set():
            break
    await obs.close()
    assert gateway.lookups == [entry]
    assert a.wake.is_set()
    assert (gateway.reads == 1) is woken_before_a_read


async def test_a_peek_that_fails_unexpectedly_is_logged_read_after_and_the_cycle_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, resting, before = resting_entry()
    gateway = FakeGateway(snapshots=[before], clock=time.monotonic, resting=dict(resting))
    obs = observer(gateway, weight_per_minute=600)  # a peek every 0.5 s; no timed read within the test
    a = watcher("uid-a")
    a.resting = True
    obs.watch("uid-a", a)
    await asyncio.sleep(0.1)
    gateway.peek_error = KeyError("a shape the adapter did not expect")
    await asyncio.sleep(1.2)
    await obs.close()
    assert gateway.reads >= gateway.peeks >= 2  # each failed peek is read after (the first read too), and peeks go on
    assert "peeking at ns/paper failed" in caplog.text


async def test_without_the_stream_peeks_go_on_while_the_budget_is_spent_and_a_fill_is_read_at_once() -> None:
    # Trailing stops' asks keep the budget spent: the timed read waits for it, and the peeks go on meanwhile;
    # the fill one finds is read without waiting for the budget.
    _, resting, before = resting_entry()
    gateway = FakeGateway(snapshots=[before, before, snap(20.0)], clock=time.monotonic, resting=dict(resting))
    obs = observer(gateway, weight_per_minute=8 * 60)  # one cycle's weight a second; a peek every 0.5 s
    a = watcher("uid-a")
    a.resting = True
    obs.watch("uid-a", a)
    await asyncio.sleep(0.05)
    await obs.refresh()  # a Position's own ask, and then as if many more: the next timed read waits 20 s
    obs._tokens = -150.0
    await asyncio.sleep(1.2)
    assert gateway.reads == 2 and gateway.peeks >= 2
    a.wake.clear()
    gateway.resting = {}  # it filled
    await asyncio.sleep(0.7)
    assert gateway.reads == 3 and a.wake.is_set()
    await obs.close()


@dataclass
class Connection:
    """A ccxt.pro websocket connection as the observer reads it: open or not, and its last frame (ms)."""

    last_message_at: float | None = None
    shut: bool = False

    def closed(self) -> bool:
        return self.shut


@dataclass
class PushedEvents:
    """ccxt.pro's user-data stream as the observer sees it: each watch answers with what was pushed."""

    orders: asyncio.Queue[list[dict[str, Any]] | ccxt.BaseError] = field(default_factory=asyncio.Queue)
    positions: asyncio.Queue[list[dict[str, Any]]] = field(default_factory=asyncio.Queue)
    clients: dict[str, Connection] = field(default_factory=dict)
    streaming: dict[str, Any] = field(default_factory=dict)
    marks: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    mark_symbols: list[list[str]] = field(default_factory=list)

    async def watch_mark_prices(self, symbols: list[str]) -> dict[str, Any]:
        self.mark_symbols.append(symbols)
        return await self.marks.get()

    async def watch_orders(self) -> list[dict[str, Any]]:
        pushed = await self.orders.get()
        if isinstance(pushed, ccxt.BaseError):
            raise pushed  # the connection broke
        return pushed

    async def watch_positions(self) -> list[dict[str, Any]]:
        return await self.positions.get()

    async def close(self) -> None:
        pass


async def test_a_push_that_changes_exposure_or_protection_is_read_at_once_and_others_wait_for_the_budget() -> None:
    entry = client_order_id("uid-a", Purpose.ENTRY)
    stop, old_stop = client_order_id("uid-a", Purpose.STOP, 2), client_order_id("uid-a", Purpose.STOP, 1)
    gateway = FakeGateway(snapshots=[snap(10.0)], clock=time.monotonic)
    stream = PushedEvents()
    obs = observer(gateway, weight_per_minute=8, stream_client=stream)  # one cycle's weight a minute
    a = watcher("uid-a")
    a.protecting = frozenset({stop})
    obs.watch("uid-a", a)
    await asyncio.sleep(0.05)
    for _ in range(3):
        await obs.refresh()
    reads = gateway.reads

    async def pushed(orders: list[dict[str, Any]] | None = None, positions: list[dict[str, Any]] | None = None) -> int:
        await (stream.orders if orders is not None else stream.positions).put(orders or positions or [])
        await asyncio.sleep(0.15)
        return gateway.reads - reads

    # Nothing a stop must follow at once: the budget is spent, the timed cycle answers these.
    assert await pushed([{"clientOrderId": old_stop, "status": "canceled", "filled": 0.0}]) == 0  # being replaced
    assert await pushed([{"clientOrderId": "someone-else", "status": "closed", "filled": 1.0}]) == 0
    assert await pushed([{"clientOrderId": entry, "status": "open", "filled": 0.0}]) == 0
    assert await pushed([{"clientOrderId": stop, "status": "open", "filled": 0.0}]) == 0
    assert await pushed(positions=[{"symbol": BTC, "side": "long", "contracts": 0.01}]) == 0  # as it was
    assert await pushed(positions=[{"symbol": ETH, "side": None, "contracts": 0.0}]) == 0  # nobody's
    # An entry's fill, its protecting stop gone, its position smaller: each read at once.
    assert await pushed([{"clientOrderId": entry, "status": "closed", "filled": 0.01}]) == 1
    assert await pushed([{"clientOrderId": stop, "status": "closed", "filled": 0.0}]) == 2  # triggered
    assert await pushed(positions=[{"symbol": BTC, "side": "long", "contracts": 0.005}]) == 3
    # Flat: woken by the push itself, the gateway keeping it; the read waits for the budget.
    a.wake.clear()
    assert await pushed(positions=[{"symbol": BTC, "side": None, "contracts": 0.0}]) == 3
    assert a.wake.is_set()
    assert gateway.positions_pushed[-1] == PushedPosition(BTC, None, Decimal(0))
    # Its stop cancelled by the venue: the push itself wakes it, no read first.
    a.wake.clear()
    venue_cancelled = {"caid": stop, "aid": 7, "X": "CANCELED", "q": "0.01", "tp": "60000", "ai": ""}
    assert await pushed([{"clientOrderId": stop, "status": "canceled", "filled": 0.0, "info": venue_cancelled}]) == 3
    assert a.wake.is_set()
    # Its entry filled in full (ORDER_TRADE_UPDATE): the push is what the stop needs, as an answer is; no read first.
    a.wake.clear()
    filled = {"c": entry, "i": 5, "X": "FILLED", "q": "0.01", "z": "0.01", "ap": "65000"}
    assert await pushed([{"clientOrderId": entry, "status": "closed", "filled": 0.01, "info": filled}]) == 3
    assert a.wake.is_set()
    await obs.close()


async def test_pushes_that_only_confirm_a_positions_own_placements_and_cancels_ask_for_no_read() -> None:
    old_stop, stop = client_order_id("uid-a", Purpose.STOP, 1), client_order_id("uid-a", Purpose.STOP, 2)
    take_profit = client_order_id("uid-a", Purpose.TAKE_PROFIT, 1)
    gateway = FakeGateway(snapshots=[snap(10.0)], clock=time.monotonic)
    stream = PushedEvents()
    obs = observer(gateway, weight_per_minute=8 * 6000, stream_client=stream)  # pushes are read at once
    a = watcher("uid-a")
    a.protecting = frozenset({old_stop})
    obs.watch("uid-a", a)
    await obs.refresh()

    async def reads_after(*orders: dict[str, Any]) -> int:
        reads = gateway.reads
        await stream.orders.put(list(orders))
        await asyncio.sleep(0.15)
        return gateway.reads - reads

    def cancelled(client_id: str, filled: str = "0") -> dict[str, Any]:
        info = {"caid": client_id, "aid": 7, "X": "CANCELED", "q": "0.01", "tp": "60000", "ai": ""}
        return {"clientOrderId": client_id, "status": "canceled", "filled": float(filled), "info": info}

    resting = {"clientOrderId": stop, "status": "open", "filled": 0.0}
    # A trailing move: the new stop placed, then the old one cancelled; both pushes are the Position's own news.
    obs.sending(stop, placing=True)
    obs.sending(old_stop, placing=False)
    a.wake.clear()
    assert await reads_after(resting, cancelled(old_stop)) == 0
    assert not a.wake.is_set()
    # Once only: the same push again, or one nobody sent, is news (the timed reads would otherwise wait for it).
    assert await reads_after(resting) == 1
    assert await reads_after(cancelled(stop)) == 1
    # A cancel that found the order filled, or an order placed that the push says is gone, is news too.
    obs.sending(take_profit, placing=False)
    assert await reads_after(cancelled(take_profit, filled="0.01")) == 1
    obs.sending(take_profit, placing=True)
    assert await reads_after(cancelled(take_profit)) == 1
    await obs.close()


def test_binance_tells_a_pushed_cancel_with_nothing_filled_from_a_trigger_and_a_fill() -> None:
    gateway = binanceusdm.BinanceUsdm(None)
    stop, entry = client_order_id("uid-a", Purpose.STOP, 1), client_order_id("uid-a", Purpose.ENTRY)
    algo = {"caid": stop, "aid": 7, "q": "0.01", "tp": "60000", "ai": ""}
    assert gateway.pushed_cancel({"info": {**algo, "X": "CANCELED"}})  # ALGO_UPDATE
    assert gateway.ended(stop) is not None  # kept like an answer: the next observation has it with no read
    assert not gateway.pushed_cancel({"info": {**algo, "X": "TRIGGERED"}})
    assert not gateway.pushed_cancel({"info": {**algo, "X": "NEW"}})
    regular = {"c": entry, "i": 5, "q": "0.01", "ap": "0"}  # ORDER_TRADE_UPDATE
    assert gateway.pushed_cancel({"info": {**regular, "X": "CANCELED", "z": "0"}})
    assert not gateway.pushed_cancel({"info": {**regular, "X": "CANCELED", "z": "0.004"}})
    assert not gateway.pushed_cancel({"info": {**regular, "X": "FILLED", "z": "0.01", "ap": "65000"}})


async def test_a_read_a_push_called_for_happens_once_even_if_its_position_is_gone_by_then() -> None:
    gateway = FakeGateway(snapshots=[snap(10.0)], clock=time.monotonic)
    obs = observer(gateway)
    obs.watch("uid-a", watcher("uid-a", ETH))
    await obs.refresh()
    obs.unwatch("uid-a")  # it closed between the push and the read
    obs.watch("uid-b", watcher("uid-b"))
    reads = gateway.reads
    await asyncio.wait_for(obs._read_after(time.monotonic()), 1.0)  # no ETH in it, and no loop waiting for one
    assert gateway.reads == reads + 1 and gateway.symbols_asked[-1] == frozenset({BTC})
    await obs.close()


async def test_what_actions_weigh_holds_back_the_timed_reads_so_the_weight_stays_flat() -> None:
    cancel = CancelOrder(client_order_id("uid-a", Purpose.STOP, 1), Purpose.STOP)
    place = PlaceStopOrder(client_order_id("uid-a", Purpose.STOP, 2), OrderSide.SELL, Decimal("0.01"), Decimal(1))
    assert (request_weight(place), request_weight(cancel)) == (0, 1)  # orders count against other limits
    reads, waits = [], []
    for moves in (0, 8, 1000):  # a trailing stop moved: each move placed a stop and cancelled the one before
        # A read (8) a second: a resting entry's regular orders and the mark of a symbol with no position yet.
        gateway = FakeGateway(snapshots=[snap(10.0, size="0")], clock=time.monotonic)
        obs = observer(gateway, weight_per_minute=8 * 60, floor_seconds=0.5)
        obs.watch("uid-a", watcher("uid-a", regular_orders=True))
        await asyncio.sleep(0.05)  # the first read
        for _ in range(moves):
            obs.spent(request_weight(place))
            obs.spent(request_weight(cancel))
        waits.append(round(obs._budget_wait(), 1))  # what a read a push calls for waits
        await asyncio.sleep(2.5)
        reads.append(gateway.reads)
        await obs.close()
    # 8 cancels pushed the timed reads 1 s later; a thousand, 3 s (four intervals at most), not 1,000 s. Pushes'
    # reads pay from the bucket: the first read left 16 of its 24; a thousand cancels leave it 24 in debt.
    assert reads == [3, 2, 1]
    assert waits == [0.0, 0.0, 4.0]


async def test_what_actions_weigh_is_paid_before_the_reads_that_pushes_call_for() -> None:
    gateway = FakeGateway(snapshots=[snap(10.0)])
    obs = observer(gateway, weight_per_minute=8 * 60)  # a read (8) a second
    obs.watch("uid-a", watcher("uid-a"))
    await asyncio.sleep(0.05)
    for tick in range(150):  # 3 s of pushes every 20 ms, and of cancels at three quarters of the budget
        obs.poke()
        if tick % 8 == 0:
            obs.spent(1)
        await asyncio.sleep(0.02)
    await obs.close()
    # 24 in the bucket at first and 8 a second after: 48 in all, of which the cancels took 19; what is left pays
    # for three reads besides the first. Unpaid cancels (spent while a read waited) let it read five times.
    assert 3 <= gateway.reads <= 4


async def test_a_burst_of_positions_own_asks_never_holds_back_the_next_push_by_more_than_one_interval() -> None:
    gateway = FakeGateway(snapshots=[snap(10.0)])
    obs = observer(gateway, weight_per_minute=8 * 60)  # one cycle's weight a second
    obs.watch("uid-a", watcher("uid-a"))
    await asyncio.sleep(0.05)
    for _ in range(10):  # ten entries, each asking for a snapshot taken after it
        await obs.refresh()
    assert obs._budget_wait() <= 1.0
    await obs.close()


async def test_a_replaced_observer_serves_a_late_pass_but_never_cycles_again() -> None:
    gateway = FakeGateway(snapshots=[snap(10.0)])
    obs = observer(gateway, floor_seconds=0.01)
    obs.watch("uid-a", watcher("uid-a"))
    await obs.close()
    obs.watch("uid-a", watcher("uid-a"))  # a pass that still holds the replaced account
    assert (await obs.snapshot(BTC, 0.0)).taken_at == 10.0
    reads = gateway.reads
    await asyncio.sleep(0.1)  # ten timed cycles' worth
    assert gateway.reads == reads and not obs._tasks


NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def position(**overrides: object) -> PositionSpec:
    base: dict[str, object] = {
        "accountRef": {"name": "paper"},
        "symbol": BTC,
        "side": "long",
        "amount": "0.010",
        "stopLoss": {"price": "60000"},
    }
    return PositionSpec.model_validate(base | overrides)


def status(phase: Phase, **fields: object) -> PositionStatus:
    return PositionStatus.model_validate({"phase": phase.value, **fields})


def synced(flag: ConditionStatus) -> dict[str, object]:
    return {
        "type": ConditionType.SYNCED.value,
        "status": flag.value,
        "reason": "r",
        "lastTransitionTime": NOW.isoformat(),
    }


def open_stop(state: OrderState) -> dict[str, object]:
    return {"clientOrderId": client_order_id("u", Purpose.STOP, 1), "state": state.value, "amount": "0.01"}


EMULATED = position(trailingStop={"callbackPercent": "1", "mode": "emulated"})


def trailed(seconds_ago: float) -> dict[str, object]:
    """An active emulated trailing stop that last moved ``seconds_ago``."""
    moved = NOW - timedelta(seconds=seconds_ago)
    return {"activated": True, "highWaterMark": "66000", "lastMoveAt": moved.isoformat()}


RESTING_ENTRY = {
    "clientOrderId": client_order_id("u", Purpose.ENTRY),
    "state": OrderState.OPEN.value,
    "amount": "0.02",
    "price": "64000",
    "filled": "0.01",
}


@pytest.mark.parametrize(
    ("the_spec", "the_status", "expected"),
    [
        (position(), status(Phase.PROTECTED, stopOrder=open_stop(OrderState.OPEN)), 10.0),
        (position(), status(Phase.PROTECTED, stopOrder=open_stop(OrderState.INTENDED)), 1.0),
        (position(), status(Phase.PENDING), 1.0),
        (position(), status(Phase.CLOSING), 1.0),
        (EMULATED, status(Phase.PROTECTED), 1.0),  # not active yet: any mark may activate it
        (  # active: only a new best mark moves it, and the observer wakes it for that
            EMULATED,
            status(Phase.PROTECTED, stopOrder=open_stop(OrderState.OPEN), trailing=trailed(seconds_ago=60)),
            10.0,
        ),
        (  # moved 0.5 s ago: a new best mark meanwhile is held back by its pace, then moves it
            EMULATED,
            status(Phase.PROTECTED, stopOrder=open_stop(OrderState.OPEN), trailing=trailed(seconds_ago=0.5)),
            1.5,
        ),
        (  # a breakeven it still waits for follows every move
            position(
                trailingStop={"callbackPercent": "1", "mode": "emulated"},
                stopLoss={"price": "60000", "breakeven": {"afterPercent": "1"}},
            ),
            status(Phase.PROTECTED, stopOrder=open_stop(OrderState.OPEN), trailing=trailed(seconds_ago=60)),
            1.0,
        ),
        (position(), status(Phase.PROTECTED, retryAfter=(NOW + timedelta(seconds=4)).isoformat()), 4.0),
        (  # its last look failed: it looks again soon, not after the safety net's wait
            position(),
            status(Phase.PROTECTED, stopOrder=open_stop(OrderState.OPEN), conditions=[synced(ConditionStatus.FALSE)]),
            1.0,
        ),
        (
            position(),
            status(Phase.PROTECTED, stopOrder=open_stop(OrderState.OPEN), conditions=[synced(ConditionStatus.TRUE)]),
            10.0,
        ),
        (  # a refused stop is tried again when its retry is due, however soon
            position(),
            status(
                Phase.ENTRY_PLACED,
                stopOrder=open_stop(OrderState.INTENDED),
                retryAfter=(NOW + timedelta(milliseconds=300)).isoformat(),
            ),
            0.3,
        ),
        (position(), status(Phase.CLOSING, retryAfter=(NOW + timedelta(seconds=4)).isoformat()), 1.0),
        (
            position(entry={"type": "limit", "price": "64000", "expireAfter": "30s"}),
            status(
                Phase.ENTRY_PLACED, entryOrder=RESTING_ENTRY, entryPlacedAt=(NOW - timedelta(seconds=25)).isoformat()
            ),
            5.0,
        ),
        (  # the stop recorded with a resting entry goes out on its fill, which wakes it: the safety net's wait
            position(entry={"type": "limit", "price": "64000"}),
            status(
                Phase.ENTRY_PLACED,
                entryOrder=RESTING_ENTRY | {"filled": "0"},
                stopOrder=open_stop(OrderState.INTENDED),
            ),
            10.0,
        ),
        (  # once the entry has a fill, that stop is due
            position(entry={"type": "limit", "price": "64000"}),
            status(Phase.ENTRY_PLACED, entryOrder=RESTING_ENTRY, stopOrder=open_stop(OrderState.INTENDED)),
            1.0,
        ),
        (  # partly filled and protected, the rest of the entry still rests until it expires
            position(entry={"type": "limit", "price": "64000", "expireAfter": "30s"}),
            status(
                Phase.PROTECTED,
                entryOrder=RESTING_ENTRY,
                stopOrder=open_stop(OrderState.OPEN),
                entryPlacedAt=(NOW - timedelta(seconds=25)).isoformat(),
            ),
            5.0,
        ),
    ],
)
def test_recheck_after(the_spec: PositionSpec, the_status: PositionStatus, expected: float) -> None:
    assert recheck_after(the_spec, the_status, NOW, idle=10.0, busy=1.0) == pytest.approx(expected)


def test_recheck_never_below_busy() -> None:
    late = status(Phase.PROTECTED, retryAfter=(NOW - timedelta(seconds=4)).isoformat())
    assert recheck_after(position(), late, NOW, idle=10.0, busy=1.0) == 1.0


# --- reads as a safety net while the stream is alive ------------------------------------------------


def _now_ms() -> float:
    return time.time() * 1000


async def test_a_live_stream_slows_the_timed_reads_to_the_safety_net_and_a_quiet_one_restores_them() -> None:
    stream = PushedEvents()
    obs = observer(FakeGateway(), weight_per_minute=360, safety_weight_per_minute=24, stream_client=stream)
    obs.floor_seconds = 1.0
    assert stream.streaming == {"keepAlive": 10_000}  # ccxt pings at the keep-alive
    obs.watch("uid-a", watcher("uid-a"))
    one = cycle_weight(1, regular=0)  # no read yet: no position known to carry the mark
    full = cycle_interval(one, 360, 1.0)
    assert not obs.stream_alive() and obs.interval() == full  # not connected yet: nothing proves it
    stream.clients["ws"] = Connection(_now_ms())  # a pong just came
    assert obs.stream_alive() and obs.interval() == pytest.approx(one * 60 / 24)
    stream.clients["ws"].last_message_at = _now_ms() - 16_000  # quiet for more than 1.5 keep-alives
    assert not obs.stream_alive() and obs.interval() == full
    stream.clients["ws"] = Connection(_now_ms(), shut=True)
    assert not obs.stream_alive()
    stream.clients["ws"] = Connection(_now_ms())
    obs.watch("uid-b", watcher("uid-b", ETH, follows_mark=EVERY_MOVE))  # an emulated trailing stop needs the marks
    assert obs.stream_alive() and obs.interval() == cycle_interval(cycle_weight(2, regular=0), 360, 1.0)
    await obs.close()


async def test_a_broken_stream_tells_the_gateway_that_pushes_may_have_been_missed() -> None:
    """So it no longer tells an outside close by the trades pushed before the break (``VenueGateway.pushed_exit``)."""
    gateway = FakeGateway(snapshots=[snap(10.0)], clock=time.monotonic)
    stream = PushedEvents()
    obs = observer(gateway, stream_client=stream)
    obs.watch("uid-a", watcher("uid-a"))
    await stream.orders.put([{"clientOrderId": "someone-else", "status": "closed", "filled": 1.0}])
    await asyncio.sleep(0.05)
    assert gateway.stream_gaps == 0
    await stream.orders.put(ccxt.NetworkError("connection closed"))
    await asyncio.sleep(0.05)
    assert gateway.stream_gaps == 1
    await obs.close()


async def test_a_failed_stream_counts_as_dead_until_a_frame_comes_after_the_failure() -> None:
    stream = PushedEvents()
    obs = observer(FakeGateway(), stream_client=stream)
    stream.clients["ws"] = Connection(_now_ms() - 1000)
    assert obs.stream_alive()
    obs._stream_failed_at = time.time()  # what _follow records when a watch raises
    assert not obs.stream_alive()
    stream.clients["ws"] = Connection(_now_ms() + 1)
    assert obs.stream_alive()
    await obs.close()


async def test_the_timed_reads_resume_their_pace_within_half_a_keepalive_of_the_stream_going_quiet() -> None:
    stream = PushedEvents()
    gateway = FakeGateway(snapshots=[snap(10.0)], clock=time.monotonic)
    obs = observer(gateway, weight_per_minute=48_000, safety_weight_per_minute=1, stream_client=stream, keepalive_s=0.2)
    obs.floor_seconds = 0.05
    stream.clients["ws"] = Connection(_now_ms() + 60_000)  # alive for the next minute: reads every 8 minutes
    obs.watch("uid-a", watcher("uid-a"))
    await asyncio.sleep(0.5)
    slow = gateway.reads
    await asyncio.sleep(0.5)
    assert gateway.reads == slow  # the safety net: no read in half a second
    stream.clients["ws"].shut = True  # the connection dropped
    await asyncio.sleep(0.5)
    assert gateway.reads >= slow + 3  # back at the full pace (a read every 50 ms) within half a keep-alive
    await obs.close()


async def test_with_a_live_stream_the_sweep_runs_at_its_own_pace_or_after_a_push_nobody_watches() -> None:
    stream = PushedEvents()
    obs = observer(FakeGateway(snapshots=[snap(10.0)], clock=time.monotonic), stream_client=stream)
    obs.watch("uid-a", watcher("uid-a"))
    assert obs.sweep_due(300)  # no stream yet: every time
    stream.clients["ws"] = Connection(_now_ms() + 60_000)
    assert obs.sweep_due(300)  # never swept
    obs.swept()
    assert not obs.sweep_due(300) and obs.sweep_due(0)
    await obs.refresh()
    await stream.orders.put([{"clientOrderId": "placed-by-hand", "status": "open", "filled": 0.0}])
    await asyncio.sleep(0.05)
    assert obs.sweep_due(300)
    obs.swept()
    await stream.positions.put([{"symbol": ETH, "side": "short", "contracts": 1.0}])  # nobody's position
    await asyncio.sleep(0.05)
    assert obs.sweep_due(300)
    obs.swept()
    await stream.positions.put([{"symbol": BTC, "side": "long", "contracts": 0.01}])  # uid-a's
    await asyncio.sleep(0.05)
    assert not obs.sweep_due(300)
    await obs.close()


async def test_followed_marks_come_from_the_mark_stream_and_keep_the_reads_a_safety_net() -> None:
    stream = PushedEvents()
    gateway = FakeGateway(snapshots=[snap(10.0)], clock=time.monotonic)
    feed = MarkFeed("paper marks", stream, "watch_mark_prices", lambda: True)
    obs = observer(gateway, weight_per_minute=360, safety_weight_per_minute=24, stream_client=stream, marks=feed)
    obs.floor_seconds = 1.0
    stream.clients["ws"] = Connection(_now_ms() + 60_000)
    trailing = watcher("uid-t", follows_mark=EVERY_MOVE)
    obs.watch("uid-t", trailing)
    await obs.refresh()
    read = cycle_weight(1, regular=0, marks=0)  # the stops, and the mark with the position
    assert obs.interval() == cycle_interval(read, 360, 1.0)  # no mark pushed yet: the reads bring it
    trailing.wake.clear()
    reads = gateway.reads
    await stream.marks.put({BTC: {"symbol": BTC, "info": {"e": "markPriceUpdate", "s": "BTCUSDT", "p": "65100.10"}}})
    await asyncio.sleep(0.05)
    assert stream.mark_symbols[0] == [BTC]
    assert trailing.wake.is_set() and gateway.reads == reads  # woken by the push, nothing read
    assert obs.latest is not None and obs.latest.marks[BTC] == Decimal("65100.10")
    assert obs.interval() == pytest.approx(read * 60 / 24)  # the mark comes pushed: a safety net
    trailing.wake.clear()
    await stream.marks.put({BTC: {"symbol": BTC, "info": {"p": "65100.10"}}})  # the same mark: nobody woken
    await asyncio.sleep(0.05)
    assert not trailing.wake.is_set()
    obs._marks_at[BTC] -= 10  # the mark stream went quiet
    assert obs.interval() == cycle_interval(read, 360, 1.0)
    await obs.close()
    await feed.close()


async def test_an_active_trailing_stop_is_woken_only_by_a_new_best_mark() -> None:
    """At N = 1,000 one Position in twenty trails by emulation: woken by every move of a 1 Hz mark, fifty passes a
    second changed nothing and held up the stops that came due meanwhile. Only a mark beyond the best price moves
    the stop; breakeven and a trailing stop yet to activate still wake on any move."""
    stream = PushedEvents()
    feed = MarkFeed("paper marks", stream, "watch_mark_prices", lambda: True)
    obs = observer(FakeGateway(snapshots=[snap(10.0)], clock=time.monotonic), stream_client=stream, marks=feed)
    high, low = Decimal("65100"), Decimal("64900")  # the best prices so far of a long and of a short
    long, short = watcher("uid-l", follows_mark=MarkWatch(high)), watcher("uid-s", follows_mark=MarkWatch(low, False))
    every = watcher("uid-e", follows_mark=EVERY_MOVE)
    for w in (long, short, every):
        obs.watch(w.prefix, w)
    await obs.refresh()

    async def woken(mark: str) -> tuple[bool, bool, bool]:
        for w in (long, short, every):
            w.wake.clear()
        await stream.marks.put({BTC: {"symbol": BTC, "info": {"p": mark}}})
        await asyncio.sleep(0.05)
        return long.wake.is_set(), short.wake.is_set(), every.wake.is_set()

    assert await woken("65050") == (False, False, True)  # between the two: a new best for neither
    assert await woken("64950") == (False, False, True)
    assert await woken("64900") == (False, False, True)  # level with the short's best moves nothing
    assert await woken("64899.9") == (False, True, True)  # a new best for the short
    # Back between them: the short is woken once more, for a change since it was woken (the pass it runs re-makes
    # its watcher from the best it records); then no more.
    assert await woken("65000") == (False, True, True)
    assert await woken("65100") == (False, False, True)
    assert await woken("65100.5") == (True, False, True)  # a new best for the long
    assert await woken("65101") == (True, False, True)  # and again, until its pass records it
    await obs.close()
    await feed.close()


async def test_accounts_on_one_venue_share_one_mark_stream_and_each_takes_only_the_marks_it_follows() -> None:
    stream = PushedEvents()
    feed = MarkFeed("paper marks", stream, "watch_mark_prices", lambda: True)
    first, second = (
        observer(FakeGateway(snapshots=[snap(10.0)], clock=time.monotonic), stream_client=PushedEvents(), marks=feed)
        for _ in range(2)
    )
    on_btc, on_eth = watcher("uid-b", BTC, follows_mark=EVERY_MOVE), watcher("uid-e", ETH, follows_mark=EVERY_MOVE)
    first.watch("uid-b", on_btc)
    second.watch("uid-e", on_eth)
    await first.refresh()
    await second.refresh()
    await asyncio.sleep(0.05)
    assert stream.mark_symbols == [[BTC, ETH]]  # one subscription, for both accounts
    on_btc.wake.clear()
    on_eth.wake.clear()
    await stream.marks.put(
        {BTC: {"symbol": BTC, "info": {"p": "65100.10"}}, ETH: {"symbol": ETH, "info": {"p": "3001.5"}}}
    )
    await asyncio.sleep(0.05)
    assert first.latest is not None and second.latest is not None
    assert (first.latest.marks[BTC], first.latest.marks[ETH]) == (Decimal("65100.10"), Decimal(3000))
    assert (second.latest.marks[BTC], second.latest.marks[ETH]) == (Decimal(65000), Decimal("3001.5"))
    assert on_btc.wake.is_set() and on_eth.wake.is_set()
    await first.close()  # its account replaced or gone: the feed follows what is left
    await stream.marks.put({ETH: {"symbol": ETH, "info": {"p": "3002"}}})
    await asyncio.sleep(0.05)
    assert stream.mark_symbols[-1] == [ETH]
    await second.close()
    await feed.close()


async def test_a_failed_read_after_a_good_one_is_reported_not_hidden_by_it() -> None:
    """Safety-net reads come ~20 s apart: the last good snapshot stays fresh enough for most of a minute, but once a
    newer read failed it is no answer: the pass reports the failure (or reads again after the back-off)."""
    gateway = FakeGateway(snapshots=[snap(10.0)], clock=time.monotonic)
    obs = observer(gateway)
    obs.watch("uid-a", watcher("uid-a"))
    good = await obs.snapshot(BTC, 0.0)
    gateway.fail = True
    with pytest.raises(ccxt.NetworkError):
        await obs.refresh()
    with pytest.raises(ccxt.NetworkError):
        await obs.snapshot(BTC, 0.0)  # the good one would be fresh enough: it is not the answer any more
    gateway.fail = False
    await asyncio.sleep(observer_module._FAILURE_BACKOFF_SECONDS)
    again = await obs.snapshot(BTC, 0.0)  # after the back-off, read again
    assert again.taken_at > good.taken_at
    await obs.close()


async def test_a_read_asks_for_regular_orders_only_where_a_position_may_have_one() -> None:
    gateway = FakeGateway(snapshots=[snap(10.0)], clock=time.monotonic)
    obs = observer(gateway)
    obs.watch("uid-a", watcher("uid-a"))  # protected: its stop only
    obs.watch("uid-b", watcher("uid-b", ETH, regular_orders=True))  # a resting entry
    await obs.refresh()
    assert gateway.regular_asked == [frozenset({ETH})]
    obs.unwatch("uid-b")
    await obs.refresh()
    assert gateway.regular_asked[-1] == frozenset()
    obs.placing_regular("uid-a")  # about to send a close: every read from now on lists BTC's regular orders
    await obs.refresh()
    assert gateway.regular_asked[-1] == frozenset({BTC})
    obs.watch("uid-a", watcher("uid-a"))  # its next pass: the close filled, nothing regular left
    await obs.refresh()
    assert gateway.regular_asked[-1] == frozenset()
    await obs.close()


async def test_a_position_that_may_have_a_regular_order_never_gets_a_snapshot_that_did_not_list_them() -> None:
    unlisted = replace(snap(10.0), reads=Reads(frozenset({BTC}), frozenset(), frozenset()))
    listed = replace(snap(20.0), reads=Reads(frozenset({BTC}), frozenset({BTC}), frozenset()))
    gateway = FakeGateway(snapshots=[unlisted, listed])
    obs = observer(gateway)
    obs.watch("uid-a", watcher("uid-a"))
    assert (await obs.snapshot(BTC, 0.0)).taken_at == 10.0
    assert not unlisted.lists_regular(BTC) and listed.lists_regular(BTC) and snap(1.0).lists_regular(BTC)
    obs.watch("uid-a", watcher("uid-a", regular_orders=True))  # spec.state: Closed came
    assert (await obs.snapshot(BTC, 0.0, regular=True)).taken_at == 20.0  # absent there is not "ended"
    assert gateway.reads == 2
    await obs.close()


async def test_the_budget_pays_for_what_a_read_actually_asked_for() -> None:
    """The timed pace is set by the expected read (marks come with positions); a read that had to ask for a mark
    on its own (the position closed meanwhile) pays for it from the bucket."""
    closed = replace(snap(10.0, size="0"), reads=Reads(frozenset({BTC}), frozenset(), frozenset({BTC})))
    gateway = FakeGateway(snapshots=[snap(5.0), closed], clock=time.monotonic)
    obs = observer(gateway, weight_per_minute=60)
    obs.watch("uid-a", watcher("uid-a"))
    assert obs._cycle_weight() == cycle_weight(1, regular=0)  # no position known yet: its mark is read
    await obs.refresh()
    assert obs._cycle_weight() == cycle_weight(1, regular=0, marks=0)  # the position carries it
    before = obs._tokens_now()
    await obs.refresh()
    assert obs._tokens_now() == pytest.approx(before - cycle_weight(1, regular=0), abs=0.1)  # (a refill meanwhile)
    assert obs._cycle_weight() == cycle_weight(1, regular=0)
    await obs.close()
