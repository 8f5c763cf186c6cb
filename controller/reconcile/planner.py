"""Decide the next step for one Position. Pure: no I/O, no clock (``now`` is an argument).

One call yields one step: the status to record and at most one exchange action. A step changes the phase
or acts, never both, so every transition is its own audited record. The shell records the status first
(so an order's intent is durable before the order is sent), executes the action, records its result with
``controller.reconcile.results``, observes again and calls the planner again until a step neither acts
nor changes the phase.

Protection comes first: while a filled amount is open, the first thing decided is the stop that covers
it. Orders are never amended in place: a replacement is placed under a new client id and the old order
is cancelled only once the replacement rests (it waits in ``retiredOrders``), so there is never a moment
without a stop.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

from controller.api.v1alpha1 import (
    Condition,
    ConditionStatus,
    DeletionPolicy,
    DesiredState,
    EntryType,
    OrderRecord,
    OrderState,
    Phase,
    PositionSpec,
    PositionStatus,
    Side,
    TakeProfit,
    TimeInForce,
    TrailingMode,
    TrailingState,
)
from controller.reconcile.model import (
    Action,
    CancelOrder,
    Note,
    Observation,
    PlaceLimitOrder,
    PlaceMarketOrder,
    PlaceStopOrder,
    PlaceTrailingStopOrder,
    Purpose,
    SetLeverage,
    SetMarginMode,
    Step,
    client_order_id,
    entry_side,
    exit_side,
    plain,
    purpose_of,
)
from controller.reconcile.risk import RiskContext, check_risk

TERMINAL = frozenset({Phase.CLOSED, Phase.FAILED})
_EXTERNAL_EXITS = ("ExternalClose", "Liquidation")
MAX_ATTEMPTS_BEFORE_EXPOSURE = 5
"""Consecutive failures after which a Position that holds nothing gives up (Failed)."""
ESCALATE_AFTER = 3
"""Consecutive failures after which a Position with exposure raises the Escalated condition."""
TRAILING_MIN_INTERVAL = timedelta(seconds=2)
"""An emulated trailing stop moves at most this often: each move is a place and a cancel on the exchange."""
_LIVE = frozenset({OrderState.INTENDED, OrderState.OPEN})
_HIT = frozenset({OrderState.TRIGGERED, OrderState.FILLED})
_EXITS = frozenset({Purpose.STOP, Purpose.TRAILING, Purpose.CLOSE})  # each covers the whole holding it saw
_GONE_UNFILLED = frozenset({OrderState.CANCELED, OrderState.REJECTED})
PAUSE_ANNOTATION = "trading.warden.dev/paused"


def plan(
    spec: PositionSpec,
    status: PositionStatus,
    observation: Observation,
    *,
    uid: str,
    generation: int,
    deleting: bool,
    now: datetime,
    paused: bool = False,
    risk: RiskContext | None = None,
) -> Step:
    """``paused``: the pause annotation is set (observe and report only). ``risk``: the account's limits and
    book, checked before the entry is placed; the shell serializes entries per account while it holds it."""
    if status.phase in TERMINAL:
        return Step(replace_status(status, observedGeneration=generation))
    absorbed = replace_status(absorb(status, observation), observedGeneration=generation)
    ctx = _Context(spec, observation, uid, generation, deleting, now, risk, absorbed.retryAfter)
    if deleting and spec.deletionPolicy is DeletionPolicy.ORPHAN:
        step = ctx.orphan(absorbed)
    elif paused:
        step = ctx.paused(absorbed)
    else:
        step = ctx.decide(ctx.resumed(absorbed))
    notes = fill_notes(status, step.status) + ctx.notes + step.notes
    return replace(step, notes=notes)


# --- Bringing status in line with the exchange -------------------------------------------------------

_SINGLE_RECORDS = ("entryOrder", "stopOrder", "closeOrder", "trailingOrder")
_LIST_RECORDS = ("takeProfitOrders", "retiredOrders")


def follows_mark(spec: PositionSpec, status: PositionStatus) -> bool:
    """Whether mark price moves alone can call for an action (an emulated trailing stop follows them)."""
    trailing = spec.trailingStop
    return trailing is not None and trailing.mode is TrailingMode.EMULATED and status.phase is Phase.PROTECTED


def entry_rests(status: PositionStatus) -> bool:
    """Whether the entry is an order resting on the book, which can fill without Warden doing anything."""
    entry = status.entryOrder
    return entry is not None and entry.state is OrderState.OPEN and entry.price is not None


def protecting_orders(status: PositionStatus) -> frozenset[str]:
    """Client ids of the orders that protect the position now: their ending (triggered, cancelled by someone
    else, expired) calls for this Position's attention at once."""
    stops = (status.stopOrder, status.trailingOrder)
    return frozenset(r.clientOrderId for r in stops if r is not None and r.state is OrderState.OPEN)


def recheck_after(spec: PositionSpec, status: PositionStatus, now: datetime, idle: float, busy: float) -> float:
    """Seconds a Position may wait for its world to change before looking again anyway: ``busy`` while
    something is in flight (an unconfirmed order, an entry or a close under way, a trailing stop held back by
    its rate limit), until an open entry expires, else ``idle`` (the safety net). A back-off wakes it when it
    ends, even sooner than ``busy``: a refused stop or close is tried again when its retry is due, not up to
    ``busy`` later."""
    unsettled = any(
        r.state is OrderState.INTENDED or (r.state is OrderState.TRIGGERED and r.triggeredOrderId is None)
        for r in all_records(status)
    )
    if unsettled or status.phase in (Phase.PENDING, Phase.CLOSING) or follows_mark(spec, status):
        wait = busy
    else:
        wait = idle
        expire = spec.entry.expireAfter
        # A resting entry expires in any open phase: a partly filled one rests on beside its stop.
        if entry_rests(status) and expire is not None and status.entryPlacedAt is not None:
            wait = min(wait, (status.entryPlacedAt + expire - now).total_seconds())
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


