"""Status as the planner and the shell both keep it: order records, conditions, what the exchange did to
our orders, and when to look again. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from controller.api.v1alpha1 import (
    Condition,
    ConditionStatus,
    DesiredState,
    OrderRecord,
    OrderState,
    Phase,
    PositionSpec,
    PositionStatus,
    Side,
    TrailingMode,
)
from controller.api.vocabulary import ConditionType, EventType, ExitReason, Reason
from controller.reconcile.model import (
    MarketRules,
    Note,
    Observation,
    Purpose,
    Step,
    beyond,
    following,
    is_warden_order,
    purpose_of,
)
from controller.reconcile.phases import TERMINAL

_GONE_UNFILLED = frozenset({OrderState.CANCELED, OrderState.REJECTED})
TRAILING_MIN_INTERVAL = timedelta(seconds=2)
"""An emulated trailing stop moves at most this often (each move is a placement and a cancel)."""


_SINGLE_RECORDS = ("entryOrder", "stopOrder", "closeOrder", "trailingOrder", "preArmedStop")
_LIST_RECORDS = ("takeProfitOrders", "retiredOrders")


@dataclass(frozen=True)
class MarkWatch:
    """Which marks can call for an action of a Position that follows them: any move, or, once its emulated trailing
    stop is active, only a new best price (``best``), which alone moves the stop (the stop rests on the venue,
    which triggers it). A move the trailing stop's pace holds back is taken by the re-check (``recheck_after``)."""

    best: Decimal | None = None
    long: bool = True

    def wakes(self, mark: Decimal) -> bool:
        if self.best is None:
            return True
        return beyond(mark, self.best, above=self.long)


def follows_mark(spec: PositionSpec, status: PositionStatus) -> MarkWatch | None:
    """Which mark price moves alone can call for an action (None: none): an emulated trailing stop follows them
    (the one in effect, which the planner records: a native one the venue cannot trail is emulated), and a
    breakeven after a percent waits for one."""
    if status.phase is not Phase.PROTECTED:
        return None
    trailing, breakeven = spec.trailingStop, spec.stopLoss.breakeven
    awaits_breakeven = breakeven is not None and breakeven.afterPercent is not None and status.breakevenAt is None
    emulated = trailing is not None and (status.trailingMode or trailing.mode) is TrailingMode.EMULATED
    if not (awaits_breakeven or emulated):
        return None
    state = status.trailing
    if awaits_breakeven or state is None or not state.activated or state.highWaterMark is None:
        return MarkWatch()
    return MarkWatch(state.highWaterMark, long=spec.side is Side.LONG)


def entry_rests(status: PositionStatus) -> bool:
    """Whether the entry is an order resting on the book, which can fill without Warden doing anything."""
    entry = status.entryOrder
    return entry is not None and entry.state is OrderState.OPEN and entry.price is not None


def has_regular_orders(spec: PositionSpec, status: PositionStatus) -> bool:
    """Whether the Position has, or its next pass may send, a regular (not conditional) order: an entry not yet
    sent or not ended, a close asked for or under way, any regular order recorded that has not ended (an intent
    may have gone out). Only then are its symbol's regular open orders read (stops always are). From the spec and
    the phase, not only from the records: a pass sends an entry or a close before anything records it as open.
    A close the planner decides on its own (a deletion, a stop the venue refuses) is covered where it is sent
    (``AccountObserver.placing_regular``)."""
    if status.phase in TERMINAL:
        return False
    if status.entryOrder is None or status.phase in (Phase.PENDING, Phase.CLOSING) or spec.state is DesiredState.CLOSED:
        return True
    return any(
        r.state in (OrderState.INTENDED, OrderState.OPEN)
        and not (is_warden_order(r.clientOrderId) and purpose_of(r.clientOrderId).conditional)
        for r in all_records(status)
    )


def protecting_orders(status: PositionStatus) -> frozenset[str]:
    """Client ids of the orders that protect the position now: their ending (triggered, cancelled by someone
    else, expired) calls for this Position's attention at once."""
    stops = (status.stopOrder, status.trailingOrder, status.preArmedStop)
    return frozenset(r.clientOrderId for r in stops if r is not None and r.state is OrderState.OPEN)


