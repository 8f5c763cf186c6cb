"""Breakeven in the pure planner: once reached, the stop moves to the entry (plus the offset) by place-new-then-
cancel-old, and never back; it composes with the take-profit ladder and the emulated trailing stop."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.api.v1alpha1 import OrderState, PositionStatus, TrailingState
from controller.api.vocabulary import EventType
from controller.reconcile.model import CancelOrder, OrderSide, PlaceStopOrder, Purpose
from controller.reconcile.status import follows_mark
from tests.unit.test_lifecycle import NOW, obs, protected, rec, run, seen, sl, spec, tp

TARGETS = [{"price": "66000", "portion": "0.5"}, {"price": "67000", "portion": "0.5"}]


def breakeven(**fields: Any) -> Any:
    targets = TARGETS if "afterTakeProfit" in fields else []
    return spec(stopLoss={"price": "60000", "breakeven": fields}, takeProfit=targets)


def stop_at(price: str, amount: str = "0.010", sequence: int = 2, side: OrderSide = OrderSide.SELL) -> PlaceStopOrder:
    return PlaceStopOrder(sl(sequence), side, Decimal(amount), Decimal(price))


def tp_hit(target: int, sequence: int) -> Any:
    return rec(tp(sequence), OrderState.TRIGGERED, "0.005", str(20 + sequence), triggerPrice="66000", target=target)


def tp_open(target: int, sequence: int) -> Any:
    return rec(tp(sequence), OrderState.OPEN, "0.005", str(20 + sequence), triggerPrice="67000", target=target)


TRAILING_WITH_BREAKEVEN = spec(
    stopLoss={"price": "60000", "breakeven": {"afterPercent": "1"}},
    trailingStop={"callbackPercent": "1", "mode": "emulated"},
)


def at_breakeven_trailing_from(high: str) -> PositionStatus:
    """Breakeven reached, the stop resting at the entry, the emulated trailing stop's best price ``high``."""
    return protected(
        breakevenAt=NOW,
        trailing=TrailingState(activated=True, highWaterMark=Decimal(high)),
        stopOrder=rec(sl(2), OrderState.OPEN, "0.010", "8", triggerPrice="65000"),
        stopSequence=2,
    )


@pytest.mark.parametrize(
    ("name", "the_spec", "status", "size", "mark", "action"),
    [
        (
            "1 % in profit is 65650: not reached at 65600",
            breakeven(afterPercent="1"),
            protected(),
            "0.010",
            "65600",
            None,
        ),
        (
            "reached at 65650: a new stop at the entry",
            breakeven(afterPercent="1"),
            protected(),
            "0.010",
            "65650",
            stop_at("65000"),
        ),
        (
            "with an offset of 0.1 %: at 65065",
            breakeven(afterPercent="1", offsetPercent="0.1"),
            protected(),
            "0.010",
            "65700",
            stop_at("65065"),
        ),
        (
            "a short reaches it below the entry and its stop comes down to 64935 with the offset",
            spec(
                side="short",
                stopLoss={"price": "67000", "breakeven": {"afterPercent": "1", "offsetPercent": "0.1"}},
            ),
            protected(stopOrder=rec(sl(1), OrderState.OPEN, "0.010", "7", triggerPrice="67000")),
            "0.010",
            "64350",
            stop_at("64935", side=OrderSide.BUY),
        ),
        (
            "never back: reached before, the price fell back, the stop stays at the entry",
            breakeven(afterPercent="1"),
            protected(
                breakevenAt=NOW,
                stopOrder=rec(sl(2), OrderState.OPEN, "0.010", "8", triggerPrice="65000"),
                stopSequence=2,
            ),
            "0.010",
            "65100",
            None,
        ),
        (
            "after the first take profit: the rest's stop goes to the entry in the same replacement",
            breakeven(afterTakeProfit=1),
            protected(takeProfitOrders=[tp_hit(0, 1), tp_open(1, 2)], takeProfitSequence=2),
            "0.005",
            "66100",
            stop_at("65000", "0.005"),
        ),
        (
            "after the second take profit only: the first one shrinks the stop, at its price",
            breakeven(afterTakeProfit=2),
            protected(takeProfitOrders=[tp_hit(0, 1), tp_open(1, 2)], takeProfitSequence=2),
            "0.005",
            "66100",
            stop_at("60000", "0.005"),
        ),
        (
            "the trailing stop above the breakeven moves the stop further (66400 * 0.99 = 65736)",
            TRAILING_WITH_BREAKEVEN,
            at_breakeven_trailing_from("66400"),
            "0.010",
            "66400",
            stop_at("65736", sequence=3),
        ),
        (
            "the trailing stop below the breakeven never moves the stop under it (65600 * 0.99 = 64944)",
            TRAILING_WITH_BREAKEVEN,
            at_breakeven_trailing_from("65600"),
            "0.010",
            "65200",
            None,
        ),
    ],
)
def test_breakeven_table(name: str, the_spec: Any, status: PositionStatus, size: str, mark: str, action: Any) -> None:
    step = run(the_spec, status, obs(size=size, mark=mark))
    assert step.action == action, name


