"""Lifecycle behaviours on real components: partial limit entries, trailing stops, stop moves, exits Warden did not
make, risk slots, a crash in the middle of a stop move, pausing and orphaning.

Where a behaviour promises "never without a stop", a :class:`StopWatch` samples the paper exchange throughout, and
the request log shows each replacement stop accepted before the stop it replaces was cancelled.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from controller.reconcile.model import Purpose, client_order_id
from devtools.localenv.processes import Service
from devtools.localenv.stack import Stack, exchange_account_manifest
from paper.models import VenueName
from tests.e2e.audit_proof import CANCEL_ROUTES, PLACE_ROUTES
from tests.e2e.conftest import EACH_VENUE, QUICK, Trader, audit_types, position_manifest, wait_for

STOP_TYPES = frozenset({"STOP_MARKET", "STOP", "TRAILING_STOP_MARKET"})
TRADING_ROUTES = (
    PLACE_ROUTES
    | CANCEL_ROUTES
    | {
        ("DELETE", "/fapi/v1/allOpenOrders"),
        ("DELETE", "/fapi/v1/algoOpenOrders"),
        ("POST", "/v5/order/cancel-all"),
        ("POST", "/v5/order/amend"),
    }
)


POSITION_READS = {VenueName.BINANCE_USDM: "/fapi/v3/positionRisk", VenueName.BYBIT: "/v5/position/list"}
"""The account's read of its positions, per venue."""


def set_price(trader: Trader, price: str) -> None:
    trader.stack.paper_admin("/_paper/price", {"symbol": "BTCUSDT", "price": price})


