"""Decide the next step for one Position. Pure: no I/O, no clock (``now`` is an argument).

One call yields one step: the status to record and at most one exchange action. A step changes the phase
or acts, never both, so every transition is its own audited record. The shell records the status first
(so an order's intent is durable before the order is sent), executes the action, observes again and calls
the planner again until a step neither acts nor changes the phase.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from controller.api.v1alpha1 import (
    Condition,
    ConditionStatus,
    OrderRecord,
    OrderState,
    Phase,
    PositionSpec,
    PositionStatus,
    Side,
)
from controller.reconcile.model import (
    CancelStopOrder,
    Note,
    Observation,
    PlaceMarketOrder,
    PlaceStopOrder,
    Purpose,
    Step,
    client_order_id,
    entry_side,
    exit_side,
)

TERMINAL = frozenset({Phase.CLOSED, Phase.FAILED})
_LIVE = frozenset({OrderState.OPEN, OrderState.INTENDED})


def plan(
    spec: PositionSpec,
    status: PositionStatus,
    observation: Observation,
    *,
    uid: str,
    generation: int,
    deleting: bool,
    now: datetime,
) -> Step:
    if status.phase in TERMINAL:
        return Step(replace_status(status, observedGeneration=generation))
    absorbed = replace_status(absorb(status, observation), observedGeneration=generation)
    ctx = _Context(spec, observation, uid, generation, deleting, now)
    if absorbed.phase is Phase.PENDING:
        step = ctx.pending(absorbed)
    elif absorbed.phase is Phase.CLOSING:
        step = ctx.closing(absorbed)
    else:
        step = ctx.open(absorbed)
    fills = fill_notes(status, absorbed)
    return replace(step, notes=fills + step.notes) if fills else step


_FILL_EVENTS = {
    ("entryOrder", OrderState.FILLED): "EntryFilled",
    ("closeOrder", OrderState.FILLED): "CloseFilled",
    ("stopOrder", OrderState.TRIGGERED): "StopTriggered",
    ("stopOrder", OrderState.CANCELED): "StopCanceled",
}


def fill_notes(before: PositionStatus, after: PositionStatus) -> tuple[Note, ...]:
    """What the exchange did to our orders since the last observation (fills, triggers, cancels)."""
    notes = []
    for (name, state), type_ in _FILL_EVENTS.items():
        old: OrderRecord | None = getattr(before, name)
        new: OrderRecord | None = getattr(after, name)
        if new is not None and new.state is state and (old is None or old.state is not state):
            detail = f"filled {new.filled} at {new.averagePrice}" if state is OrderState.FILLED else state.value
            notes.append(Note(type_, f"{new.clientOrderId}: {detail}", client_order_id=new.clientOrderId))
    return tuple(notes)


def replace_status(status: PositionStatus, **changes: object) -> PositionStatus:
    return status.model_copy(update=changes)


def absorb(status: PositionStatus, observation: Observation) -> PositionStatus:
    """Bring every order record in line with what the exchange reports for its client id."""
    changes: dict[str, object] = {}
    for name in ("entryOrder", "stopOrder", "closeOrder"):
        record: OrderRecord | None = getattr(status, name)
        if record is None or record.clientOrderId not in observation.orders:
            continue
        seen = observation.orders[record.clientOrderId]
        if seen is None:
            # Intended but never arrived: stays intended, so it is sent again under the same id.
            # Anything else that vanished is gone from the book.
            if record.state is not OrderState.INTENDED and record.state is not OrderState.CANCELED:
                changes[name] = record.model_copy(update={"state": OrderState.CANCELED})
            continue
        changes[name] = record.model_copy(
            update={
                "exchangeOrderId": seen.exchange_order_id,
                "state": seen.state,
                "filled": seen.filled,
                "averagePrice": seen.average_price,
            }
        )
    return status.model_copy(update=changes) if changes else status


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Upsert a condition; lastTransitionTime moves only when its status changes."""
    previous = next((c for c in conditions if c.type == type_), None)
    since = previous.lastTransitionTime if previous is not None and previous.status is status else now
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observedGeneration=generation,
        lastTransitionTime=since,
    )
    return [c for c in conditions if c.type != type_] + [updated]


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


