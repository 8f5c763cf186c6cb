"""The planner decides from what a venue can do (``Capabilities``), never from its name: the trailing stop in effect,
and the room left under the venue's cap on resting conditional orders, checked before an entry."""

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
    TrailingMode,
    TrailingState,
)
from controller.api.vocabulary import ExitReason
from controller.exchange import binanceusdm, bybit
from controller.reconcile.model import (
    MarketRules,
    Observation,
    PlaceMarketOrder,
    PlaceStopOrder,
    PlaceTrailingStopOrder,
    Purpose,
    SetMarginMode,
    Step,
    client_order_id,
)
from controller.reconcile.planner import plan
from controller.reconcile.status import follows_mark
from controller.reconcile.venue import Capabilities, ConditionalCap, Scope, TrailingSupport

UID = "9a7e2d4c-0000-4000-8000-00000000cafe"
NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
RULES = MarketRules(Decimal("0.001"), Decimal("0.001"), Decimal("100"), Decimal("0.1"))
ENTRY, STOP = client_order_id(UID, Purpose.ENTRY), client_order_id(UID, Purpose.STOP, 1)


def spec(**overrides: object) -> PositionSpec:
    base: dict[str, object] = {
        "accountRef": {"name": "a"},
        "symbol": "BTC/USDT:USDT",
        "side": "long",
        "amount": "0.010",
        "stopLoss": {"price": "60000"},
    }
    return PositionSpec.model_validate(base | overrides)


def decide(s: PositionSpec, status: PositionStatus, observation: Observation) -> Step:
    return plan(s, status, observation, uid=UID, generation=1, deleting=False, now=NOW)


def observed(venue: Capabilities, size: str = "0", resting: int = 0) -> Observation:
    return Observation(Decimal("65000"), Decimal(size), RULES, {}, (), None, venue, resting)


