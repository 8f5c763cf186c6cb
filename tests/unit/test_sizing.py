"""Sizing a Position by amount, notional or risk: resolved once at entry in the pure planner."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.api.v1alpha1 import OrderState, Phase, PositionStatus, RiskLimits
from controller.api.vocabulary import ExitReason
from controller.reconcile.model import OrderSide, PlaceLimitOrder, PlaceMarketOrder, Purpose
from controller.reconcile.risk import Book, RiskContext
from tests.unit.test_lifecycle import ENTRY, RULES, condition, obs, rec, run, spec


def sized(**size: str) -> Any:
    """A spec sized by ``size`` alone (the helper's default amount removed)."""
    return spec(amount=None, **size)


def market(amount: str, side: OrderSide = OrderSide.BUY) -> PlaceMarketOrder:
    return PlaceMarketOrder(Purpose.ENTRY, ENTRY, side, Decimal(amount), reduce_only=False)


@pytest.mark.parametrize(
    ("name", "the_spec", "mark", "amount"),
    [
        ("an amount is entered as written", spec(amount="0.010"), "65000", "0.010"),
        ("notional 650 at 65000 buys 0.010", sized(notional="650"), "65000", "0.010"),
        (
            "notional 1000 at 65000 is 0.01538..., rounded down to the lot step",
            sized(notional="1000"),
            "65000",
            "0.015",
        ),
        (
            "notional at another price buys another amount",
            sized(notional="1000", stopLoss={"percent": "2"}),
            "50000",
            "0.020",
        ),
        ("risk 10 over a stop 5000 away is 0.002", sized(risk="10"), "65000", "0.002"),
        (
            "risk 100 over a 2 % stop (65000.0 to 63700) is 0.0769..., rounded down",
            sized(risk="100", stopLoss={"percent": "2"}),
            "65000",
            "0.076",
        ),
        (
            "a short's risk is measured up to its stop",
            sized(risk="50", side="short", stopLoss={"price": "70000"}),
            "65000",
            "0.010",
        ),
    ],
)
def test_the_entry_is_sized_from_the_mark(name: str, the_spec: Any, mark: str, amount: str) -> None:
    step = run(the_spec, PositionStatus(), obs(mark=mark))
    side = OrderSide.BUY if the_spec.side == "long" else OrderSide.SELL
    assert step.action == market(amount, side), name
    assert step.status.amount == Decimal(amount), name
    assert step.status.entryOrder is not None and step.status.entryOrder.amount == Decimal(amount), name


def test_a_limit_entry_is_sized_at_its_limit_price_not_the_mark() -> None:
    s = sized(notional="640", entry={"type": "limit", "price": "64000"})
    step = run(s, PositionStatus(), obs(mark="65000"))
    assert step.action == PlaceLimitOrder(ENTRY, OrderSide.BUY, Decimal("0.010"), Decimal("64000"), "GTC")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "the_spec", "reason", "message"),
    [
        (
            "notional 50 buys less than one lot",
            sized(notional="50"),
            ExitReason.AMOUNT_BELOW_MINIMUM,
            "notional 50 at 65000.0 sizes 0.000769 BTC/USDT:USDT, below the minimum amount 0.001 (lot step 0.001)",
        ),
        (
            "notional 120 buys one lot, worth less than the market's minimum order",
            sized(notional="120"),
            ExitReason.AMOUNT_BELOW_MINIMUM,
            "amount 0.001 is worth 65.00 at 65000.0; BTC/USDT:USDT needs at least 100",
        ),
        (
            "risk 1 over a 5000 stop distance is 0.0002",
            sized(risk="1"),
            ExitReason.AMOUNT_BELOW_MINIMUM,
            "risk 1 over the stop distance 5000 (65000.0 to 60000) sizes 0.0002 BTC/USDT:USDT, below the minimum",
        ),
        (
            "risk with the stop on the wrong side is refused for the stop, before any sizing",
            sized(risk="10", stopLoss={"price": "70000"}),
            ExitReason.STOP_ON_WRONG_SIDE,
            "stop loss 70000 is not below the mark price 65000.0",
        ),
        (
            "a percent stop that rounds onto the entry cannot size by risk",
            sized(risk="10", stopLoss={"percent": "0.0001"}),
            ExitReason.INVALID_PRICE,
            "the stop loss 65000 is at the entry price: risk cannot size it",
        ),
    ],
)
def test_a_size_below_the_minimum_fails_with_a_readable_message(
    name: str, the_spec: Any, reason: ExitReason, message: str
) -> None:
    step = run(the_spec, PositionStatus(), obs())
    assert step.status.phase is Phase.FAILED and step.action is None, name
    ready = condition(step, "Ready")
    assert ready.reason == reason, name
    assert message in ready.message, name


def test_the_amount_is_resolved_once_a_resent_intent_keeps_it_whatever_the_price() -> None:
    s = sized(notional="650")
    first = run(s, PositionStatus(), obs(mark="65000"))
    assert first.status.amount == Decimal("0.010")
    # The intent never reached the exchange; the price halved meanwhile: the same order goes out again.
    again = run(s, first.status, obs(mark="32500", orders={ENTRY: None}))
    assert again.action == market("0.010")
    assert again.status.amount == Decimal("0.010")


def test_the_account_risk_limits_see_the_resolved_amount() -> None:
    limits = RiskLimits(maxPositionNotional=Decimal("500"))
    step = run(sized(notional="650"), PositionStatus(), obs(), risk=RiskContext(limits, Book()))
    assert step.status.phase is Phase.FAILED
    refused = "0.01 BTC/USDT:USDT at 65000.0 is worth 650.00, above maxPositionNotional 500"
    assert refused in condition(step, "Ready").message


def test_an_adopted_position_records_its_size() -> None:
    step = run(spec(adopted=True, stopLoss={"percent": "2"}), PositionStatus(), obs(size="0.020"))
    assert step.status.amount == Decimal("0.020")


@pytest.mark.parametrize(
    "sizes",
    [{}, {"amount": "0.01", "notional": "500"}, {"notional": "500", "risk": "10"}, {"amount": "1", "risk": "1"}],
)
def test_exactly_one_size_is_required(sizes: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="amount, notional or risk"):
        spec(**{"amount": None, **sizes})


@given(
    notional=st.decimals(min_value=Decimal("1"), max_value=Decimal("100000"), places=2),
    mark=st.decimals(min_value=Decimal("100"), max_value=Decimal("100000"), places=1),
)
def test_a_notional_is_never_exceeded_and_never_undershot_by_a_whole_lot(notional: Decimal, mark: Decimal) -> None:
    s = sized(notional=format(notional, "f"), stopLoss={"percent": "2"})
    step = run(s, PositionStatus(), obs(mark=format(mark, "f")))
    if step.status.phase is Phase.FAILED:
        # Only when the whole lots it buys are fewer than one, or worth less than the market's minimum order.
        lots = (notional / mark) // RULES.amount_step * RULES.amount_step
        assert step.action is None and (lots < RULES.min_amount or lots * mark < RULES.min_notional)
        return
    amount = step.status.amount
    assert amount is not None and amount % RULES.amount_step == 0
    assert amount * mark <= notional < (amount + RULES.amount_step) * mark
    assert step.status.entryOrder is not None and step.status.entryOrder.state is OrderState.INTENDED


def test_the_resolved_amount_survives_the_wire() -> None:
    status = PositionStatus(entryOrder=rec(ENTRY, OrderState.INTENDED, eid=None), amount=Decimal("0.015"))
    assert PositionStatus.model_validate(status.model_dump(mode="json")).amount == Decimal("0.015")