class _Context:
    def __init__(
        self,
        spec: PositionSpec,
        observation: Observation,
        uid: str,
        generation: int,
        deleting: bool,
        now: datetime,
    ) -> None:
        self.spec = spec
        self.obs = observation
        self.uid = uid
        self.generation = generation
        self.deleting = deleting
        self.now = now

    @property
    def wants_closed(self) -> bool:
        return self.deleting or self.spec.state.value == "Closed"

    def condition(self, status: PositionStatus, type_: str, value: bool, reason: str, message: str) -> PositionStatus:
        flag = ConditionStatus.TRUE if value else ConditionStatus.FALSE
        conditions = set_condition(status.conditions, type_, flag, reason, message, self.generation, self.now)
        return replace_status(status, conditions=conditions)

    def fail(self, status: PositionStatus, reason: str, message: str) -> Step:
        status = self.condition(status, "Ready", False, reason, message)
        status = replace_status(status, phase=Phase.FAILED, exitReason=reason)
        return Step(status, notes=(Note("PositionRejected", message, warning=True),))

    # --- Pending: nothing is on the exchange yet, or the entry's intent is recorded --------------

    def pending(self, status: PositionStatus) -> Step:
        entry = status.entryOrder
        if entry is None or (entry.state is OrderState.INTENDED and entry.exchangeOrderId is None):
            if self.wants_closed:
                status = replace_status(status, phase=Phase.CLOSED, exitReason="CanceledBeforeEntry")
                status = self.condition(status, "Ready", True, "Closed", "closed before any order was sent")
                return Step(status, notes=(Note("PositionClosed", "closed before any order was sent"),))
            return self.place_entry(status)
        if entry.state is OrderState.REJECTED:
            return self.fail(status, "EntryRejected", f"the exchange rejected the entry: {entry.message or ''}")
        status = replace_status(status, phase=Phase.ENTRY_PLACED)
        status = self.condition(status, "Ready", False, "EntryPlaced", "entry order placed; waiting for the fill")
        return Step(status)

    def place_entry(self, status: PositionStatus) -> Step:
        problem = self.entry_problem()
        if problem is not None:
            return self.fail(status, *problem)
        amount = floor_to_step(self.spec.amount, self.obs.market.amount_step)
        cid = client_order_id(self.uid, Purpose.ENTRY)
        record = OrderRecord(clientOrderId=cid, state=OrderState.INTENDED, amount=amount)
        status = replace_status(status, entryOrder=record)
        action = PlaceMarketOrder(Purpose.ENTRY, cid, entry_side(self.spec.side), amount, reduce_only=False)
        return Step(status, action, (Note("EntryIntent", f"placing market {action.side} {amount}"),))

    def entry_problem(self) -> tuple[str, str] | None:
        spec, mark, rules = self.spec, self.obs.mark_price, self.obs.market
        stop = spec.stopLoss.price
        if spec.side is Side.LONG and stop >= mark:
            return (
                "StopOnWrongSide",
                f"stop loss {stop} is not below the mark price {mark}; a long's stop must be below the price",
            )
        if spec.side is Side.SHORT and stop <= mark:
            return (
                "StopOnWrongSide",
                f"stop loss {stop} is not above the mark price {mark}; a short's stop must be above the price",
            )
        amount = floor_to_step(spec.amount, rules.amount_step)
        if amount < rules.min_amount or amount != spec.amount:
            return (
                "InvalidAmount",
                f"amount {spec.amount} must be a multiple of {rules.amount_step} "
                f"and at least {rules.min_amount} for {spec.symbol}",
            )
        if amount * mark < rules.min_notional:
            return (
                "AmountBelowMinimum",
                f"amount {amount} is worth {amount * mark} at {mark}; {spec.symbol} needs at least "
                f"{rules.min_notional}",
            )
        if floor_to_step(stop, rules.price_tick) != stop:
            return ("InvalidStopPrice", f"stop loss {stop} must be a multiple of the tick size {rules.price_tick}")
        return None

    # --- EntryPlaced / Protected: keep a stop covering exactly the filled amount ---------------

    def open(self, status: PositionStatus) -> Step:
        entry = status.entryOrder
        assert entry is not None, "an open phase always has an entry record"
        filled = entry.filled or Decimal(0)
        status = replace_status(status, filled=filled, averageEntryPrice=entry.averagePrice)
        if filled == 0:
            return Step(status)
        stop = status.stopOrder
        if stop is not None and stop.state in (OrderState.TRIGGERED, OrderState.FILLED):
            return self.start_closing(status, "StopLoss", "the stop loss triggered on the exchange")
        if self.obs.position_size == 0:
            return self.start_closing(status, "ExternalClose", "the position was closed outside Warden")
        if self.wants_closed:
            reason = "Deleted" if self.deleting else "Requested"
            return self.start_closing(status, reason, "closing on request")
        if stop is None or stop.state in (OrderState.CANCELED, OrderState.REJECTED):
            return self.place_stop(status, filled, replaced=stop)
        if stop.state is OrderState.INTENDED:
            return Step(status, self.stop_action(stop), (Note("StopIntent", "re-sending the recorded stop"),))
        if status.phase is not Phase.PROTECTED:
            status = replace_status(status, phase=Phase.PROTECTED)
            status = self.condition(status, "Protected", True, "StopResting", f"stop at {stop.triggerPrice}")
            status = self.condition(status, "Ready", True, "Protected", "filled and protected by a stop loss")
            return Step(status, notes=(Note("StopPlaced", f"stop {stop.clientOrderId} rests at {stop.triggerPrice}"),))
        return Step(status)

    def stop_action(self, record: OrderRecord) -> PlaceStopOrder:
        assert record.triggerPrice is not None
        return PlaceStopOrder(record.clientOrderId, exit_side(self.spec.side), record.amount, record.triggerPrice)

    def place_stop(self, status: PositionStatus, filled: Decimal, replaced: OrderRecord | None) -> Step:
        if replaced is not None and replaced.state is OrderState.REJECTED:
            # A filled position that cannot be protected is closed rather than left naked.
            return self.start_closing(status, "StopRejected", f"the stop was rejected: {replaced.message or ''}")
        sequence = status.stopSequence + 1
        record = OrderRecord(
            clientOrderId=client_order_id(self.uid, Purpose.STOP, sequence),
            state=OrderState.INTENDED,
            amount=filled,
            triggerPrice=self.spec.stopLoss.price,
        )
        status = replace_status(status, stopOrder=record, stopSequence=sequence)
        notes = [Note("StopIntent", f"placing a reduce-only stop for {filled} at {record.triggerPrice}")]
        if replaced is not None:
            status = self.condition(status, "Protected", False, "StopMissing", "the stop disappeared; re-placing")
            notes.insert(0, Note("DriftStopMissing", f"stop {replaced.clientOrderId} is gone", warning=True))
        return Step(status, self.stop_action(record), tuple(notes))

    # --- Closing: flatten, then remove what is left, then account for it -------------------------

    def start_closing(self, status: PositionStatus, reason: str, message: str) -> Step:
        status = replace_status(status, phase=Phase.CLOSING, exitReason=reason)
        status = self.condition(status, "Ready", False, "Closing", message)
        return Step(status, notes=(Note("CloseStarted", f"{reason}: {message}"),))

    def closing(self, status: PositionStatus) -> Step:
        size = self.obs.position_size
        close, stop = status.closeOrder, status.stopOrder
        if size > 0:
            if close is None or (close.state is OrderState.INTENDED and close.exchangeOrderId is None):
                cid = client_order_id(self.uid, Purpose.CLOSE)
                record = OrderRecord(clientOrderId=cid, state=OrderState.INTENDED, amount=size)
                action = PlaceMarketOrder(Purpose.CLOSE, cid, exit_side(self.spec.side), size, reduce_only=True)
                return Step(
                    replace_status(status, closeOrder=record),
                    action,
                    (Note("CloseIntent", f"reduce-only market {action.side} {size}"),),
                )
            if close.state is OrderState.REJECTED:
                status = self.condition(
                    status, "Ready", False, "CloseFailing", f"the close was rejected: {close.message or ''}"
                )
            return Step(status)
        if stop is not None and stop.state is OrderState.OPEN:
            return Step(status, CancelStopOrder(stop.clientOrderId), (Note("StopCancel", "position is flat"),))
        return self.closed(status)

    def closed(self, status: PositionStatus) -> Step:
        ours = {
            r.exchangeOrderId
            for r in (status.entryOrder, status.closeOrder)
            if r is not None and r.exchangeOrderId is not None
        }
        ours |= {o.triggered_order_id for o in self.obs.orders.values() if o is not None and o.triggered_order_id}
        trades = [t for t in self.obs.trades if t.order_id in ours]
        fees = sum((t.fee for t in trades), Decimal(0))
        pnl = sum((t.realized_pnl for t in trades), Decimal(0)) - fees
        status = replace_status(status, phase=Phase.CLOSED, realizedPnl=pnl, fees=fees)
        status = self.condition(status, "Protected", False, "Flat", "no position is open")
        status = self.condition(status, "Ready", True, "Closed", f"closed ({status.exitReason}); realized PnL {pnl}")
        return Step(status, notes=(Note("PositionClosed", f"{status.exitReason}; realized PnL {pnl}, fees {fees}"),))
