"""What one planning call decides from (spec, observation, the time, the account's risk) and the small
decisions every phase shares: acting (or holding back during a back-off), cancelling, conditions, escalation.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from controller.api.v1alpha1 import (
    DesiredState,
    OrderRecord,
    OrderState,
    PositionSpec,
    PositionStatus,
    Side,
    TrailingMode,
)
from controller.api.vocabulary import ConditionType, EventType, ExitReason, Reason
from controller.reconcile.model import (
    Action,
    CancelOrder,
    Note,
    Observation,
    Purpose,
    Step,
    client_order_id,
    floor_to_step,
    percent_away,
    purpose_of,
)
from controller.reconcile.risk import RiskContext
from controller.reconcile.status import condition_is, rejected, with_condition
from controller.reconcile.venue import TrailingSupport

ESCALATE_AFTER = 3
"""Consecutive failures after which a Position with exposure raises the Escalated condition."""
LIVE = frozenset({OrderState.INTENDED, OrderState.OPEN})
HIT = frozenset({OrderState.TRIGGERED, OrderState.FILLED})


class Context:
    """One planning call's inputs, and what its decisions note on the way (``notes``)."""

    def __init__(
        self,
        spec: PositionSpec,
        observation: Observation,
        uid: str,
        generation: int,
        deleting: bool,
        now: datetime,
        risk: RiskContext | None,
        retry_after: datetime | None,
        keeps_emulating: bool = False,
    ) -> None:
        self.spec = spec
        self.obs = observation
        self.rules = observation.market
        self.uid = uid
        self.generation = generation
        self.deleting = deleting
        self.now = now
        self.risk = risk
        self.long = spec.side is Side.LONG
        # After a failed action the next one waits (backoff); observing and recording go on meanwhile.
        self.holding = retry_after is not None and now < retry_after
        self.notes: tuple[Note, ...] = ()
        self.keeps_emulating = keeps_emulating
        """Emulated before with exposure, or the venue refused its position trailing: emulated for good (going back to
        native would leave the emulated stop where the trailing put it, or retry what the venue refuses)."""

    @property
    def wants_closed(self) -> bool:
        return self.deleting or self.spec.state is DesiredState.CLOSED

    def condition(
        self, status: PositionStatus, type_: ConditionType, value: bool, reason: Reason | ExitReason, message: str
    ) -> PositionStatus:
        return with_condition(status, type_, value, reason, message, generation=self.generation, now=self.now)

    def fail(self, status: PositionStatus, reason: ExitReason, message: str) -> Step:
        return rejected(status, reason, message, generation=self.generation, now=self.now)

    def act(self, before: PositionStatus, after: PositionStatus, action: Action, *notes: Note) -> Step:
        """Act, unless a backoff is running: then nothing of the intent is recorded either."""
        if self.holding:
            return Step(before)
        return Step(after, action, notes)

    def intent(
        self, purpose: Purpose, sequence: int, amount: Decimal, trigger: Decimal | None, target: int | None = None
    ) -> OrderRecord:
        """A conditional order under its purpose's next client id, recorded before it is sent."""
        return OrderRecord(
            clientOrderId=client_order_id(self.uid, purpose, sequence),
            state=OrderState.INTENDED,
            amount=amount,
            triggerPrice=trigger,
            target=target,
        )

    def absent(self, record: OrderRecord) -> bool:
        """The exchange was asked for this order and has none under its id."""
        return record.clientOrderId in self.obs.orders and self.obs.orders[record.clientOrderId] is None

    def on_exchange(self, record: OrderRecord | None) -> bool:
        """Might rest on the exchange: open, or intended and not known to be absent."""
        return record is not None and record.state in LIVE and not self.absent(record)

    def unsent(self, record: OrderRecord) -> bool:
        return record.state is OrderState.INTENDED and record.exchangeOrderId is None

    def cancel(self, status: PositionStatus, record: OrderRecord, why: str) -> Step:
        action = CancelOrder(record.clientOrderId, purpose_of(record.clientOrderId))
        return self.act(status, status, action, Note(EventType.ORDER_CANCEL, f"{record.clientOrderId}: {why}"))

    def escalation(self, status: PositionStatus, what: str) -> tuple[PositionStatus, tuple[Note, ...]]:
        """With exposure, repeated failures never stop the retries; they raise a condition for a human."""
        if status.failedAttempts < ESCALATE_AFTER:
            return status, ()
        message = f"{what} failed {status.failedAttempts} times in a row; last: {status.lastFailure or 'unknown'}"
        raised = condition_is(status, ConditionType.ESCALATED)
        notes = () if raised else (Note(EventType.ESCALATED, message, warning=True),)
        return self.condition(status, ConditionType.ESCALATED, True, Reason.REPEATED_FAILURES, message), notes

    def reference_price(self) -> Decimal:
        """The price the entry is expected at: its limit price, or the mark for a market entry."""
        return self.spec.entry.price if self.spec.entry.price is not None else self.obs.mark_price

    def exposure(self, status: PositionStatus) -> Decimal:
        """What this Position holds: its fills, but never more than the exchange position (exits shrink it)."""
        return floor_to_step(min(status.filled or Decimal(0), self.obs.position_size), self.rules.amount_step)

    def from_entry(self, status: PositionStatus, percent: Decimal, *, toward_profit: bool) -> Decimal:
        """A price ``percent`` away from the average entry, rounded to the tick towards the entry
        (never further than asked)."""
        average = status.averageEntryPrice or self.obs.mark_price
        return percent_away(average, percent, self.rules.price_tick, up=toward_profit == self.long)

    def trailing_mode(self) -> TrailingMode | None:
        """The trailing stop in effect: native as the venue's own order under Warden's client id
        (``TrailingSupport.ORDER``), or as the venue position's trailing stop (``POSITION``) only while this is the
        only Position on the symbol's side, since it closes the whole venue position; otherwise emulated. Decided
        from the venue's capabilities and the shell's count of the side's Positions, never the venue's name."""
        trailing = self.spec.trailingStop
        if trailing is None:
            return None
        if trailing.mode is TrailingMode.NATIVE and self.obs.venue.trailing is TrailingSupport.ORDER:
            return TrailingMode.NATIVE
        if self.trails_position():
            return TrailingMode.NATIVE
        return TrailingMode.EMULATED

    def trails_position(self) -> bool:
        """The venue position's own trailing stop is the one in effect (``TrailingSupport.POSITION``)."""
        trailing = self.spec.trailingStop
        return (
            trailing is not None
            and trailing.mode is TrailingMode.NATIVE
            and self.obs.venue.trailing is TrailingSupport.POSITION
            and self.obs.alone_on_side
            and not self.keeps_emulating
        )

    def emulating(self) -> bool:
        return self.trailing_mode() is TrailingMode.EMULATED

    def native_trailing(self) -> bool:
        """A native trailing stop as Warden's own order (``TrailingSupport.ORDER``)."""
        return self.trailing_mode() is TrailingMode.NATIVE and self.obs.venue.trailing is TrailingSupport.ORDER