def stop_awaiting_fill(status: PositionStatus) -> OrderRecord | None:
    """The stop's intent recorded with an entry that has no fill yet: sent on the fill, not before."""
    stop, entry = status.stopOrder, status.entryOrder
    if stop is None or stop.state is not OrderState.INTENDED or entry is None or entry.filled:
        return None
    return stop


def recheck_after(spec: PositionSpec, status: PositionStatus, now: datetime, idle: float, busy: float) -> float:
    """Seconds a Position may wait for its world to change before looking again anyway: ``busy`` while
    something is in flight (an unconfirmed order, an entry or a close under way) or any mark move may call for an
    action, until an open entry expires or an emulated trailing stop's pace allows its next move, else ``idle``
    (the safety net: the observer wakes it for what it watches, an active trailing stop for a new best mark).
    A back-off wakes it when it ends, even sooner than ``busy``: a refused stop or close is tried again when its
    retry is due, not up to ``busy`` later. So does one whose last look failed (``Synced`` false): it does not
    know what rests, and the account's observer cannot wake it for what it never saw it ask about."""
    entry = status.entryOrder
    # The stop recorded with a resting entry is sent on its fill, which wakes the Position: nothing in flight.
    waiting = stop_awaiting_fill(status) if entry is not None and entry.state is OrderState.OPEN else None
    unsettled = any(
        (r.state is OrderState.INTENDED and r is not waiting)
        or (r.state is OrderState.TRIGGERED and r.triggeredOrderId is None)
        for r in all_records(status)
    )
    unsynced = any(c.type == ConditionType.SYNCED and c.status is ConditionStatus.FALSE for c in status.conditions)
    marks = follows_mark(spec, status)
    settling = status.phase in (Phase.PENDING, Phase.CLOSING)
    if unsettled or unsynced or settling or (marks is not None and marks.best is None):
        wait = busy
    else:
        wait = idle
        expire = spec.entry.expireAfter
        # A resting entry expires in any open phase: a partly filled one rests on beside its stop.
        if entry_rests(status) and expire is not None and status.entryPlacedAt is not None:
            wait = min(wait, (status.entryPlacedAt + expire - now).total_seconds())
        moved = status.trailing.lastMoveAt if status.trailing is not None else None
        held = (moved + TRAILING_MIN_INTERVAL - now).total_seconds() if marks is not None and moved is not None else 0
        if held > 0:
            # Only a new best mark wakes an active trailing stop: one its pace held back moves when the pace allows.
            wait = min(wait, held)
        wait = max(wait, busy)
    if status.retryAfter is not None:
        due = (status.retryAfter - now).total_seconds()
        wait = min(wait, due if due > 0 else busy)  # one already due: the pass that saw it did not act
    return wait


def replace_status(status: PositionStatus, **changes: object) -> PositionStatus:
    return status.model_copy(update=changes)


def all_records(status: PositionStatus) -> list[OrderRecord]:
    singles = [getattr(status, name) for name in _SINGLE_RECORDS]
    return [r for r in singles if r is not None] + status.takeProfitOrders + status.retiredOrders


def own_order_ids(status: PositionStatus) -> set[str]:
    """The exchange's ids of this Position's orders, and of the orders its stops became when they triggered."""
    records = all_records(status)
    return {r.exchangeOrderId for r in records if r.exchangeOrderId} | {
        r.triggeredOrderId for r in records if r.triggeredOrderId
    }


def update_records(status: PositionStatus, client_id: str, **changes: object) -> PositionStatus:
    """Apply ``changes`` to the record with ``client_id`` wherever status keeps it."""
    update: dict[str, object] = {}
    for name in _SINGLE_RECORDS:
        record: OrderRecord | None = getattr(status, name)
        if record is not None and record.clientOrderId == client_id:
            update[name] = record.model_copy(update=changes)
    for name in _LIST_RECORDS:
        records: list[OrderRecord] = getattr(status, name)
        if any(r.clientOrderId == client_id for r in records):
            update[name] = [r.model_copy(update=changes) if r.clientOrderId == client_id else r for r in records]
    return status.model_copy(update=update) if update else status


