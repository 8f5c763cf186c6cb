"""The pre-armed stop (``spec.stopLoss.preArm``, ``controller.reconcile.prearm``): planned from the venue's
capabilities and whether the Position is alone on its symbol's side. Pure: tables over the planner."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from controller.api.v1alpha1 import OrderRecord, OrderState, Phase, PositionSpec, PositionStatus, Side
from controller.api.vocabulary import EventType, ExitReason, Reason
from controller.exchange import binanceusdm, bybit
from controller.handlers.positions import untouched
from controller.reconcile.context import Context
from controller.reconcile.model import (
    CancelOrder,
    MarketRules,
    Observation,
    ObservedOrder,
    OpenOrder,
    OrderSide,
    PlaceMarketOrder,
    PlaceStopOrder,
    Purpose,
    Snapshot,
    Step,
    client_id_prefix,
    client_order_id,
    records_to_observe,
)
from controller.reconcile.planner import plan
from controller.reconcile.prearm import retire
from controller.reconcile.sweep import Owner, Owners, plan_sweep

UID = "5b1e2d4c-0000-4000-8000-00000000beef"
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
ENTRY = client_order_id(UID, Purpose.ENTRY)
STOP = client_order_id(UID, Purpose.STOP, 1)
ARMED = client_order_id(UID, Purpose.PRE_ARMED)
AMOUNT = Decimal("0.010")
RULES = MarketRules(Decimal("0.001"), Decimal("0.001"), Decimal("100"), Decimal("0.1"))


def spec(pre_arm: bool = True, **overrides: object) -> PositionSpec:
    base: dict[str, object] = {
        "accountRef": {"name": "a"},
        "symbol": "BTC/USDT:USDT",
        "side": "long",
        "amount": "0.010",
        "stopLoss": {"price": "60000", "preArm": pre_arm},
    }
    return PositionSpec.model_validate(base | overrides)


def observed(
    size: str = "0",
    *,
    alone: bool = True,
    orders: dict[str, ObservedOrder | None] | None = None,
    venue: object = binanceusdm.CAPABILITIES,
    **fields: object,
) -> Observation:
    base = Observation(Decimal("65000"), Decimal(size), RULES, orders or {}, venue=venue)  # type: ignore[arg-type]
    return replace(base, alone_on_side=alone, **fields)  # type: ignore[arg-type]


def decide(s: PositionSpec, status: PositionStatus, observation: Observation, *, deleting: bool = False) -> Step:
    return plan(s, status, observation, uid=UID, generation=1, deleting=deleting, now=NOW)


def order(cid: str, state: OrderState, **fields: object) -> OrderRecord:
    base = {"clientOrderId": cid, "state": state, "amount": AMOUNT, "exchangeOrderId": "1"}
    return OrderRecord.model_validate(base | fields)


ARMING = order(ARMED, OrderState.INTENDED, exchangeOrderId=None, triggerPrice=Decimal("60000"))
RESTING = order(ARMED, OrderState.OPEN, triggerPrice=Decimal("60000"))
PRE_ARMED_ORDER = PlaceStopOrder(
    ARMED, OrderSide.SELL, AMOUNT, Decimal("60000"), purpose=Purpose.PRE_ARMED, close_position=True
)
FILLED = order(ENTRY, OrderState.FILLED, filled=AMOUNT, averagePrice=Decimal("65000"))
OWN_STOP = order(STOP, OrderState.OPEN, triggerPrice=Decimal("60000"))
ARMED_PENDING = PositionStatus(preArmedStop=RESTING)
RESTING_SEEN = {ARMED: ObservedOrder(ARMED, "1", OrderState.OPEN, Decimal(0), Decimal(0), Decimal(0), Decimal("60000"))}
FILLED_ARMED = PositionStatus(
    phase=Phase.ENTRY_PLACED, entryOrder=FILLED, preArmedStop=RESTING, stopSequence=1, filled=AMOUNT
)

PARTLY_FILLED = FILLED_ARMED.model_copy(
    update={
        "phase": Phase.PROTECTED,
        "entryOrder": order(ENTRY, OrderState.OPEN, filled=Decimal("0.004"), price=Decimal("64000")),
        "filled": Decimal("0.004"),
        "stopOrder": order(STOP, OrderState.OPEN, amount=Decimal("0.004"), triggerPrice=Decimal("60000")),
    }
)


def test_alone_on_binance_the_stop_rests_before_the_entry_is_sent() -> None:
    step = decide(spec(), PositionStatus(), observed())
    assert step.action == PRE_ARMED_ORDER
    assert step.status.entryOrder is None and step.status.preArmedStop == ARMING  # the intent, before the send
    assert any(n.type is EventType.STOP_INTENT and "pre-arming" in n.message for n in step.notes)


def test_the_entry_goes_once_the_pre_armed_stop_rests_and_warden_s_own_stop_is_recorded_with_it() -> None:
    step = decide(spec(), ARMED_PENDING, observed(orders=RESTING_SEEN))
    assert step.action == PlaceMarketOrder(Purpose.ENTRY, ENTRY, OrderSide.BUY, AMOUNT, False)
    assert step.status.preArmedStop is not None and step.status.preArmedStop.state is OrderState.OPEN
    assert step.status.stopOrder is not None and step.status.stopOrder.clientOrderId == STOP
    (intent,) = [n for n in step.notes if n.type is EventType.ENTRY_INTENT]
    assert "not pre-armed" not in intent.message


def test_a_pre_armed_stop_recorded_but_not_on_the_venue_is_sent_again_under_its_id() -> None:
    step = decide(spec(), PositionStatus(preArmedStop=ARMING), observed(orders={ARMED: None}))
    assert step.action == PRE_ARMED_ORDER and step.status.entryOrder is None


@pytest.mark.parametrize(
    ("name", "the_spec", "status", "observation", "why"),
    [
        ("not asked", spec(pre_arm=False), PositionStatus(), observed(), None),
        ("another Position on the side", spec(), PositionStatus(), observed(alone=False), "another Position shares"),
        (
            "refused by the venue",
            spec(),
            PositionStatus(preArmedStop=order(ARMED, OrderState.REJECTED, message="-2021 would immediately trigger")),
            observed(),
            "the venue refused it (-2021",
        ),
        (
            "a venue without it",
            spec(),
            PositionStatus(),
            observed(venue=replace(binanceusdm.CAPABILITIES, pre_armed_stop=False)),
            "cannot rest",
        ),
        # Bybit's entry carries its own stop (the attached stop loss): that is the pre-armed stop there.
        ("a venue whose entry carries its stop", spec(), PositionStatus(), observed(venue=bybit.CAPABILITIES), None),
    ],
)
def test_otherwise_the_entry_goes_as_without_it_and_its_intent_says_why(
    name: str, the_spec: PositionSpec, status: PositionStatus, observation: Observation, why: str | None
) -> None:
    step = decide(the_spec, status, observation)
    assert isinstance(step.action, PlaceMarketOrder) and step.action.purpose is Purpose.ENTRY, name
    assert step.status.preArmedStop == status.preArmedStop, name
    (intent,) = [n for n in step.notes if n.type is EventType.ENTRY_INTENT]
    assert (why is None) == ("not pre-armed" not in intent.message), intent.message
    assert why is None or why in intent.message, intent.message


def test_a_newcomer_on_the_side_waits_while_another_position_s_pre_armed_stop_may_rest() -> None:
    step = decide(spec(pre_arm=False), PositionStatus(), observed(alone=False, pre_armed_elsewhere=True))
    assert step.action is None and step.status.entryOrder is None
    (ready,) = [c for c in step.status.conditions if c.type == "Ready"]
    assert ready.reason == Reason.PRE_ARMED_STOP_ON_SIDE
    assert [n.type for n in step.notes] == [EventType.ENTRY_WAITING]


@pytest.mark.parametrize(
    ("name", "the_spec", "status", "observation", "deleting", "action", "phase"),
    [
        (
            "another Position came before the entry went: cancelled, the entry follows without it",
            spec(),
            ARMED_PENDING,
            observed(alone=False, orders=RESTING_SEEN),
            False,
            CancelOrder(ARMED, Purpose.PRE_ARMED),
            Phase.PENDING,
        ),
        (
            "closed before the entry went",
            spec(state="Closed"),
            ARMED_PENDING,
            observed(orders=RESTING_SEEN),
            False,
            CancelOrder(ARMED, Purpose.PRE_ARMED),
            Phase.PENDING,
        ),
        (
            "deleted before the entry went",
            spec(),
            ARMED_PENDING,
            observed(orders=RESTING_SEEN),
            True,
            CancelOrder(ARMED, Purpose.PRE_ARMED),
            Phase.PENDING,
        ),
        (
            "the spec's stop moved before the entry went: cancelled, not placed again",
            spec(stopLoss={"price": "61000", "preArm": True}),
            ARMED_PENDING,
            observed(orders=RESTING_SEEN),
            False,
            CancelOrder(ARMED, Purpose.PRE_ARMED),
            Phase.PENDING,
        ),
        (
            "the entry was rejected",
            spec(),
            ARMED_PENDING.model_copy(update={"entryOrder": order(ENTRY, OrderState.REJECTED, message="no margin")}),
            observed(orders=RESTING_SEEN | {ENTRY: ObservedOrder(ENTRY, "1", OrderState.REJECTED, AMOUNT, Decimal(0))}),
            False,
            CancelOrder(ARMED, Purpose.PRE_ARMED),
            Phase.PENDING,
        ),
        (
            "the limit entry expired unfilled",
            spec(entry={"type": "limit", "price": "64000"}),
            FILLED_ARMED.model_copy(
                update={"entryOrder": order(ENTRY, OrderState.CANCELED, price=Decimal("64000")), "filled": None}
            ),
            observed(orders=RESTING_SEEN),
            False,
            CancelOrder(ARMED, Purpose.PRE_ARMED),
            Phase.ENTRY_PLACED,
        ),
        (
            "filled and Warden's own stop is not resting yet: it places its own, the pre-armed one stays",
            spec(),
            FILLED_ARMED.model_copy(
                update={
                    "stopOrder": order(STOP, OrderState.INTENDED, exchangeOrderId=None, triggerPrice=Decimal("60000"))
                }
            ),
            observed("0.010", orders=RESTING_SEEN | {STOP: None}),
            False,
            PlaceStopOrder(STOP, OrderSide.SELL, AMOUNT, Decimal("60000")),
            Phase.ENTRY_PLACED,
        ),
        (
            "filled, Warden's own stop rests: cancelled",
            spec(),
            FILLED_ARMED.model_copy(update={"phase": Phase.PROTECTED, "stopOrder": OWN_STOP}),
            observed("0.010", orders=RESTING_SEEN),
            False,
            CancelOrder(ARMED, Purpose.PRE_ARMED),
            Phase.PROTECTED,
        ),
        (
            "partly filled, the limit entry still rests: it stays for the fills to come",
            spec(entry={"type": "limit", "price": "64000"}),
            PARTLY_FILLED,
            observed("0.004", orders=RESTING_SEEN),
            False,
            None,
            Phase.PROTECTED,
        ),
        (
            "partly filled and another Position came to the side: cancelled, its own stop covers what it holds",
            spec(entry={"type": "limit", "price": "64000"}),
            PARTLY_FILLED,
            observed("0.004", alone=False, orders=RESTING_SEEN),
            False,
            CancelOrder(ARMED, Purpose.PRE_ARMED),
            Phase.PROTECTED,
        ),
        (
            "closing and flat: cancelled with the other leftovers",
            spec(state="Closed"),
            FILLED_ARMED.model_copy(
                update={
                    "phase": Phase.CLOSING,
                    "exitReason": ExitReason.REQUESTED,
                    "stopOrder": order(STOP, OrderState.CANCELED, triggerPrice=Decimal("60000")),
                    "closeOrder": order(client_order_id(UID, Purpose.CLOSE), OrderState.FILLED, filled=AMOUNT),
                }
            ),
            observed("0", orders=RESTING_SEEN),
            False,
            CancelOrder(ARMED, Purpose.PRE_ARMED),
            Phase.CLOSING,
        ),
    ],
)
def test_the_pre_armed_stop_is_cancelled_once_done_and_on_every_way_out(
    name: str,
    the_spec: PositionSpec,
    status: PositionStatus,
    observation: Observation,
    deleting: bool,
    action: object,
    phase: Phase,
) -> None:
    step = decide(the_spec, status, observation, deleting=deleting)
    assert step.action == action, name
    assert step.status.phase is phase, name


@pytest.mark.parametrize(
    ("the_spec", "observation"),
    [
        (spec(), observed(alone=False, orders={ARMED: None})),  # another Position came
        # The mark passed the stop below a limit entry (the venue would refuse a stop that triggers at once).
        (
            spec(entry={"type": "limit", "price": "64000"}),
            replace(observed(orders={ARMED: None}), mark_price=Decimal("59000")),
        ),
    ],
    ids=["shared", "passed"],
)
def test_a_pre_armed_intent_that_never_arrived_is_dropped_once_it_cannot_go_so_no_newcomer_waits_for_it(
    the_spec: PositionSpec, observation: Observation
) -> None:
    step = decide(the_spec, PositionStatus(preArmedStop=ARMING), observation)
    assert step.action is None
    assert step.status.preArmedStop is not None and step.status.preArmedStop.state is OrderState.CANCELED


def test_a_pre_armed_stop_that_closed_the_fill_is_a_stop_loss_exit() -> None:
    triggered = ObservedOrder(ARMED, "1", OrderState.TRIGGERED, Decimal(0), Decimal(0), None, Decimal("60000"), "9")
    step = decide(spec(), FILLED_ARMED, observed("0", orders={ARMED: triggered}))
    assert step.status.phase is Phase.CLOSING and step.status.exitReason == ExitReason.STOP_LOSS
    assert any(n.type is EventType.STOP_TRIGGERED for n in step.notes)


def test_the_pre_armed_stop_is_looked_up_by_its_client_id_while_it_may_rest() -> None:
    assert (ARMED, Purpose.PRE_ARMED) in records_to_observe(PositionStatus(preArmedStop=ARMING))
    assert Purpose.PRE_ARMED.conditional  # Binance keeps it on the algo endpoints


def test_the_sweep_keeps_an_ownerless_pre_armed_stop_while_its_side_is_open() -> None:
    resting = OpenOrder("BTC/USDT:USDT", "sell", ObservedOrder(ARMED, "1", OrderState.OPEN, Decimal(0), Decimal(0)))
    view = Snapshot(0.0, {("BTC/USDT:USDT", Side.LONG): AMOUNT}, {}, {ARMED: resting}, {})
    gone = Owner(client_id_prefix(UID), "BTC/USDT:USDT", Side.LONG, live=False)
    (orphan,) = plan_sweep(view, [gone], [], frozenset(), Owners.LISTED).orphans
    assert not orphan.cancel and orphan.purpose is Purpose.PRE_ARMED


def test_a_position_with_only_its_pre_armed_stop_recorded_is_not_deleted_without_the_exchange() -> None:
    assert untouched(PositionStatus())
    assert not untouched(PositionStatus(preArmedStop=RESTING))


def test_pre_arm_needs_a_stop_price() -> None:
    with pytest.raises(ValidationError, match=r"preArm needs stopLoss\.price"):
        spec(stopLoss={"percent": "2", "preArm": True})


def test_retiring_never_takes_the_only_stop_covering_a_fill_whatever_asks_for_it() -> None:
    """The planner reaches ``retire`` with a fill only once Warden's own stop rests; ``retire`` does not rely on
    that order: with the own stop not resting, it keeps the pre-armed one even when everything else says go."""
    uncovered = FILLED_ARMED.model_copy(update={"stopOrder": order(STOP, OrderState.INTENDED, exchangeOrderId=None)})
    ctx = Context(spec(), observed("0.010", alone=False), UID, 1, False, NOW, None, None)
    assert retire(ctx, uncovered) is None
    step = retire(ctx, uncovered.model_copy(update={"stopOrder": OWN_STOP}))
    assert step is not None and step.action == CancelOrder(ARMED, Purpose.PRE_ARMED)
