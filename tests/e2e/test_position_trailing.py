"""Bybit's native trailing stop is an attribute of the venue position (``trading-stop``), so Warden uses it only while
one Position owns the symbol's side: a lone Position trails natively and the venue closes it; a second Position on
the side makes the first clear it and emulate, and its own entry goes out only after the clear."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from devtools.localenv.processes import Service
from devtools.localenv.stack import Stack
from paper.models import VenueName
from tests.e2e.conftest import Trader, audit_types, position_manifest, wait_for
from tests.e2e.test_behaviours import assert_in_order, resting_stops, set_price
from tests.paper.bybit_client import bybit_client

BYBIT_ONLY = pytest.mark.parametrize("venue", [VenueName.BYBIT], ids=str)
NATIVE = {"callbackPercent": "1", "mode": "native"}


def venue_trailing(trader: Trader, side: str = "Buy") -> str:
    """The ``trailingStop`` of the account's BTCUSDT position row, over the Bybit wire ("0": none)."""
    client = bybit_client(trader.stack.paper_url, trader.account.api_key, trader.account.secret, "sync")
    rows = client.privateGetV5PositionList({"category": "linear", "symbol": "BTCUSDT"})["result"]["list"]
    held = [r for r in rows if r["side"] == side]
    return str(held[0]["trailingStop"]) if held else "0"


def native_in_force(trader: Trader, name: str) -> Any:
    def probe() -> dict[str, Any] | None:
        status = trader.status(name)
        state = (status.get("venueTrailing") or {}).get("state")
        return status if status.get("phase") == "Protected" and state == "Set" else None

    return probe


@BYBIT_ONLY
async def test_a_lone_position_trails_with_the_venue_position_until_it_triggers(
    trader: Trader, controller: Service
) -> None:
    trader.apply(position_manifest("lone-trail", trailingStop=NATIVE))
    status = wait_for("the venue trailing stop in force", native_in_force(trader, "lone-trail"), 60, controller)
    assert status["trailingMode"] == "native"
    assert Decimal(status["venueTrailing"]["distance"]) == Decimal("650")  # 1 % of the 65000 entry
    assert Decimal(venue_trailing(trader)) == Decimal("650")
    assert [o["type"] for o in resting_stops(trader.orders()) if o["clientOrderId"]] == ["STOP_MARKET"]  # Warden's
    for price in ("65500", "66200", "67000", "66600"):  # best 67000: the venue triggers at 66350 or below
        set_price(trader, price)
    assert trader.exchange_position() == Decimal("0.010")
    set_price(trader, "66300")
    closed = trader.wait_phase("lone-trail", "Closed", controller)
    assert closed["exitReason"] == "TrailingStop"
    assert trader.exchange_position() == 0
    assert resting_stops(trader.orders()) == []  # Warden's stop loss left behind was cancelled
    assert Decimal(closed["realizedPnl"]) > Decimal("12")  # (66300 - 65000) x 0.010, less the fees
    assert "venueTrailing" not in closed
    types = await audit_types(trader.stack, trader.uid("lone-trail"))
    assert_in_order(
        types,
        [
            "EntryIntent",
            "EntryFilled",
            "StopIntent",
            "StopPlaced",
            "TrailingStopIntent",
            "PositionTrailingApplied",
            "CloseStarted",
            "OrderCancel",
            "OrderCanceled",
            "PositionClosed",
        ],
    )


@BYBIT_ONLY
async def test_a_second_position_on_the_side_makes_the_first_clear_it_and_enters_only_after(
    trader: Trader, controller: Service
) -> None:
    trader.apply(position_manifest("first-trail", trailingStop=NATIVE))
    wait_for("the venue trailing stop in force", native_in_force(trader, "first-trail"), 60, controller)
    trader.apply(position_manifest("second", trailingStop=NATIVE))
    trader.wait_phase("second", "Protected", controller)
    first = wait_for(
        "the first Position to emulate",
        lambda: (
            (s := trader.status("first-trail")).get("trailingMode") == "emulated" and "venueTrailing" not in s and s
        ),
        60,
        controller,
    )
    assert trader.status("second")["trailingMode"] == "emulated"
    assert "venueTrailing" not in trader.status("second")
    assert venue_trailing(trader) == "0" and trader.exchange_position() == Decimal("0.020")
    # The clear reached the venue before the second entry was sent: never a fill under a trailing stop of the side.
    log = trader.requests()
    stops = [int(r["seq"]) for r in trading_stops(trader)]
    second_entry = [
        int(r["seq"]) for r in log if r["path"] == "/v5/order/create" and r.get("clientOrderId", "").endswith("-en")
    ][1]
    assert len(stops) == 2 and stops[1] < second_entry, (stops, second_entry)
    # The first one now trails by moving its own stop: 1 % under the mark.
    assert Decimal(first["display"]["stop"]) == Decimal("64350.0")
    types = await audit_types(trader.stack, trader.uid("first-trail"))
    assert_in_order(
        types, ["PositionTrailingApplied", "TrailingEmulated", "TrailingStopClear", "PositionTrailingApplied"]
    )
    for name in ("first-trail", "second"):
        trader.patch_spec(name, {"state": "Closed"})
    for name in ("first-trail", "second"):
        trader.wait_phase(name, "Closed", controller)
    assert trader.exchange_position() == 0


@BYBIT_ONLY
@pytest.mark.parametrize("failpoint", ["trailing:before-send", "trailing:after-send"])
async def test_a_crash_around_the_trading_stop_call_is_repaired_by_reading_the_position(
    stack: Stack, trader: Trader, controller: Service, failpoint: str
) -> None:
    """The intent is in status before the call; after a crash the position's read says whether it arrived: sent
    once either way (before the send: sent by the next process; after it: found, not sent again)."""
    controller.stop()  # the shared controller stands aside; a crashing one sets the trailing stop
    name = f"crash-{failpoint.split(':')[1]}"
    try:
        crashing = stack.start_controller(f"crashing-{name}", WARDEN_FAILPOINTS=failpoint)
        trader.apply(position_manifest(name, trailingStop=NATIVE))
        wait_for("the controller to crash at the failpoint", lambda: not crashing.alive(), 60)
        crashed = trader.status(name)
        assert crashed["venueTrailing"]["state"] == "Intended", crashed
        sent_before_restart = len(trading_stops(trader))
        assert sent_before_restart == (1 if failpoint.endswith("after-send") else 0)
        assert Decimal(venue_trailing(trader)) == (Decimal("650") if sent_before_restart else 0)
        controller.start()
        status = wait_for("the trailing stop read back", native_in_force(trader, name), 60, controller)
    finally:
        if not controller.alive():
            controller.start()
    assert status["trailingMode"] == "native" and Decimal(venue_trailing(trader)) == Decimal("650")
    assert len(trading_stops(trader)) == 1  # never sent twice
    trader.patch_spec(name, {"state": "Closed"})
    closed = trader.wait_phase(name, "Closed", controller)
    assert "venueTrailing" not in closed and trader.exchange_position() == 0


def trading_stops(trader: Trader) -> list[dict[str, Any]]:
    return [r for r in trader.requests() if r["path"] == "/v5/position/trading-stop"]