def absorb(status: PositionStatus, observation: Observation) -> PositionStatus:
    """Bring every order record in line with what the exchange reports for its client id.

    An intended order found on the exchange was sent after all: the failure whose outcome was unknown was a
    success, so its back-off ends (a filled entry must not wait out the back-off before its stop is placed)."""
    status = _adopt_next_stop(status, observation)
    for record in all_records(status):
        if record.clientOrderId not in observation.orders:
            continue
        seen = observation.orders[record.clientOrderId]
        if seen is not None and record.state is OrderState.INTENDED and status.failedAttempts:
            status = replace_status(status, failedAttempts=0, retryAfter=None)
        if seen is None:
            # Intended but never arrived: stays intended, so it is sent again under the same id (unless it
            # was replaced meanwhile: then it is never sent). Anything else that vanished is gone from the book.
            if record.state is not OrderState.INTENDED or record in status.retiredOrders:
                status = update_records(status, record.clientOrderId, state=OrderState.CANCELED)
            continue
        status = update_records(
            status,
            record.clientOrderId,
            exchangeOrderId=seen.exchange_order_id,
            state=seen.state,
            filled=seen.filled,
            averagePrice=seen.average_price,
            triggeredOrderId=seen.triggered_order_id or record.triggeredOrderId,
        )
    # Replaced orders that never filled are forgotten once gone; filled ones stay for the PnL.
    kept = [r for r in status.retiredOrders if r.state not in _GONE_UNFILLED]
    return replace_status(status, retiredOrders=kept) if len(kept) != len(status.retiredOrders) else status


def _adopt_next_stop(status: PositionStatus, observation: Observation) -> PositionStatus:
    """The pre-recorded next stop is on the exchange: it went out and the process died before recording it. It is
    the stop now (its state follows in ``absorb``); the one it replaced is retired, cancelled once it rests."""
    next_id = status.nextStopOrderId
    found = observation.orders.get(next_id) if next_id is not None else None
    old = status.stopOrder
    if next_id is None or found is None or (old is not None and old.clientOrderId == next_id):
        return status
    record = OrderRecord(
        clientOrderId=next_id, state=OrderState.INTENDED, amount=found.amount, triggerPrice=found.trigger_price
    )
    live = old is not None and old.state in (OrderState.INTENDED, OrderState.OPEN)
    return replace_status(
        status,
        stopOrder=record,
        stopSequence=status.stopSequence + 1,
        nextStopOrderId=following(next_id),
        retiredOrders=[*status.retiredOrders, old] if live and old is not None else status.retiredOrders,
    )


def _by_id(records: list[OrderRecord]) -> dict[str, OrderRecord]:
    return {r.clientOrderId: r for r in records}


_EVENTS = {
    (Purpose.ENTRY, OrderState.FILLED): EventType.ENTRY_FILLED,
    (Purpose.CLOSE, OrderState.FILLED): EventType.CLOSE_FILLED,
    (Purpose.STOP, OrderState.TRIGGERED): EventType.STOP_TRIGGERED,
    (Purpose.PRE_ARMED, OrderState.TRIGGERED): EventType.STOP_TRIGGERED,
    (Purpose.TAKE_PROFIT, OrderState.TRIGGERED): EventType.TAKE_PROFIT_TRIGGERED,
    (Purpose.TRAILING, OrderState.TRIGGERED): EventType.TRAILING_STOP_TRIGGERED,
}