def resting_stops(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reduce-only stops (plain or trailing) that rest on the exchange; take profits are not stops."""
    return [
        o
        for o in orders
        if o["kind"] == "algo" and o["status"] == "NEW" and o["type"] in STOP_TYPES and o["reduceOnly"]
    ]


def own_prefix(uid: str) -> str:
    """What every client order id of the Position starts with."""
    return client_order_id(uid, Purpose.ENTRY).rsplit("-", 1)[0]


def stop_ids(trader: Trader, uid: str) -> list[str]:
    """The Position's stop-loss client ids in the order they were made (sl1, sl2, ...)."""
    prefix = client_order_id(uid, Purpose.STOP)
    # Only the algo orders: a triggered stop's market order carries the same client id.
    ours = [
        o["clientOrderId"] for o in trader.orders() if o["kind"] == "algo" and o["clientOrderId"].startswith(prefix)
    ]
    return sorted(ours, key=lambda cid: int(cid[len(prefix) :]))


def trading_requests(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests that place or cancel orders (everything else only reads)."""
    return [r for r in log if (r["method"], r["path"]) in TRADING_ROUTES]


def assert_in_order(types: list[str], expected: list[str]) -> None:
    """``expected`` occurs in ``types`` in this order; other events may come between."""
    at = 0
    for wanted in expected:
        if wanted not in types[at:]:
            raise AssertionError(f"audit: {wanted!r} missing after {types[:at]} in {types}")
        at = types.index(wanted, at) + 1


def assert_replaced_before_cancelled(trader: Trader, stops: list[str]) -> None:
    """Each stop after the first was accepted by the exchange before its predecessor was cancelled, by
    request order (the request log's sequence) and by the exchange's own creation and cancel times."""
    log = trader.requests()
    orders = {o["clientOrderId"]: o for o in trader.orders() if o["kind"] == "algo"}

    def seqs(routes: frozenset[tuple[str, str]], cid: str) -> list[int]:
        return [
            r["seq"]
            for r in log
            if (r["method"], r["path"]) in routes and (r["clientOrderId"], r["status"]) == (cid, 200)
        ]

    for old, new in itertools.pairwise(stops):
        placed, cancelled = seqs(PLACE_ROUTES, new), seqs(CANCEL_ROUTES, old)
        assert len(placed) == 1, f"{new} was sent {len(placed)} times"
        assert len(cancelled) == 1, f"{old} was cancelled {len(cancelled)} times"
        assert placed[0] < cancelled[0], f"{old} was cancelled (request {cancelled[0]}) before {new} ({placed[0]})"
        assert orders[old]["status"] == "CANCELED"
        assert orders[new]["time"] <= orders[old]["updateTime"]


@dataclass
class StopWatch:
    """Samples, in a thread, the account's resting stops and then its exchange position, until it stops.

    Orders are read before the position: a stop that triggers between the two reads shows as no stop and a
    flat position, never as a false gap."""

    trader: Trader
    samples: list[tuple[tuple[str, ...], Decimal]] = field(default_factory=list)
    error: BaseException | None = None
    _done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            while not self._done.is_set():
                stops = tuple(o["clientOrderId"] for o in resting_stops(self.trader.orders()))
                self.samples.append((stops, self.trader.exchange_position()))
                self._done.wait(0.05)
        except BaseException as error:  # reported by assert_never_bare, in the test's thread
            self.error = error

    def stop(self) -> None:
        self._done.set()

    def assert_never_bare(self) -> None:
        """From the first resting stop on (a fill always comes before the stop that covers it)."""
        assert self.error is None, f"sampling failed: {self.error!r}"
        first = next((i for i, (stops, _) in enumerate(self.samples) if stops), len(self.samples))
        exposed = [stops for stops, position in self.samples[first:] if position != 0]
        bare = sum(1 for stops in exposed if not stops)
        assert exposed, f"never saw the position in {len(self.samples)} samples"
        assert bare == 0, f"{bare} of {len(exposed)} samples saw the position with no resting stop"


@contextmanager
def stop_watch(trader: Trader) -> Iterator[StopWatch]:
    watch = StopWatch(trader)
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        watch.stop()
        thread.join(10)
    watch.assert_never_bare()


def settled_stop(trader: Trader, name: str, amount: str, trigger: str) -> Any:
    """A probe: the Position's stop rests for ``amount`` at ``trigger`` and every replaced stop is gone."""

    def probe() -> dict[str, Any] | None:
        status = trader.status(name)
        stop = status.get("stopOrder") or {}
        settled = (
            stop.get("state") == "Open"
            and Decimal(stop.get("amount", "0")) == Decimal(amount)
            and Decimal(stop.get("triggerPrice", "0")) == Decimal(trigger)
            and not any(r["state"] in ("Open", "Intended") for r in status.get("retiredOrders", []))
        )
        return status if settled else None

    return probe


def assert_one_stop(trader: Trader, amount: str, trigger: str) -> dict[str, Any]:
    stops = resting_stops(trader.orders())
    assert len(stops) == 1, stops
    assert Decimal(stops[0]["quantity"]) == Decimal(amount)
    assert Decimal(stops[0]["triggerPrice"]) == Decimal(trigger)
    return stops[0]


def wait_for_reads(trader: Trader, since: int, count: int, service: Service) -> None:
    """Wait until the controller has sent ``count`` exchange reads since ``since`` (venue ms): proof that it kept
    observing, without a timed assertion. With the user-data stream alive the timed reads are a safety net (one
    every ~20 s: ``WARDEN_SAFETY_READ_WEIGHT_PER_MINUTE``), so two cycles' worth (4 requests each) can take 60 s."""
    wait_for(
        f"{count} exchange reads",
        lambda: sum(1 for r in trader.requests(since) if r["method"] == "GET") >= count,
        120,
        service,
    )


def venue_now(stack: Stack) -> int:
    clock = stack.paper_admin("/_paper/clock")
    assert isinstance(clock, dict)
    return int(clock["now"])


# --- 1. a limit entry that fills in parts, then expires ----------------------------------------------------


@EACH_VENUE
async def test_partly_filled_limit_entry_expires_and_stays_protected(trader: Trader, controller: Service) -> None:
    # The paper book offers 0.1 BTC per price update: 0.25 fills in parts (docs/paper-exchange.md, Depth).
    entry = {"type": "limit", "price": "64900", "expireAfter": "40s"}
    trader.apply(position_manifest("partial", amount="0.250", entry=entry))
    trader.wait_phase("partial", "EntryPlaced", controller)
    assert resting_stops(trader.orders()) == []
    with stop_watch(trader):
        for filled in ("0.100", "0.200"):
            set_price(trader, "64900")
            status = wait_for(f"the stop to cover {filled}", settled_stop(trader, "partial", filled, "63000"), 60)
            assert Decimal(status["filled"]) == Decimal(filled)
            assert trader.exchange_position() == Decimal(filled)
            assert_one_stop(trader, filled, "63000")  # exactly the filled part, no more, no less
            trader.wait_phase("partial", "Protected", controller)
        expired = wait_for(
            "the unfilled rest to expire",
            lambda: (s := trader.status("partial"))["entryOrder"]["state"] == "Canceled" and s,
            60,
            controller,
        )
    assert expired["phase"] == "Protected"
    assert Decimal(expired["filled"]) == Decimal("0.200") < Decimal(expired["entryOrder"]["amount"])
    assert_one_stop(trader, "0.200", "63000")
    entries = [o for o in trader.orders() if o["clientOrderId"] == expired["entryOrder"]["clientOrderId"]]
    assert [(e["status"], e["executedQty"]) for e in entries] == [("CANCELED", "0.200")]
    uid = trader.uid("partial")
    assert_replaced_before_cancelled(trader, stop_ids(trader, uid))
    types = await audit_types(trader.stack, uid)
    assert_in_order(
        types,
        [
            "PositionCreated",
            "EntryIntent",
            "OrderPlaced",
            "PhaseChanged",  # Pending -> EntryPlaced
            "EntryPartiallyFilled",
            "StopIntent",
            "OrderPlaced",
            "StopPlaced",
            "PhaseChanged",  # EntryPlaced -> Protected
            "EntryPartiallyFilled",
            "StopMove",
            "OrderPlaced",
            "OrderCancel",
            "OrderCanceled",
            "EntryExpired",
            "OrderCanceled",
        ],
    )
    assert "EntryFilled" not in types and "CloseStarted" not in types


def trader_reads(trader: Trader, since: int, path: str) -> list[int]:
    """When each read of ``path`` begun since ``since`` (venue milliseconds) was answered."""
    return [int(r["answered"] or r["time"]) for r in trader.requests(since) if r["path"] == path]


@EACH_VENUE
async def test_without_the_stream_a_peeked_fill_is_protected_before_any_read(
    stack: Stack, trader: Trader, controller: Service, venue: VenueName
) -> None:
    """With no user-data stream, a peek at the resting entries finds one gone, a look-up by its client id says it
    filled, and its stop goes out on that answer: every read of the account's positions begun after the fill
    answers 1 s late, and the stop rests before the first of them answers."""
    controller.stop()  # the shared controller stands aside for one without the stream
    quiet = stack.start_controller("no-stream", WARDEN_USER_STREAM="false", **QUICK)
    try:
        trader.apply(position_manifest("peeked", entry={"type": "limit", "price": "64900"}))
        trader.wait_phase("peeked", "EntryPlaced", quiet)
        key = trader.account.api_key
        slow = {"mode": "latency", "latencyMs": 1000, "method": "GET", "path": POSITION_READS[venue], "apiKey": key}
        trader.stack.paper_admin("/_paper/faults", [slow])
        try:
            since = venue_now(trader.stack)
            set_price(trader, "64900")
            status = trader.wait_phase("peeked", "Protected", quiet)
            read = partial(trader_reads, trader, since, POSITION_READS[venue])
            wait_for("a read of the positions after the fill", read, 30, quiet)  # the one that reconciles
            stop = status["stopOrder"]["clientOrderId"]
            log = trader.requests(since)
            (placed,) = [r for r in log if (r["method"], r["path"]) in PLACE_ROUTES and r["clientOrderId"] == stop]
            assert all(placed["time"] < at for at in read()), (placed, read())
        finally:
            trader.stack.paper_admin("/_paper/faults", method="DELETE")
        assert Decimal(status["filled"]) == Decimal("0.010")
        assert_one_stop(trader, "0.010", "63000")
    finally:
        quiet.stop()
        controller.start()
    types = await audit_types(trader.stack, trader.uid("peeked"))
    assert_in_order(types, ["EntryIntent", "OrderPlaced", "EntryFilled", "StopPlaced"])


# --- 2. trailing stops through a price path ----------------------------------------------------------------


async def test_native_trailing_stop_follows_a_price_path(trader: Trader, controller: Service) -> None:
    trailing = {"callbackPercent": "1", "mode": "native"}
    trader.apply(position_manifest("native-trail", trailingStop=trailing))
    wait_for(
        "the trailing stop to rest",
        lambda: (
            (s := trader.status("native-trail")).get("phase") == "Protected"
            and (s.get("trailingOrder") or {}).get("state") == "Open"
        ),
        60,
        controller,
    )
    types_on_exchange = sorted(o["type"] for o in resting_stops(trader.orders()))
    assert types_on_exchange == ["STOP_MARKET", "TRAILING_STOP_MARKET"]
    # Up to 67000, back 1 % to 66330 and below it: the exchange's trailing stop triggers at 66200.
    path = [65500, 66000, 66500, 67000, 66600, 66400, 66200]
    script = "offset_ms,symbol,price\n" + "".join(f"{300 * (i + 1)},BTCUSDT,{p}\n" for i, p in enumerate(path))
    try:
        with stop_watch(trader):
            trader.stack.paper_admin("/_paper/price-path", {"script": script})
            status = trader.wait_phase("native-trail", "Closed", controller)
    finally:
        trader.stack.paper_admin("/_paper/price-path", method="DELETE")
    assert status["exitReason"] == "TrailingStop"
    assert trader.exchange_position() == 0
    assert resting_stops(trader.orders()) == []  # the stop loss left behind was cancelled
    by_type = {o["type"]: o for o in trader.orders() if o["kind"] == "algo"}
    assert by_type["TRAILING_STOP_MARKET"]["status"] == "FINISHED"
    assert by_type["STOP_MARKET"]["status"] == "CANCELED"
    types = await audit_types(trader.stack, trader.uid("native-trail"))
    assert_in_order(
        types,
        [
            "EntryIntent",
            "EntryFilled",
            "StopIntent",
            "StopPlaced",
            "TrailingStopIntent",
            "OrderPlaced",
            "TrailingStopTriggered",
            "CloseStarted",
            "OrderCancel",
            "OrderCanceled",
            "PositionClosed",
        ],
    )


@EACH_VENUE
async def test_emulated_trailing_stop_moves_with_the_high_water_mark(trader: Trader, controller: Service) -> None:
    trailing = {"callbackPercent": "1", "mode": "emulated"}
    trader.apply(position_manifest("emulated-trail", trailingStop=trailing))
    # Active at once: the first stop trails 1 % under the entry's mark, above the 63000 stop loss.
    wait_for("the first trailing stop", settled_stop(trader, "emulated-trail", "0.010", "64350"), 60, controller)
    trader.wait_phase("emulated-trail", "Protected", controller)
    with stop_watch(trader):
        for price, trigger in (("65500", "64845"), ("66000", "65340"), ("66500", "65835")):
            set_price(trader, price)
            status = wait_for(f"the stop at {trigger}", settled_stop(trader, "emulated-trail", "0.010", trigger), 60)
            assert status["trailing"]["activated"] is True
            assert Decimal(status["trailing"]["highWaterMark"]) == Decimal(price)
            assert_one_stop(trader, "0.010", trigger)
        since = venue_now(trader.stack)
        set_price(trader, "66000")  # a pull-back above the stop: the high-water mark stays
        wait_for_reads(trader, since, 8, controller)
        held = trader.status("emulated-trail")
        assert Decimal(held["trailing"]["highWaterMark"]) == Decimal("66500")
        assert_one_stop(trader, "0.010", "65835")
        set_price(trader, "65800")
        status = trader.wait_phase("emulated-trail", "Closed", controller)
    assert status["exitReason"] == "TrailingStop"
    assert trader.exchange_position() == 0
    uid = trader.uid("emulated-trail")
    stops = stop_ids(trader, uid)
    assert len(stops) == 4, stops
    assert_replaced_before_cancelled(trader, stops)
    assert {o["clientOrderId"]: o["status"] for o in trader.orders() if o["kind"] == "algo"}[stops[-1]] == "FINISHED"
    types = await audit_types(trader.stack, uid)
    assert_in_order(
        types,
        [
            "EntryFilled",
            "TrailingActivated",
            "StopIntent",
            "StopPlaced",
            *["TrailingMoved", "OrderPlaced", "OrderCancel", "OrderCanceled"] * 3,
            "StopTriggered",
            "CloseStarted",
            "PositionClosed",
        ],
    )
    assert types.count("TrailingMoved") == 3, types


# --- 3. moving the stop, and a take profit shrinking it ----------------------------------------------------


@EACH_VENUE
async def test_stop_move_never_leaves_a_gap_and_a_take_profit_shrinks_it(trader: Trader, controller: Service) -> None:
    take_profit = [{"price": "66000", "portion": "0.5"}]
    trader.apply(position_manifest("mover", amount="0.020", takeProfit=take_profit))
    wait_for(
        "stop and take profit to rest",
        lambda: (
            (s := trader.status("mover")).get("phase") == "Protected"
            and [t["state"] for t in s.get("takeProfitOrders", [])] == ["Open"]
        ),
        60,
        controller,
    )
    with stop_watch(trader):
        trader.patch_spec("mover", {"stopLoss": {"price": "64000"}})
        wait_for("the stop to move", settled_stop(trader, "mover", "0.020", "64000"), 60, controller)
        assert_one_stop(trader, "0.020", "64000")
        set_price(trader, "66100")  # the take profit closes half
        status = wait_for("the stop to shrink", settled_stop(trader, "mover", "0.010", "64000"), 60, controller)
        assert_one_stop(trader, "0.010", "64000")
        assert trader.exchange_position() == Decimal("0.010")
    assert status["phase"] == "Protected"
    assert status["takeProfitOrders"][0]["state"] == "Triggered"
    uid = trader.uid("mover")
    stops = stop_ids(trader, uid)
    assert len(stops) == 3, stops
    assert_replaced_before_cancelled(trader, stops)
    types = await audit_types(trader.stack, uid)
    assert_in_order(
        types,
        [
            "StopPlaced",
            "TakeProfitIntent",
            "OrderPlaced",
            "SpecChanged",
            "StopMove",
            "OrderPlaced",
            "OrderCancel",
            "OrderCanceled",
            "TakeProfitTriggered",
            "StopMove",
            "OrderPlaced",
            "OrderCancel",
            "OrderCanceled",
        ],
    )
    assert types.count("StopMove") == 2 and "CloseStarted" not in types, types


# --- 3b. a stop the venue cancelled ------------------------------------------------------------------------


@EACH_VENUE
async def test_a_stop_the_venue_cancelled_is_placed_again(trader: Trader, controller: Service) -> None:
    trader.apply(position_manifest("recovered"))
    first = trader.wait_phase("recovered", "Protected", controller)["stopOrder"]["clientOrderId"]
    trader.cancel_stop(first)
    status = wait_for(
        "a new stop to rest",
        lambda: (
            (s := trader.status("recovered"))["stopOrder"]["clientOrderId"] != first
            and s["stopOrder"]["state"] == "Open"
            and s
        ),
        60,
        controller,
    )
    assert status["phase"] == "Protected"
    stop = assert_one_stop(trader, "0.010", "63000")
    assert stop["clientOrderId"] == status["stopOrder"]["clientOrderId"] and stop["workingType"] == "MARK_PRICE"
    uid = trader.uid("recovered")
    assert stop_ids(trader, uid) == [first, stop["clientOrderId"]]
    placed = [r["clientOrderId"] for r in trader.requests() if (r["method"], r["path"]) in PLACE_ROUTES]
    assert sorted(placed) == sorted([status["entryOrder"]["clientOrderId"], first, stop["clientOrderId"]]), placed
    types = await audit_types(trader.stack, uid)
    assert_in_order(types, ["StopPlaced", "DriftStopMissing", "StopIntent", "OrderPlaced"])
    assert "CloseStarted" not in types, types


# --- 3c. a take-profit ladder climbed to the top -----------------------------------------------------------


@EACH_VENUE
async def test_a_take_profit_ladder_closes_in_steps_behind_a_shrinking_stop(
    trader: Trader, controller: Service
) -> None:
    targets = [{"price": p, "portion": q} for p, q in (("66000", "0.25"), ("67000", "0.25"), ("68000", "0.5"))]
    trader.apply(position_manifest("ladder", amount="0.040", takeProfit=targets))
    wait_for(
        "the stop and three take profits to rest",
        lambda: [t["state"] for t in trader.status("ladder").get("takeProfitOrders", [])] == ["Open"] * 3,
        60,
        controller,
    )
    resting = [o for o in trader.orders() if o["kind"] == "algo" and o["status"] == "NEW"]
    take_profits = [o for o in resting if o["type"] not in STOP_TYPES]
    assert sorted((Decimal(o["triggerPrice"]), Decimal(o["quantity"])) for o in take_profits) == [
        (Decimal("66000"), Decimal("0.010")),
        (Decimal("67000"), Decimal("0.010")),
        (Decimal("68000"), Decimal("0.020")),
    ]
    with stop_watch(trader):
        for price, left in (("66100", "0.030"), ("67100", "0.020")):
            set_price(trader, price)
            wait_for(f"the stop to cover {left}", settled_stop(trader, "ladder", left, "63000"), 60, controller)
            assert_one_stop(trader, left, "63000")
            assert trader.exchange_position() == Decimal(left)
        set_price(trader, "68100")
        status = trader.wait_phase("ladder", "Closed", controller)
    assert status["exitReason"] == "TakeProfit"
    assert [t["state"] for t in status["takeProfitOrders"]] == ["Triggered"] * 3
    assert trader.exchange_position() == 0
    assert [o for o in trader.orders() if o["status"] == "NEW"] == []  # the last stop was cancelled
    trades = trader.stack.paper_admin(f"/_paper/trades?apiKey={trader.account.api_key}")
    assert isinstance(trades, list) and len(trades) == 4
    assert Decimal(status["realizedPnl"]) == sum(
        (Decimal(t["realizedPnl"]) - Decimal(t["commission"]) for t in trades), Decimal(0)
    )
    uid = trader.uid("ladder")
    assert_replaced_before_cancelled(trader, stop_ids(trader, uid))
    types = await audit_types(trader.stack, uid)
    assert types.count("TakeProfitTriggered") == 3, types
    assert_in_order(types, ["StopPlaced", "TakeProfitTriggered", "StopMove", "TakeProfitTriggered", "StopMove"])
    assert_in_order(types, ["TakeProfitTriggered", "CloseStarted", "OrderCancel", "PositionClosed"])


# --- 4. closed by hand on the exchange ----------------------------------------------------------------------


@EACH_VENUE
async def test_external_close_ends_closed_and_cleans_up(trader: Trader, controller: Service) -> None:
    trader.apply(position_manifest("by-hand", amount="0.020", takeProfit=[{"price": "67000", "portion": "0.5"}]))
    wait_for(
        "stop and take profit to rest",
        lambda: [t["state"] for t in trader.status("by-hand").get("takeProfitOrders", [])] == ["Open"],
        60,
        controller,
    )
    closed = trader.stack.paper_admin("/_paper/close-position", {"apiKey": trader.account.api_key, "symbol": "BTCUSDT"})
    assert isinstance(closed, dict) and closed["closed"] is True
    status = trader.wait_phase("by-hand", "Closed", controller)
    assert status["exitReason"] == "ExternalClose"
    assert trader.exchange_position() == 0
    orders = trader.orders()
    assert [o for o in orders if o["status"] == "NEW"] == []  # the stop and the take profit were cancelled
    uid = trader.uid("by-hand")
    ours = [o for o in orders if o["clientOrderId"].startswith(own_prefix(uid))]
    assert {o["status"] for o in ours if o["kind"] == "algo"} == {"CANCELED"}
    entries = [o for o in orders if o["clientOrderId"].endswith("-en")]
    assert len(entries) == 1, "never reopened"
    placed = [r["clientOrderId"] for r in trader.requests() if (r["method"], r["path"]) in PLACE_ROUTES]
    assert placed.count(entries[0]["clientOrderId"]) == 1
    assert not [c for c in placed if c.startswith(client_order_id(uid, Purpose.CLOSE))], "Warden sent no close"
    # The web close's trade is part of the result.
    trades = trader.stack.paper_admin(f"/_paper/trades?apiKey={trader.account.api_key}")
    assert isinstance(trades, list) and len(trades) == 2
    expected_pnl = sum((Decimal(t["realizedPnl"]) - Decimal(t["commission"]) for t in trades), Decimal(0))
    assert Decimal(status["realizedPnl"]) == expected_pnl
    types = await audit_types(trader.stack, uid)
    assert_in_order(
        types,
        [
            "StopPlaced",
            "TakeProfitIntent",
            "DriftExternalClose",
            "CloseStarted",
            "OrderCancel",
            "OrderCanceled",
            "OrderCancel",
            "OrderCanceled",
            "PositionClosed",
        ],
    )
    assert "CloseIntent" not in types and types.count("EntryIntent") == 1, types


# The reads an outside close's cleanup waits for none of: the position's and the trades' (Binance's order push
# carries its trade; Bybit's execution topic pushes them).
UNAWAITED_READS = {
    VenueName.BINANCE_USDM: (POSITION_READS[VenueName.BINANCE_USDM], "/fapi/v1/userTrades"),
    VenueName.BYBIT: (POSITION_READS[VenueName.BYBIT], "/v5/execution/list"),
}


@EACH_VENUE
async def test_a_position_closed_outside_loses_its_stop_on_the_push_before_any_read(
    trader: Trader, controller: Service, venue: VenueName
) -> None:
    """The stream's push that the position is flat, with the trades that show a foreign order closed it after the
    entry, is all the Position needs to cancel its leftover stop, even though its last send (the stop) is newer than
    the account's shared snapshot: every read of ``UNAWAITED_READS`` begun after the close answers 3 s late, and
    the stop is cancelled before the first of them answers. The reads then close the books."""
    trader.apply(position_manifest("pushed-flat"))
    stop = trader.wait_phase("pushed-flat", "Protected", controller)["stopOrder"]["clientOrderId"]
    reads, key = UNAWAITED_READS[venue], trader.account.api_key
    slow = [{"mode": "latency", "latencyMs": 3000, "method": "GET", "path": path, "apiKey": key} for path in reads]
    trader.stack.paper_admin("/_paper/faults", slow)
    try:
        since = venue_now(trader.stack)
        closed = trader.stack.paper_admin("/_paper/close-position", {"apiKey": key, "symbol": "BTCUSDT"})
        assert isinstance(closed, dict) and closed["closed"] is True
        wait_for("the leftover stop to be cancelled", lambda: resting_stops(trader.orders()) == [], 60, controller)
        log = trader.requests(since)
        (cancel,) = [r for r in log if (r["method"], r["path"]) in CANCEL_ROUTES and r["clientOrderId"] == stop]
        answered = [int(r["answered"] or r["time"]) for r in log if r["path"] in reads and r["status"] == 200]
        assert all(cancel["time"] < at for at in answered), (cancel, answered)
    finally:
        trader.stack.paper_admin("/_paper/faults", method="DELETE")
    status = trader.wait_phase("pushed-flat", "Closed", controller)
    assert status["exitReason"] == "ExternalClose"
    trades = trader.stack.paper_admin(f"/_paper/trades?apiKey={key}")
    assert isinstance(trades, list) and len(trades) == 2  # the entry's and the outside close's: both in its result
    expected_pnl = sum((Decimal(t["realizedPnl"]) - Decimal(t["commission"]) for t in trades), Decimal(0))
    assert Decimal(status["realizedPnl"]) == expected_pnl
    types = await audit_types(trader.stack, trader.uid("pushed-flat"))
    assert_in_order(types, ["StopPlaced", "DriftExternalClose", "CloseStarted", "OrderCancel", "PositionClosed"])


# --- 5. liquidation -----------------------------------------------------------------------------------------


@EACH_VENUE
async def test_liquidation_ends_closed(trader: Trader, controller: Service) -> None:
    # Isolated at 50x: the liquidation price is near 63950, above this (unwise) stop loss.
    trader.apply(position_manifest("levered", stop="63000", leverage=50, marginMode="isolated"))
    trader.wait_phase("levered", "Protected", controller)
    set_price(trader, "63500")
    status = trader.wait_phase("levered", "Closed", controller)
    assert status["exitReason"] == "Liquidation"
    assert trader.exchange_position() == 0
    trades = trader.stack.paper_admin(f"/_paper/trades?apiKey={trader.account.api_key}")
    assert isinstance(trades, list)
    assert [t["liquidation"] for t in trades] == [False, True]
    assert resting_stops(trader.orders()) == []  # the stop the liquidation left behind was cancelled
    assert Decimal(status["realizedPnl"]) < 0
    types = await audit_types(trader.stack, trader.uid("levered"))
    assert_in_order(
        types,
        [
            "SettingIntent",
            "SettingApplied",
            "SettingIntent",
            "SettingApplied",
            "EntryIntent",
            "StopPlaced",
            "DriftExternalClose",
            "CloseStarted",
            "OrderCancel",
            "OrderCanceled",
            "PositionClosed",
        ],
    )
    assert "StopTriggered" not in types, types


# --- 6. two Positions racing one risk slot ------------------------------------------------------------------


def account_ready(trader: Trader) -> bool:
    done = trader.stack.kubectl("get", "exchangeaccount", "paper", "-n", trader.namespace, "-o", "json")
    conditions = (json.loads(done.stdout).get("status") or {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def test_two_positions_race_for_one_risk_slot(trader: Trader, controller: Service) -> None:
    # Warden has read (and cached) the account without limits; the limit set now must bind the next entries.
    wait_for("the account to be ready", lambda: account_ready(trader), 60, controller)
    trader.apply(exchange_account_manifest(trader.stack.paper_url, risk={"maxOpenPositions": 1}))
    names = ("racer-a", "racer-b")
    trader.apply({"apiVersion": "v1", "kind": "List", "items": [position_manifest(n) for n in names]})

    def settled() -> dict[str, dict[str, Any]] | None:
        statuses = {n: trader.status(n) for n in names}
        phases = sorted(s.get("phase", "") for s in statuses.values())
        return statuses if phases == ["Failed", "Protected"] else None

    statuses = wait_for("one Protected and one Failed", settled, 90, controller)
    loser = next(n for n in names if statuses[n]["phase"] == "Failed")
    winner = next(n for n in names if n != loser)
    failed = statuses[loser]
    assert failed["exitReason"] == "RiskLimit"
    ready = next(c for c in failed["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "RiskLimit" and "maxOpenPositions" in ready["message"], ready
    assert "entryOrder" not in failed
    loser_uid, winner_uid = trader.uid(loser), trader.uid(winner)
    loser_prefix = own_prefix(loser_uid)
    assert [o for o in trader.orders() if o["clientOrderId"].startswith(loser_prefix)] == []
    assert [r for r in trader.requests() if (r["clientOrderId"] or "").startswith(loser_prefix)] == []
    assert [o["clientOrderId"] for o in trader.orders() if o["clientOrderId"].endswith("-en")] == [
        client_order_id(winner_uid, Purpose.ENTRY)
    ]
    assert trader.exchange_position() == Decimal("0.010")
    lost = await audit_types(trader.stack, loser_uid)
    assert lost == ["PositionCreated", "RiskRefused", "PositionRejected", "PhaseChanged"], lost
    won = await audit_types(trader.stack, winner_uid)
    assert_in_order(won, ["PositionCreated", "EntryIntent", "OrderPlaced", "EntryFilled", "StopPlaced"])


# --- 7. a crash between sending the new stop and recording it -----------------------------------------------


@EACH_VENUE
async def test_restart_in_the_middle_of_a_stop_move(stack: Stack, trader: Trader, controller: Service) -> None:
    """The moved stop goes out under the id recorded with the stop before it, with no write first: a crash right
    after its send leaves both stops resting and the status as it was; the next process finds the new one by
    that id, adopts it, and cancels the old one. Nothing is sent twice."""
    trader.apply(position_manifest("interrupted"))
    protected = trader.wait_phase("interrupted", "Protected", controller)
    first, second = protected["stopOrder"]["clientOrderId"], protected["nextStopOrderId"]
    assert second != first and second.startswith(first.rsplit("-", 1)[0])
    controller.stop()  # the shared controller stands aside; a crashing one moves the stop
    try:
        with stop_watch(trader):
            crashing = stack.start_controller("crashing-stop-move", WARDEN_FAILPOINTS="stop:after-send")
            trader.patch_spec("interrupted", {"stopLoss": {"price": "64000"}})
            wait_for("the controller to crash at the failpoint", lambda: not crashing.alive(), 60)
            assert crashing.process is not None and crashing.process.returncode == -9
            crashed = trader.status("interrupted")
            # Nothing was written between the decision and the send: the move is only on the exchange.
            assert crashed["stopOrder"]["clientOrderId"] == first and crashed["nextStopOrderId"] == second, crashed
            assert sorted(o["clientOrderId"] for o in resting_stops(trader.orders())) == sorted([first, second])
            controller.start()
            status = wait_for(
                "the moved stop to be recorded", settled_stop(trader, "interrupted", "0.010", "64000"), 60, controller
            )
    finally:
        if not controller.alive():
            controller.start()
    assert status["stopOrder"]["clientOrderId"] == second and not status.get("auditBacklog")
    assert status["nextStopOrderId"] not in (first, second)
    assert_one_stop(trader, "0.010", "64000")
    uid = trader.uid("interrupted")
    stops = stop_ids(trader, uid)
    assert stops == [first, second]
    assert_replaced_before_cancelled(trader, stops)
    sent = [r["clientOrderId"] for r in trader.requests() if (r["method"], r["path"]) in PLACE_ROUTES]
    assert len(sent) == len(set(sent)), f"a client order id was sent twice: {sent}"
    types = await audit_types(trader.stack, uid)
    assert_in_order(types, ["StopPlaced", "OrderFound", "OrderCancel", "OrderCanceled"])
    assert "DriftStopMissing" not in types, types


# --- 8. paused --------------------------------------------------------------------------------------------


@EACH_VENUE
async def test_paused_sends_nothing_and_resumes(trader: Trader, controller: Service) -> None:
    trader.apply(position_manifest("held"))
    first = trader.wait_phase("held", "Protected", controller)["stopOrder"]["clientOrderId"]
    annotation = "trading.warden.dev/paused"
    trader.stack.kubectl("annotate", "position", "held", "-n", trader.namespace, f"{annotation}=true")
    wait_for(
        "the Paused condition",
        lambda: any(c["type"] == "Paused" and c["status"] == "True" for c in trader.status("held")["conditions"]),
        60,
        controller,
    )
    since = venue_now(trader.stack)
    trader.patch_spec("held", {"stopLoss": {"price": "64000"}})
    trader.cancel_stop(first)
    # Status still reports: the new generation and the stop the venue cancelled.
    reported = wait_for(
        "the status to report the cancelled stop",
        lambda: (
            (s := trader.status("held")).get("observedGeneration") == 2 and s["stopOrder"]["state"] == "Canceled" and s
        ),
        60,
        controller,
    )
    assert reported["phase"] == "Protected"
    protected = next(c for c in reported["conditions"] if c["type"] == "Protected")
    assert protected["status"] == "False", protected  # what the unprotected-positions alert reads
    wait_for_reads(trader, since, 8, controller)
    assert trading_requests(trader.requests(since)) == [], "an order was sent while paused"
    assert resting_stops(trader.orders()) == []
    trader.stack.kubectl("annotate", "position", "held", "-n", trader.namespace, f"{annotation}-")
    wait_for("the stop at the new price", settled_stop(trader, "held", "0.010", "64000"), 60, controller)
    assert_one_stop(trader, "0.010", "64000")
    wait_for(
        "the Protected condition to be True again",
        lambda: any(c["type"] == "Protected" and c["status"] == "True" for c in trader.status("held")["conditions"]),
        60,
        controller,
    )
    types = await audit_types(trader.stack, trader.uid("held"))
    assert_in_order(
        types,
        [
            "StopPlaced",
            "Paused",
            "SpecChanged",
            "StopCanceled",
            "Resumed",
            "DriftStopMissing",
            "StopIntent",
            "OrderPlaced",
        ],
    )
    paused_at, resumed_at = types.index("Paused"), types.index("Resumed")
    assert not {"StopIntent", "OrderPlaced", "OrderCancel"} & set(types[paused_at:resumed_at]), types


# --- 9. deletionPolicy Orphan -------------------------------------------------------------------------------


@EACH_VENUE
async def test_orphan_leaves_the_exchange_untouched(trader: Trader, controller: Service) -> None:
    trader.apply(position_manifest("orphan", deletionPolicy="Orphan"))
    trader.wait_phase("orphan", "Protected", controller)
    uid = trader.uid("orphan")
    before = trader.orders()
    since = venue_now(trader.stack)
    trader.stack.kubectl("delete", "position", "orphan", "-n", trader.namespace, "--wait=false")
    wait_for("the Position to be gone", lambda: trader.position("orphan") is None, 60, controller)
    assert trader.orders() == before  # the stop still rests, nothing cancelled or added
    assert len(resting_stops(before)) == 1
    assert trader.exchange_position() == Decimal("0.010")
    assert trading_requests(trader.requests(since)) == []
    types = await audit_types(trader.stack, uid)
    assert_in_order(types, ["EntryFilled", "StopPlaced", "PositionOrphaned", "PhaseChanged"])
    assert not {"CloseStarted", "CloseIntent", "OrderCancel", "OrderCanceled"} & set(types), types


# --- 10. the venue's cap on conditional orders --------------------------------------------------------------


@EACH_VENUE
async def test_a_position_that_would_overflow_the_conditional_cap_fails_before_any_order(
    trader: Trader, controller: Service, venue: VenueName
) -> None:
    """Bybit rests at most 10 conditional orders per symbol: with a stop and eight take profits resting, another
    Position (a stop and room for its replacement) does not fit and fails before its entry. Binance's cap (200 per
    account) takes it."""
    ladder = [{"price": str(66000 + 100 * n), "portion": "0.125"} for n in range(8)]
    trader.apply(position_manifest("wide", amount="0.080", takeProfit=ladder))
    wait_for(
        "the stop and eight take profits to rest",
        lambda: [t["state"] for t in trader.status("wide").get("takeProfitOrders", [])] == ["Open"] * 8,
        60,
        controller,
    )
    wait_for("nine conditional orders", lambda: len(open_conditional(trader)) == 9, 30, controller)
    # The cap is checked against the account's shared snapshot (up to two cycles old): wait for one that saw all nine.
    since = venue_now(trader.stack)
    wait_for(
        "a read of the symbol's conditional orders",
        lambda: any(
            r["path"] in SYMBOL_CONDITIONAL_READS and r["symbol"] == "BTCUSDT" and not r["clientOrderId"]
            for r in trader.requests(since)
        ),
        90,
        controller,
    )
    trader.apply(position_manifest("one-more"))
    if venue is VenueName.BYBIT:
        status = trader.wait_phase("one-more", "Failed", controller)
        assert status["exitReason"] == "ConditionalOrderCap" and "entryOrder" not in status, status
        assert not [o for o in trader.orders() if o["clientOrderId"].startswith(own_prefix(trader.uid("one-more")))]
        assert len(open_conditional(trader)) == 9
    else:
        trader.wait_phase("one-more", "Protected", controller)
        assert len(open_conditional(trader)) == 10


SYMBOL_CONDITIONAL_READS = frozenset({"/fapi/v1/openAlgoOrders", "/v5/order/realtime"})
"""Where a snapshot reads one symbol's resting conditional orders (with a client id: a look-up of one order)."""


def open_conditional(trader: Trader) -> list[dict[str, Any]]:
    return [o for o in trader.orders() if o["kind"] == "algo" and o["status"] == "NEW"]
