"""A venue that trails whole positions (``TrailingSupport.POSITION``, Bybit ``trading-stop``): native only while the
Position is alone on its symbol's side; the intent is recorded before the call and read back from the position;
cleared when a second Position comes to the side (whose entry waits for that) or when the Position closes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.api.v1alpha1 import (
    OrderRecord,
    OrderState,
    Phase,
    PositionSpec,
    PositionStatus,
    Side,
    TrailingMode,
    TrailingState,
    VenueTrailing,
    VenueTrailingState,
)
from controller.api.vocabulary import ConditionType, EventType, ExitReason, Reason
from controller.exchange import binanceusdm, bybit
from controller.reconcile.model import (
    MarketRules,
    Observation,
    ObservedOrder,
    OrderSide,
    Outcome,
    PlaceMarketOrder,
    PlaceTrailingStopOrder,
    Purpose,
    SetPositionTrailing,
    Step,
    Trade,
    client_order_id,
)
from controller.reconcile.planner import plan
from controller.reconcile.results import record_failure

UID = "5b1c2d4c-0000-4000-8000-00000000beef"
NOW = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
RULES = MarketRules(Decimal("0.001"), Decimal("0.001"), Decimal("100"), Decimal("0.1"))
ENTRY, STOP = client_order_id(UID, Purpose.ENTRY), client_order_id(UID, Purpose.STOP, 1)
CLOSE = client_order_id(UID, Purpose.CLOSE)
DISTANCE = Decimal("650.0")  # 1 % of the 65000 average entry, at the 0.1 tick
CLEAR = SetPositionTrailing(Side.LONG, Decimal(0))


def spec(**overrides: object) -> PositionSpec:
    base: dict[str, object] = {
        "accountRef": {"name": "a"},
        "symbol": "BTC/USDT:USDT",
        "side": "long",
        "amount": "0.010",
        "stopLoss": {"price": "60000"},
        "trailingStop": {"callbackPercent": "1"},  # mode: native (the default)
    }
    return PositionSpec.model_validate(base | overrides)


NATIVE = spec()


def observed(
    *, size: str = "0.010", trailing: Decimal = Decimal(0), alone: bool = True, elsewhere: bool = False, **kw: object
) -> Observation:
    base = Observation(Decimal("65000"), Decimal(size), RULES, {}, (), None, bybit.CAPABILITIES)
    return replace(base, position_trailing=trailing, alone_on_side=alone, trailing_elsewhere=elsewhere, **kw)  # type: ignore[arg-type]


def venue(state: VenueTrailingState, distance: Decimal = DISTANCE) -> VenueTrailing:
    return VenueTrailing(distance=distance, state=state)


def protected(record: VenueTrailing | None = None, mode: TrailingMode | None = TrailingMode.NATIVE) -> PositionStatus:
    return PositionStatus(
        phase=Phase.PROTECTED,
        filled=Decimal("0.010"),
        averageEntryPrice=Decimal("65000"),
        entryOrder=OrderRecord(
            clientOrderId=ENTRY,
            state=OrderState.FILLED,
            amount=Decimal("0.010"),
            filled=Decimal("0.010"),
            averagePrice=Decimal("65000"),
            exchangeOrderId="1",
        ),
        stopOrder=OrderRecord(
            clientOrderId=STOP,
            state=OrderState.OPEN,
            amount=Decimal("0.010"),
            triggerPrice=Decimal("60000"),
            exchangeOrderId="2",
        ),
        stopSequence=1,
        venueTrailing=record,
        trailingMode=mode,
    )


def trailed(status: PositionStatus) -> PositionStatus:
    """As emulated trailing left it at a mark of 65000: the stop 1 % behind."""
    assert status.stopOrder is not None
    stop = status.stopOrder.model_copy(update={"triggerPrice": Decimal("64350.0")})
    return status.model_copy(
        update={"stopOrder": stop, "trailing": TrailingState(activated=True, highWaterMark=Decimal("65000"))}
    )


def decide(s: PositionSpec, status: PositionStatus, observation: Observation, deleting: bool = False) -> Step:
    return plan(s, status, observation, uid=UID, generation=1, deleting=deleting, now=NOW)


def notes(step: Step) -> list[EventType]:
    return [n.type for n in step.notes]


SET = SetPositionTrailing(Side.LONG, DISTANCE)


@pytest.mark.parametrize(
    ("name", "status", "observation", "mode", "action", "record"),
    [
        ("alone: set on the venue position, intent first", protected(), observed(), "native", SET, "Intended"),
        (
            "the position shows it: in force (a crash after the call is repaired by the read)",
            protected(venue(VenueTrailingState.INTENDED)),
            observed(trailing=DISTANCE),
            "native",
            None,
            "Set",
        ),
        (
            "recorded, not shown (a crash before the call): sent again, the same value",
            protected(venue(VenueTrailingState.INTENDED)),
            observed(),
            "native",
            SET,
            "Intended",
        ),
        (
            "in force: nothing to do",
            protected(venue(VenueTrailingState.SET)),
            observed(trailing=DISTANCE),
            "native",
            None,
            "Set",
        ),
        (
            "gone from the venue position while open: set again",
            protected(venue(VenueTrailingState.SET)),
            observed(),
            "native",
            SET,
            "Intended",
        ),
        (
            "a second Position on the side: emulated from now on, Warden's stop moves first (then the clear)",
            protected(venue(VenueTrailingState.SET)),
            observed(trailing=DISTANCE, alone=False),
            "emulated",
            "stop",
            "Set",
        ),
        (
            "cleared on the venue: forgotten; the emulated trailing moves Warden's stop",
            protected(venue(VenueTrailingState.CLEARING), mode=TrailingMode.EMULATED),
            observed(alone=False),
            "emulated",
            "stop",
            None,
        ),
        (
            "a refused clear is retried while the venue still shows it",
            trailed(protected(venue(VenueTrailingState.CLEARING), mode=TrailingMode.EMULATED)),
            observed(trailing=DISTANCE, alone=False),
            "emulated",
            CLEAR,
            "Clearing",
        ),
        (
            "never alone: emulated, nothing set on the venue",
            protected(mode=None),
            observed(alone=False),
            "emulated",
            "stop",
            None,
        ),
        (
            "emulated with exposure stays emulated when alone again",
            protected(mode=TrailingMode.EMULATED),
            observed(),
            "emulated",
            "stop",
            None,
        ),
        (
            "refused by the venue: emulated",
            protected(venue(VenueTrailingState.REJECTED)),
            observed(),
            "emulated",
            "stop",
            "Rejected",
        ),
    ],
)
def test_position_trailing_table(  # type: ignore[no-untyped-def]
    name, status, observation, mode, action, record
) -> None:
    step = decide(NATIVE, status, observation)
    assert step.status.trailingMode == mode, name
    if action == "stop":  # the emulated trailing stop moves Warden's own stop up behind the mark
        assert step.action is not None and getattr(step.action, "purpose", None) is Purpose.STOP, name
        assert step.action.trigger_price == Decimal("64350.0"), name  # type: ignore[union-attr]
    else:
        assert step.action == action, name
    kept = step.status.venueTrailing
    assert (kept.state if kept is not None else None) == record, name
    assert action == "stop" or step.status.stopOrder == status.stopOrder, name  # Warden's own stop rests on


def test_a_second_position_makes_the_first_emulate_and_clear_the_venue_trailing_before_anything_else() -> None:
    shared = observed(trailing=DISTANCE, alone=False)
    moved = decide(NATIVE, protected(venue(VenueTrailingState.SET)), shared)
    said = {n.type: n.message for n in moved.notes}
    assert "another Position shares" in said[EventType.TRAILING_EMULATED] and EventType.TRAILING_MOVED in said
    new_stop = moved.status.stopOrder
    assert new_stop is not None and new_stop.triggerPrice == Decimal("64350.0")
    rests = ObservedOrder(new_stop.clientOrderId, "8", OrderState.OPEN, new_stop.amount, Decimal(0))
    cleared = decide(NATIVE, moved.status, replace(shared, orders={new_stop.clientOrderId: rests}))
    assert cleared.action == CLEAR  # before the replaced stop is cancelled
    assert EventType.TRAILING_STOP_CLEAR in notes(cleared) and EventType.TRAILING_EMULATED not in notes(cleared)
    assert cleared.status.venueTrailing == venue(VenueTrailingState.CLEARING)


def test_the_activation_rides_on_the_request_and_sets_the_distance() -> None:
    s = spec(trailingStop={"callbackPercent": "1", "activationPercent": "1"})
    step = decide(s, protected(), observed())
    assert step.action == SetPositionTrailing(Side.LONG, Decimal("656.5"), Decimal("65650.0"))
    passed = decide(s, protected(), replace(observed(), mark_price=Decimal("66000")))
    assert passed.action == SetPositionTrailing(Side.LONG, Decimal("650.0"), None)  # reached: trail from now


def test_a_binance_native_trailing_stop_is_still_an_order_and_an_emulated_one_never_touches_the_venue() -> None:
    binance = replace(observed(), venue=binanceusdm.CAPABILITIES)
    assert isinstance(decide(NATIVE, protected(mode=None), binance).action, PlaceTrailingStopOrder)
    emulated = decide(spec(trailingStop={"callbackPercent": "1", "mode": "emulated"}), protected(mode=None), observed())
    assert emulated.status.trailingMode is TrailingMode.EMULATED and not isinstance(
        emulated.action, SetPositionTrailing
    )


PENDING = PositionStatus()


@pytest.mark.parametrize(
    ("observation", "waits"),
    [
        (observed(size="0", trailing=DISTANCE, alone=False), True),  # the venue shows one
        (observed(size="0", alone=False, elsewhere=True), True),  # another Position is about to set one
        (observed(size="0", alone=False), False),
        (observed(size="0"), False),
    ],
)
def test_a_newcomers_entry_waits_while_the_side_carries_a_position_trailing_stop(
    observation: Observation, waits: bool
) -> None:
    step = decide(spec(trailingStop=None), PENDING, observation)
    if not waits:
        assert isinstance(step.action, PlaceMarketOrder) and step.action.purpose is Purpose.ENTRY
        return
    assert step.action is None and step.status.entryOrder is None and step.status.phase is Phase.PENDING
    ready = next(c for c in step.status.conditions if c.type == ConditionType.READY)
    assert ready.reason == Reason.VENUE_TRAILING_ON_SIDE
    assert notes(step) == [EventType.ENTRY_WAITING]
    assert notes(decide(spec(trailingStop=None), step.status, observation)) == []  # said once


def test_a_closing_position_clears_it_only_while_the_venue_position_still_holds_and_shows_it() -> None:
    closing = protected(venue(VenueTrailingState.SET)).model_copy(
        update={"phase": Phase.CLOSING, "exitReason": ExitReason.REQUESTED}
    )
    first = decide(NATIVE, closing, observed(trailing=DISTANCE))
    assert isinstance(first.action, PlaceMarketOrder) and first.action.purpose is Purpose.CLOSE  # the exit first
    sent = first.status
    close_filled = {CLOSE: ObservedOrder(CLOSE, "9", OrderState.FILLED, Decimal("0.010"), Decimal("0.010"))}
    others_hold = decide(NATIVE, sent, observed(size="0.020", trailing=DISTANCE, orders=close_filled))
    assert others_hold.action == CLEAR
    flat = decide(NATIVE, sent, observed(size="0", orders=close_filled, trailing=DISTANCE))
    assert flat.status.venueTrailing is None  # the venue drops it with the position; nothing to send
    assert flat.action != CLEAR


def test_the_venue_trailing_stop_that_closed_the_position_is_the_exit_and_its_trade_counts() -> None:
    status = protected(venue(VenueTrailingState.SET))
    trades = (
        Trade("t1", "1", Decimal("0.010"), Decimal("65000"), Decimal(0), Decimal("0.3")),
        Trade("t2", "77", Decimal("0.010"), Decimal("66000"), Decimal("10"), Decimal("0.3"), False, OrderSide.SELL),
    )
    entry_seen = {ENTRY: ObservedOrder(ENTRY, "1", OrderState.FILLED, Decimal("0.010"), Decimal("0.010"))}
    flat = observed(size="0", orders=entry_seen, trades=trades)
    closing = decide(NATIVE, status, flat)
    assert closing.status.phase is Phase.CLOSING and closing.status.exitReason == ExitReason.TRAILING_STOP
    cancel = decide(NATIVE, closing.status, flat)
    assert cancel.action is not None and getattr(cancel.action, "client_order_id", None) == STOP  # the leftover
    done = decide(NATIVE, cancel.status.model_copy(update={"stopOrder": None}), flat)
    assert done.status.phase is Phase.CLOSED and done.status.realizedPnl == Decimal("9.4")
    # Without the record it is someone else's trailing stop: an outside close.
    unknown = decide(NATIVE, protected(), flat)
    assert unknown.status.exitReason == ExitReason.EXTERNAL_CLOSE


def test_a_refused_set_falls_back_to_emulated_and_a_refused_clear_is_kept() -> None:
    intended = protected(venue(VenueTrailingState.INTENDED))
    refused = record_failure(intended, SET, Outcome.REJECTED, "bad", now=NOW, generation=1)
    assert refused.venueTrailing is not None and refused.venueTrailing.state is VenueTrailingState.REJECTED
    clearing = protected(venue(VenueTrailingState.CLEARING))
    assert record_failure(clearing, CLEAR, Outcome.REJECTED, "bad", now=NOW, generation=1).venueTrailing == venue(
        VenueTrailingState.CLEARING
    )
    unknown = record_failure(intended, SET, Outcome.UNKNOWN, "timeout", now=NOW, generation=1)
    assert unknown.venueTrailing == intended.venueTrailing  # read back next time


STATES = st.sampled_from([None, *VenueTrailingState])


@given(
    alone=st.booleans(),
    shown=st.sampled_from([Decimal(0), DISTANCE]),
    state=STATES,
    mode=st.sampled_from([None, *TrailingMode]),
    deleting=st.booleans(),
)
def test_a_position_trailing_stop_is_only_ever_set_by_a_lone_position_and_the_stop_is_never_cancelled(
    alone: bool, shown: Decimal, state: VenueTrailingState | None, mode: TrailingMode | None, deleting: bool
) -> None:
    record = venue(state) if state is not None else None
    step = decide(NATIVE, protected(record, mode), observed(trailing=shown, alone=alone), deleting=deleting)
    action = step.action
    if isinstance(action, SetPositionTrailing) and action.distance:
        assert alone and not deleting and step.status.trailingMode is TrailingMode.NATIVE
        assert step.status.venueTrailing is not None and step.status.venueTrailing.state is VenueTrailingState.INTENDED
    if not alone and shown and record is not None and state is not VenueTrailingState.REJECTED and not deleting:
        # Never left in force beside another Position: cleared, unless Warden's own stop is placed first.
        assert action == CLEAR or getattr(action, "purpose", None) is Purpose.STOP
    if isinstance(action, SetPositionTrailing):
        assert step.status.venueTrailing is not None  # recorded before the call
    assert getattr(action, "client_order_id", None) != STOP or deleting  # Warden's own stop keeps resting
