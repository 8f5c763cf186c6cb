"""One reconcile pass for one Position: observe → plan → record intent → act → record result.

Audit: a risk-increasing step (the entry) is only taken once its intent is committed to the audit store.
Every other step goes on without the store: its events then wait in the Position's status (bounded) and
are flushed, exactly once by id, when the store is back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ccxt
import kopf

from controller import failpoints
from controller.api.v1alpha1 import (
    AUDIT_BACKLOG_LIMIT,
    BufferedAuditEvent,
    ConditionStatus,
    OrderState,
    Phase,
    PositionSpec,
    PositionStatus,
)
from controller.api.vocabulary import ConditionType, EventType, Reason
from controller.audit.store import AuditEvent, AuditUnavailable, Fill
from controller.exchange.errors import classify, describe
from controller.exchange.fills import FillOwner, read_fills
from controller.exchange.gateway import Gateway
from controller.handlers.observer import AccountObserver, Watcher
from controller.handlers.runtime import Account, AccountNotReady, NotLeader, Runtime
from controller.metrics import (
    AUDIT_BACKLOG_OVERFLOW,
    CLOSE_FAILURES,
    DRIFT,
    EXCHANGE_ERRORS,
    FILL_TO_PROTECT,
    ORDERS_CANCELED,
    ORDERS_PLACED,
    PHASE_TRANSITIONS,
    RECONCILE_SECONDS,
    RECONCILES,
    RISK_REFUSALS,
)
from controller.reconcile.model import (
    Action,
    CancelOrder,
    Note,
    Observation,
    Outcome,
    PlaceLimitOrder,
    PlaceMarketOrder,
    Purpose,
    SetLeverage,
    SetMarginMode,
    Step,
    client_id_prefix,
    records_to_observe,
    request_weight,
)
from controller.reconcile.phases import TERMINAL
from controller.reconcile.planner import plan
from controller.reconcile.results import record_failure, record_success
from controller.reconcile.risk import RiskContext, book_from
from controller.reconcile.status import (
    all_records,
    entry_rests,
    follows_mark,
    protecting_orders,
    replace_status,
    set_condition,
    unknown_symbol,
)

MAX_STEPS_PER_PASS = 8
# Steps after which the exchange's trades for this Position are written to the fills table.
_FILL_NOTES = frozenset(
    {
        EventType.ENTRY_PARTIALLY_FILLED,
        EventType.ENTRY_FILLED,
        EventType.CLOSE_FILLED,
        EventType.STOP_TRIGGERED,
        EventType.TAKE_PROFIT_TRIGGERED,
        EventType.TRAILING_STOP_TRIGGERED,
    }
)
_ENTRY_FILL_NOTES = frozenset({EventType.ENTRY_PARTIALLY_FILLED, EventType.ENTRY_FILLED})
_EXCHANGE_FAILURE = {
    Outcome.REJECTED: Reason.EXCHANGE_REJECTED,
    Outcome.RETRY: Reason.EXCHANGE_RETRY,
    Outcome.UNKNOWN: Reason.EXCHANGE_UNKNOWN,
    Outcome.ACCOUNT: Reason.EXCHANGE_ACCOUNT,
}
"""The Synced condition's reason after a failed action."""
log = logging.getLogger("warden.reconcile")


def resends(before: PositionStatus, step: Step) -> bool:
    """Whether the step only sends again an order whose intent is recorded (a retry): same phase, same record."""
    client_id = _client_id(step.action)
    return step.status.phase is before.phase and any(
        r.clientOrderId == client_id and r.state is OrderState.INTENDED for r in all_records(before)
    )