PROTECTED = PositionStatus(
    phase=Phase.PROTECTED,
    filled=Decimal("0.010"),
    averageEntryPrice=Decimal("65000"),
    entryOrder=OrderRecord(
        clientOrderId=ENTRY,
        state=OrderState.FILLED,
        amount=Decimal("0.010"),
        filled=Decimal("0.010"),
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
)


@pytest.mark.parametrize(
    ("venue", "mode", "places_trailing_order"),
    [
        (binanceusdm.CAPABILITIES, TrailingMode.NATIVE, True),  # an order under Warden's client id
        (bybit.CAPABILITIES, TrailingMode.EMULATED, False),  # Bybit trails positions only: emulated
        (Capabilities(trailing=TrailingSupport.NONE), TrailingMode.EMULATED, False),
    ],
)
def test_a_native_trailing_stop_is_the_venues_order_where_it_has_one_and_emulated_elsewhere(
    venue: Capabilities, mode: TrailingMode, places_trailing_order: bool
) -> None:
    s = spec(trailingStop={"callbackPercent": "1"})  # mode: native (the default)
    step = decide(s, PROTECTED, observed(venue, size="0.010"))
    assert step.status.trailingMode is mode  # status says which is in effect
    assert isinstance(step.action, PlaceTrailingStopOrder) is places_trailing_order


def test_an_emulated_trailing_stop_asked_for_is_emulated_everywhere() -> None:
    s = spec(trailingStop={"callbackPercent": "1", "mode": "emulated"})
    step = plan(
        s, PROTECTED, observed(binanceusdm.CAPABILITIES, size="0.010"), uid=UID, generation=1, deleting=False, now=NOW
    )
    assert step.status.trailingMode is TrailingMode.EMULATED and not isinstance(step.action, PlaceTrailingStopOrder)


def test_without_a_trailing_stop_status_names_none() -> None:
    step = decide(spec(), PositionStatus(), observed(bybit.CAPABILITIES))
    assert step.status.trailingMode is None and isinstance(step.action, PlaceMarketOrder)


def test_binances_cap_of_200_per_account_refuses_an_entry_that_would_not_fit() -> None:
    s = spec(takeProfit=[{"price": "70000", "portion": "0.5"}, {"price": "72000", "portion": "0.5"}])
    # Stop, two take profits, a replacement's headroom: 4.
    fits = plan(
        s,
        PositionStatus(),
        observed(binanceusdm.CAPABILITIES, resting=196),
        uid=UID,
        generation=1,
        deleting=False,
        now=NOW,
    )
    assert isinstance(fits.action, PlaceMarketOrder)
    full = plan(
        s,
        PositionStatus(),
        observed(binanceusdm.CAPABILITIES, resting=197),
        uid=UID,
        generation=1,
        deleting=False,
        now=NOW,
    )
    assert full.action is None and full.status.phase is Phase.FAILED
    assert full.status.exitReason is ExitReason.CONDITIONAL_ORDER_CAP
    assert "197 conditional orders already rest for the account" in (full.status.lastFailure or full.notes[-1].message)


@given(
    limit=st.integers(min_value=1, max_value=300),
    scope=st.sampled_from(Scope),
    resting=st.integers(min_value=0, max_value=320),
    targets=st.integers(min_value=0, max_value=3),
    native=st.booleans(),
    trailing=st.sampled_from(TrailingSupport),
)
def test_an_entry_goes_out_exactly_when_everything_it_will_rest_fits_under_the_cap(
    limit: int, scope: Scope, resting: int, targets: int, native: bool, trailing: TrailingSupport
) -> None:
    portion = "0.25"
    overrides: dict[str, object] = {
        "takeProfit": [{"price": str(70000 + i * 1000), "portion": portion} for i in range(targets)],
        "trailingStop": {"callbackPercent": "1", "mode": "native" if native else "emulated"},
    }
    venue = replace(bybit.CAPABILITIES, trailing=trailing, conditional_cap=ConditionalCap(limit, scope))
    step = plan(
        spec(**overrides),
        PositionStatus(),
        observed(venue, resting=resting),
        uid=UID,
        generation=1,
        deleting=False,
        now=NOW,
    )
    needed = 1 + targets + (1 if native and trailing is TrailingSupport.ORDER else 0) + 1
    if resting + needed <= limit:
        assert isinstance(step.action, PlaceMarketOrder) and step.status.phase is Phase.PENDING
    else:
        assert step.action is None and step.status.exitReason is ExitReason.CONDITIONAL_ORDER_CAP


def test_a_venue_without_a_cap_never_refuses_for_it() -> None:
    step = plan(
        spec(),
        PositionStatus(),
        observed(Capabilities(), resting=10_000),
        uid=UID,
        generation=1,
        deleting=False,
        now=NOW,
    )
    assert isinstance(step.action, PlaceMarketOrder)


def test_where_the_venue_can_attach_a_stop_to_the_entry_the_planned_stop_rides_on_it() -> None:
    bybit_entry = plan(
        spec(), PositionStatus(), observed(bybit.CAPABILITIES), uid=UID, generation=1, deleting=False, now=NOW
    )
    assert isinstance(bybit_entry.action, PlaceMarketOrder) and bybit_entry.action.attached_stop == Decimal("60000")
    binance_entry = plan(
        spec(), PositionStatus(), observed(binanceusdm.CAPABILITIES), uid=UID, generation=1, deleting=False, now=NOW
    )
    assert isinstance(binance_entry.action, PlaceMarketOrder) and binance_entry.action.attached_stop is None
    # Warden's own stop is recorded with the entry all the same: the attached one is only a safety net.
    assert bybit_entry.status.stopOrder is not None and bybit_entry.status.stopOrder.triggerPrice == Decimal("60000")


def test_a_re_sent_entry_leaves_off_a_stop_the_mark_has_passed() -> None:
    intended = PositionStatus(
        entryOrder=OrderRecord(clientOrderId=ENTRY, state=OrderState.INTENDED, amount=Decimal("0.010"))
    )
    below = Observation(Decimal("59000"), Decimal(0), RULES, {ENTRY: None}, (), None, bybit.CAPABILITIES, 0)
    step = decide(spec(), intended, below)
    assert isinstance(step.action, PlaceMarketOrder) and step.action.attached_stop is None


def test_on_a_venue_without_trailing_orders_a_native_trailing_stop_moves_warden_s_stop_and_follows_the_mark() -> None:
    s = spec(trailingStop={"callbackPercent": "1"})  # native asked for
    risen = observed(bybit.CAPABILITIES, size="0.010")
    risen = replace(risen, mark_price=Decimal("70000"))
    trailing = TrailingState(activated=True, highWaterMark=Decimal("65000"))
    step = decide(s, PROTECTED.model_copy(update={"trailing": trailing}), risen)
    assert isinstance(step.action, PlaceStopOrder) and step.action.trigger_price == Decimal("69300.0")
    assert follows_mark(s, step.status)  # the observer wakes it on mark moves, as for an emulated stop
    on_binance = decide(s, PROTECTED, replace(risen, venue=binanceusdm.CAPABILITIES))
    assert isinstance(on_binance.action, PlaceTrailingStopOrder) and not follows_mark(s, on_binance.status)


def test_a_margin_mode_the_venue_keeps_account_wide_is_recorded_as_set_for_the_whole_account() -> None:
    s = spec(marginMode="isolated")
    on_bybit = decide(s, PositionStatus(), observed(bybit.CAPABILITIES))
    on_binance = decide(s, PositionStatus(), observed(binanceusdm.CAPABILITIES))
    assert isinstance(on_bybit.action, SetMarginMode) and isinstance(on_binance.action, SetMarginMode)
    assert "for the whole account" in on_bybit.notes[-1].message
    assert "for the whole account" not in on_binance.notes[-1].message