def _by_id(records: list[OrderRecord]) -> dict[str, OrderRecord]:
    return {r.clientOrderId: r for r in records}


_EVENTS = {
    (Purpose.ENTRY, OrderState.FILLED): "EntryFilled",
    (Purpose.CLOSE, OrderState.FILLED): "CloseFilled",
    (Purpose.STOP, OrderState.TRIGGERED): "StopTriggered",
    (Purpose.TAKE_PROFIT, OrderState.TRIGGERED): "TakeProfitTriggered",
    (Purpose.TRAILING, OrderState.TRIGGERED): "TrailingStopTriggered",
}


def fill_notes(before: PositionStatus, after: PositionStatus) -> tuple[Note, ...]:
    """What the exchange did to our orders since the last observation (fills, triggers, outside cancels)."""
    old = _by_id(all_records(before))
    notes = []
    for new in all_records(after):
        previous = old.get(new.clientOrderId)
        if previous is None or (previous.state is new.state and previous.filled == new.filled):
            continue
        purpose = purpose_of(new.clientOrderId)
        cid = new.clientOrderId
        type_ = _EVENTS.get((purpose, new.state))
        if type_ is not None:
            detail = f"filled {new.filled} at {new.averagePrice}" if new.state is OrderState.FILLED else "triggered"
            notes.append(Note(type_, f"{cid}: {detail}", client_order_id=cid))
        elif purpose is Purpose.ENTRY and new.state is OrderState.OPEN and (new.filled or 0) > (previous.filled or 0):
            notes.append(
                Note("EntryPartiallyFilled", f"{cid}: filled {new.filled} of {new.amount}", client_order_id=cid)
            )
        elif purpose is Purpose.STOP and new.state is OrderState.CANCELED and previous.state is OrderState.OPEN:
            notes.append(Note("StopCanceled", f"{cid}: canceled", client_order_id=cid))
        elif previous.state is OrderState.INTENDED and new.state is OrderState.OPEN:
            # Sent, but the answer was lost (a crash or an unknown outcome): no OrderPlaced was recorded for it.
            message = f"{cid}: found resting on the exchange as order {new.exchangeOrderId}"
            notes.append(Note("OrderFound", message, client_order_id=cid))
    return tuple(notes)


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


def condition_is(status: PositionStatus, type_: str) -> bool:
    return any(c.type == type_ and c.status is ConditionStatus.TRUE for c in status.conditions)


def with_condition(
    status: PositionStatus, type_: str, value: bool, reason: str, message: str, *, generation: int, now: datetime
) -> PositionStatus:
    flag = ConditionStatus.TRUE if value else ConditionStatus.FALSE
    return replace_status(
        status, conditions=set_condition(status.conditions, type_, flag, reason, message, generation, now)
    )


def failed_status(
    status: PositionStatus, reason: str, message: str, *, generation: int, now: datetime
) -> PositionStatus:
    status = with_condition(status, "Ready", False, reason, message, generation=generation, now=now)
    return replace_status(status, phase=Phase.FAILED, exitReason=reason, closedAt=now)


def rejected(status: PositionStatus, reason: str, message: str, *, generation: int, now: datetime) -> Step:
    """The Position cannot be traded as written: it fails, and says why."""
    status = failed_status(status, reason, message, generation=generation, now=now)
    return Step(status, notes=(Note("PositionRejected", message, warning=True),))


def unknown_symbol(status: PositionStatus, symbol: str, *, generation: int, now: datetime) -> Step:
    """The exchange does not list the symbol (only its form can be checked by the API server). Only decided
    before the entry, when nothing is on the exchange."""
    message = f"{symbol} is not a market of the exchange; check the symbol (ccxt unified, e.g. BTC/USDT:USDT)"
    return rejected(status, "UnknownSymbol", message, generation=generation, now=now)


# --- Prices and amounts --------------------------------------------------------------------------------


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def to_tick(value: Decimal, tick: Decimal, *, up: bool) -> Decimal:
    return (value / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR) * tick


def _beyond(price: Decimal, mark: Decimal, *, above: bool) -> bool:
    return price > mark if above else price < mark