@dataclass
class Target:
    """The Position being reconciled, and what is needed to report about it."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: PositionSpec
    body: Any  # kopf's body, for Kubernetes events
    paused: bool = False  # the pause annotation: observe and report only


def _dump(status: PositionStatus) -> dict[str, Any]:
    dumped: dict[str, Any] = status.model_dump(mode="json", exclude_none=True)
    return dumped


def _purpose(action: Action) -> str:
    if isinstance(action, SetMarginMode | SetLeverage):
        return "settings"
    return action.purpose.name.lower()


def _client_id(action: Action | None) -> str | None:
    return getattr(action, "client_order_id", None)


def _now_key() -> str:
    return datetime.now(UTC).isoformat()


def _buffer(entry_id: str, type_: str, occurred_at: datetime, data: str) -> BufferedAuditEvent:
    return BufferedAuditEvent(id=entry_id, type=type_, occurredAt=occurred_at.isoformat(), data=data)


def _buffered(event: AuditEvent) -> BufferedAuditEvent:
    return _buffer(event.event_id.hex, event.type, event.occurred_at, event.to_json())


def counts_in_book(status: PositionStatus) -> bool:
    """Whether another Position's risk check sees this one's exposure (``risk.book_from``): a limit entry from
    its intent on, a market entry once a fill is recorded; or the entry ended."""
    entry = status.entryOrder
    if entry is None:
        return status.phase in TERMINAL
    ended = entry.state in (OrderState.CANCELED, OrderState.REJECTED) or status.phase in TERMINAL
    return ended or entry.price is not None or bool(status.filled)


class Reconciler:
    def __init__(self, runtime: Runtime, target: Target) -> None:
        self.rt = runtime
        self.t = target
        self.gateway: Gateway | None = None
        self.observer: AccountObserver | None = None
        self.deleting = False
        self.unsaved: list[AuditEvent] = []
        """Events of an order or cancel that was sent: they go out with the next step's status write, so the stop
        that a fill calls for is one write nearer (a crash in between is repaired by the look-up by client id, the
        intent being recorded before the send)."""
        self.carried: list[AuditEvent] = []
        """Events of a risk-reducing step that rode in the status write recording its intent (in the backlog), so
        its order did not wait for the audit store; the next commit writes them and takes them out of the backlog."""
        self.saved: PositionStatus | None = None
        """The status as last read or written: what a write must change."""
        self.fills_due: Observation | None = None
        """The observation of this pass's last fill: its trades go to the audit fills when the pass ends."""

    # --- reporting ------------------------------------------------------------------------------

    @property
    def account_label(self) -> str:
        return f"{self.t.namespace}/{self.t.spec.accountRef.name}"

    def event(self, note: Note) -> None:
        post = kopf.warn if note.warning else kopf.info
        post(self.t.body, reason=note.type, message=note.message)

    def count(self, note: Note) -> None:
        """Metrics that follow from what a step says happened."""
        if note.type.startswith("Drift"):
            DRIFT.labels(note.type.removeprefix("Drift")).inc()
        elif note.type is EventType.RISK_REFUSED and note.limit is not None:
            RISK_REFUSALS.labels(note.limit).inc()
        elif note.type is EventType.CLOSE_RETRY:
            CLOSE_FAILURES.labels(self.account_label).inc()
        elif note.type in _ENTRY_FILL_NOTES:
            self.rt.filled_at.setdefault(self.t.uid, time.monotonic())
        elif note.type is EventType.STOP_PLACED and self.t.uid in self.rt.filled_at:
            FILL_TO_PROTECT.observe(time.monotonic() - self.rt.filled_at.pop(self.t.uid))

    def audit_event(self, type_: EventType, status: PositionStatus, message: str, **fields: Any) -> AuditEvent:
        """An event about this Position, stamped with the acting replica and its leadership term."""
        values: dict[str, Any] = {
            "phase_before": status.phase.value,
            "phase_after": status.phase.value,
            "account": self.t.spec.accountRef.name,
            "symbol": self.t.spec.symbol,
            "occurred_at": datetime.now(UTC),
        } | fields
        return AuditEvent(
            position_uid=self.t.uid,
            namespace=self.t.namespace,
            name=self.t.name,
            type=type_,
            message=message,
            epoch=self.rt.epoch,
            replica=self.rt.replica,
            **values,
        )

    def audit_events(self, before: PositionStatus, step: Step, now: datetime) -> list[AuditEvent]:
        action = step.action
        # Settings have no client id: the setting itself tells margin mode and leverage apart.
        setting = f"/{action}" if isinstance(action, SetMarginMode | SetLeverage) else ""
        events = [
            self.audit_event(
                note.type,
                before,
                note.message,
                occurred_at=now,
                phase_after=step.status.phase.value,
                client_order_id=note.client_order_id or _client_id(action),
                amount=getattr(action, "amount", None),
                price=getattr(action, "trigger_price", None),
                key=f"{step.status.stopSequence}/{step.status.exitReason or ''}{setting}",
            )
            for note in step.notes
        ]
        if before.phase is not step.status.phase:
            events.append(self.phase_event(before.phase, step.status, now))
        return events

    def phase_event(self, before: Phase, status: PositionStatus, now: datetime) -> AuditEvent:
        detail = {"realizedPnl": status.realizedPnl, "fees": status.fees, "filled": status.filled}
        return self.audit_event(
            EventType.PHASE_CHANGED,
            status,
            f"{before.value} -> {status.phase.value}",
            occurred_at=now,
            phase_before=before.value,
            detail={k: str(v) for k, v in detail.items() if v is not None} | {"exitReason": status.exitReason},
        )

    def order_event(
        self, type_: EventType, status: PositionStatus, action: Action, message: str, **kw: Any
    ) -> AuditEvent:
        kw.setdefault("detail", {"purpose": _purpose(action)})
        return self.audit_event(type_, status, message, client_order_id=_client_id(action), **kw)

    def generation_events(self, status: PositionStatus, now: datetime) -> list[AuditEvent]:
        """PositionCreated / SpecChanged, once per generation (the id carries the generation). Deleting an object
        also bumps its generation: that is the deletion (its own events), not a spec change."""
        if status.observedGeneration == self.t.generation or (self.deleting and status.observedGeneration):
            return []
        spec = self.t.spec.model_dump(mode="json", exclude_none=True)
        if status.observedGeneration is None:
            return [
                self.audit_event(
                    EventType.POSITION_CREATED,
                    status,
                    "Warden saw the Position",
                    occurred_at=now,
                    detail={"spec": spec},
                )
            ]
        return [
            self.audit_event(
                EventType.SPEC_CHANGED,
                status,
                f"spec changed (generation {self.t.generation})",
                occurred_at=now,
                key=str(self.t.generation),
                detail={"generation": self.t.generation, "spec": spec},
            )
        ]

    # --- bookkeeping ----------------------------------------------------------------------------

    async def write(self, events: list[AuditEvent]) -> bool:
        """Try to commit events now; False when the store is unavailable (it never waits on a known outage)."""
        try:
            await self.rt.audit.record(events)
        except AuditUnavailable as error:
            log.warning("audit write for %s/%s deferred: %s", self.t.namespace, self.t.name, error)
            return False
        return True

    def buffered(self, status: PositionStatus, entries: list[BufferedAuditEvent]) -> PositionStatus:
        """Keep records in status until the store returns; what exceeds the bound is counted and reported."""
        room = max(AUDIT_BACKLOG_LIMIT - len(status.auditBacklog), 0)
        lost = max(len(entries) - room, 0)
        if lost:
            AUDIT_BACKLOG_OVERFLOW.inc(lost)
            self.event(
                Note(EventType.AUDIT_BACKLOG_OVERFLOW, f"{lost} audit records did not fit in the backlog", warning=True)
            )
        return replace_status(
            status,
            auditBacklog=[*status.auditBacklog, *entries[:room]],
            auditBacklogOverflow=status.auditBacklogOverflow + lost,
        )

    async def commit(self, before: PositionStatus, after: PositionStatus, events: list[AuditEvent]) -> PositionStatus:
        """Audit now if the store takes it (with what earlier steps carried), else into status; then save status."""
        events, self.unsaved = [*self.unsaved, *events], []
        carried, self.carried = self.carried, []
        if carried or events:
            if await self.write([*carried, *events]):
                written = {e.event_id.hex for e in carried}
                after = replace_status(after, auditBacklog=[b for b in after.auditBacklog if b.id not in written])
            else:  # what was carried stays in the backlog
                after = self.buffered(after, [_buffered(e) for e in events])
        await self.save(before, after)
        return after

    async def carry(self, before: PositionStatus, after: PositionStatus, events: list[AuditEvent]) -> PositionStatus:
        """Risk-reducing bookkeeping before a send: the step's events ride in the status write that records its
        intent, so the stop or close goes out without waiting for the audit store; the next commit writes them.
        A crash in between leaves them in the backlog, which the next pass flushes."""
        if len(after.auditBacklog) + len(self.unsaved) + len(events) > AUDIT_BACKLOG_LIMIT:
            return await self.commit(before, after, events)  # no room in the backlog: nothing may be lost
        events, self.unsaved = [*self.unsaved, *events], []
        after = replace_status(after, auditBacklog=[*after.auditBacklog, *(_buffered(e) for e in events)])
        await self.save(before, after)
        self.carried.extend(events)
        return after

    async def flush_backlog(self, status: PositionStatus) -> PositionStatus:
        """Write what an outage left in status; ids are deterministic, so a crash mid-flush cannot duplicate."""
        if not status.auditBacklog or not self.rt.audit.available_soon:
            return status
        events = [AuditEvent.from_json(b.data) for b in status.auditBacklog if b.type != "Fill"]
        fills = [Fill.from_json(b.data) for b in status.auditBacklog if b.type == "Fill"]
        flushed = self.audit_event(
            EventType.AUDIT_BACKLOG_FLUSHED,
            status,
            f"{len(status.auditBacklog)} buffered audit records written",
            key=status.auditBacklog[0].id,
            detail={"events": len(events), "fills": len(fills), "overflow": status.auditBacklogOverflow},
        )
        try:
            await self.rt.audit.record_fills(fills)
            await self.rt.audit.record([*events, flushed])
        except AuditUnavailable:
            return status
        after = replace_status(status, auditBacklog=[])
        await self.save(status, after)
        return after

    async def read_fills(self, observation: Observation) -> list[Fill]:
        """This Position's trades: of its own orders, and the venue's that closed it (``observation.trades``
        holds every trade since the entry once the position is flat: external closes, liquidations)."""
        assert self.gateway is not None, "fills follow a successful observation"
        client_ids = {
            order_id: client_id
            for client_id, seen in observation.orders.items()
            if seen is not None
            for order_id in (seen.exchange_order_id, seen.triggered_order_id)
            if order_id
        }
        owner = FillOwner(self.t.spec.accountRef.name, self.t.uid, self.t.namespace, self.t.name, client_ids)
        order_ids = client_ids.keys() | {trade.order_id for trade in observation.trades}
        return await read_fills(self.gateway.client, self.t.spec.symbol, order_ids, owner)

    async def with_fills(self, status: PositionStatus, observation: Observation) -> PositionStatus | None:
        """Write this Position's trades to the fills table; while the store is down they go into the backlog
        of the returned status. None: the trades could not be read (they stay on the exchange)."""
        try:
            fills = await self.read_fills(observation)
        except ccxt.BaseError as error:
            log.warning("could not read trades for %s/%s: %s", self.t.namespace, self.t.name, describe(error))
            return None
        try:
            await self.rt.audit.record_fills(fills)
        except AuditUnavailable:
            return self.buffered(status, [_buffer(f.entry_id, "Fill", f.traded_at, f.to_json()) for f in fills])
        return status

    async def record_fills(self, status: PositionStatus, observation: Observation) -> PositionStatus:
        """After a fill step; a read that fails is repaired when the Position closes."""
        after = await self.with_fills(status, observation)
        if after is None:
            return status
        await self.save(status, after)
        return after

    async def save(self, before: PositionStatus, after: PositionStatus) -> None:
        if not self.rt.may_act():
            # A replica that lost the lease mid-pass must not overwrite what the new leader records.
            raise NotLeader(f"replica {self.rt.replica} lost the leader lease; status not written")
        if _dump(self.saved or before) != _dump(after):
            failpoints.hit("status:before-write")
            written = await self.rt.kube.patch_status("positions", self.t.namespace, self.t.name, _dump(after))
            failpoints.hit("status:after-write")
            self.rt.known_version[self.t.uid] = written
            self.saved = after
        if before.phase is not after.phase:
            PHASE_TRANSITIONS.labels(after.phase.value).inc()

    def with_condition(
        self, status: PositionStatus, type_: ConditionType, ok: bool, reason: Reason, message: str
    ) -> PositionStatus:
        flag = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
        now = datetime.now(UTC)
        conditions = set_condition(status.conditions, type_, flag, reason, message, self.t.generation, now)
        return replace_status(status, conditions=conditions)

    # --- the pass -------------------------------------------------------------------------------

    async def run(self, status: PositionStatus, deleting: bool) -> PositionStatus:
        started, self.saved = time.monotonic(), status
        try:
            status = await self._run(status, deleting)
            if self.unsaved or self.carried:
                status = await self.commit(status, status, [])
            if self.fills_due is not None:
                # Read after the pass, so reading trades never delays the stop that a fill calls for.
                status = await self.record_fills(status, self.fills_due)
            RECONCILES.labels("ok").inc()
            return status
        except Exception:
            RECONCILES.labels("error").inc()
            raise
        finally:
            RECONCILE_SECONDS.observe(time.monotonic() - started)

    async def _run(self, status: PositionStatus, deleting: bool) -> PositionStatus:
        self.deleting = deleting
        status = await self.flush_backlog(status)
        if status.phase in TERMINAL:
            return status
        try:
            account = await self.rt.account(self.t.namespace, self.t.spec.accountRef.name)
        except AccountNotReady as problem:
            after = self.with_condition(status, ConditionType.SYNCED, False, problem.reason, problem.message)
            await self.save(status, after)
            return after
        self.gateway, self.observer = account.gateway, account.observer
        if status.entryOrder is None and not deleting:
            # The limits as they are now, not as cached: a limit set a moment ago must bind this entry.
            account = await self.rt.account(self.t.namespace, account_name := self.t.spec.accountRef.name, fresh=True)
            self.gateway, self.observer = account.gateway, account.observer
            if account.spec.risk is not None:
                # The entry decision reads the account's book; one Position of the account decides at a time, and
                # holds the account until its entry counts in the book (a market entry: once its fill is recorded).
                # Without limits there is nothing to decide together, and entries go side by side.
                async with self.rt.account_lock(self.t.namespace, account_name):
                    risk = RiskContext(account.spec.risk, await self.book(account_name))
                    status = await self.steps(status, deleting, account, risk, until=counts_in_book)
                if status.entryOrder is None or status.phase in TERMINAL:
                    return status
        return await self.steps(status, deleting, account, None)

    async def book(self, account_name: str) -> Any:
        others = [
            (PositionSpec.model_validate(o["spec"]), PositionStatus.model_validate(o.get("status") or {}))
            for o in await self.rt.kube.list("positions", self.t.namespace)
            if o["metadata"]["uid"] != self.t.uid and o["spec"].get("accountRef", {}).get("name") == account_name
        ]
        return book_from(others, datetime.now(UTC))

    async def steps(
        self,
        status: PositionStatus,
        deleting: bool,
        account: Account,
        risk: RiskContext | None,
        until: Callable[[PositionStatus], bool] = lambda _: False,
    ) -> PositionStatus:
        """Plan and act until nothing more happens now."""
        for _ in range(MAX_STEPS_PER_PASS):
            if until(status):
                break
            try:
                observation = await self.observe(account, status)
            except ccxt.BaseError as error:
                status = await self.observe_failed(status, error)
                break
            now = datetime.now(UTC)
            step = plan(
                self.t.spec,
                status,
                observation,
                uid=self.t.uid,
                generation=self.t.generation,
                deleting=deleting,
                now=now,
                paused=self.t.paused,
                risk=risk,
            )
            after = self.with_condition(
                step.status, ConditionType.SYNCED, True, Reason.OBSERVED, "exchange state observed"
            )
            if after.phase is Phase.CLOSED and status.phase is not Phase.CLOSED:
                # Every trade reaches the fills (or the backlog, in the same status write) before the Position is
                # Closed, which also repairs a fill step that a crash or a failed read cut short.
                closing = await self.with_fills(after, observation)
                if closing is None:
                    return status  # not closed until its trades could be read
                after = closing
            status, progressed = await self.apply(status, Step(after, step.action, step.notes), now)
            if any(note.type in _ENTRY_FILL_NOTES for note in step.notes):
                self.fills_due = observation  # read after the pass: the stop this fill calls for goes first
            elif any(note.type in _FILL_NOTES for note in step.notes):
                status = await self.record_fills(status, observation)
            if not progressed or status.phase in TERMINAL:
                break
        return status

    async def observe_failed(self, status: PositionStatus, error: ccxt.BaseError) -> PositionStatus:
        EXCHANGE_ERRORS.labels(self.account_label, type(error).__name__).inc()
        if isinstance(error, ccxt.BadSymbol) and status.entryOrder is None:
            now = datetime.now(UTC)
            step = unknown_symbol(status, self.t.spec.symbol, generation=self.t.generation, now=now)
            return (await self.apply(status, step, now))[0]
        after = self.with_condition(status, ConditionType.SYNCED, False, Reason.OBSERVE_FAILED, describe(error))
        if after.conditions == status.conditions:  # each new kind of failure once, not every second
            return status
        event = self.audit_event(EventType.EXCHANGE_ERROR, status, describe(error), key=_now_key())
        return await self.commit(status, after, [event])

    async def observe(self, account: Account, status: PositionStatus) -> Observation:
        """This Position's view of the account's shared snapshot. It must be newer than this Position's last
        action (or the snapshot could predate the order it sent) and not older than two cycles."""
        spec, uid = self.t.spec, self.t.uid
        await account.gateway.rules(spec.symbol)  # an unknown symbol fails here, not in a wait for its mark
        watcher = Watcher(
            spec.symbol,
            spec.side,
            client_id_prefix(uid),
            follows_mark(spec, status),
            self.rt.wake(uid),
            resting=entry_rests(status),
            protecting=protecting_orders(status),
        )
        account.observer.watch(uid, watcher)
        fresh_enough = time.monotonic() - 2 * account.observer.interval() - 1
        # Orders ended by their placements' own answers (a market entry that filled): the read after the send needs
        # only the position and the mark.
        records = records_to_observe(status)
        answered = bool(records) and all(account.gateway.ended(client_id) for client_id, _ in records)
        acted_at = self.rt.acted_at.get(uid, -math.inf)  # never acted: any snapshot fresh enough
        snapshot = await account.observer.snapshot(spec.symbol, fresh_enough, acted_at, answered)
        return await account.gateway.observe(spec, status, snapshot)

    async def apply(self, before: PositionStatus, step: Step, now: datetime) -> tuple[PositionStatus, bool]:
        """Record the step, then act. Returns the recorded status and whether to go on planning."""
        action = step.action
        events = self.generation_events(before, now) + self.audit_events(before, step, now)
        opening = isinstance(action, PlaceMarketOrder | PlaceLimitOrder) and action.purpose is Purpose.ENTRY
        if opening and not await self.write(events):
            # Risk-increasing: no committed intent, no order.
            held = self.with_condition(
                before, ConditionType.READY, False, Reason.AUDIT_UNAVAILABLE, "waiting for the audit store"
            )
            if not any(c.reason == Reason.AUDIT_UNAVAILABLE for c in before.conditions):
                waits = Note(EventType.AUDIT_UNAVAILABLE, "the entry waits: its intent cannot be audited", warning=True)
                self.event(waits)
                # The wait itself is part of the story: it reaches the store with the backlog.
                event = self.audit_event(waits.type, before, waits.message, occurred_at=now, key=_now_key())
                held = self.buffered(held, [_buffered(event)])
            await self.save(before, held)
            return held, False
        if action is not None and not opening and resends(before, step):
            # Its intent is in status and the audit already: it goes out first, and this step is saved with its
            # result (a stop the venue refused is sent again without two writes ahead of it).
            self.unsaved.extend(events)
            status = step.status
        elif action is not None and not opening and not isinstance(action, SetMarginMode | SetLeverage):
            # Risk-reducing (a stop, a take profit, a close, a cancel): it never waits for the audit store.
            status = await self.carry(before, step.status, events)
        else:
            status = await self.commit(before, step.status, [] if opening else events)
        for note in step.notes:
            self.event(note)
            self.count(note)
        if action is None:
            return status, before.phase is not status.phase
        return await self.act(status, action)

    def sent(self, action: Action, moves_size: bool) -> None:
        """The next snapshot wakes this Position whatever it shows; after an entry or a close, its next
        observation must also be taken after the send. What the request weighed comes out of the account's
        read budget."""
        if self.observer is not None:
            self.observer.acted(self.t.uid)
            self.observer.spent(request_weight(action))
        if moves_size:
            self.rt.acted_at[self.t.uid] = time.monotonic()

    async def act(self, status: PositionStatus, action: Action) -> tuple[PositionStatus, bool]:
        purpose = _purpose(action)
        assert self.gateway is not None, "act() follows a successful observation"
        failpoints.hit(f"{purpose}:before-send")
        # An order that can change the position's size (an entry, a close) needs a snapshot taken after it.
        # Stops, take profits and cancels do not: their own records say where they stand, and an order the
        # snapshot predates is looked up by its client id.
        moves_size = isinstance(action, PlaceMarketOrder | PlaceLimitOrder)
        try:
            order_id = await self.gateway.execute(self.t.spec.symbol, action)
        except ccxt.BaseError as error:
            self.sent(action, moves_size)  # the outcome may be unknown: look again
            # An entry or a close that may have gone through is looked up in the same pass (a filled entry's stop
            # is due now); anything else waits for its back-off.
            return await self.failed(status, action, error), moves_size and classify(error) is not Outcome.REJECTED
        self.sent(action, moves_size)
        failpoints.hit(f"{purpose}:after-send")
        after = record_success(status, action, order_id)
        if isinstance(action, SetMarginMode | SetLeverage):
            event = self.order_event(EventType.SETTING_APPLIED, status, action, f"{action} applied", key=str(action))
        elif isinstance(action, CancelOrder):
            ORDERS_CANCELED.labels(purpose).inc()
            event = self.order_event(EventType.ORDER_CANCELED, status, action, f"{purpose} order canceled")
        else:
            ORDERS_PLACED.labels(purpose).inc()
            event = self.order_event(
                EventType.ORDER_PLACED,
                status,
                action,
                f"{purpose} order placed",
                exchange_order_id=order_id,
                amount=action.amount,
                price=getattr(action, "price", None) or getattr(action, "trigger_price", None),
            )
        # The next step follows at once and writes this with its own record (or the pass's end does): one status
        # write per action, not two.
        self.unsaved.append(event)
        return after, True

    async def failed(self, status: PositionStatus, action: Action, error: ccxt.BaseError) -> PositionStatus:
        EXCHANGE_ERRORS.labels(self.account_label, type(error).__name__).inc()
        outcome = classify(error)
        message = describe(error)
        purpose = _purpose(action)
        after = record_failure(status, action, outcome, message, now=datetime.now(UTC), generation=self.t.generation)
        detail = {
            "purpose": purpose,
            "outcome": outcome.value,
            "class": type(error).__name__,
            "attempt": after.failedAttempts,
        }
        # Each failure is its own row (the attempt is part of its identity).
        event = self.order_event(EventType.EXCHANGE_ERROR, status, action, message, detail=detail, key=_now_key())
        self.event(Note(EventType.EXCHANGE_ERROR, f"{purpose}: {message}", warning=True))
        events = [event]
        if outcome is Outcome.REJECTED and not isinstance(action, CancelOrder | SetMarginMode | SetLeverage):
            events.append(self.order_event(EventType.ORDER_REJECTED, status, action, message))
        if after.phase is not status.phase:
            events.append(self.phase_event(status.phase, after, datetime.now(UTC)))
        after = self.with_condition(
            after, ConditionType.SYNCED, False, _EXCHANGE_FAILURE[outcome], f"{purpose}: {message}"
        )
        # The planner decides what a failure means next pass (retry after back-off, fail, escalate).
        return await self.commit(status, after, events)
