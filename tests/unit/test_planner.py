"""Table tests and properties of the pure planner."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.api.v1alpha1 import OrderRecord, OrderState, Phase, PositionSpec, PositionStatus
from controller.handlers.auditflow import resends
from controller.reconcile.model import (
    CancelOrder,
    MarketRules,
    Observation,
    ObservedOrder,
    OrderSide,
    PlaceLimitOrder,
    PlaceMarketOrder,
    PlaceStopOrder,
    Purpose,
    Trade,
    client_order_id,
    following,
    records_to_observe,
)
from controller.reconcile.planner import plan
from controller.reconcile.venue import LookupRetention

UID = "3f1e2d4c-0000-4000-8000-00000000abcd"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RULES = MarketRules(
    amount_step=Decimal("0.001"), min_amount=Decimal("0.001"), min_notional=Decimal("100"), price_tick=Decimal("0.1")
)
ENTRY = client_order_id(UID, Purpose.ENTRY)
STOP1 = client_order_id(UID, Purpose.STOP, 1)
STOP2 = client_order_id(UID, Purpose.STOP, 2)
CLOSE = client_order_id(UID, Purpose.CLOSE)


def spec(**overrides: object) -> PositionSpec:
    base: dict[str, object] = {
        "accountRef": {"name": "paper"},
        "symbol": "BTC/USDT:USDT",
        "side": "long",
        "amount": "0.010",
        "stopLoss": {"price": "60000"},
    }
    base.update(overrides)
    return PositionSpec.model_validate(base)


def obs(size: str = "0", mark: str = "65000", orders: dict[str, ObservedOrder | None] | None = None, trades=()):  # type: ignore[no-untyped-def]
    return Observation(Decimal(mark), Decimal(size), RULES, orders or {}, tuple(trades))


def record(
    cid: str, state: OrderState, amount: str = "0.010", exchange_id: str | None = "1", **kw: object
) -> OrderRecord:
    return OrderRecord.model_validate(
        {"clientOrderId": cid, "state": state, "amount": amount, "exchangeOrderId": exchange_id, **kw}
    )


def seen(cid: str, state: OrderState, filled: str = "0.010", exchange_id: str = "1", **kw: object) -> ObservedOrder:
    return ObservedOrder(cid, exchange_id, state, Decimal("0.010"), Decimal(filled), **kw)  # type: ignore[arg-type]


def run(s: PositionSpec, status: PositionStatus, o: Observation, deleting: bool = False):  # type: ignore[no-untyped-def]
    return plan(s, status, o, uid=UID, generation=1, deleting=deleting, now=NOW)


FILLED_ENTRY = record(ENTRY, OrderState.FILLED, filled="0.010", averagePrice="65000")
RESTING_STOP = record(STOP1, OrderState.OPEN, exchange_id="7", triggerPrice="60000")


@pytest.mark.parametrize(
    ("name", "the_spec", "status", "observation", "deleting", "phase", "action"),
    [
        (
            "new long places a market buy under its deterministic id",
            spec(),
            PositionStatus(),
            obs(),
            False,
            Phase.PENDING,
            PlaceMarketOrder(Purpose.ENTRY, ENTRY, OrderSide.BUY, Decimal("0.010"), reduce_only=False),
        ),
        (
            "new short sells",
            spec(side="short", stopLoss={"price": "70000"}),
            PositionStatus(),
            obs(),
            False,
            Phase.PENDING,
            PlaceMarketOrder(Purpose.ENTRY, ENTRY, OrderSide.SELL, Decimal("0.010"), reduce_only=False),
        ),
        (
            "long with stop above price fails",
            spec(stopLoss={"price": "70000"}),
            PositionStatus(),
            obs(),
            False,
            Phase.FAILED,
            None,
        ),
        ("short with stop below price fails", spec(side="short"), PositionStatus(), obs(), False, Phase.FAILED, None),
        ("amount below min notional fails", spec(amount="0.001"), PositionStatus(), obs(), False, Phase.FAILED, None),
        ("amount off the step fails", spec(amount="0.0105"), PositionStatus(), obs(), False, Phase.FAILED, None),
        (
            "stop off the tick fails",
            spec(stopLoss={"price": "60000.05"}),
            PositionStatus(),
            obs(),
            False,
            Phase.FAILED,
            None,
        ),
        (
            "crash after intent, order absent: re-send under the same id",
            spec(),
            PositionStatus(entryOrder=record(ENTRY, OrderState.INTENDED, exchange_id=None)),
            obs(orders={ENTRY: None}),
            False,
            Phase.PENDING,
            PlaceMarketOrder(Purpose.ENTRY, ENTRY, OrderSide.BUY, Decimal("0.010"), reduce_only=False),
        ),
        (
            "crash after intent, order found filled: adopt it, no second entry, and its stop in the same step",
            spec(),
            PositionStatus(entryOrder=record(ENTRY, OrderState.INTENDED, exchange_id=None)),
            obs(size="0.010", orders={ENTRY: seen(ENTRY, OrderState.FILLED, average_price=Decimal("65000"))}),
            False,
            Phase.ENTRY_PLACED,
            PlaceStopOrder(STOP1, OrderSide.SELL, Decimal("0.010"), Decimal("60000")),
        ),
        (
            "entry filled: protect the filled amount",
            spec(),
            PositionStatus(phase=Phase.ENTRY_PLACED, entryOrder=FILLED_ENTRY),
            obs(size="0.010", orders={ENTRY: seen(ENTRY, OrderState.FILLED, average_price=Decimal("65000"))}),
            False,
            Phase.ENTRY_PLACED,
            PlaceStopOrder(STOP1, OrderSide.SELL, Decimal("0.010"), Decimal("60000")),
        ),
        (
            "partial fill: the stop covers only what is filled",
            spec(),
            PositionStatus(phase=Phase.ENTRY_PLACED, entryOrder=record(ENTRY, OrderState.OPEN, filled="0.004")),
            obs(size="0.004", orders={ENTRY: seen(ENTRY, OrderState.OPEN, filled="0.004")}),
            False,
            Phase.ENTRY_PLACED,
            PlaceStopOrder(STOP1, OrderSide.SELL, Decimal("0.004"), Decimal("60000")),
        ),
        (
            "closed before entry: nothing sent",
            spec(state="Closed"),
            PositionStatus(),
            obs(),
            False,
            Phase.CLOSED,
            None,
        ),
        (
            "stop resting for the filled amount: protected",
            spec(),
            PositionStatus(phase=Phase.ENTRY_PLACED, entryOrder=FILLED_ENTRY, stopOrder=RESTING_STOP, stopSequence=1),
            obs(
                size="0.010",
                orders={ENTRY: seen(ENTRY, OrderState.FILLED), STOP1: seen(STOP1, OrderState.OPEN, "0", "7")},
            ),
            False,
            Phase.PROTECTED,
            None,
        ),
        (
            "stop cancelled by someone else: re-placed under the next id",
            spec(),
            PositionStatus(phase=Phase.PROTECTED, entryOrder=FILLED_ENTRY, stopOrder=RESTING_STOP, stopSequence=1),
            obs(
                size="0.010",
                orders={ENTRY: seen(ENTRY, OrderState.FILLED), STOP1: seen(STOP1, OrderState.CANCELED, "0", "7")},
            ),
            False,
            Phase.PROTECTED,
            PlaceStopOrder(client_order_id(UID, Purpose.STOP, 2), OrderSide.SELL, Decimal("0.010"), Decimal("60000")),
        ),
        (
            "close requested: closing",
            spec(state="Closed"),
            PositionStatus(phase=Phase.PROTECTED, entryOrder=FILLED_ENTRY, stopOrder=RESTING_STOP, stopSequence=1),
            obs(
                size="0.010",
                orders={ENTRY: seen(ENTRY, OrderState.FILLED), STOP1: seen(STOP1, OrderState.OPEN, "0", "7")},
            ),
            False,
            Phase.CLOSING,
            None,
        ),
        (
            "closing: reduce-only market close of the position first; the stop stays until flat",
            spec(state="Closed"),
            PositionStatus(phase=Phase.CLOSING, entryOrder=FILLED_ENTRY, stopOrder=RESTING_STOP, stopSequence=1),
            obs(
                size="0.010",
                orders={ENTRY: seen(ENTRY, OrderState.FILLED), STOP1: seen(STOP1, OrderState.OPEN, "0", "7")},
            ),
            False,
            Phase.CLOSING,
            PlaceMarketOrder(Purpose.CLOSE, CLOSE, OrderSide.SELL, Decimal("0.010"), reduce_only=True),
        ),
        (
            "deletion closes too",
            spec(),
            PositionStatus(phase=Phase.PROTECTED, entryOrder=FILLED_ENTRY, stopOrder=RESTING_STOP, stopSequence=1),
            obs(
                size="0.010",
                orders={ENTRY: seen(ENTRY, OrderState.FILLED), STOP1: seen(STOP1, OrderState.OPEN, "0", "7")},
            ),
            True,
            Phase.CLOSING,
            None,
        ),
        (
            "flat after the close: cancel the leftover stop",
            spec(state="Closed"),
            PositionStatus(
                phase=Phase.CLOSING,
                entryOrder=FILLED_ENTRY,
                stopOrder=RESTING_STOP,
                closeOrder=record(CLOSE, OrderState.FILLED, exchange_id="9"),
                stopSequence=1,
            ),
            obs(
                orders={
                    STOP1: seen(STOP1, OrderState.OPEN, "0", "7"),
                    CLOSE: seen(CLOSE, OrderState.FILLED, "0.010", "9"),
                }
            ),
            False,
            Phase.CLOSING,
            CancelOrder(STOP1, Purpose.STOP),
        ),
        (
            "external close while protected: closing; its leftover stop is cancelled",
            spec(),
            PositionStatus(phase=Phase.CLOSING, entryOrder=FILLED_ENTRY, stopOrder=RESTING_STOP, stopSequence=1),
            obs(
                size="0", orders={ENTRY: seen(ENTRY, OrderState.FILLED), STOP1: seen(STOP1, OrderState.OPEN, "0", "7")}
            ),
            False,
            Phase.CLOSING,
            CancelOrder(STOP1, Purpose.STOP),
        ),
        (
            "rejected stop: placed again under the next id (protection is never dropped)",
            spec(),
            PositionStatus(
                phase=Phase.ENTRY_PLACED,
                entryOrder=FILLED_ENTRY,
                stopOrder=record(STOP1, OrderState.REJECTED, exchange_id=None, triggerPrice="60000"),
                stopSequence=1,
            ),
            obs(size="0.010", orders={ENTRY: seen(ENTRY, OrderState.FILLED)}),
            False,
            Phase.ENTRY_PLACED,
            PlaceStopOrder(STOP2, OrderSide.SELL, Decimal("0.010"), Decimal("60000")),
        ),
        (
            "closed is terminal: nothing is ever sent again",
            spec(state="Open"),
            PositionStatus(phase=Phase.CLOSED, entryOrder=FILLED_ENTRY),
            obs(size="0.010"),
            False,
            Phase.CLOSED,
            None,
        ),
    ],
)
def test_plan_table(name, the_spec, status, observation, deleting, phase, action) -> None:  # type: ignore[no-untyped-def]
    step = run(the_spec, status, observation, deleting)
    assert step.status.phase is phase, name
    assert step.action == action, name


def test_stop_trigger_closes_with_pnl_from_trades_net_of_fees() -> None:
    triggered = seen(STOP1, OrderState.TRIGGERED, "0.010", "7", triggered_order_id="11")
    status = PositionStatus(phase=Phase.CLOSING, entryOrder=FILLED_ENTRY, stopOrder=RESTING_STOP, stopSequence=1)
    status = status.model_copy(update={"exitReason": "StopLoss"})
    trades = [
        Trade("t1", "1", Decimal("0.010"), Decimal("65000"), Decimal("0"), Decimal("0.325")),
        Trade("t2", "11", Decimal("0.010"), Decimal("59990"), Decimal("-50.10"), Decimal("0.29995")),
        Trade("t3", "999", Decimal("1"), Decimal("1"), Decimal("1000"), Decimal("0")),  # not ours
    ]
    step = run(
        spec(), status, obs(size="0", orders={ENTRY: seen(ENTRY, OrderState.FILLED), STOP1: triggered}, trades=trades)
    )
    assert step.status.phase is Phase.CLOSED
    assert step.status.exitReason == "StopLoss"
    assert step.status.fees == Decimal("0.62495")
    assert step.status.realizedPnl == Decimal("-50.72495")
    assert step.action is None


def test_failed_stop_side_message_is_readable() -> None:
    step = run(spec(stopLoss={"price": "70000"}), PositionStatus(), obs())
    ready = next(c for c in step.status.conditions if c.type == "Ready")
    assert ready.reason == "StopOnWrongSide"
    assert "must be below the price" in ready.message


CID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


@given(st.uuids(), st.sampled_from(list(Purpose)), st.integers(min_value=0, max_value=10**10 - 1))
def test_client_order_ids_are_valid_and_deterministic(uid, purpose, seq) -> None:  # type: ignore[no-untyped-def]
    cid = client_order_id(str(uid), purpose, seq)
    assert CID.match(cid)
    assert cid == client_order_id(str(uid), purpose, seq)


states = st.sampled_from(list(OrderState))
sizes = st.sampled_from(["0", "0.004", "0.010"])


@given(
    phase=st.sampled_from([Phase.PENDING, Phase.ENTRY_PLACED, Phase.PROTECTED, Phase.CLOSING]),
    entry_state=states,
    stop_state=st.one_of(st.none(), states),
    size=sizes,
    entry_seen=st.booleans(),
    closed=st.booleans(),
    deleting=st.booleans(),
)
def test_properties(phase, entry_state, stop_state, size, entry_seen, closed, deleting) -> None:  # type: ignore[no-untyped-def]
    """Whatever the exchange says: never a second entry once one is known; stops never exceed the fill;
    a filled, open position without a resting stop always gets a stop or a close in the same step."""
    # An intended order has no exchange id yet: the id comes with the answer that also makes it Open.
    entry_id = None if entry_state is OrderState.INTENDED else "1"
    entry = record(ENTRY, entry_state, exchange_id=entry_id, filled="0.010", averagePrice="65000")
    stop = None if stop_state is None else record(STOP1, stop_state, exchange_id="7", triggerPrice="60000")
    orders: dict[str, ObservedOrder | None] = {ENTRY: seen(ENTRY, entry_state) if entry_seen else None}
    if stop is not None:
        orders[STOP1] = seen(STOP1, stop.state, "0", "7")
    status = PositionStatus(phase=phase, entryOrder=entry, stopOrder=stop, stopSequence=1 if stop else 0)
    step = run(spec(state="Closed" if closed else "Open"), status, obs(size=size, orders=orders), deleting)
    action = step.action
    if isinstance(action, PlaceMarketOrder) and action.purpose is Purpose.ENTRY:
        assert entry_state is OrderState.INTENDED and not entry_seen
    if isinstance(action, PlaceStopOrder):
        assert action.amount <= Decimal("0.010")
    if isinstance(action, PlaceMarketOrder) and action.purpose is Purpose.CLOSE:
        assert action.reduce_only and action.amount == Decimal(size)
    after = step.status
    stop_live = after.stopOrder is not None and after.stopOrder.state is OrderState.OPEN
    if after.phase in (Phase.ENTRY_PLACED, Phase.PROTECTED) and Decimal(size) > 0 and (after.filled or 0) > 0:
        # Either covered now, or covered by this step, or this step only records a transition and the
        # shell plans again at once.
        assert stop_live or isinstance(action, PlaceStopOrder) or after.phase is not phase
    # A step changes the phase or acts, never both; except that an entry found on the exchange (EntryPlaced) is
    # decided on at once: a filled market entry's stop goes out with that record.
    assert action is None or after.phase is phase or (phase, after.phase) == (Phase.PENDING, Phase.ENTRY_PLACED)


def test_fills_triggers_and_cancels_become_notes_once() -> None:
    intended = PositionStatus(entryOrder=record(ENTRY, OrderState.INTENDED, exchange_id=None))
    filled = obs(size="0.010", orders={ENTRY: seen(ENTRY, OrderState.FILLED, average_price=Decimal("65000"))})
    step = run(spec(), intended, filled)
    assert [n.type for n in step.notes] == ["EntryFilled", "StopIntent"]
    assert step.notes[0].client_order_id == ENTRY
    assert "EntryFilled" not in [n.type for n in run(spec(), step.status, filled).notes]  # reported once


def test_an_adopted_position_takes_the_exchange_position_as_its_entry_then_protects_it() -> None:
    adopted = spec(adopted=True, amount="0.020", stopLoss={"percent": "2"})
    seen = Observation(Decimal("65000"), Decimal("0.020"), RULES, {}, (), entry_price=Decimal("64000"))
    step = run(adopted, PositionStatus(), seen)
    assert step.action is None and step.status.phase is Phase.ENTRY_PLACED
    assert [n.type for n in step.notes] == ["PositionAdopted"]
    entry = step.status.entryOrder
    assert entry is not None and entry.state is OrderState.FILLED and entry.filled == Decimal("0.020")
    protect = run(adopted, step.status, seen)
    assert isinstance(protect.action, PlaceStopOrder)
    assert protect.action.amount == Decimal("0.020") and protect.action.trigger_price == Decimal("62720.0")


def test_an_adopted_position_that_is_gone_closes_without_an_order() -> None:
    step = run(spec(adopted=True, stopLoss={"percent": "2"}), PositionStatus(), obs(size="0"))
    assert step.action is None and step.status.phase is Phase.CLOSED
    assert step.status.exitReason == "AdoptedPositionGone"


def test_an_order_whose_answer_was_lost_is_audited_when_found() -> None:
    """A crash between sending the moved stop and recording it: the next pass finds it by its client id."""
    moving = PositionStatus(
        phase=Phase.PROTECTED,
        entryOrder=FILLED_ENTRY,
        stopOrder=record(STOP2, OrderState.INTENDED, exchange_id=None, triggerPrice="61000"),
        retiredOrders=[RESTING_STOP],
        stopSequence=2,
    )
    found = obs(
        size="0.010",
        orders={
            ENTRY: seen(ENTRY, OrderState.FILLED, average_price=Decimal("65000")),
            STOP1: seen(STOP1, OrderState.OPEN, filled="0", exchange_id="7"),
            STOP2: seen(STOP2, OrderState.OPEN, filled="0", exchange_id="8"),
        },
    )
    step = run(spec(stopLoss={"price": "61000"}), moving, found)
    assert [(n.type, n.client_order_id) for n in step.notes] == [("OrderFound", STOP2), ("OrderCancel", None)]
    assert "order 8" in step.notes[0].message
    assert step.action == CancelOrder(STOP1, Purpose.STOP)  # the old stop goes only now that the new one rests
    assert "OrderFound" not in [n.type for n in run(spec(stopLoss={"price": "61000"}), step.status, found).notes]


def test_closing_never_sells_what_another_position_on_the_symbol_holds() -> None:
    """One-way mode: the symbol's exchange position can be another Position's. After an outside close (or a
    fired stop) this one holds nothing (or only what its stop did not cover), whatever the exchange shows."""
    other_holds = obs(size="0.030", orders={STOP1: seen(STOP1, OrderState.OPEN, "0", "7")})
    external = PositionStatus(
        phase=Phase.CLOSING,
        exitReason="ExternalClose",
        filled=Decimal("0.010"),
        entryOrder=FILLED_ENTRY,
        stopOrder=RESTING_STOP,
        stopSequence=1,
    )
    step = run(spec(), external, other_holds)
    assert isinstance(step.action, CancelOrder) and step.action.client_order_id == STOP1  # leftovers only
    fired = record(STOP1, OrderState.TRIGGERED, amount="0.006", exchange_id="7", triggerPrice="60000")
    partly = external.model_copy(update={"exitReason": "StopLoss", "stopOrder": fired})
    step = run(spec(), partly, obs(size="0.030"))
    assert isinstance(step.action, PlaceMarketOrder) and step.action.amount == Decimal("0.004")


@pytest.mark.parametrize(
    ("entry", "stop", "lookup", "recorded"),
    [
        ({"type": "market"}, {"price": "60000"}, LookupRetention.DURABLE, ("0.010", "60000")),
        ({"type": "market"}, {"percent": "2"}, LookupRetention.DURABLE, ("0.010", "63700.0")),  # re-priced at fill
        ({"type": "market"}, {"price": "60000"}, LookupRetention.BOUNDED, ("0.010", "60000")),  # sent in the pass
        # A resting entry's stop goes out on its pushed fill with no write first...
        ({"type": "limit", "price": "64000"}, {"price": "60000"}, LookupRetention.DURABLE, ("0.010", "60000")),
        # ... where a lookup can prove it never went out; elsewhere it would stay unknown across a restart.
        ({"type": "limit", "price": "64000"}, {"price": "60000"}, LookupRetention.BOUNDED, None),
    ],
)
def test_an_entry_records_the_stop_its_fill_calls_for(
    entry: dict[str, str], stop: dict[str, str], lookup: LookupRetention, recorded: tuple[str, str] | None
) -> None:
    seen = replace(obs(), venue=replace(obs().venue, lookup=lookup))
    step = run(spec(entry=entry, stopLoss=stop), PositionStatus(), seen)
    assert isinstance(step.action, PlaceMarketOrder | PlaceLimitOrder)
    record = step.status.stopOrder
    if recorded is None:
        assert record is None and step.status.stopSequence == 0
        return
    assert record is not None and (record.clientOrderId, record.state) == (STOP1, OrderState.INTENDED)
    assert (record.amount, record.triggerPrice) == tuple(Decimal(v) for v in recorded)
    assert step.status.stopSequence == 1


@pytest.mark.parametrize(
    ("filled", "average", "stop", "placed"),
    [
        ("0.010", "65000", {"price": "60000"}, ("0.010", "60000")),
        ("0.004", "65000", {"price": "60000"}, ("0.004", "60000")),  # a partial fill: sized to it
        ("0.010", "65100", {"percent": "2"}, ("0.010", "63798.0")),  # priced from the fill, not the mark
    ],
)
def test_the_recorded_stop_goes_out_under_its_id_sized_and_priced_by_the_fill(
    filled: str, average: str, stop: dict[str, str], placed: tuple[str, str]
) -> None:
    the_spec = spec(stopLoss=stop)
    intent = run(the_spec, PositionStatus(), obs()).status
    after_send = intent.model_copy(
        update={"entryOrder": intent.entryOrder.model_copy(update={"state": OrderState.OPEN, "exchangeOrderId": "1"})}  # type: ignore[union-attr]
    )
    fill = seen(ENTRY, OrderState.FILLED if filled == "0.010" else OrderState.OPEN, filled=filled)
    fill = replace(fill, average_price=Decimal(average))
    observation = obs(size=filled, orders={ENTRY: fill, STOP1: None})  # the stop was never sent
    step = run(the_spec, after_send, observation)
    assert isinstance(step.action, PlaceStopOrder) and step.action.client_order_id == STOP1
    assert (step.action.amount, step.action.trigger_price) == tuple(Decimal(v) for v in placed)
    assert step.status.stopSequence == 1 and step.status.stopOrder is not None
    assert (step.status.stopOrder.amount, step.status.stopOrder.triggerPrice) == tuple(Decimal(v) for v in placed)


# --- the next stop, recorded with the one before it --------------------------------------------


def test_following_is_the_next_id_of_the_same_purpose() -> None:
    assert following(STOP1) == STOP2
    assert following(client_order_id(UID, Purpose.STOP, 9)) == client_order_id(UID, Purpose.STOP, 10)
    assert following(ENTRY) == client_order_id(UID, Purpose.ENTRY, 1)


def test_every_recorded_stop_records_the_next_one_and_the_next_is_observed_only_beside_it() -> None:
    market = run(spec(), PositionStatus(), obs()).status
    assert (market.stopOrder.clientOrderId, market.nextStopOrderId) == (STOP1, STOP2)
    protected = PositionStatus(
        phase=Phase.PROTECTED, entryOrder=FILLED_ENTRY, filled="0.010", averageEntryPrice="65000", stopSequence=1
    )
    protected = protected.model_copy(update={"stopOrder": RESTING_STOP, "nextStopOrderId": STOP2})
    assert (STOP2, Purpose.STOP) in records_to_observe(protected)
    moved = run(
        spec(stopLoss={"price": "61000"}),
        protected,
        obs(size="0.010", orders={STOP1: seen(STOP1, OrderState.OPEN), STOP2: None}),
    )
    assert isinstance(moved.action, PlaceStopOrder) and moved.action.client_order_id == STOP2
    assert moved.status.nextStopOrderId == client_order_id(UID, Purpose.STOP, 3)
    # Sent with no write first: its intent was durable before the step.
    assert resends(protected, moved)


def test_a_next_stop_found_on_the_exchange_is_adopted_and_the_old_one_retired() -> None:
    protected = PositionStatus(
        phase=Phase.PROTECTED, entryOrder=FILLED_ENTRY, filled="0.010", averageEntryPrice="65000", stopSequence=1
    )
    protected = protected.model_copy(update={"stopOrder": RESTING_STOP, "nextStopOrderId": STOP2})
    found = seen(STOP2, OrderState.OPEN, filled="0", exchange_id="8", trigger_price=Decimal("60000"))
    step = run(
        spec(), protected, obs(size="0.010", orders={STOP1: seen(STOP1, OrderState.OPEN, filled="0"), STOP2: found})
    )
    stop = step.status.stopOrder
    assert stop is not None and (stop.clientOrderId, stop.state, stop.exchangeOrderId) == (STOP2, OrderState.OPEN, "8")
    assert step.status.stopSequence == 2 and step.status.nextStopOrderId == client_order_id(UID, Purpose.STOP, 3)
    assert [r.clientOrderId for r in step.status.retiredOrders] == [STOP1]
    assert isinstance(step.action, CancelOrder) and step.action.client_order_id == STOP1  # the new one rests
    assert [n.type for n in step.notes if n.client_order_id == STOP2] == ["OrderFound"]


def _trade(trade_id: str, order_id: str, at_ms: int | None, client_id: str | None = None) -> Trade:
    amount, price = Decimal("0.010"), Decimal("65000")
    return Trade(
        trade_id, order_id, amount, price, Decimal(0), Decimal(0), traded_at_ms=at_ms, client_order_id=client_id
    )


PROTECTED = PositionStatus(phase=Phase.PROTECTED, entryOrder=FILLED_ENTRY, stopOrder=RESTING_STOP, stopSequence=1)
STILL_OPEN = {ENTRY: seen(ENTRY, OrderState.FILLED), STOP1: seen(STOP1, OrderState.OPEN, "0", "7")}


@pytest.mark.parametrize(
    ("name", "trades", "phase", "action"),
    [
        (
            "another's order traded after the entry: closed outside, the stop is cancelled on the push",
            [_trade("t1", "1", 1000), _trade("t2", "999", 1001, "web_close_1")],
            Phase.CLOSING,
            CancelOrder(STOP1, Purpose.STOP),
        ),
        (
            "no foreign trade: the push may be stale, wait for the read",
            [_trade("t1", "1", 1000)],
            Phase.PROTECTED,
            None,
        ),
        (
            "a foreign trade in the entry's millisecond: not known to be after it, wait",
            [_trade("t1", "1", 1000), _trade("t2", "999", 1000, "web_close_1")],
            Phase.PROTECTED,
            None,
        ),
        (
            "a foreign trade before the entry's (an older close the push may be about): wait",
            [_trade("t0", "998", 990, "web_close_0"), _trade("t1", "1", 1000)],
            Phase.PROTECTED,
            None,
        ),
        (
            "trades without times cannot be ordered: wait",
            [_trade("t1", "1", None), _trade("t2", "999", 1001, "web_close_1")],
            Phase.PROTECTED,
            None,
        ),
        (
            "its own stop, triggered: its order id is not recorded yet, its client id is its own: wait",
            [_trade("t1", "1", 1000), _trade("t2", "11", 1001, STOP1)],
            Phase.PROTECTED,
            None,
        ),
        (
            "an order whose client id nobody told: wait (it may be its own stop's)",
            [_trade("t1", "1", 1000), _trade("t2", "11", 1001)],
            Phase.PROTECTED,
            None,
        ),
        ("no trades read at all: wait", [], Phase.PROTECTED, None),
    ],
)
def test_a_position_pushed_flat_acts_only_on_a_foreign_trade_after_its_own(name, trades, phase, action) -> None:  # type: ignore[no-untyped-def]
    """The stream says flat while the snapshot still shows the position (``flat_pushed``)."""
    observation = replace(obs(size="0.010", orders=STILL_OPEN, trades=trades), flat_pushed=True)
    step = run(spec(), PROTECTED, observation)
    assert step.status.phase is phase, name
    assert step.action == action, name
    if action is None:  # nothing said: a stale push is no drift, and no condition flaps
        assert not [c for c in step.status.conditions if c.type == "Vanished"], name
        assert step.notes == (), name


def test_a_read_that_says_flat_still_needs_no_trade_order() -> None:
    """Without the push, the read's flat position with any foreign trade is an outside close, as before."""
    step = run(spec(), PROTECTED, obs(size="0", orders=STILL_OPEN, trades=[_trade("t2", "999", None)]))
    assert step.status.phase is Phase.CLOSING
    assert step.action == CancelOrder(STOP1, Purpose.STOP)


