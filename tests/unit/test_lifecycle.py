"""The full position lifecycle in the pure planner: one table-style test per behaviour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from pydantic import ValidationError

from controller.api.v1alpha1 import (
    MarginMode,
    OrderRecord,
    OrderState,
    Phase,
    PositionSpec,
    PositionStatus,
    RiskLimits,
    TimeInForce,
    TrailingState,
)
from controller.api.vocabulary import EventType, RiskLimit
from controller.exchange.errors import classify
from controller.reconcile.model import (
    CancelOrder,
    MarketRules,
    Observation,
    ObservedOrder,
    OrderSide,
    Outcome,
    PlaceLimitOrder,
    PlaceMarketOrder,
    PlaceStopOrder,
    PlaceTrailingStopOrder,
    Purpose,
    SetLeverage,
    SetMarginMode,
    Step,
    Trade,
    client_order_id,
)
from controller.reconcile.planner import plan
from controller.reconcile.results import backoff, record_failure, record_success
from controller.reconcile.risk import Book, RiskContext, check_risk
from controller.reconcile.status import TRAILING_MIN_INTERVAL

UID = "9a8b7c6d-0000-4000-8000-00000000beef"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RULES = MarketRules(
    amount_step=Decimal("0.001"), min_amount=Decimal("0.001"), min_notional=Decimal("100"), price_tick=Decimal("0.1")
)
ENTRY = client_order_id(UID, Purpose.ENTRY)
CLOSE = client_order_id(UID, Purpose.CLOSE)


def sl(n: int) -> str:
    return client_order_id(UID, Purpose.STOP, n)


def tp(n: int) -> str:
    return client_order_id(UID, Purpose.TAKE_PROFIT, n)


def spec(**overrides: Any) -> PositionSpec:
    base: dict[str, Any] = {
        "accountRef": {"name": "paper"},
        "symbol": "BTC/USDT:USDT",
        "side": "long",
        "amount": "0.010",
        "stopLoss": {"price": "60000"},
    }
    base.update(overrides)
    return PositionSpec.model_validate(base)


def rec(cid: str, state: OrderState, amount: str = "0.010", eid: str | None = "1", **kw: Any) -> OrderRecord:
    return OrderRecord.model_validate(
        {"clientOrderId": cid, "state": state, "amount": amount, "exchangeOrderId": eid, **kw}
    )


def seen(cid: str, state: OrderState, filled: str = "0", amount: str = "0.010", **kw: Any) -> ObservedOrder:
    return ObservedOrder(cid, kw.pop("eid", "1"), state, Decimal(amount), Decimal(filled), **kw)


def obs(size: str = "0", mark: str = "65000", orders: dict[str, ObservedOrder | None] | None = None, trades=()):  # type: ignore[no-untyped-def]
    return Observation(Decimal(mark), Decimal(size), RULES, orders or {}, tuple(trades))


def run(s: PositionSpec, status: PositionStatus, o: Observation, **kw: Any) -> Step:
    kw.setdefault("now", NOW)
    kw.setdefault("deleting", False)
    return plan(s, status, o, uid=UID, generation=1, **kw)


def filled_entry(filled: str = "0.010", state: OrderState = OrderState.FILLED, **kw: Any) -> OrderRecord:
    return rec(ENTRY, state, filled=filled, averagePrice="65000", **kw)


def protected(stop_amount: str = "0.010", **kw: Any) -> PositionStatus:
    base: dict[str, Any] = {
        "phase": Phase.PROTECTED,
        "entryOrder": filled_entry(),
        "stopOrder": rec(sl(1), OrderState.OPEN, stop_amount, "7", triggerPrice="60000"),
        "stopSequence": 1,
        "filled": "0.010",
        "averageEntryPrice": "65000",
    }
    base.update(kw)
    return PositionStatus.model_validate(base)


def condition(step: Step, type_: str) -> Any:
    return next(c for c in step.status.conditions if c.type == type_)


# --- entry: limit orders, settings, risk -------------------------------------------------------------


def test_limit_entry_is_placed_with_its_price_and_time_in_force() -> None:
    step = run(spec(entry={"type": "limit", "price": "64000", "timeInForce": "GTX"}), PositionStatus(), obs())
    assert step.action == PlaceLimitOrder(ENTRY, OrderSide.BUY, Decimal("0.010"), Decimal("64000"), TimeInForce.GTX)
    assert step.status.entryPlacedAt == NOW


def test_margin_mode_then_leverage_are_set_once_before_the_entry() -> None:
    s = spec(marginMode="isolated", leverage=5)
    first = run(s, PositionStatus(), obs())
    assert first.action == SetMarginMode(MarginMode.ISOLATED)
    status = record_success(first.status, first.action, None)
    second = run(s, status, obs())
    assert second.action == SetLeverage(5)
    status = record_success(second.status, second.action, None)
    third = run(s, status, obs())
    assert isinstance(third.action, PlaceMarketOrder) and third.action.purpose is Purpose.ENTRY


def test_a_refused_setting_fails_before_any_exposure() -> None:
    status = record_failure(
        PositionStatus(), SetLeverage(125), Outcome.REJECTED, "BadRequest: leverage", now=NOW, generation=1
    )
    assert status.phase is Phase.FAILED and status.exitReason == "SettingRejected"


def test_risk_refusal_fails_the_position_naming_the_limit() -> None:
    risk = RiskContext(RiskLimits(maxPositionNotional=Decimal("500")), Book())
    step = run(spec(), PositionStatus(), obs(), risk=risk)
    assert step.status.phase is Phase.FAILED and step.status.exitReason == "RiskLimit"
    assert step.action is None
    assert "maxPositionNotional" in condition(step, "Ready").message


def test_a_risk_refusal_note_carries_its_limit_as_a_field() -> None:
    risk = RiskContext(RiskLimits(maxPositionNotional=Decimal("500")), Book())
    [note] = [n for n in run(spec(), PositionStatus(), obs(), risk=risk).notes if n.type is EventType.RISK_REFUSED]
    assert note.limit is RiskLimit.MAX_POSITION_NOTIONAL and note.message.startswith("maxPositionNotional: ")


@pytest.mark.parametrize(
    ("limits", "book", "refused_by"),
    [
        (RiskLimits(maxOpenPositions=2), Book(open_positions=2), "maxOpenPositions"),
        (RiskLimits(maxOpenPositions=3), Book(open_positions=2), None),
        (RiskLimits(maxPositionNotional=Decimal("650")), Book(), None),
        (RiskLimits(maxPositionNotional=Decimal("649.99")), Book(), "maxPositionNotional"),
        (RiskLimits(maxTotalNotional=Decimal("1000")), Book(total_notional=Decimal("400")), "maxTotalNotional"),
        (RiskLimits(dailyLossLimit=Decimal("100")), Book(realized_pnl_today=Decimal("-100")), "dailyLossLimit"),
        (RiskLimits(dailyLossLimit=Decimal("100")), Book(realized_pnl_today=Decimal("-99.9")), None),
        (
            RiskLimits.model_validate({"cooldownAfterLoss": "30m"}),
            Book(last_loss_at={"BTC/USDT:USDT": NOW - timedelta(minutes=10)}),
            "cooldownAfterLoss",
        ),
        (
            RiskLimits.model_validate({"cooldownAfterLoss": "30m"}),
            Book(last_loss_at={"BTC/USDT:USDT": NOW - timedelta(minutes=31)}),
            None,
        ),
        (None, Book(open_positions=1000), None),
    ],
)
def test_check_risk(limits: RiskLimits | None, book: Book, refused_by: str | None) -> None:
    refusal = check_risk(spec(), Decimal("0.010"), limits, book, price=Decimal("65000"), now=NOW, rules=RULES)
    assert (refusal.limit if refusal else None) == refused_by


# --- validation and precision ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"entry": {"type": "limit", "price": "64000.05"}}, "InvalidPrice"),
        ({"takeProfit": [{"price": "64000", "portion": "0.5"}]}, "TakeProfitOnWrongSide"),
        ({"takeProfit": [{"price": "70000.01", "portion": "1"}]}, "InvalidPrice"),
        ({"takeProfit": [{"price": "70000", "portion": "0.05"}]}, "AmountBelowMinimum"),
    ],
)
def test_orders_are_checked_against_the_market_before_the_first_order(overrides: dict[str, Any], reason: str) -> None:
    step = run(spec(**overrides), PositionStatus(), obs())
    assert step.status.phase is Phase.FAILED and step.status.exitReason == reason
    assert step.action is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"stopLoss": {}},
        {"stopLoss": {"price": "60000", "percent": "2"}},
        {"takeProfit": [{"percent": "2", "portion": "0.6"}, {"percent": "4", "portion": "0.5"}]},
        {"takeProfit": [{"percent": "2", "portion": "0"}]},
        {"takeProfit": [{"percent": "100", "portion": "0.5"}]},
        {"entry": {"type": "limit"}},
        {"entry": {"type": "market", "price": "1"}},
        {"entry": {"type": "limit", "price": "1", "expireAfter": "soon"}},
        {"trailingStop": {"callbackPercent": "11"}},
        {"trailingStop": {"callbackPercent": "0.05"}},
        {"trailingStop": {"callbackPercent": "1", "activationPrice": "1", "activationPercent": "1"}},
        {"leverage": 126},
        {"stopLoss": {"price": 60000.0}},
        {"entry": {"type": "limit", "price": "59000"}},  # the stop is not below the limit price
        {"side": "short", "entry": {"type": "limit", "price": "60000"}},  # nor above it for a short
        {"entry": {"type": "limit", "price": "64000"}, "takeProfit": [{"price": "63000", "portion": "1"}]},
        {"symbol": "BTCUSDT"},
        {"accountRef": {"name": "paper", "namespace": "other"}},
    ],
)
def test_invalid_specs_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        spec(**overrides)


def test_existing_manifests_stay_valid() -> None:
    s = spec(entry={"type": "market"})
    assert s.entry.price is None and s.stopLoss.price == Decimal("60000") and s.deletionPolicy.value == "Close"


# --- protection: partial fills, replace-first, take profits -----------------------------------------


def test_percent_stop_is_rounded_towards_the_entry() -> None:
    status = PositionStatus(
        phase=Phase.ENTRY_PLACED, entryOrder=rec(ENTRY, OrderState.FILLED, filled="0.010", averagePrice="65000.3")
    )
    step = run(spec(stopLoss={"percent": "1.5"}), status, obs(size="0.010"))
    # 65000.3 * 0.985 = 64025.2955 -> up to the tick, never further from the entry than asked
    assert step.action == PlaceStopOrder(sl(1), OrderSide.SELL, Decimal("0.010"), Decimal("64025.3"))


def test_fill_growth_places_the_bigger_stop_first_then_cancels_the_old_one() -> None:
    status = protected(
        stop_amount="0.004", entryOrder=filled_entry("0.004", OrderState.OPEN, price="65000"), filled="0.004"
    )
    grown = obs(size="0.007", orders={ENTRY: seen(ENTRY, OrderState.OPEN, "0.007", average_price=Decimal("65000"))})
    step = run(spec(), status, grown)
    assert step.action == PlaceStopOrder(sl(2), OrderSide.SELL, Decimal("0.007"), Decimal("60000"))
    assert [r.clientOrderId for r in step.status.retiredOrders] == [sl(1)]  # still protecting meanwhile
    placed = record_success(step.status, step.action, "8")
    after = run(spec(), placed, grown)
    assert after.action == CancelOrder(sl(1), Purpose.STOP)


def test_take_profit_triggered_shrinks_the_stop_to_what_is_left() -> None:
    status = protected(
        takeProfitOrders=[rec(tp(1), OrderState.OPEN, "0.005", "9", triggerPrice="70000", target=0)],
        takeProfitSequence=1,
    )
    s = spec(takeProfit=[{"price": "70000", "portion": "0.5"}])
    triggered = seen(tp(1), OrderState.TRIGGERED, eid="9", triggered_order_id="19")
    step = run(s, status, obs(size="0.005", mark="70010", orders={tp(1): triggered}))
    assert step.action == PlaceStopOrder(sl(2), OrderSide.SELL, Decimal("0.005"), Decimal("60000"))
    assert step.notes[0].type == "TakeProfitTriggered"


def test_take_profits_follow_the_stop_and_the_filled_amount() -> None:
    s = spec(takeProfit=[{"percent": "2", "portion": "0.5"}, {"price": "70000", "portion": "0.3"}])
    step = run(s, protected(), obs(size="0.010"))
    assert step.action == PlaceStopOrder(
        tp(1), OrderSide.SELL, Decimal("0.005"), Decimal("66300"), purpose=Purpose.TAKE_PROFIT
    )
    status = record_success(step.status, step.action, "11")
    step = run(s, status, obs(size="0.010"))
    assert step.action == PlaceStopOrder(
        tp(2), OrderSide.SELL, Decimal("0.003"), Decimal("70000"), purpose=Purpose.TAKE_PROFIT
    )


def test_stop_cancelled_by_someone_else_is_replaced_with_a_note() -> None:
    step = run(spec(), protected(), obs(size="0.010", orders={sl(1): seen(sl(1), OrderState.CANCELED, eid="7")}))
    assert step.action == PlaceStopOrder(sl(2), OrderSide.SELL, Decimal("0.010"), Decimal("60000"))
    assert "DriftStopMissing" in [n.type for n in step.notes]


def test_spec_edit_moves_the_stop_replace_first() -> None:
    step = run(spec(stopLoss={"price": "61000"}), protected(), obs(size="0.010"))
    assert step.action == PlaceStopOrder(sl(2), OrderSide.SELL, Decimal("0.010"), Decimal("61000"))
    assert step.status.retiredOrders[0].clientOrderId == sl(1)


def test_stop_past_the_price_closes_instead_of_resting() -> None:
    step = run(spec(stopLoss={"price": "61000"}), protected(), obs(size="0.010", mark="60500"))
    assert step.status.phase is Phase.CLOSING and step.status.exitReason == "StopLoss"


# --- limit entry expiry ------------------------------------------------------------------------------

LIMIT = {"type": "limit", "price": "64000", "expireAfter": "15m"}


def test_expired_unfilled_entry_is_cancelled_then_closed_without_exposure() -> None:
    status = PositionStatus(
        phase=Phase.ENTRY_PLACED, entryOrder=rec(ENTRY, OrderState.OPEN, price="64000"), entryPlacedAt=NOW
    )
    later = NOW + timedelta(minutes=15)
    step = run(spec(entry=LIMIT), status, obs(), now=later)
    assert step.action == CancelOrder(ENTRY, Purpose.ENTRY)
    cancelled = record_success(step.status, step.action, None)
    step = run(spec(entry=LIMIT), cancelled, obs(), now=later)
    assert step.status.phase is Phase.CLOSED and step.status.exitReason == "EntryExpired"


def test_expired_partly_filled_entry_keeps_the_filled_part_protected() -> None:
    entry = filled_entry("0.004", OrderState.OPEN, price="64000")
    status = protected(stop_amount="0.004", entryOrder=entry, filled="0.004", entryPlacedAt=NOW)
    step = run(spec(entry=LIMIT), status, obs(size="0.004"), now=NOW + timedelta(hours=1))
    assert step.action == CancelOrder(ENTRY, Purpose.ENTRY)
    assert step.status.phase is Phase.PROTECTED


# --- closing --------------------------------------------------------------------------------------------


def test_closing_cancels_the_open_entry_then_take_profits_then_closes_then_cancels_the_stop() -> None:
    s = spec(state="Closed", entry=LIMIT, takeProfit=[{"price": "70000", "portion": "0.5"}])
    status = protected(
        phase=Phase.CLOSING,
        exitReason="Requested",
        entryOrder=filled_entry("0.004", OrderState.OPEN, price="64000"),
        filled="0.004",
        stopOrder=rec(sl(1), OrderState.OPEN, "0.004", "7", triggerPrice="60000"),
        takeProfitOrders=[rec(tp(1), OrderState.OPEN, "0.002", "9", triggerPrice="70000", target=0)],
    )
    actions = []
    size = "0.004"
    for _ in range(6):
        step = run(s, status, obs(size=size))
        if step.action is None:
            break
        actions.append(step.action)
        status = record_success(step.status, step.action, "21")
        if isinstance(step.action, PlaceMarketOrder):
            size = "0"
            status = status.model_copy(
                update={"closeOrder": status.closeOrder.model_copy(update={"state": OrderState.FILLED})}
            )  # type: ignore[union-attr]
    assert actions == [
        CancelOrder(ENTRY, Purpose.ENTRY),
        CancelOrder(tp(1), Purpose.TAKE_PROFIT),
        PlaceMarketOrder(Purpose.CLOSE, CLOSE, OrderSide.SELL, Decimal("0.004"), reduce_only=True),
        CancelOrder(sl(1), Purpose.STOP),
    ]
    assert step.status.phase is Phase.CLOSED and step.status.exitReason == "Requested"


def test_a_rejected_close_is_retried_under_a_new_id_and_escalates() -> None:
    status = protected(
        phase=Phase.CLOSING, exitReason="Requested", closeOrder=rec(CLOSE, OrderState.REJECTED, eid=None)
    )
    status = status.model_copy(update={"closeSequence": 1, "failedAttempts": 3, "lastFailure": "InvalidOrder"})
    step = run(spec(state="Closed"), status, obs(size="0.010"))
    assert step.action == PlaceMarketOrder(
        Purpose.CLOSE, client_order_id(UID, Purpose.CLOSE, 2), OrderSide.SELL, Decimal("0.010"), reduce_only=True
    )
    assert condition(step, "Escalated").status.value == "True"


# --- drift ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trades", "reason"),
    [
        ([Trade("t", "999", Decimal("0.010"), Decimal("64000"), Decimal("-10"), Decimal("0.2"))], "ExternalClose"),
        (
            [Trade("t", "998", Decimal("0.010"), Decimal("50000"), Decimal("-150"), Decimal("0"), liquidation=True)],
            "Liquidation",
        ),
    ],
)
def test_flat_with_foreign_trades_starts_closing_with_the_reason(trades: list[Trade], reason: str) -> None:
    step = run(spec(), protected(), obs(size="0", trades=trades))
    assert step.status.phase is Phase.CLOSING and step.status.exitReason == reason
    # The venue already flattened it: the first leftover goes in the same step, nothing is reopened.
    assert step.action == CancelOrder(sl(1), Purpose.STOP)
    assert [n.type for n in step.notes] == ["DriftExternalClose", "CloseStarted", "OrderCancel"]
    gone = obs(size="0", trades=trades, orders={sl(1): seen(sl(1), OrderState.CANCELED)})
    step = run(spec(), step.status, gone)
    assert step.action is None and step.status.phase is Phase.CLOSED


def test_flat_with_nothing_left_to_remove_only_starts_closing() -> None:
    trades = [Trade("t", "999", Decimal("0.010"), Decimal("64000"), Decimal("-10"), Decimal("0.2"))]
    step = run(spec(), protected(), obs(size="0", trades=trades, orders={sl(1): seen(sl(1), OrderState.CANCELED)}))
    assert step.action is None and step.status.phase is Phase.CLOSING


def test_vanished_position_is_reported_not_closed() -> None:
    step = run(spec(), protected(), obs(size="0"))
    assert step.action is None and step.status.phase is Phase.PROTECTED
    assert condition(step, "Vanished").status.value == "True"
    assert [n.type for n in step.notes] == ["DriftPositionVanished"]
    assert run(spec(), step.status, obs(size="0")).notes == ()  # said once


# --- pause, orphan, backoff -----------------------------------------------------------------------------


def test_paused_observes_and_reports_but_never_acts() -> None:
    status = PositionStatus(phase=Phase.ENTRY_PLACED, entryOrder=filled_entry())
    step = run(spec(), status, obs(size="0.010"), paused=True)
    assert step.action is None and step.status.phase is Phase.ENTRY_PLACED
    assert condition(step, "Paused").status.value == "True"
    resumed = run(spec(), step.status, obs(size="0.010"))
    assert isinstance(resumed.action, PlaceStopOrder)
    assert "Resumed" in [n.type for n in resumed.notes]


@pytest.mark.parametrize(
    ("seen", "size", "expected"),
    [
        (ObservedOrder(sl(1), "7", OrderState.OPEN, Decimal("0.010"), Decimal(0)), "0.010", "True"),
        (ObservedOrder(sl(1), "7", OrderState.CANCELED, Decimal("0.010"), Decimal(0)), "0.010", "False"),
        (None, "0.010", "False"),  # gone without a trace
        (ObservedOrder(sl(1), "7", OrderState.CANCELED, Decimal("0.010"), Decimal(0)), "0", None),  # nothing held
    ],
)
def test_paused_protected_condition_tells_whether_a_stop_still_rests(
    seen: ObservedOrder | None, size: str, expected: str | None
) -> None:
    """Paused, a lost stop is not re-placed: the Protected condition (read by the alerts) must say so."""
    step = run(spec(), protected(), obs(size=size, orders={sl(1): seen}), paused=True)
    assert step.action is None
    said = [c.status.value for c in step.status.conditions if c.type == "Protected"]
    assert said == ([] if expected is None else [expected])


def test_paused_counts_fills_that_came_while_paused() -> None:
    growing = protected(stop_amount="0.005", entryOrder=filled_entry("0.005", OrderState.OPEN), filled="0.005")
    seen = ObservedOrder(ENTRY, "1", OrderState.OPEN, Decimal("0.010"), Decimal("0.008"))
    step = run(spec(), growing, obs(size="0.008", orders={ENTRY: seen}), paused=True)
    assert step.action is None
    assert condition(step, "Protected").status.value == "False"  # the stop covers 0.005 of 0.008


def test_orphan_deletion_leaves_the_exchange_untouched_and_says_so() -> None:
    step = run(spec(deletionPolicy="Orphan"), protected(), obs(size="0.010"), deleting=True)
    assert step.action is None and step.status.phase is Phase.CLOSED and step.status.exitReason == "Orphaned"
    assert sl(1) in step.notes[0].message


def test_after_a_failure_the_next_action_waits_for_the_backoff() -> None:
    first = run(spec(), PositionStatus(phase=Phase.ENTRY_PLACED, entryOrder=filled_entry()), obs(size="0.010"))
    assert first.action is not None
    failed = record_failure(first.status, first.action, Outcome.RETRY, "DDoSProtection", now=NOW, generation=1)
    assert failed.retryAfter == NOW + backoff(1) and failed.failedAttempts == 1
    held = run(spec(), failed, obs(size="0.010", orders={sl(1): None}), now=NOW + timedelta(milliseconds=500))
    assert held.action is None
    again = run(spec(), failed, obs(size="0.010", orders={sl(1): None}), now=NOW + backoff(1))
    assert again.action == first.action  # the same intent, under the same id


def test_a_stop_that_failed_is_retried_within_a_second_however_often_it_failed() -> None:
    first = run(spec(), PositionStatus(phase=Phase.ENTRY_PLACED, entryOrder=filled_entry()), obs(size="0.010"))
    assert isinstance(first.action, PlaceStopOrder)
    status = first.status.model_copy(update={"failedAttempts": 6})
    failed = record_failure(status, first.action, Outcome.RETRY, "ExchangeNotAvailable", now=NOW, generation=1)
    assert failed.failedAttempts == 7 and failed.retryAfter == NOW + timedelta(seconds=1)
    again = run(spec(), failed, obs(size="0.010", orders={sl(1): None}), now=NOW + timedelta(seconds=1))
    assert again.action == first.action


def test_a_close_that_failed_is_retried_within_a_second_however_often_it_failed() -> None:
    close = PlaceMarketOrder(Purpose.CLOSE, CLOSE, OrderSide.SELL, Decimal("0.010"), reduce_only=True)
    status = PositionStatus(phase=Phase.CLOSING, failedAttempts=4)
    failed = record_failure(status, close, Outcome.UNKNOWN, "RequestTimeout", now=NOW, generation=1)
    assert failed.failedAttempts == 5 and failed.retryAfter == NOW + timedelta(seconds=1)
    entry = PlaceMarketOrder(Purpose.ENTRY, ENTRY, OrderSide.BUY, Decimal("0.010"), reduce_only=False)
    failed = record_failure(status, entry, Outcome.UNKNOWN, "RequestTimeout", now=NOW, generation=1)
    assert failed.retryAfter == NOW + backoff(5)  # opening waits out the back-off


def test_an_entry_whose_unknown_outcome_turns_out_filled_is_protected_without_waiting_out_the_backoff() -> None:
    intended = PositionStatus(phase=Phase.PENDING, entryOrder=rec(ENTRY, OrderState.INTENDED, eid=None))
    entry = run(spec(), intended, obs()).action
    assert isinstance(entry, PlaceMarketOrder)
    status = intended.model_copy(update={"failedAttempts": 2})
    failed = record_failure(status, entry, Outcome.UNKNOWN, "RequestTimeout", now=NOW, generation=1)
    assert failed.retryAfter == NOW + backoff(3)
    found = obs(
        size="0.010", orders={ENTRY: seen(ENTRY, OrderState.FILLED, filled="0.010", average_price=Decimal(65000))}
    )
    step = run(spec(), failed, found, now=NOW + timedelta(milliseconds=300))
    assert step.status.phase is Phase.ENTRY_PLACED
    assert step.status.failedAttempts == 0 and step.status.retryAfter is None
    step = run(spec(), step.status, found, now=NOW + timedelta(milliseconds=300))  # the same pass plans on
    assert isinstance(step.action, PlaceStopOrder) and step.action.amount == Decimal("0.010")


def test_backoff_is_bounded() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 6, 50)] == [1, 2, 4, 30, 30]


def test_entry_gives_up_after_bounded_retries_before_exposure() -> None:
    status = PositionStatus(failedAttempts=5, lastFailure="placing entry: ExchangeNotAvailable")
    step = run(spec(), status, obs())
    assert step.status.phase is Phase.FAILED and step.status.exitReason == "RetriesExhausted"


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (ccxt.DDoSProtection("429"), Outcome.RETRY),
        (ccxt.ExchangeNotAvailable("503"), Outcome.RETRY),
        (ccxt.RequestTimeout("-1007"), Outcome.UNKNOWN),
        (ccxt.InvalidOrder("-2021"), Outcome.REJECTED),
        (ccxt.DuplicateOrderId("-4116"), Outcome.UNKNOWN),
        (ccxt.AuthenticationError("-2015"), Outcome.ACCOUNT),
    ],
)
def test_errors_are_classified_in_one_place(error: Exception, outcome: Outcome) -> None:
    assert classify(error) is outcome


# --- trailing stops ----------------------------------------------------------------------------------


def test_native_trailing_stop_rests_after_the_stop() -> None:
    s = spec(trailingStop={"callbackPercent": "1.5", "activationPercent": "2"})
    step = run(s, protected(), obs(size="0.010"))
    assert step.action == PlaceTrailingStopOrder(
        client_order_id(UID, Purpose.TRAILING, 1), OrderSide.SELL, Decimal("0.010"), Decimal("1.5"), Decimal("66300")
    )


def test_emulated_trailing_moves_the_stop_up_rate_limited_and_remembers_the_high() -> None:
    s = spec(trailingStop={"callbackPercent": "1", "mode": "emulated"})
    status = protected(trailing=TrailingState(activated=True, highWaterMark=Decimal("65000"), lastMoveAt=NOW))
    # The mark rose: the high is remembered at once, but the stop waits for the minimum interval.
    soon = run(s, status, obs(size="0.010", mark="66000"), now=NOW + timedelta(seconds=1))
    assert soon.action is None and soon.status.trailing is not None
    assert soon.status.trailing.highWaterMark == Decimal("66000")
    # After a restart and a dip, the stop still trails the remembered high (66000 * 0.99 = 65340).
    later = run(s, soon.status, obs(size="0.010", mark="65800"), now=NOW + TRAILING_MIN_INTERVAL)
    assert later.action == PlaceStopOrder(sl(2), OrderSide.SELL, Decimal("0.010"), Decimal("65340"))
    assert later.status.trailing is not None and later.status.trailing.lastMoveAt == NOW + TRAILING_MIN_INTERVAL


def test_emulated_trailing_trigger_is_reported_as_a_trailing_stop() -> None:
    s = spec(trailingStop={"callbackPercent": "1", "mode": "emulated"})
    status = protected(
        trailing=TrailingState(activated=True, highWaterMark=Decimal("66000")),
        stopOrder=rec(sl(2), OrderState.OPEN, "0.010", "7", triggerPrice="65340"),
        stopSequence=2,
    )
    step = run(s, status, obs(size="0", mark="65300", orders={sl(2): seen(sl(2), OrderState.TRIGGERED, eid="7")}))
    assert step.status.exitReason == "TrailingStop"