class _Context:
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

    # --- helpers --------------------------------------------------------------------------------

    @property
    def wants_closed(self) -> bool:
        return self.deleting or self.spec.state is DesiredState.CLOSED

    def condition(self, status: PositionStatus, type_: str, value: bool, reason: str, message: str) -> PositionStatus:
        return with_condition(status, type_, value, reason, message, generation=self.generation, now=self.now)

    def fail(self, status: PositionStatus, reason: str, message: str) -> Step:
        return rejected(status, reason, message, generation=self.generation, now=self.now)

    def act(self, before: PositionStatus, after: PositionStatus, action: Action, *notes: Note) -> Step:
        """Act, unless a backoff is running: then nothing of the intent is recorded either."""
        if self.holding:
            return Step(before)
        return Step(after, action, notes)

    def absent(self, record: OrderRecord) -> bool:
        """The exchange was asked for this order and has none under its id."""
        return record.clientOrderId in self.obs.orders and self.obs.orders[record.clientOrderId] is None

    def on_exchange(self, record: OrderRecord | None) -> bool:
        """Might rest on the exchange: open, or intended and not known to be absent."""
        return record is not None and record.state in _LIVE and not self.absent(record)

    def unsent(self, record: OrderRecord) -> bool:
        return record.state is OrderState.INTENDED and record.exchangeOrderId is None

    def cancel(self, status: PositionStatus, record: OrderRecord, why: str) -> Step:
        action = CancelOrder(record.clientOrderId, purpose_of(record.clientOrderId))
        return self.act(status, status, action, Note("OrderCancel", f"{record.clientOrderId}: {why}"))

    def escalation(self, status: PositionStatus, what: str) -> tuple[PositionStatus, tuple[Note, ...]]:
        """With exposure, repeated failures never stop the retries; they raise a condition for a human."""
        if status.failedAttempts < ESCALATE_AFTER:
            return status, ()
        message = f"{what} failed {status.failedAttempts} times in a row; last: {status.lastFailure or 'unknown'}"
        notes = () if condition_is(status, "Escalated") else (Note("Escalated", message, warning=True),)
        return self.condition(status, "Escalated", True, "RepeatedFailures", message), notes

    # --- pause, orphan ------------------------------------------------------------------------------

    def paused(self, status: PositionStatus) -> Step:
        if not condition_is(status, "Paused"):
            self.notes = (Note("Paused", f"{PAUSE_ANNOTATION} is set: observing only, no orders"),)
        message = f"{PAUSE_ANNOTATION} is set: Warden observes and reports but sends no orders"
        return Step(self.paused_protection(self.condition(status, "Paused", True, "Annotated", message)))

    def paused_protection(self, status: PositionStatus) -> PositionStatus:
        """Paused, nothing re-places a lost stop; the Protected condition (which the alerts read) still tells
        whether a resting stop covers the exposure."""
        entry = status.entryOrder
        filled = entry.filled if entry is not None and entry.filled else Decimal(0)  # fills go on while paused
        exposure = self.exposure(replace_status(status, filled=max(filled, status.filled or Decimal(0))))
        if exposure < self.rules.min_amount:
            return status
        stop = status.stopOrder
        if stop is not None and stop.state is OrderState.OPEN and stop.amount >= exposure:
            return self.protection_restored(status)
        message = f"paused with no resting stop covering {exposure} {self.spec.symbol}"
        return self.condition(status, "Protected", False, "StopMissing", message)

    def resumed(self, status: PositionStatus) -> PositionStatus:
        if not condition_is(status, "Paused"):
            return status
        self.notes = (Note("Resumed", f"{PAUSE_ANNOTATION} removed: acting again"),)
        return self.condition(status, "Paused", False, "Resumed", "acting on the exchange again")

    def orphan(self, status: PositionStatus) -> Step:
        left = [r.clientOrderId for r in all_records(status) if self.on_exchange(r)]
        message = (
            f"deleted with deletionPolicy Orphan: left untouched on the exchange: position "
            f"{self.obs.position_size} {self.spec.symbol}, open orders {', '.join(left) or 'none'}"
        )
        status = replace_status(status, phase=Phase.CLOSED, exitReason="Orphaned", closedAt=self.now)
        status = self.condition(status, "Ready", True, "Orphaned", message)
        return Step(status, notes=(Note("PositionOrphaned", message, warning=True),))

    def decide(self, status: PositionStatus) -> Step:
        if status.failedAttempts == 0 and condition_is(status, "Escalated"):
            status = self.condition(status, "Escalated", False, "Recovered", "the last exchange action succeeded")
        if status.phase is Phase.PENDING:
            return self.pending(status)
        if status.phase is Phase.CLOSING:
            return self.closing(status)
        return self.open(status)

    # --- Pending: nothing is on the exchange yet, or the entry's intent is recorded --------------

    def pending(self, status: PositionStatus) -> Step:
        entry = status.entryOrder
        if self.spec.adopted and entry is None:
            return self.adopt(status)
        if entry is None or self.unsent(entry):
            if self.wants_closed:
                status = replace_status(status, phase=Phase.CLOSED, exitReason="CanceledBeforeEntry", closedAt=self.now)
                status = self.condition(status, "Ready", True, "Closed", "closed before any order was sent")
                return Step(status, notes=(Note("PositionClosed", "closed before any order was sent"),))
            if status.failedAttempts >= MAX_ATTEMPTS_BEFORE_EXPOSURE and (entry is None or self.absent(entry)):
                return self.fail(
                    status,
                    "RetriesExhausted",
                    f"gave up after {status.failedAttempts} failed attempts before any exposure: "
                    f"{status.lastFailure or 'unknown error'}",
                )
            if entry is not None:
                notes = (Note("EntryIntent", "re-sending the recorded entry under the same id"),)
                return self.act(status, status, self.entry_action(entry), *notes)
            setting = self.setting(status)
            if setting is not None:
                return self.act(status, status, setting, Note("SettingIntent", f"setting {setting} before entry"))
            return self.place_entry(status)
        if entry.state is OrderState.REJECTED:
            return self.fail(status, "EntryRejected", f"the exchange rejected the entry: {entry.message or ''}")
        status = replace_status(status, phase=Phase.ENTRY_PLACED)
        status = self.condition(status, "Ready", False, "EntryPlaced", "entry order placed; waiting for the fill")
        # Decided in the same step: a market entry is filled by now, and its stop goes out with this record
        # (one audit write and one status write nearer) instead of after a step that only moves the phase.
        return self.open(status)

    def adopt(self, status: PositionStatus) -> Step:
        """An exchange position Warden found and now owns: it is the entry (filled, at the exchange's price)."""
        size = floor_to_step(self.obs.position_size, self.rules.amount_step)
        if size == 0:
            status = replace_status(status, phase=Phase.CLOSED, exitReason="AdoptedPositionGone", closedAt=self.now)
            message = f"the {self.spec.symbol} {self.spec.side} position to adopt is gone from the exchange"
            status = self.condition(status, "Ready", True, "Closed", message)
            return Step(status, notes=(Note("PositionClosed", message),))
        price = self.obs.entry_price or self.obs.mark_price
        record = OrderRecord(
            clientOrderId=client_order_id(self.uid, Purpose.ENTRY),
            state=OrderState.FILLED,
            amount=size,
            filled=size,
            averagePrice=price,
        )
        status = replace_status(status, entryOrder=record, entryPlacedAt=self.now, phase=Phase.ENTRY_PLACED)
        message = f"adopted {size} {self.spec.symbol} {self.spec.side} at {price} from the exchange"
        return Step(status, notes=(Note("PositionAdopted", message, warning=True),))

    def setting(self, status: PositionStatus) -> SetMarginMode | SetLeverage | None:
        """Account settings for the symbol, before the entry: the margin mode cannot change once a position exists."""
        if self.spec.marginMode is not None and status.marginMode is not self.spec.marginMode:
            return SetMarginMode(self.spec.marginMode)
        if self.spec.leverage is not None and status.leverage != self.spec.leverage:
            return SetLeverage(self.spec.leverage)
        return None

    def reference_price(self) -> Decimal:
        """The price the entry is expected at: its limit price, or the mark for a market entry."""
        return self.spec.entry.price if self.spec.entry.price is not None else self.obs.mark_price

    def place_entry(self, status: PositionStatus) -> Step:
        problem = self.entry_problem()
        if problem is not None:
            return self.fail(status, *problem)
        if self.risk is not None:
            refusal = check_risk(
                self.spec, self.risk.limits, self.risk.book, price=self.reference_price(), now=self.now
            )
            if refusal is not None:
                step = self.fail(status, "RiskLimit", f"refused by the account's {refusal.limit}: {refusal.message}")
                return replace(step, notes=(Note("RiskRefused", f"{refusal.limit}: {refusal.message}"), *step.notes))
        entry = self.spec.entry
        record = OrderRecord(
            clientOrderId=client_order_id(self.uid, Purpose.ENTRY),
            state=OrderState.INTENDED,
            amount=self.spec.amount,
            price=entry.price,
        )
        after = replace_status(status, entryOrder=record, entryPlacedAt=self.now)
        action = self.entry_action(record)
        kind = f"limit at {entry.price}" if entry.type is EntryType.LIMIT else "market"
        return self.act(status, after, action, Note("EntryIntent", f"placing {kind} {action.side} {record.amount}"))

    def entry_action(self, record: OrderRecord) -> PlaceMarketOrder | PlaceLimitOrder:
        side = entry_side(self.spec.side)
        if record.price is None:
            return PlaceMarketOrder(Purpose.ENTRY, record.clientOrderId, side, record.amount, reduce_only=False)
        tif = self.spec.entry.timeInForce or TimeInForce.GTC
        return PlaceLimitOrder(record.clientOrderId, side, record.amount, record.price, tif)

    def entry_problem(self) -> tuple[str, str] | None:
        """Everything that would make an order of this Position fail, found before the first order."""
        spec, rules, ref = self.spec, self.rules, self.reference_price()
        where = "limit price" if spec.entry.price is not None else "mark price"
        below, above = ("below", "above") if self.long else ("above", "below")
        for name, price in self.fixed_prices():
            if price % rules.price_tick != 0:
                return (
                    "InvalidPrice",
                    f"{name} {plain(price)} must be a multiple of the tick size {plain(rules.price_tick)}",
                )
        stop = spec.stopLoss.price
        if stop is not None and not _beyond(stop, ref, above=not self.long):
            return (
                "StopOnWrongSide",
                f"stop loss {plain(stop)} is not {below} the {where} {plain(ref)}; "
                f"a {spec.side}'s stop must be {below} the price",
            )
        for i, target in enumerate(spec.takeProfit, start=1):
            if target.price is not None and not _beyond(target.price, ref, above=self.long):
                return (
                    "TakeProfitOnWrongSide",
                    f"take profit {i} at {plain(target.price)} is not {above} the {where} {plain(ref)}",
                )
        amount = floor_to_step(spec.amount, rules.amount_step)
        if amount < rules.min_amount or amount != spec.amount:
            return (
                "InvalidAmount",
                f"amount {plain(spec.amount)} must be a multiple of {plain(rules.amount_step)} "
                f"and at least {plain(rules.min_amount)} for {spec.symbol}",
            )
        if rules.max_amount is not None and amount > rules.max_amount:
            maximum = plain(rules.max_amount)
            return ("InvalidAmount", f"amount {plain(amount)} is above the maximum {maximum} for {spec.symbol}")
        if amount * ref < rules.min_notional:
            return (
                "AmountBelowMinimum",
                f"amount {plain(amount)} is worth {plain(amount * ref)} at {plain(ref)}; "
                f"{spec.symbol} needs at least {plain(rules.min_notional)}",
            )
        for i, target in enumerate(spec.takeProfit, start=1):
            share = floor_to_step(target.portion * amount, rules.amount_step)
            if share < rules.min_amount:
                return (
                    "AmountBelowMinimum",
                    f"take profit {i} would close {plain(share)} ({plain(target.portion)} of {plain(amount)}), "
                    f"below the minimum {plain(rules.min_amount)} for {spec.symbol}",
                )
        return None

    def fixed_prices(self) -> list[tuple[str, Decimal]]:
        spec = self.spec
        prices = [
            ("limit price", spec.entry.price),
            ("stop loss", spec.stopLoss.price),
            ("trailing activation price", spec.trailingStop.activationPrice if spec.trailingStop else None),
            *((f"take profit {i}", t.price) for i, t in enumerate(spec.takeProfit, start=1)),
        ]
        return [(name, price) for name, price in prices if price is not None]

    # --- EntryPlaced / Protected: keep a stop covering exactly the filled amount ---------------

    def open(self, status: PositionStatus) -> Step:
        entry = status.entryOrder
        assert entry is not None, "an open phase always has an entry record"
        filled = entry.filled or Decimal(0)
        status = replace_status(status, filled=filled, averageEntryPrice=entry.averagePrice)
        exit_ = self.exit_by_our_orders(status)
        if exit_ is not None:
            return self.start_closing(status, *exit_)
        if filled > 0 and self.obs.position_size == 0:
            return self.flat_while_open(status)
        if condition_is(status, "Vanished"):
            status = self.condition(status, "Vanished", False, "Reappeared", "the exchange reports the position again")
        if self.wants_closed:
            reason = "Deleted" if self.deleting else "Requested"
            return self.start_closing(status, reason, "closing on request")
        if filled == 0:
            return self.unfilled(status, entry)
        status = self.drop_removed_targets(self.track_best_price(status))
        step = self.protect(status)
        if step is not None:
            return step
        status = self.protection_restored(status)
        for decide in (
            self.mark_protected,
            self.cancel_replaced,
            self.expire_entry,
            self.trail_natively,
            self.take_profits,
        ):
            step = decide(status)
            if step is not None:
                return step
        return Step(status)

    def exposure(self, status: PositionStatus) -> Decimal:
        """What this Position holds: its fills, but never more than the exchange position (exits shrink it)."""
        return floor_to_step(min(status.filled or Decimal(0), self.obs.position_size), self.rules.amount_step)

    def own_order_ids(self, status: PositionStatus) -> set[str]:
        records = all_records(status)
        return {r.exchangeOrderId for r in records if r.exchangeOrderId} | {
            r.triggeredOrderId for r in records if r.triggeredOrderId
        }

    def exit_by_our_orders(self, status: PositionStatus) -> tuple[str, str] | None:
        for record in [status.stopOrder, status.trailingOrder, *status.retiredOrders]:
            if record is None or record.state not in _HIT:
                continue
            purpose = purpose_of(record.clientOrderId)
            if purpose is Purpose.TRAILING or (purpose is Purpose.STOP and self.trailed(status, record)):
                return "TrailingStop", f"the trailing stop triggered at {record.triggerPrice or 'its trail'}"
            if purpose is Purpose.STOP:
                return "StopLoss", f"the stop loss at {record.triggerPrice} triggered on the exchange"
        return None

    def trailed(self, status: PositionStatus, stop: OrderRecord) -> bool:
        """Whether an emulated trailing stop had moved this stop away from the stop loss."""
        base = self.base_stop_price(status)
        return status.trailing is not None and status.trailing.activated and stop.triggerPrice != base

    def flat_while_open(self, status: PositionStatus) -> Step:
        """The exchange holds nothing although this Position filled: find out why before closing the books."""
        ours = self.own_order_ids(status)
        foreign = [t for t in self.obs.trades if t.order_id not in ours]
        if any(t.liquidation for t in foreign):
            return self.start_closing(status, "Liquidation", "the exchange liquidated the position")
        if foreign:
            return self.start_closing(status, "ExternalClose", "the position was closed outside Warden")
        if any(r.state in _HIT for r in status.takeProfitOrders + status.retiredOrders):
            return self.start_closing(status, "TakeProfit", "the take profits closed the position")
        # Nothing explains it: say so, and touch nothing (a stale position report must not cancel the stop).
        message = f"the exchange reports no {self.spec.symbol} position, and no trade explains it"
        notes = () if condition_is(status, "Vanished") else (Note("DriftPositionVanished", message, warning=True),)
        return Step(self.condition(status, "Vanished", True, "NoExplainingTrade", message), notes=notes)

    def expired(self, status: PositionStatus) -> bool:
        after = self.spec.entry.expireAfter
        return after is not None and status.entryPlacedAt is not None and self.now >= status.entryPlacedAt + after

    def unfilled(self, status: PositionStatus, entry: OrderRecord) -> Step:
        if entry.state in (OrderState.CANCELED, OrderState.REJECTED):
            reason = "EntryExpired" if self.expired(status) else "EntryCanceled"
            return self.closed(replace_status(status, exitReason=reason))
        if entry.state is OrderState.OPEN and self.expired(status):
            step = self.cancel(status, entry, "the entry expired unfilled")
            return replace(step, notes=(Note("EntryExpired", "the entry expired unfilled"), *step.notes))
        return Step(status)

    def expire_entry(self, status: PositionStatus) -> Step | None:
        entry = status.entryOrder
        if entry is not None and entry.state is OrderState.OPEN and self.expired(status):
            step = self.cancel(status, entry, "the entry expired; the filled part stays protected")
            return replace(step, notes=(Note("EntryExpired", "the unfilled rest of the entry expired"), *step.notes))
        return None

    # --- the stop ---------------------------------------------------------------------------------

    def from_entry(self, status: PositionStatus, percent: Decimal, *, toward_profit: bool) -> Decimal:
        """A price ``percent`` away from the average entry, rounded to the tick towards the entry
        (never further than asked)."""
        average = status.averageEntryPrice or self.obs.mark_price
        up = toward_profit == self.long
        price = average * (1 + percent / 100) if up else average * (1 - percent / 100)
        return to_tick(price, self.rules.price_tick, up=not up)

    def base_stop_price(self, status: PositionStatus) -> Decimal:
        stop = self.spec.stopLoss
        if stop.price is not None:
            return stop.price
        assert stop.percent is not None, "validated: exactly one of price or percent"
        return self.from_entry(status, stop.percent, toward_profit=False)

    def emulating(self) -> bool:
        trailing = self.spec.trailingStop
        return trailing is not None and trailing.mode is TrailingMode.EMULATED

    def activation_price(self, status: PositionStatus) -> Decimal | None:
        trailing = self.spec.trailingStop
        if trailing is None or trailing.activationPrice is not None:
            return trailing.activationPrice if trailing else None
        if trailing.activationPercent is None:
            return None
        return self.from_entry(status, trailing.activationPercent, toward_profit=True)

    def track_best_price(self, status: PositionStatus) -> PositionStatus:
        """The emulated trailing stop's memory: activation and the best price since, kept in status."""
        if not self.emulating():
            return status
        mark = self.obs.mark_price
        state = status.trailing or TrailingState()
        if not state.activated:
            activation = self.activation_price(status)
            if activation is not None and _beyond(activation, mark, above=self.long):
                return replace_status(status, trailing=state) if status.trailing is None else status
            state = state.model_copy(update={"activated": True, "highWaterMark": mark})
            self.notes = (*self.notes, Note("TrailingActivated", f"the trailing stop is active from {mark}"))
        best = state.highWaterMark if state.highWaterMark is not None else mark
        best = max(best, mark) if self.long else min(best, mark)
        if best != state.highWaterMark or status.trailing != state:
            state = state.model_copy(update={"highWaterMark": best})
            return replace_status(status, trailing=state)
        return status

    def stop_price(self, status: PositionStatus) -> Decimal:
        base = self.base_stop_price(status)
        trailing, state = self.spec.trailingStop, status.trailing
        if not self.emulating() or trailing is None or state is None or state.highWaterMark is None:
            return base
        if not state.activated:
            return base
        distance = trailing.callbackPercent / 100
        best = state.highWaterMark
        # Rounded towards the best price: the stop trails by at most the callback.
        raw = best * (1 - distance) if self.long else best * (1 + distance)
        trail = to_tick(raw, self.rules.price_tick, up=self.long)
        return max(base, trail) if self.long else min(base, trail)

    def protect(self, status: PositionStatus) -> Step | None:
        exposure = self.exposure(status)
        if exposure < self.rules.min_amount:
            return None
        price = self.stop_price(status)
        stop = status.stopOrder
        matches = stop is not None and stop.amount == exposure and stop.triggerPrice == price
        trailing_wait = stop is not None and stop.amount == exposure and self.trailing_too_soon(status)
        if stop is not None and stop.state is OrderState.OPEN and (matches or trailing_wait):
            return None
        if not _beyond(price, self.obs.mark_price, above=not self.long):
            # The price already passed where the stop would rest: it would trigger at once, so exit now.
            return self.start_closing(status, "StopLoss", f"the price passed the stop ({price}) before it could rest")
        if stop is not None and stop.state is OrderState.INTENDED and matches:
            return self.act(status, status, self.stop_action(stop), Note("StopIntent", "re-sending the recorded stop"))
        return self.replace_stop(status, stop, exposure, price)

    def trailing_too_soon(self, status: PositionStatus) -> bool:
        state = status.trailing
        if not self.emulating() or state is None or state.lastMoveAt is None:
            return False
        return self.now - state.lastMoveAt < TRAILING_MIN_INTERVAL

    def replace_stop(self, status: PositionStatus, old: OrderRecord | None, amount: Decimal, price: Decimal) -> Step:
        sequence = status.stopSequence + 1
        record = OrderRecord(
            clientOrderId=client_order_id(self.uid, Purpose.STOP, sequence),
            state=OrderState.INTENDED,
            amount=amount,
            triggerPrice=price,
        )
        after = replace_status(status, stopOrder=record, stopSequence=sequence)
        notes = [Note("StopIntent", f"placing a reduce-only stop for {amount} at {price}")]
        if old is not None and self.on_exchange(old):
            # The old stop keeps protecting until the new one rests; then it is cancelled.
            after = replace_status(after, retiredOrders=[*status.retiredOrders, old])
            move = f"{old.triggerPrice}/{old.amount} -> {price}/{amount}"
            notes[0] = Note("StopMove", f"moving the stop {move}")
            if self.emulating() and old.amount == amount and status.trailing is not None:
                after = replace_status(after, trailing=status.trailing.model_copy(update={"lastMoveAt": self.now}))
                notes[0] = Note("TrailingMoved", f"trailing the stop {move}")
        elif old is not None and old.state is OrderState.REJECTED:
            message = f"the stop was rejected ({old.message or 'no reason given'}); placing it again"
            after = self.condition(after, "Protected", False, "StopRejected", message)
            after, escalated = self.escalation(after, "placing the stop")
            notes = [Note("StopRetry", message, warning=True), *escalated, *notes]
        elif old is not None and old.state is not OrderState.INTENDED:  # an intent that never arrived is no drift
            after = self.condition(after, "Protected", False, "StopMissing", "the stop disappeared; re-placing")
            notes.insert(0, Note("DriftStopMissing", f"stop {old.clientOrderId} is gone", warning=True))
        return self.act(status, after, self.stop_action(record), *notes)

    def stop_action(self, record: OrderRecord, purpose: Purpose = Purpose.STOP) -> PlaceStopOrder:
        """A reduce-only conditional exit (stop loss or take profit) for the record."""
        assert record.triggerPrice is not None
        return PlaceStopOrder(
            record.clientOrderId,
            exit_side(self.spec.side),
            record.amount,
            record.triggerPrice,
            purpose=purpose,
            working_type=self.spec.stopLoss.workingType,
        )

    def mark_protected(self, status: PositionStatus) -> Step | None:
        stop = status.stopOrder
        if stop is None or stop.state is not OrderState.OPEN:
            return None
        if status.phase is Phase.PROTECTED:
            return None
        status = replace_status(status, phase=Phase.PROTECTED)
        status = self.condition(status, "Ready", True, "Protected", "filled and protected by a stop loss")
        return Step(status, notes=(Note("StopPlaced", f"stop {stop.clientOrderId} rests at {stop.triggerPrice}"),))

    def protection_restored(self, status: PositionStatus) -> PositionStatus:
        """Protected is True only while a resting stop covers the whole exposure."""
        stop = status.stopOrder
        if stop is None or stop.state is not OrderState.OPEN or stop.amount < self.exposure(status):
            return status
        return self.condition(
            status, "Protected", True, "StopResting", f"stop for {stop.amount} at {stop.triggerPrice}"
        )

    # --- replaced orders, native trailing stop, take profits --------------------------------------

    def cancel_replaced(self, status: PositionStatus) -> Step | None:
        for record in status.retiredOrders:
            if self.on_exchange(record) and self.replacement_rests(status, record):
                return self.cancel(status, record, "replaced by a resting order")
        return None

    def replacement_rests(self, status: PositionStatus, record: OrderRecord) -> bool:
        purpose = purpose_of(record.clientOrderId)
        if purpose is Purpose.STOP:
            current = status.stopOrder
        elif purpose is Purpose.TRAILING:
            current = status.trailingOrder
            if not self.native_trailing():
                return True
        else:
            if record.target is None or record.target >= len(self.spec.takeProfit):
                return True
            current = next((r for r in status.takeProfitOrders if r.target == record.target), None)
        return current is not None and current.state in (OrderState.OPEN, *_HIT)

    def native_trailing(self) -> bool:
        trailing = self.spec.trailingStop
        return trailing is not None and trailing.mode is TrailingMode.NATIVE

    def drop_removed_targets(self, status: PositionStatus) -> PositionStatus:
        """Orders for take profits (or a native trailing stop) the spec no longer has are retired."""
        count = len(self.spec.takeProfit)
        removed = [r for r in status.takeProfitOrders if r.target is None or r.target >= count]
        trailing = status.trailingOrder if not self.native_trailing() else None
        if not removed and trailing is None:
            return status
        retired = [r for r in [*removed, trailing] if r is not None and self.on_exchange(r)]
        return replace_status(
            status,
            takeProfitOrders=[r for r in status.takeProfitOrders if r not in removed],
            trailingOrder=status.trailingOrder if trailing is None else None,
            retiredOrders=[*status.retiredOrders, *retired],
        )

    def trail_natively(self, status: PositionStatus) -> Step | None:
        trailing = self.spec.trailingStop
        if trailing is None or trailing.mode is not TrailingMode.NATIVE:
            return None
        amount = self.exposure(status)
        current = status.trailingOrder
        if amount < self.rules.min_amount:
            return None
        if current is not None and self.on_exchange(current) and not self.unsent(current):
            if current.amount == amount:
                return None
        elif current is not None and self.unsent(current):
            return self.act(status, status, self.trailing_action(status, current))
        activation = self.activation_price(status)
        if activation is not None and not _beyond(activation, self.obs.mark_price, above=self.long):
            activation = None  # already reached: Binance would refuse it; trail from the current price
        sequence = status.trailingSequence + 1
        record = OrderRecord(
            clientOrderId=client_order_id(self.uid, Purpose.TRAILING, sequence),
            state=OrderState.INTENDED,
            amount=amount,
            triggerPrice=activation,
        )
        after = replace_status(status, trailingOrder=record, trailingSequence=sequence)
        if current is not None and self.on_exchange(current):
            after = replace_status(after, retiredOrders=[*status.retiredOrders, current])
        notes = [Note("TrailingStopIntent", f"trailing {trailing.callbackPercent}% for {amount}")]
        if current is not None and current.state is OrderState.REJECTED:
            after, escalated = self.escalation(after, "placing the trailing stop")
            notes.extend(escalated)
        return self.act(status, after, self.trailing_action(after, record), *notes)

    def trailing_action(self, status: PositionStatus, record: OrderRecord) -> PlaceTrailingStopOrder:
        trailing = self.spec.trailingStop
        assert trailing is not None
        return PlaceTrailingStopOrder(
            record.clientOrderId,
            exit_side(self.spec.side),
            record.amount,
            trailing.callbackPercent,
            record.triggerPrice,
            working_type=self.spec.stopLoss.workingType,
        )

    def take_profit_price(self, status: PositionStatus, target: TakeProfit) -> Decimal:
        if target.price is not None:
            return target.price
        assert target.percent is not None, "validated: exactly one of price or percent"
        return self.from_entry(status, target.percent, toward_profit=True)

    def take_profits(self, status: PositionStatus) -> Step | None:
        exposure = self.exposure(status)
        filled = status.filled or Decimal(0)
        for index, target in enumerate(self.spec.takeProfit):
            current = next((r for r in status.takeProfitOrders if r.target == index), None)
            if current is not None and current.state in _HIT:
                continue
            amount = min(floor_to_step(target.portion * filled, self.rules.amount_step), exposure)
            price = self.take_profit_price(status, target)
            if amount < self.rules.min_amount or not _beyond(price, self.obs.mark_price, above=self.long):
                continue  # not enough filled yet, or the price is already past it (it would trigger at once)
            matches = current is not None and current.amount == amount and current.triggerPrice == price
            if current is not None and matches and self.unsent(current):
                return self.act(status, status, self.stop_action(current, Purpose.TAKE_PROFIT))
            if current is not None and matches and self.on_exchange(current):
                continue
            return self.replace_take_profit(status, index, current, amount, price)
        return None

    def replace_take_profit(
        self, status: PositionStatus, index: int, old: OrderRecord | None, amount: Decimal, price: Decimal
    ) -> Step:
        sequence = status.takeProfitSequence + 1
        record = OrderRecord(
            clientOrderId=client_order_id(self.uid, Purpose.TAKE_PROFIT, sequence),
            state=OrderState.INTENDED,
            amount=amount,
            triggerPrice=price,
            target=index,
        )
        others = [r for r in status.takeProfitOrders if r.target != index]
        after = replace_status(status, takeProfitOrders=[*others, record], takeProfitSequence=sequence)
        notes = [Note("TakeProfitIntent", f"take profit {index + 1}: {amount} at {price}")]
        if old is not None and self.on_exchange(old):
            after = replace_status(after, retiredOrders=[*status.retiredOrders, old])
        elif old is not None and old.state is OrderState.CANCELED:
            notes.insert(0, Note("DriftTakeProfitMissing", f"take profit {old.clientOrderId} is gone", warning=True))
        return self.act(status, after, self.stop_action(record, Purpose.TAKE_PROFIT), *notes)

    # --- Closing: stop more fills, drop the take profits, flatten, remove the rest, account --------

    def start_closing(self, status: PositionStatus, reason: str, message: str) -> Step:
        status = replace_status(status, phase=Phase.CLOSING, exitReason=reason)
        status = self.condition(status, "Ready", False, "Closing", message)
        notes = [Note("CloseStarted", f"{reason}: {message}")]
        if reason in _EXTERNAL_EXITS:
            notes.insert(0, Note("DriftExternalClose", f"{reason}: {message}", warning=True))
        return Step(status, notes=tuple(notes))

    def closing(self, status: PositionStatus) -> Step:
        entry = status.entryOrder
        if entry is not None and entry.state is OrderState.OPEN:
            return self.cancel(status, entry, "closing: no more fills")
        for record in status.takeProfitOrders:
            if self.on_exchange(record):
                return self.cancel(status, record, "closing")
        size = floor_to_step(min(self.obs.position_size, self.still_held(status)), self.rules.amount_step)
        if size >= self.rules.min_amount:
            return self.close_position(status, size)
        for leftover in [status.stopOrder, status.trailingOrder, *status.retiredOrders]:
            if leftover is not None and self.on_exchange(leftover):
                return self.cancel(status, leftover, "the position is flat")
        return self.closed(status)

    def still_held(self, status: PositionStatus) -> Decimal:
        """What this Position may still hold after its exit began. The exchange's size alone is not it: another
        Position can hold the same symbol, and after an outside close, a liquidation, or the take profits,
        nothing of this one is left; after its stop fired, what the stop covered is gone."""
        entry = status.entryOrder
        filled = status.filled or (entry.filled if entry is not None else None) or Decimal(0)
        if status.exitReason in (*_EXTERNAL_EXITS, "TakeProfit"):
            return Decimal(0)
        exits = (status.stopOrder, status.trailingOrder, status.closeOrder, *status.retiredOrders)
        fired = [r.amount for r in exits if r is not None and r.state in _HIT and purpose_of(r.clientOrderId) in _EXITS]
        return max(filled - sum(fired, Decimal(0)), Decimal(0)) if fired else filled

    def close_position(self, status: PositionStatus, size: Decimal) -> Step:
        close = status.closeOrder
        if close is not None and close.state is OrderState.OPEN:
            return Step(status)
        amount = size  # already no more than this Position holds (still_held)
        if close is not None and self.unsent(close):
            return self.act(status, status, self.close_action(close))
        placed = max(status.closeSequence, 1 if close is not None else 0)
        number = placed + 1
        cid = client_order_id(self.uid, Purpose.CLOSE, number if number > 1 else 0)
        record = OrderRecord(clientOrderId=cid, state=OrderState.INTENDED, amount=amount)
        after = replace_status(status, closeOrder=record, closeSequence=number)
        notes = [Note("CloseIntent", f"reduce-only market {exit_side(self.spec.side)} {amount}")]
        if close is not None and close.state is OrderState.FILLED:
            after = replace_status(after, retiredOrders=[*status.retiredOrders, close])  # its fills count
        if close is not None and close.state is OrderState.REJECTED:
            message = f"the close was rejected ({close.message or 'no reason given'}); trying again"
            after = self.condition(after, "Ready", False, "CloseFailing", message)
            after, escalated = self.escalation(after, "closing")
            notes = [Note("CloseRetry", message, warning=True), *escalated, *notes]
        return self.act(status, after, self.close_action(record), *notes)

    def close_action(self, record: OrderRecord) -> PlaceMarketOrder:
        side = exit_side(self.spec.side)
        return PlaceMarketOrder(Purpose.CLOSE, record.clientOrderId, side, record.amount, reduce_only=True)

    def closed(self, status: PositionStatus) -> Step:
        ours = self.own_order_ids(status)
        if status.exitReason in _EXTERNAL_EXITS:
            trades = list(self.obs.trades)  # the outside orders that closed it are part of its result
        else:
            trades = [t for t in self.obs.trades if t.order_id in ours]
        fees = sum((t.fee for t in trades), Decimal(0))
        pnl = sum((t.realized_pnl for t in trades), Decimal(0)) - fees
        status = replace_status(status, phase=Phase.CLOSED, realizedPnl=pnl, fees=fees, closedAt=self.now)
        status = self.condition(status, "Protected", False, "Flat", "no position is open")
        status = self.condition(status, "Ready", True, "Closed", f"closed ({status.exitReason}); realized PnL {pnl}")
        return Step(status, notes=(Note("PositionClosed", f"{status.exitReason}; realized PnL {pnl}, fees {fees}"),))
