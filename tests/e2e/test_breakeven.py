"""Breakeven on real components: the stop moves to the entry (plus the offset) by place-new-then-cancel-old, never
back, and a stop triggered there closes the Position at about no loss."""

from __future__ import annotations

from decimal import Decimal

from devtools.localenv.processes import Service
from tests.e2e.conftest import EACH_VENUE, Trader, audit_types, position_manifest, wait_for
from tests.e2e.test_behaviours import (
    assert_in_order,
    assert_one_stop,
    assert_replaced_before_cancelled,
    set_price,
    settled_stop,
    stop_ids,
    stop_watch,
    venue_now,
    wait_for_reads,
)


@EACH_VENUE
async def test_the_stop_moves_to_breakeven_after_a_percent_and_never_back(trader: Trader, controller: Service) -> None:
    stop = {"price": "63000", "breakeven": {"afterPercent": "1", "offsetPercent": "0.1"}}
    trader.apply(position_manifest("breakeven", stopLoss=stop))
    trader.wait_phase("breakeven", "Protected", controller)
    assert_one_stop(trader, "0.010", "63000")
    with stop_watch(trader):
        since = venue_now(trader.stack)
        set_price(trader, "65600")  # 0.9 % in profit: not yet
        wait_for_reads(trader, since, 5, controller)
        assert trader.status("breakeven").get("breakevenAt") is None
        assert_one_stop(trader, "0.010", "63000")
        set_price(trader, "65700")  # 1 % is 65650: the stop goes to 65000 + 0.1 % = 65065
        status = wait_for("the stop at breakeven", settled_stop(trader, "breakeven", "0.010", "65065"), 60, controller)
        assert status["breakevenAt"]
        since = venue_now(trader.stack)
        set_price(trader, "65300")  # back under the threshold: the stop stays where it is
        wait_for_reads(trader, since, 5, controller)
        assert_one_stop(trader, "0.010", "65065")
        set_price(trader, "65000")
        status = trader.wait_phase("breakeven", "Closed", controller)
    assert status["exitReason"] == "StopLoss"
    assert trader.exchange_position() == 0
    uid = trader.uid("breakeven")
    stops = stop_ids(trader, uid)
    assert len(stops) == 2, stops
    assert_replaced_before_cancelled(trader, stops)
    types = await audit_types(trader.stack, uid)
    assert_in_order(
        types, ["StopPlaced", "BreakevenReached", "StopMove", "OrderPlaced", "OrderCancel", "StopTriggered"]
    )
    assert types.count("BreakevenReached") == 1, types


@EACH_VENUE
async def test_the_stop_moves_to_breakeven_after_the_first_take_profit(trader: Trader, controller: Service) -> None:
    stop = {"price": "63000", "breakeven": {"afterTakeProfit": 1}}
    targets = [{"price": "66000", "portion": "0.5"}, {"price": "68000", "portion": "0.5"}]
    trader.apply(position_manifest("after-tp", amount="0.020", stopLoss=stop, takeProfit=targets))
    trader.wait_phase("after-tp", "Protected", controller)
    wait_for("the stop for the whole fill", settled_stop(trader, "after-tp", "0.020", "63000"), 60, controller)
    with stop_watch(trader):
        set_price(trader, "66100")  # the first take profit closes half: the rest rests behind a stop at the entry
        status = wait_for("the stop at the entry", settled_stop(trader, "after-tp", "0.010", "65000"), 60, controller)
    assert status["breakevenAt"]
    assert trader.exchange_position() == Decimal("0.010")
    types = await audit_types(trader.stack, trader.uid("after-tp"))
    assert_in_order(types, ["TakeProfitTriggered", "BreakevenReached", "StopMove"])