TP1 = client_order_id(UID, Purpose.TAKE_PROFIT, 1)


@pytest.mark.parametrize(
    ("alone", "stop_seen", "trailing", "first"),
    [
        (True, OrderState.CANCELED, "0", Purpose.CLOSE),  # alone and unprotected: flatten before anything else
        (True, None, "0", Purpose.CLOSE),  # a stop not seen resting does not protect
        (True, OrderState.OPEN, "0", Purpose.TAKE_PROFIT),  # protected: the take profits go first, as always
        (True, OrderState.CANCELED, "50", Purpose.TAKE_PROFIT),  # the venue position trails: protected
        (False, OrderState.CANCELED, "0", Purpose.TAKE_PROFIT),  # shared side: a take profit must not fill beside
    ],
)
def test_closing_unprotected_and_alone_flattens_before_it_drops_the_take_profits(
    alone: bool, stop_seen: OrderState | None, trailing: str, first: Purpose
) -> None:
    tp = record(TP1, OrderState.OPEN, amount="0.005", exchange_id="9", triggerPrice="70000", target=0)
    status = PositionStatus(
        phase=Phase.CLOSING,
        exitReason="Requested",
        filled=Decimal("0.010"),
        entryOrder=FILLED_ENTRY,
        stopOrder=RESTING_STOP,
        stopSequence=1,
        takeProfitOrders=[tp],
        takeProfitSequence=1,
    )
    orders = {TP1: seen(TP1, OrderState.OPEN, "0", "9")}
    if stop_seen is not None:
        orders[STOP1] = seen(STOP1, stop_seen, "0", "7")
    o = replace(obs(size="0.010", orders=orders), alone_on_side=alone, position_trailing=Decimal(trailing))
    step = run(spec(takeProfit=[{"price": "70000", "portion": "0.5"}]), status, o)
    if first is Purpose.CLOSE:
        assert step.action == PlaceMarketOrder(Purpose.CLOSE, CLOSE, OrderSide.SELL, Decimal("0.010"), reduce_only=True)
        flat = replace(o, position_size=Decimal(0))
        after = run(spec(takeProfit=[{"price": "70000", "portion": "0.5"}]), step.status, flat)
        assert after.action == CancelOrder(TP1, Purpose.TAKE_PROFIT)  # then the take profit, a leftover
    else:
        assert step.action == CancelOrder(TP1, Purpose.TAKE_PROFIT)