def fill_notes(before: PositionStatus, after: PositionStatus, rules: MarketRules) -> tuple[Note, ...]:
    """What the exchange did to our orders since the last observation (fills, triggers, outside cancels)."""
    old = _by_id(all_records(before))
    notes = []
    for new in all_records(after):
        previous = old.get(new.clientOrderId)
        if previous is None and new.clientOrderId == before.nextStopOrderId and new.state is not OrderState.INTENDED:
            # The pre-recorded next stop, sent before a crash with nothing written after it.
            message = f"{new.clientOrderId}: found on the exchange as order {new.exchangeOrderId} ({new.state})"
            notes.append(Note(EventType.ORDER_FOUND, message, client_order_id=new.clientOrderId))
            continue
        if previous is None or (previous.state is new.state and previous.filled == new.filled):
            continue
        purpose = purpose_of(new.clientOrderId)
        cid = new.clientOrderId
        type_ = _EVENTS.get((purpose, new.state))
        if type_ is not None:
            if new.state is OrderState.FILLED:
                detail, amount, price = _filled(new, rules), new.filled, new.averagePrice
            else:
                detail, amount, price = "triggered", new.amount, new.triggerPrice
            notes.append(Note(type_, f"{cid}: {detail}", client_order_id=cid, amount=amount, price=price))
        elif purpose is Purpose.ENTRY and new.state is OrderState.OPEN and (new.filled or 0) > (previous.filled or 0):
            notes.append(
                Note(
                    EventType.ENTRY_PARTIALLY_FILLED,
                    f"{cid}: filled {rules.size(new.filled or Decimal(0))} of {rules.size(new.amount)}",
                    client_order_id=cid,
                    amount=new.filled,
                    price=new.averagePrice,
                )
            )
        elif purpose is Purpose.STOP and new.state is OrderState.CANCELED and previous.state is OrderState.OPEN:
            notes.append(Note(EventType.STOP_CANCELED, f"{cid}: canceled", client_order_id=cid))
        elif previous.state is OrderState.INTENDED and new.state is OrderState.OPEN:
            # Sent, but the answer was lost (a crash or an unknown outcome): no OrderPlaced was recorded for it.
            message = f"{cid}: found resting on the exchange as order {new.exchangeOrderId}"
            notes.append(Note(EventType.ORDER_FOUND, message, client_order_id=cid))
    return tuple(notes)


def _filled(record: OrderRecord, rules: MarketRules) -> str:
    price = "" if record.averagePrice is None else f" at {rules.price(record.averagePrice)}"
    return f"filled {rules.size(record.filled or Decimal(0))}{price}"


def set_condition(
    conditions: list[Condition],
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason | ExitReason,
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


def condition_is(status: PositionStatus, type_: ConditionType) -> bool:
    return any(c.type == type_ and c.status is ConditionStatus.TRUE for c in status.conditions)


def with_condition(
    status: PositionStatus,
    type_: ConditionType,
    value: bool,
    reason: Reason | ExitReason,
    message: str,
    *,
    generation: int,
    now: datetime,
) -> PositionStatus:
    flag = ConditionStatus.TRUE if value else ConditionStatus.FALSE
    return replace_status(
        status, conditions=set_condition(status.conditions, type_, flag, reason, message, generation, now)
    )


def failed_status(
    status: PositionStatus, reason: ExitReason, message: str, *, generation: int, now: datetime
) -> PositionStatus:
    status = with_condition(status, ConditionType.READY, False, reason, message, generation=generation, now=now)
    return replace_status(status, phase=Phase.FAILED, exitReason=reason, closedAt=now)


def rejected(status: PositionStatus, reason: ExitReason, message: str, *, generation: int, now: datetime) -> Step:
    """The Position cannot be traded as written: it fails, and says why."""
    status = failed_status(status, reason, message, generation=generation, now=now)
    return Step(status, notes=(Note(EventType.POSITION_REJECTED, message, warning=True),))


def closed_before_entry(status: PositionStatus, *, generation: int, now: datetime) -> Step:
    """Closed (asked to, or deleted) before the entry was sent: nothing is on the exchange to undo (a pre-armed stop
    sent before it is cancelled first: ``prearm.disarm``)."""
    status = replace_status(status, phase=Phase.CLOSED, exitReason=ExitReason.CANCELED_BEFORE_ENTRY, closedAt=now)
    message = "closed before the entry was sent"
    status = with_condition(status, ConditionType.READY, True, Reason.CLOSED, message, generation=generation, now=now)
    return Step(status, notes=(Note(EventType.POSITION_CLOSED, message),))


def unknown_symbol(status: PositionStatus, symbol: str, *, generation: int, now: datetime) -> Step:
    """The exchange does not list the symbol (only its form can be checked by the API server). Only decided
    before the entry, when nothing is on the exchange."""
    message = f"{symbol} is not a market of the exchange; check the symbol (ccxt unified, e.g. BTC/USDT:USDT)"
    return rejected(status, ExitReason.UNKNOWN_SYMBOL, message, generation=generation, now=now)
