"""A Position from `kubectl apply` to `Closed`, on real components."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from controller.api.display import fixed
from controller.exchange.client import make_exchange
from devtools.localenv.processes import Service
from devtools.localenv.stack import Stack, exchange_account_manifest
from paper.models import VenueName
from tests.e2e.conftest import EACH_VENUE, QUICK, Trader, audit_types, position_manifest, wait_for
from tests.e2e.test_sweep import sweeps

SYMBOL = "BTC/USDT:USDT"
PLACEMENT_PATHS = {
    VenueName.BINANCE_USDM: ("/fapi/v1/order", "/fapi/v1/algoOrder"),
    VenueName.BYBIT: ("/v5/order/create", "/v5/order/create"),  # one endpoint for regular and conditional orders
}
"""Where an entry and a stop are placed on each venue."""


def open_stops(trader: Trader) -> list[dict[str, Any]]:
    """The account's resting stops as the paper exchange holds them, whatever the venue's wire shape."""
    return [o for o in trader.orders() if o["kind"] == "algo" and o["status"] == "NEW"]


def exchange_state(trader: Trader) -> tuple[Decimal, list[dict[str, Any]]]:
    """The account's net position and its fills, as the paper exchange's admin API shows them for either venue."""
    trades = trader.stack.paper_admin(f"/_paper/trades?apiKey={trader.account.api_key}")
    assert isinstance(trades, list)
    return trader.exchange_position(), trades


def net_pnl(trades: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(t["realizedPnl"]) - Decimal(t["commission"]) for t in trades), Decimal(0))


@EACH_VENUE
async def test_protected_then_stop_triggers(trader: Trader, controller: Service) -> None:
    trader.apply(position_manifest("btc-long"))
    status = trader.wait_phase("btc-long", "Protected", controller)
    assert Decimal(status["filled"]) == Decimal("0.010")
    assert Decimal(status["averageEntryPrice"]) == Decimal("65000")
    stops = open_stops(trader)
    assert len(stops) == 1, stops
    stop = stops[0]
    assert stop["clientOrderId"] == status["stopOrder"]["clientOrderId"]
    assert Decimal(stop["quantity"]) == Decimal("0.010")  # sized to the fill
    assert stop["reduceOnly"] is True
    assert Decimal(stop["triggerPrice"]) == Decimal("63000")
    assert stop["workingType"] == "MARK_PRICE"

    trader.stack.paper_admin("/_paper/price", {"symbol": "BTCUSDT", "price": "62900"})
    status = trader.wait_phase("btc-long", "Closed", controller)
    assert status["exitReason"] == "StopLoss"
    size, trades = exchange_state(trader)
    assert size == 0
    assert Decimal(status["realizedPnl"]) == net_pnl(trades)
    assert Decimal(status["realizedPnl"]) < 0
    uid = trader.position("btc-long")["metadata"]["uid"]  # type: ignore[index]
    types = await audit_types(trader.stack, uid)
    expected_types = ("EntryIntent", "OrderPlaced", "EntryFilled", "StopIntent", "StopPlaced", "StopTriggered")
    for expected in (*expected_types, "CloseStarted", "PositionClosed"):
        assert expected in types, types
    assert types.count("PhaseChanged") >= 4  # Pending→EntryPlaced→Protected→Closing→Closed


def board(trader: Trader, name: str) -> dict[str, str]:
    """``kubectl get pos NAME`` as a trader reads it: column → value."""
    header, row = trader.stack.kubectl("get", "pos", name, "-n", trader.namespace).stdout.splitlines()
    starts = [match.start() for match in re.finditer(r"\S+", header)]  # an empty cell is blank: cut by position
    ends = [*starts[1:], None]
    return {header[a:b].strip(): row[a:b].strip() for a, b in zip(starts, ends, strict=True)}


@EACH_VENUE
async def test_the_board_shows_unrealized_pnl_while_open_and_realized_after(
    trader: Trader, controller: Service
) -> None:
    trader.apply(position_manifest("board"))
    trader.wait_phase("board", "Protected", controller)
    _, trades = exchange_state(trader)
    fee = sum((Decimal(t["commission"]) for t in trades), Decimal(0))
    assert fee > 0
    # Valued at the fill's mark, net of the entry's fee, once its trades are read: BTC's tick is 0.10. Formatted
    # by the display's rule (half to even), not by this process's decimal context: ccxt sets that to half up
    # whenever it rounds, so a fee of 0.325 would read -0.33 here after any ccxt call in this worker.
    at_entry = fixed(-fee, 2)
    shown = wait_for("the entry's fee in UPNL", lambda: (b := board(trader, "board"))["UPNL"] == at_entry and b)
    assert list(shown) == ["NAME", "SYMBOL", "SIDE", "AMOUNT", "PHASE", "ENTRY", "STOP", "UPNL", "PNL", "AGE"]
    assert shown["ENTRY"] == "65000.0" and shown["STOP"] == "63000.0" and shown["PNL"] == ""
    assert Decimal(trader.status("board")["unrealizedPnl"]) == -fee  # the stored figure keeps its precision

    trader.stack.paper_admin("/_paper/price", {"symbol": "BTCUSDT", "price": "65432.1"})
    moved = fixed(Decimal("432.1") * Decimal("0.010") - fee, 2)
    wait_for("UPNL at the new mark", lambda: board(trader, "board")["UPNL"] == moved, service=controller)

    trader.patch_spec("board", {"state": "Closed"})
    status = trader.wait_phase("board", "Closed", controller)
    shown = board(trader, "board")
    assert shown["UPNL"] == "" and shown["PNL"] == fixed(Decimal(status["realizedPnl"]), 2), shown
    assert "E" not in status["realizedPnl"] and not status["realizedPnl"].endswith("0000")


@EACH_VENUE
async def test_closed_on_request(trader: Trader, controller: Service) -> None:
    trader.apply(position_manifest("short", side="short", stop="67000"))
    trader.wait_phase("short", "Protected", controller)
    trader.stack.kubectl(
        "patch", "position", "short", "-n", trader.namespace, "--type=merge", "-p", '{"spec":{"state":"Closed"}}'
    )
    status = trader.wait_phase("short", "Closed", controller)
    assert status["exitReason"] == "Requested"
    size, trades = exchange_state(trader)
    assert size == 0
    assert open_stops(trader) == []  # nothing left behind
    assert Decimal(status["realizedPnl"]) == net_pnl(trades)
    assert Decimal(status["fees"]) > 0
    uid = trader.position("short")["metadata"]["uid"]  # type: ignore[index]
    types = await audit_types(trader.stack, uid)
    for expected in ("CloseIntent", "CloseFilled", "OrderCanceled", "PositionClosed"):
        assert expected in types, types


@EACH_VENUE
async def test_delete_closes_first(trader: Trader, controller: Service) -> None:
    trader.apply(position_manifest("doomed"))
    trader.wait_phase("doomed", "Protected", controller)
    uid = trader.position("doomed")["metadata"]["uid"]  # type: ignore[index]
    trader.stack.kubectl("delete", "position", "doomed", "-n", trader.namespace, "--wait=false")
    wait_for("the Position to be gone", lambda: trader.position("doomed") is None, 60, controller)
    size, _ = exchange_state(trader)
    assert size == 0
    assert open_stops(trader) == []
    types = await audit_types(trader.stack, uid)
    assert "PositionClosed" in types


async def test_delete_before_any_order_is_audited(trader: Trader, controller: Service) -> None:
    """A Position deleted before its entry's intent (here: its account does not exist) touches nothing on the
    exchange, and its end is in the audit like any other (invariant 6)."""
    manifest = position_manifest("unentered")
    manifest["spec"]["accountRef"] = {"name": "no-such-account"}
    trader.apply(manifest)
    wait_for("Warden to see it", lambda: trader.status("unentered").get("conditions"), 60, controller)
    uid = trader.uid("unentered")
    trader.stack.kubectl("delete", "position", "unentered", "-n", trader.namespace, "--wait=false")
    wait_for("the Position to be gone", lambda: trader.position("unentered") is None, 60, controller)
    types = await audit_types(trader.stack, uid)
    assert types[-2:] == ["PositionClosed", "PhaseChanged"], types
    assert trader.orders() == []


@EACH_VENUE
@pytest.mark.parametrize("failpoint", ["entry:after-send", "entry:before-send", "stop:before-send", "stop:after-send"])
async def test_crash_around_entry_never_duplicates(
    stack: Stack, trader: Trader, controller: Service, failpoint: str
) -> None:
    controller.stop()  # the shared controller stands aside; this test runs its own
    try:
        crashing = stack.start_controller(f"crashing-{failpoint.replace(':', '-')}", WARDEN_FAILPOINTS=failpoint)
        trader.apply(position_manifest("crashy"))
        wait_for("the controller to crash at the failpoint", lambda: not crashing.alive(), 60)
        assert crashing.process is not None and crashing.process.returncode == -9
        recorded = trader.status("crashy")
        intent, stop = recorded["entryOrder"], recorded["stopOrder"]
        assert intent["state"] == "Intended" and "exchangeOrderId" not in intent
        # The stop the fill calls for was recorded with the entry: at the stop's failpoints nothing was written
        # since, whether the stop went out or not (invariant 2 without a write between the fill and the stop).
        assert stop["state"] == "Intended" and "exchangeOrderId" not in stop
        controller.start()
        status = trader.wait_phase("crashy", "Protected", controller)
        for record in (intent, stop):
            sent = [o for o in trader.orders() if o["clientOrderId"] == record["clientOrderId"]]
            assert len(sent) == 1, sent
        assert status["entryOrder"]["clientOrderId"] == intent["clientOrderId"]
        assert status["stopOrder"]["clientOrderId"] == stop["clientOrderId"]
        assert Decimal(status["filled"]) == Decimal("0.010")
        resting = [o for o in trader.orders() if o["status"] == "NEW" and o["kind"] == "algo"]
        assert len(resting) == 1, resting
    finally:
        if not controller.alive():
            controller.start()


@pytest.mark.parametrize("venue", [VenueName.BINANCE_USDM], ids=str)
@pytest.mark.parametrize("failpoint", ["stop:before-send", "stop:after-send"])
async def test_a_crash_at_a_resting_limits_stop_never_duplicates(
    stack: Stack, trader: Trader, controller: Service, failpoint: str
) -> None:
    """A resting limit entry carries its stop's intent (Binance, where a lookup proves an id never sent). The fill's
    push sends the stop with no write first; a kill just before or just after that send is repaired by the next
    controller's lookup of the stop's id: one stop, for the filled amount, and no id sent twice (invariant 2)."""
    controller.stop()  # the shared controller stands aside; this test runs its own
    try:
        crashing = stack.start_controller(f"crashing-limit-{failpoint.replace(':', '-')}", WARDEN_FAILPOINTS=failpoint)
        trader.apply(position_manifest("resting", entry={"type": "limit", "price": "64500"}))
        trader.wait_phase("resting", "EntryPlaced", crashing)
        recorded = trader.status("resting")
        entry, stop = recorded["entryOrder"], recorded["stopOrder"]
        assert stop["state"] == "Intended" and "exchangeOrderId" not in stop
        trader.stack.paper_admin("/_paper/price", {"symbol": "BTCUSDT", "price": "64500"})
        wait_for("the controller to crash at the stop's failpoint", lambda: not crashing.alive(), 60)
        assert crashing.process is not None and crashing.process.returncode == -9
        assert trader.status("resting")["stopOrder"] == stop  # nothing written between the fill and the stop
        controller.start()
        status = trader.wait_phase("resting", "Protected", controller)
        for record in (entry, stop):
            sent = [o for o in trader.orders() if o["clientOrderId"] == record["clientOrderId"]]
            assert len(sent) == 1, sent
        assert status["stopOrder"]["clientOrderId"] == stop["clientOrderId"]
        (resting,) = open_stops(trader)
        assert resting["clientOrderId"] == stop["clientOrderId"] and Decimal(resting["quantity"]) == Decimal("0.010")
    finally:
        if not controller.alive():
            controller.start()


@pytest.mark.parametrize("venue", [VenueName.BYBIT], ids=str)
async def test_a_kill_at_the_fill_leaves_the_stop_the_entry_carried(
    stack: Stack, trader: Trader, controller: Service
) -> None:
    """Where the entry can carry its own stop (Bybit's attached Partial stop loss), the naked window across a kill
    at the fill is zero: the controller dies right after sending the entry, and the venue itself placed the stop as
    the entry filled, for the filled amount, at the spec's stop on the mark; no request of Warden's placed it.
    The next controller puts Warden's own stop under its client id and retires the attached one."""
    controller.stop()  # the shared controller stands aside; this test runs its own
    try:
        crashing = stack.start_controller("crashing-at-the-fill", WARDEN_FAILPOINTS="entry:after-send")
        trader.apply(position_manifest("armed"))
        wait_for("the controller to crash at the fill", lambda: not crashing.alive(), 60)
        entry = trader.status("armed")["entryOrder"]["clientOrderId"]
        (fill,) = [t for t in exchange_state(trader)[1] if t["clientOrderId"] == entry]
        (attached,) = open_stops(trader)
        assert attached["clientOrderId"] != trader.status("armed")["stopOrder"]["clientOrderId"], attached
        assert Decimal(attached["triggerPrice"]) == Decimal("63000") and attached["workingType"] == "MARK_PRICE"
        assert Decimal(attached["quantity"]) == Decimal(fill["qty"]) == Decimal("0.010"), (attached, fill)
        assert attached["time"] >= fill["time"], (attached, fill)
        placements = [r for r in trader.requests() if r["method"] == "POST" and r["path"] == "/v5/order/create"]
        assert [r["clientOrderId"] for r in placements] == [entry], placements  # the venue placed it, at the fill
        controller.start()
        status = trader.wait_phase("armed", "Protected", controller)
        own = status["stopOrder"]["clientOrderId"]
        wait_for("the attached stop to be retired", lambda: [s["clientOrderId"] for s in open_stops(trader)] == [own])
    finally:
        if not controller.alive():
            controller.start()


PRE_ARMED = {"price": "63000", "preArm": True}
"""The stop loss of ``position_manifest`` (63000), pre-armed."""


def resting_ids(trader: Trader) -> list[str]:
    return [s["clientOrderId"] for s in open_stops(trader)]


def events(trader: Trader) -> str:
    """The namespace's Kubernetes events, as JSON."""
    return trader.stack.kubectl("get", "events", "-n", trader.namespace, "-o", "json").stdout


def placements(trader: Trader) -> list[tuple[str, str]]:
    """The account's Binance placements, oldest first: (path, client id)."""
    paths = PLACEMENT_PATHS[VenueName.BINANCE_USDM]
    return [(r["path"], r["clientOrderId"]) for r in trader.requests() if r["method"] == "POST" and r["path"] in paths]


async def test_a_kill_at_the_fill_leaves_the_pre_armed_stop_resting(
    stack: Stack, trader: Trader, controller: Service
) -> None:
    """On Binance, where no stop can ride on the entry, ``stopLoss.preArm`` makes the naked window across a kill at
    the fill zero too: a closePosition stop at the spec's stop, on the mark, rests before the entry is sent; the
    controller dies right after the entry's send, and the fill is covered, for the whole position, with no request of
    Warden's after it. The next controller puts Warden's own stop up and cancels the pre-armed one."""
    order, algo = PLACEMENT_PATHS[VenueName.BINANCE_USDM]
    controller.stop()  # the shared controller stands aside; this test runs its own
    try:
        crashing = stack.start_controller("crashing-at-the-pre-armed-fill", WARDEN_FAILPOINTS="entry:after-send")
        trader.apply(position_manifest("prearmed", stopLoss=PRE_ARMED))
        wait_for("the controller to crash at the fill", lambda: not crashing.alive(), 60)
        recorded = trader.status("prearmed")
        entry, armed = recorded["entryOrder"]["clientOrderId"], recorded["preArmedStop"]
        assert armed["state"] == "Open" and recorded["entryOrder"]["state"] == "Intended", recorded
        (fill,) = [t for t in exchange_state(trader)[1] if t["clientOrderId"] == entry]
        assert Decimal(fill["qty"]) == trader.exchange_position() == Decimal("0.010")
        (resting,) = open_stops(trader)
        assert resting["clientOrderId"] == armed["clientOrderId"] and resting["closePosition"] is True, resting
        assert Decimal(resting["triggerPrice"]) == Decimal("63000") and resting["workingType"] == "MARK_PRICE"
        assert resting["side"] == "SELL" and resting["time"] <= fill["time"], (resting, fill)
        # Placed before the entry, and nothing after it: the stop that covers the fill was resting already.
        assert placements(trader) == [(algo, armed["clientOrderId"]), (order, entry)], placements(trader)
        controller.start()
        status = trader.wait_phase("prearmed", "Protected", controller)
        own = status["stopOrder"]["clientOrderId"]
        wait_for("the pre-armed stop to be cancelled", lambda: resting_ids(trader) == [own])
        (stop,) = open_stops(trader)
        assert Decimal(stop["quantity"]) == Decimal("0.010") and stop["closePosition"] is False, stop
        wait_for("its record to say so", lambda: trader.status("prearmed")["preArmedStop"]["state"] == "Canceled")
        assert [cid for _, cid in placements(trader)].count(armed["clientOrderId"]) == 1
    finally:
        if not controller.alive():
            controller.start()


@pytest.mark.parametrize("failpoint", ["pre_armed:before-send", "pre_armed:after-send"])
async def test_a_kill_around_the_pre_armed_stop_never_places_it_twice(
    stack: Stack, trader: Trader, controller: Service, failpoint: str
) -> None:
    """Invariant 2 for the pre-armed stop: its intent is recorded before the send; the next controller looks it up
    by its id, places it only if absent, and the entry follows it."""
    controller.stop()  # the shared controller stands aside; this test runs its own
    try:
        crashing = stack.start_controller(f"crashing-{failpoint.replace(':', '-')}", WARDEN_FAILPOINTS=failpoint)
        trader.apply(position_manifest("rearmed", stopLoss=PRE_ARMED))
        wait_for("the controller to crash at the failpoint", lambda: not crashing.alive(), 60)
        recorded = trader.status("rearmed")
        armed = recorded["preArmedStop"]["clientOrderId"]
        assert recorded["preArmedStop"]["state"] == "Intended" and "entryOrder" not in recorded, recorded
        controller.start()
        status = trader.wait_phase("rearmed", "Protected", controller)
        order, algo = PLACEMENT_PATHS[VenueName.BINANCE_USDM]
        sent = [(path, cid) for path, cid in placements(trader) if path == order or cid == armed]
        assert sent == [(algo, armed), (order, status["entryOrder"]["clientOrderId"])], sent
        own = status["stopOrder"]["clientOrderId"]
        wait_for("only Warden's own stop resting", lambda: resting_ids(trader) == [own])
    finally:
        if not controller.alive():
            controller.start()


LATE_FLEET = "fleet:first-sight~12"
"""The restarted controller's watch shows each Position 12 s late: its sweeps run meanwhile (every 3 s, once it
leads, within the crashed one's 4 s lease) on owners that do not hold the Position yet."""


@pytest.mark.parametrize("failpoint", ["", LATE_FLEET], ids=["watched", "watched-late"])
async def test_deleted_between_the_pre_armed_stop_and_the_entry_leaves_nothing_open(
    stack: Stack, trader: Trader, controller: Service, failpoint: str
) -> None:
    """A Position with no entry yet but a pre-armed stop sent is not closed without the exchange: its stop is
    cancelled first, by the Position itself (not left to the orphan sweep). With the watch late, a sweep of the
    restarted controller sees the stop before it sees the Position: it must not take the stop for an orphan (it did,
    and the Position then closed finding its stop already gone: the CI failure of the first merge)."""
    controller.stop()  # the shared controller stands aside; this test runs its own
    restarted = None
    try:
        crashing = stack.start_controller("crashing-after-pre-arming", WARDEN_FAILPOINTS="pre_armed:after-send")
        trader.apply(position_manifest("abandoned", stopLoss=PRE_ARMED))
        wait_for("the controller to crash after pre-arming", lambda: not crashing.alive(), 60)
        assert len(open_stops(trader)) == 1 and "entryOrder" not in trader.status("abandoned")
        uid = trader.uid("abandoned")
        stack.kubectl("delete", "position", "abandoned", "-n", trader.namespace, "--wait=false")
        if failpoint:
            swept = sweeps(trader)
            restarted = stack.start_controller("late-fleet", WARDEN_FAILPOINTS=failpoint, **QUICK)
            # Two sweeps begun: the first has decided, with the Position still held back from the watch.
            wait_for("two sweeps of the account", lambda: sweeps(trader) >= swept + 2, 30, restarted)
            assert trader.position("abandoned") is not None and len(open_stops(trader)) == 1, open_stops(trader)
        else:
            controller.start()
        wait_for("the Position to be gone", lambda: trader.position("abandoned") is None, 60, restarted or controller)
        assert open_stops(trader) == [] and trader.exchange_position() == 0
        assert [path for path, _ in placements(trader)] == [PLACEMENT_PATHS[VenueName.BINANCE_USDM][1]]
        types = await audit_types(stack, uid)
        assert "OrderCanceled" in types and types.index("OrderCanceled") < types.index("PositionClosed"), types
    finally:
        if restarted is not None:
            restarted.stop()
        if not controller.alive():
            controller.start()


async def test_a_position_not_alone_on_its_side_does_not_pre_arm(trader: Trader, controller: Service) -> None:
    """A closePosition stop would close every Position's share of the side: with another Position there, a
    pre-arm asked for is not placed; the entry goes as without it, and its intent says why."""
    trader.apply(position_manifest("first"))
    trader.wait_phase("first", "Protected", controller)
    trader.apply(position_manifest("second", stopLoss=PRE_ARMED))
    status = trader.wait_phase("second", "Protected", controller)
    assert "preArmedStop" not in status, status
    assert not [cid for _, cid in placements(trader) if cid.endswith("-pa")], placements(trader)
    assert all(s["closePosition"] is False for s in open_stops(trader)) and len(open_stops(trader)) == 2
    said = "not pre-armed: another Position shares the BTC/USDT:USDT long side"
    wait_for("the entry's intent to say why it is not pre-armed", lambda: said in events(trader))


async def test_a_newcomer_waits_for_the_pre_armed_stop_and_the_first_position_gives_it_up(
    trader: Trader, controller: Service
) -> None:
    """A pre-armed stop rests beside a resting limit entry. Another Position comes to the side while the first is
    paused (so it cannot give the stop up yet): the newcomer waits and sends nothing. Resumed, the first cancels its
    pre-armed stop (nothing of it is filled), and only then does the newcomer's entry go out. When the first's entry
    fills later, its own stop covers it as without a pre-arm."""
    trader.apply(position_manifest("early", stopLoss=PRE_ARMED, entry={"type": "limit", "price": "64500"}))
    trader.wait_phase("early", "EntryPlaced", controller)
    armed = trader.status("early")["preArmedStop"]["clientOrderId"]
    assert resting_ids(trader) == [armed]
    paused = "trading.warden.dev/paused"
    trader.stack.kubectl("annotate", "position", "early", "-n", trader.namespace, f"{paused}=true")
    wait_for("early to be paused", lambda: any(c["type"] == "Paused" for c in trader.status("early")["conditions"]))
    trader.apply(position_manifest("late"))
    waiting = wait_for(
        "late to wait for the pre-armed stop",
        lambda: next(
            (c for c in trader.status("late").get("conditions", []) if c["reason"] == "PreArmedStopOnSide"), None
        ),
        60,
        controller,
    )
    assert waiting["type"] == "Ready" and waiting["status"] == "False", waiting
    assert "entryOrder" not in trader.status("late") and resting_ids(trader) == [armed]
    trader.stack.kubectl("annotate", "position", "early", "-n", trader.namespace, f"{paused}-")
    late = trader.wait_phase("late", "Protected", controller)
    cancels = [
        r["seq"]
        for r in trader.requests()
        if r["method"] == "DELETE" and r["path"] == "/fapi/v1/algoOrder" and r["clientOrderId"] == armed
    ]
    entered = [r["seq"] for r in trader.requests() if r["clientOrderId"] == late["entryOrder"]["clientOrderId"]]
    assert cancels and entered and max(cancels) < min(entered), (cancels, entered)
    assert trader.status("early")["preArmedStop"]["state"] == "Canceled"
    trader.stack.paper_admin("/_paper/price", {"symbol": "BTCUSDT", "price": "64500"})
    early = trader.wait_phase("early", "Protected", controller)
    stops = sorted(resting_ids(trader))
    assert stops == sorted([early["stopOrder"]["clientOrderId"], late["stopOrder"]["clientOrderId"]]), stops


def stop_id(trader: Trader, name: str) -> str:
    return str(trader.status(name)["stopOrder"]["clientOrderId"])


@pytest.mark.parametrize("venue", [VenueName.BINANCE_USDM], ids=str)
async def test_a_first_look_that_fails_is_retried_soon_not_after_the_idle_wait(
    stack: Stack, trader: Trader, controller: Service
) -> None:
    """A controller starts while the venue is in maintenance, after the venue cancelled a Protected Position's
    stop. Its first look fails (the market list is refused), so the account's observer never learns of the
    Position and cannot wake it; it must look again soon, not after the idle safety net (set to 10 minutes here,
    far beyond this test's wait), and put a stop back once the maintenance ends."""
    trader.apply(position_manifest(name := "relook"))
    status = trader.wait_phase(name, "Protected", controller)
    first = status["stopOrder"]["clientOrderId"]
    controller.stop()  # the shared controller stands aside; this test runs its own
    try:
        trader.cancel_stop(first)
        rule = {"mode": "maintenance", "durationMs": 20_000, "method": "GET", "path": "/fapi/v1/exchangeInfo"}
        stack.paper_admin("/_paper/faults", [rule])
        assert open_stops(trader) == []
        relooking = stack.start_controller("relooking", WARDEN_IDLE_RECHECK="600")
        try:
            wait_for("a stop back on the exchange", lambda: len(open_stops(trader)) == 1, 90)
            # The next stop goes out before the status write that records it (its id was recorded with the first).
            wait_for("the status to name the new stop", lambda: stop_id(trader, name) != first, 30)
            assert [s["clientOrderId"] for s in open_stops(trader)] == [stop_id(trader, name)]
            refused = [r for r in stack.paper_admin("/_paper/requests") if r["path"] == "/fapi/v1/exchangeInfo"]
            assert any(r["status"] == 503 for r in refused), "the controller's first look met the maintenance"
        finally:
            relooking.stop()  # never two controllers beside the next tests
    finally:
        stack.paper_admin("/_paper/faults", method="DELETE")
        if not controller.alive():
            controller.start()


@EACH_VENUE
async def test_a_lost_entry_answer_and_refused_stops_end_with_one_stop(
    trader: Trader, controller: Service, venue: VenueName
) -> None:
    """The entry fills but its answer is lost, then the venue refuses the stop twice. Warden looks the entry up
    rather than sending it again, sends the recorded stop again under its id at each retry, and ends Protected with
    one entry and one stop on the exchange and each failure in the audit, in order."""
    key = trader.account.api_key
    order, algo = PLACEMENT_PATHS[venue]
    rules = [
        {"mode": "drop", "method": "POST", "path": order, "apiKey": key, "count": 1},
        {"mode": "http_error", "status": 500, "method": "POST", "path": algo, "apiKey": key, "count": 2},
    ]
    trader.stack.paper_admin("/_paper/faults", rules)
    try:
        trader.apply(position_manifest("refused"))
        status = trader.wait_phase("refused", "Protected", controller)
    finally:
        trader.stack.paper_admin("/_paper/faults", method="DELETE")
    entry, stop = status["entryOrder"]["clientOrderId"], status["stopOrder"]["clientOrderId"]
    placed = [
        (r["path"], r["clientOrderId"], r["status"])
        for r in trader.requests()
        if r["method"] == "POST" and r["path"] in (order, algo)
    ]
    assert placed == [(order, entry, None), (algo, stop, 500), (algo, stop, 500), (algo, stop, 200)], placed
    assert [s["clientOrderId"] for s in open_stops(trader)] == [stop]
    types = await audit_types(trader.stack, trader.uid("refused"))
    flow = [t for t in types if t in ("EntryIntent", "EntryFilled", "StopIntent", "ExchangeError", "OrderPlaced")]
    expected = ["EntryIntent", "ExchangeError", "EntryFilled", "StopIntent", "ExchangeError", "ExchangeError"]
    assert flow == [*expected, "OrderPlaced"], types


@EACH_VENUE
async def test_a_limit_entry_rests_post_only_and_fills_when_the_price_comes(
    trader: Trader, controller: Service
) -> None:
    entry = {"type": "limit", "price": "64500", "timeInForce": "GTX"}
    trader.apply(position_manifest("dip", entry=entry))
    trader.wait_phase("dip", "EntryPlaced", controller)
    (resting,) = [o for o in trader.orders() if o["status"] == "NEW"]
    assert (resting["type"], resting["price"]) == ("LIMIT", "64500.00") and open_stops(trader) == []
    trader.stack.paper_admin("/_paper/price", {"symbol": "BTCUSDT", "price": "64500"})
    status = trader.wait_phase("dip", "Protected", controller)
    assert Decimal(status["averageEntryPrice"]) == Decimal("64500") and Decimal(status["filled"]) == Decimal("0.010")
    (stop,) = open_stops(trader)
    assert stop["clientOrderId"] == status["stopOrder"]["clientOrderId"] and Decimal(stop["quantity"]) == Decimal(
        "0.010"
    )
    _, trades = exchange_state(trader)
    assert [t["maker"] for t in trades] == [True]  # it rested on the book: post-only was honoured
    trader.patch_spec("dip", {"state": "Closed"})
    status = trader.wait_phase("dip", "Closed", controller)
    size, trades = exchange_state(trader)
    assert size == 0 and Decimal(status["realizedPnl"]) == net_pnl(trades)


@EACH_VENUE
async def test_hedge_mode_holds_a_long_and_a_short_on_one_symbol(trader: Trader, controller: Service) -> None:
    account = trader.account
    client = make_exchange(account.venue.value, account.api_key, account.secret, base_url=trader.stack.paper_url)
    try:
        await client.load_markets()
        await client.set_position_mode(True, SYMBOL)  # the account's mode is the trader's to set, not Warden's
    finally:
        await client.close()
    trader.apply(exchange_account_manifest(trader.stack.paper_url, account.venue, positionMode="hedge"))
    trader.apply(position_manifest("both-long"))
    trader.apply(position_manifest("both-short", side="short", stop="67000"))
    for name in ("both-long", "both-short"):
        trader.wait_phase(name, "Protected", controller)
    stops = sorted((o["side"], o["triggerPrice"]) for o in open_stops(trader))
    assert stops == [("BUY", "67000.00"), ("SELL", "63000.00")], stops
    trader.stack.paper_admin("/_paper/price", {"symbol": "BTCUSDT", "price": "66000"})
    for name in ("both-long", "both-short"):
        trader.patch_spec(name, {"state": "Closed"})
    long_closed = trader.wait_phase("both-long", "Closed", controller)
    short_closed = trader.wait_phase("both-short", "Closed", controller)
    size, trades = exchange_state(trader)
    assert size == 0 and open_stops(trader) == []
    for status, side in ((long_closed, "LONG"), (short_closed, "SHORT")):
        own = [t for t in trades if t["positionSide"] == side]
        assert len(own) == 2 and Decimal(status["realizedPnl"]) == net_pnl(own), (side, status["realizedPnl"], own)
    assert Decimal(long_closed["realizedPnl"]) > 0 > Decimal(short_closed["realizedPnl"])