def test_reaching_it_is_audited_remembered_and_keeps_the_old_stop_until_the_new_one_rests() -> None:
    s = breakeven(afterPercent="1", offsetPercent="0.1")
    step = run(s, protected(), obs(size="0.010", mark="65700"))
    assert step.status.breakevenAt == NOW
    types = [n.type for n in step.notes]
    assert EventType.BREAKEVEN_REACHED in types and EventType.STOP_MOVE in types
    reached = next(n for n in step.notes if n.type is EventType.BREAKEVEN_REACHED)
    assert reached.message == "the mark 65700.0 reached 1% in profit: the stop moves to the breakeven 65065.0"
    assert [r.clientOrderId for r in step.status.retiredOrders] == [sl(1)]
    # Until the new stop rests the old one is not cancelled; once it rests, it is.
    assert run(s, step.status, obs(size="0.010", mark="65700")).action == stop_at("65065")
    rests = obs(size="0.010", mark="65700", orders={sl(2): seen(sl(2), OrderState.OPEN, eid="8")})
    after = run(s, step.status, rests)
    assert after.action == CancelOrder(sl(1), Purpose.STOP)
    assert EventType.BREAKEVEN_REACHED not in [n.type for n in after.notes]  # reported once


def test_a_stop_triggered_at_the_breakeven_is_a_stop_loss_even_with_a_trailing_stop_active() -> None:
    status = at_breakeven_trailing_from("65600")
    step = run(
        TRAILING_WITH_BREAKEVEN,
        status,
        obs(size="0", mark="64990", orders={sl(2): seen(sl(2), OrderState.TRIGGERED, eid="8")}),
    )
    assert step.status.exitReason == "StopLoss"


def test_a_percent_breakeven_follows_the_mark_until_reached() -> None:
    s = breakeven(afterPercent="1")
    assert follows_mark(s, protected())
    assert not follows_mark(s, protected(breakevenAt=NOW))
    assert not follows_mark(breakeven(afterTakeProfit=1), protected())  # a take profit's trigger wakes it


@pytest.mark.parametrize(
    ("fields", "targets", "message"),
    [
        ({"afterPercent": "1", "afterTakeProfit": 1}, TARGETS, "set exactly one of afterPercent or afterTakeProfit"),
        ({"offsetPercent": "0.1"}, TARGETS, "set exactly one of afterPercent or afterTakeProfit"),
        ({"afterTakeProfit": 3}, TARGETS, "names a take profit the Position does not have"),
        ({"afterTakeProfit": 1}, [], "names a take profit the Position does not have"),
        ({"afterTakeProfit": 0}, TARGETS, "afterTakeProfit must be between 1 and 8"),
        ({"afterPercent": "0"}, TARGETS, "must be a percentage above 0"),
    ],
)
def test_invalid_breakevens_are_refused(fields: dict[str, Any], targets: list[Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(stopLoss={"price": "60000", "breakeven": fields}, takeProfit=targets)


TRAILING = spec(trailingStop={"callbackPercent": "1", "mode": "emulated"})
STOP_RESTING = {sl(2): seen(sl(2), OrderState.OPEN, eid="8")}
TRAILING_AT_REST = run(
    TRAILING,
    protected(
        trailing=TrailingState(activated=True, highWaterMark=Decimal("66000"), lastMoveAt=NOW - timedelta(hours=1)),
        stopOrder=rec(sl(2), OrderState.OPEN, "0.010", "8", triggerPrice="65340"),  # 1 % behind the best, 66,000
        stopSequence=2,
    ),
    obs(size="0.010", mark="65500", orders=STOP_RESTING),
).status  # as its last pass left it
VALUATION = {"unrealizedPnl", "unrealizedPnlMark", "unrealizedPnlAt", "display"}  # the revaluation's own wake


@given(mark=st.decimals(min_value=Decimal("60000"), max_value=Decimal("67000"), places=1))
def test_an_active_trailing_stop_is_woken_for_every_mark_that_calls_for_its_action_and_no_other(mark: Decimal) -> None:
    """The observer wakes an active emulated trailing stop only for the marks ``follows_mark`` names: any other
    would find nothing to do (the stop rests where the best price puts it; the venue triggers it)."""
    watch = follows_mark(TRAILING, TRAILING_AT_REST)
    assert watch is not None
    step = run(TRAILING, TRAILING_AT_REST, obs(size="0.010", mark=str(mark), orders=STOP_RESTING))
    changed = step.status.model_dump(exclude=VALUATION) != TRAILING_AT_REST.model_dump(exclude=VALUATION)
    acts = step.action is not None or bool(step.notes) or changed
    assert acts == watch.wakes(mark), (mark, step.action, step.status.trailing)
