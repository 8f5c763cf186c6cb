"""Properties of the planner against a tiny simulated exchange, over random prices, fills and faults.

Each round: observe the simulated exchange, plan, then apply the action (or drop it, lose its response,
or have it rejected), record the result as the shell does, and let the market move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from controller.api.v1alpha1 import OrderState, Phase, PositionSpec, PositionStatus, RiskLimits
from controller.reconcile.model import (
    Action,
    CancelOrder,
    MarketRules,
    Observation,
    ObservedOrder,
    Outcome,
    PlaceLimitOrder,
    PlaceMarketOrder,
    PlaceStopOrder,
    PlaceTrailingStopOrder,
    Purpose,
    Trade,
    records_to_observe,
)
from controller.reconcile.phases import TERMINAL
from controller.reconcile.planner import plan
from controller.reconcile.results import record_failure, record_success
from controller.reconcile.risk import Book, RiskContext

UID = "5e5e5e5e-0000-4000-8000-000000000001"
START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STEP = Decimal("0.001")
RULES = MarketRules(amount_step=STEP, min_amount=STEP, min_notional=Decimal("5"), price_tick=Decimal("0.1"))
OPEN_PHASES = (Phase.ENTRY_PLACED, Phase.PROTECTED)


@dataclass
class SimOrder:
    client_id: str
    exchange_id: str
    purpose: Purpose
    amount: Decimal
    state: OrderState = OrderState.OPEN
    filled: Decimal = Decimal(0)
    price: Decimal | None = None  # limit price
    trigger: Decimal | None = None
    triggered_id: str | None = None


@dataclass
class Exchange:
    """One long position on one symbol; reduce-only exits never flip it."""

    mark: Decimal = Decimal("100")
    position: Decimal = Decimal(0)
    orders: dict[str, SimOrder] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    next_id: int = 1

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def trade(self, order_id: str, amount: Decimal) -> None:
        self.trades.append(Trade(self.new_id(), order_id, amount, self.mark, Decimal(0), Decimal(0)))

    def reduce(self, amount: Decimal, order_id: str) -> Decimal:
        done = min(amount, self.position)
        self.position -= done
        if done > 0:
            self.trade(order_id, done)
        return done

    def observe(self, status: PositionStatus) -> Observation:
        orders: dict[str, ObservedOrder | None] = {}
        for cid, _ in records_to_observe(status):
            o = self.orders.get(cid)
            orders[cid] = (
                None
                if o is None
                else ObservedOrder(
                    cid,
                    o.exchange_id,
                    o.state,
                    o.amount,
                    o.filled,
                    self.mark if o.filled else None,
                    o.trigger,
                    o.triggered_id,
                )
            )
        trades = tuple(self.trades) if self.position == 0 else ()
        return Observation(self.mark, self.position, RULES, orders, trades)

    def execute(self, action: Action) -> str | None:
        if isinstance(action, CancelOrder):
            order = self.orders.get(action.client_order_id)
            if order is not None and order.state is OrderState.OPEN:
                order.state = OrderState.CANCELED
            return None
        if not isinstance(action, PlaceMarketOrder | PlaceLimitOrder | PlaceStopOrder | PlaceTrailingStopOrder):
            return None
        assert action.client_order_id not in self.orders, "a client order id was reused for a new order"
        order = SimOrder(action.client_order_id, self.new_id(), action.purpose, action.amount)
        self.orders[order.client_id] = order
        if isinstance(action, PlaceMarketOrder):
            if action.reduce_only:
                order.filled = self.reduce(action.amount, order.exchange_id)
            else:
                order.filled = action.amount
                self.position += action.amount
                self.trade(order.exchange_id, action.amount)
            order.state = OrderState.FILLED
        elif isinstance(action, PlaceLimitOrder):
            order.price = action.price
        elif isinstance(action, PlaceStopOrder):
            order.trigger = action.trigger_price
        return order.exchange_id

    def move(self, change: Decimal, fill: Decimal) -> None:
        """The market moves; resting orders fill or trigger."""
        self.mark = max(self.mark + change, Decimal("1"))
        for order in list(self.orders.values()):
            if order.state is not OrderState.OPEN:
                continue
            if order.purpose is Purpose.ENTRY and order.price is not None and self.mark <= order.price:
                more = min(fill, order.amount - order.filled)
                order.filled += more
                self.position += more
                if more:
                    self.trade(order.exchange_id, more)
                if order.filled == order.amount:
                    order.state = OrderState.FILLED
            hit_stop = order.purpose is Purpose.STOP and order.trigger is not None and self.mark <= order.trigger
            hit_tp = order.purpose is Purpose.TAKE_PROFIT and order.trigger is not None and self.mark >= order.trigger
            if hit_stop or hit_tp:
                order.state = OrderState.TRIGGERED
                order.triggered_id = self.new_id()
                self.reduce(order.amount, order.triggered_id)

    def live_stop(self) -> SimOrder | None:
        stops = [o for o in self.orders.values() if o.purpose is Purpose.STOP and o.state is OrderState.OPEN]
        return max(stops, key=lambda o: o.amount, default=None)


FAULTS = st.sampled_from(["ok", "ok", "ok", "ok", "drop", "unknown", "reject"])
EVENTS = st.tuples(
    FAULTS,
    st.sampled_from([Decimal(x) for x in ("-3", "-1", "0", "0", "1", "2", "5")]),  # price change
    st.sampled_from([Decimal(x) for x in ("0", "0.020", "0.050", "0.100")]),  # limit fill
    st.sampled_from(["none"] * 12 + ["cancel_stop", "external_close", "close_request", "pause"]),
)

SPECS = st.fixed_dictionaries(
    {
        "entry": st.sampled_from(
            [
                {"type": "market"},
                {"type": "limit", "price": "99", "expireAfter": "30s"},
                {"type": "limit", "price": "101"},
            ]
        ),
        "stopLoss": st.sampled_from([{"price": "90"}, {"percent": "5"}, {"percent": "1"}]),
        "takeProfit": st.sampled_from([[], [{"percent": "3", "portion": "0.5"}], [{"price": "110", "portion": "1"}]]),
        "trailingStop": st.sampled_from([None, {"callbackPercent": "2", "mode": "emulated"}]),
    }
)


def make_spec(variant: dict[str, Any], closed: bool) -> PositionSpec:
    data = {
        "accountRef": {"name": "sim"},
        "symbol": "BTC/USDT:USDT",
        "side": "long",
        "amount": "0.100",
        "state": "Closed" if closed else "Open",
        **{k: v for k, v in variant.items() if v is not None},
    }
    return PositionSpec.model_validate(data)


def apply(status: PositionStatus, action: Action, fault: str, ex: Exchange, now: datetime) -> PositionStatus:
    if fault == "ok":
        return record_success(status, action, ex.execute(action))
    if fault == "unknown":  # sent, but the response was lost
        ex.execute(action)
        return record_failure(status, action, Outcome.UNKNOWN, "RequestTimeout", now=now, generation=1)
    if fault == "reject" and not isinstance(action, CancelOrder):
        return record_failure(status, action, Outcome.REJECTED, "InvalidOrder", now=now, generation=1)
    return record_failure(status, action, Outcome.RETRY, "DDoSProtection", now=now, generation=1)


def is_entry(action: Action | None) -> bool:
    return isinstance(action, PlaceMarketOrder | PlaceLimitOrder) and action.purpose is Purpose.ENTRY


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    variant=SPECS,
    events=st.lists(EVENTS, min_size=20, max_size=80),
    refuse=st.sampled_from([False, False, False, True]),
)
def test_lifecycle_properties_under_faults(variant: dict[str, Any], events: list[Any], refuse: bool) -> None:
    ex = Exchange()
    status = PositionStatus()
    closed = paused = False
    now = START
    uncovered = 0
    risk = RiskContext(RiskLimits(maxOpenPositions=1), Book(open_positions=1 if refuse else 0))
    for fault, change, fill, happening in events:
        spec = make_spec(variant, closed)
        before = status
        step = plan(
            spec, status, ex.observe(status), uid=UID, generation=1, deleting=False, now=now, paused=paused, risk=risk
        )
        status, action = step.status, step.action
        holding = before.retryAfter is not None and now < before.retryAfter
        if before.phase in TERMINAL:
            assert action is None, "no order for a Closed or Failed Position"
        if refuse:
            assert not is_entry(action), "no exposure after a risk refusal"
        if isinstance(action, PlaceStopOrder) and action.purpose is Purpose.STOP:
            assert action.amount <= ex.position, "a stop never covers more than the position"
        # A filled, open position is covered by a resting stop, or this step places one; one step of grace
        # for a phase change; waiting out a backoff after a failure and a pause are the exceptions.
        exposed = ex.position > 0 and status.phase in OPEN_PHASES and ex.live_stop() is None
        placing_stop = isinstance(action, PlaceStopOrder) and action.purpose is Purpose.STOP
        excused = holding or paused or status.phase is not before.phase or placing_stop
        uncovered = uncovered + 1 if exposed and not excused else 0
        assert uncovered <= 1, f"filled {ex.position} left without a stop: {status}"
        if action is not None:
            status = apply(status, action, fault, ex, now)
        now += timedelta(seconds=3)
        if happening == "cancel_stop" and (stop := ex.live_stop()) is not None:
            stop.state = OrderState.CANCELED
        elif happening == "external_close" and ex.position > 0:
            ex.reduce(ex.position, ex.new_id())
        elif happening == "close_request":
            closed = True
        elif happening == "pause":
            paused = not paused
        ex.move(change, fill)
    event(f"{status.phase.value}/{status.exitReason}")
    if refuse:
        assert ex.position == 0 and status.phase in (Phase.FAILED, Phase.PENDING)
    if status.phase is Phase.CLOSED:
        assert not any(o.state is OrderState.OPEN and o.purpose is not Purpose.ENTRY for o in ex.orders.values()) or (
            status.exitReason in ("CanceledBeforeEntry",)
        )
