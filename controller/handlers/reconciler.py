"""One reconcile pass for one Position: observe → plan → record intent → act → record result.

Audit: a risk-increasing step (the entry) is only taken once its intent is committed to the audit store.
Every other step goes on without the store: its events then wait in the Position's status (bounded) and
are flushed, exactly once by id, when the store is back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import ccxt
import kopf

from controller import failpoints
from controller.api.v1alpha1 import (
    ConditionStatus,
    OrderState,
    Phase,
    PositionSpec,
    PositionStatus,
    TrailingMode,
    VenueTrailingState,
)
from controller.api.vocabulary import ConditionType, EventType, Reason
from controller.audit.store import AuditEvent, Fill
from controller.exchange.errors import describe
from controller.exchange.fills import FillOwner
from controller.exchange.port import VenuePort
from controller.handlers.auditflow import AuditFlow
from controller.handlers.observer import Revaluation, Watcher
from controller.handlers.ports import AccountPort, AccountWatch, Clock, Shell, SystemClock
from controller.handlers.runtime import AccountNotReady, NotLeader
from controller.metrics import (
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
from controller.reconcile.context import LIVE
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
    SetPositionTrailing,
    Step,
    client_id_prefix,
    records_to_observe,
)
from controller.reconcile.phases import TERMINAL
from controller.reconcile.planner import plan
from controller.reconcile.results import record_failure, record_success
from controller.reconcile.risk import RiskContext, book_from
from controller.reconcile.status import (
    all_records,
    closed_before_entry,
    entry_rests,
    follows_mark,
    has_regular_orders,
    protecting_orders,
    replace_status,
    set_condition,
    stop_awaiting_fill,
    unknown_symbol,
)
from controller.reconcile.valuation import shown, with_fees_paid
from controller.reconcile.venue import Capabilities, TrailingSupport

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


def side_of(obj: Any) -> tuple[Any, ...]:
    """A Position object's account side, as its manifest names it: (namespace, account, symbol, side)."""
    spec = obj.get("spec") or {}
    account = (spec.get("accountRef") or {}).get("name")
    return obj["metadata"]["namespace"], account, spec.get("symbol"), spec.get("side")


def _dump(status: PositionStatus) -> dict[str, Any]:
    dumped: dict[str, Any] = status.model_dump(mode="json", exclude_none=True)
    return dumped


def merge_patch(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) from ``before`` to ``after``: a field that is gone is sent as null, at any
    depth, or the API server would keep it (an unrealized PnL after the close, a back-off that ended)."""
    patch: dict[str, Any] = {key: None for key in before.keys() - after.keys()}
    for key, value in after.items():
        old = before.get(key)
        patch[key] = merge_patch(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return patch


def _figure(own: Decimal | None, note: Note, action: Action | None, *names: str) -> Decimal | None:
    """An audit row's amount or price: the note's own (a fill's), else its step's action's when the note is about
    that action (not about another order, e.g. the entry fill noted in the step that places its stop)."""
    if own is not None or note.client_order_id not in (None, _client_id(action)):
        return own
    found: Decimal | None = next((getattr(action, n) for n in names if getattr(action, n, None) is not None), None)
    return found


def _purpose(action: Action) -> str:
    if isinstance(action, SetMarginMode | SetLeverage):
        return "settings"
    return action.purpose.name.lower()


def _client_id(action: Action | None) -> str | None:
    return getattr(action, "client_order_id", None)


def _intended(status: PositionStatus) -> frozenset[str]:
    """Intents the status records and no answer has confirmed: its INTENDED orders and the pre-recorded next stop
    (a pass that made the next stop's id itself knows it is not on the venue: only the one before it was sent)."""
    following = () if status.nextStopOrderId is None else (status.nextStopOrderId,)
    return frozenset((*(r.clientOrderId for r in all_records(status) if r.state is OrderState.INTENDED), *following))


def pre_recorded(status: PositionStatus) -> frozenset[str]:
    """Stops recorded ahead of their need, so they go out with no write first: the next stop, and the first one
    while the entry it is to protect has no fill (recorded with the entry)."""
    first = stop_awaiting_fill(status)
    ids = (None if first is None else first.clientOrderId, status.nextStopOrderId)
    return frozenset(c for c in ids if c is not None)


def counts_in_book(status: PositionStatus) -> bool:
    """Whether another Position's risk check sees this one's exposure (``risk.book_from``): a limit entry from
    its intent on, a market entry once a fill is recorded; or the entry ended."""
    entry = status.entryOrder
    if entry is None:
        return status.phase in TERMINAL
    ended = entry.state in (OrderState.CANCELED, OrderState.REJECTED) or status.phase in TERMINAL
    return ended or entry.price is not None or bool(status.filled)


class Reconciler:
    def __init__(self, runtime: Shell, target: Target, clock: Clock | None = None) -> None:
        self.runtime = runtime
        self.target = target
        self.clock = clock or SystemClock()
        self.gateway: VenuePort | None = None
        self.observer: AccountWatch | None = None
        self.deleting = False
        self.audit = AuditFlow(
            runtime.audit, self.save, self.audit_event, self.event, f"{target.namespace}/{target.name}"
        )
        self.saved: PositionStatus | None = None
        """The status as last read or written: what a write must change."""
        self.fills_due: Observation | None = None
        """The observation of this pass's last fill: its trades go to the audit fills when the pass ends."""
        self.pnl_refresh = timedelta(seconds=runtime.observation.pnl_refresh_s)
        self.revaluing = False
        """The observer woke this pass to refresh the unrealized PnL (within its budget): only then is it refreshed
        (besides the first valuation, and whatever a step writes anyway is not re-valued: writes stay bounded)."""
        self.inherited: frozenset[str] = frozenset()
        """Client ids of the intents in the status this pass began with."""
        self.tried: set[str] = set()
        """Client ids this pass sent (or tried to: the outcome may be unknown)."""

    # --- reporting ------------------------------------------------------------------------------

    @property
    def account_label(self) -> str:
        return f"{self.target.namespace}/{self.target.spec.accountRef.name}"

    def event(self, note: Note) -> None:
        post = kopf.warn if note.warning else kopf.info
        post(self.target.body, reason=note.type, message=note.message)

    def count(self, note: Note) -> None:
        """Metrics that follow from what a step says happened."""
        if note.type.startswith("Drift"):
            DRIFT.labels(note.type.removeprefix("Drift")).inc()
        elif note.type is EventType.RISK_REFUSED and note.limit is not None:
            RISK_REFUSALS.labels(note.limit).inc()
        elif note.type is EventType.CLOSE_RETRY:
            CLOSE_FAILURES.labels(self.account_label).inc()
        elif note.type in _ENTRY_FILL_NOTES:
            self.runtime.filled_at.setdefault(self.target.uid, self.clock.monotonic())
        elif note.type is EventType.STOP_PLACED and self.target.uid in self.runtime.filled_at:
            FILL_TO_PROTECT.observe(self.clock.monotonic() - self.runtime.filled_at.pop(self.target.uid))

    def audit_event(self, type_: EventType, status: PositionStatus, message: str, **fields: Any) -> AuditEvent:
        """An event about this Position, stamped with the acting replica and its leadership term."""
        values: dict[str, Any] = {
            "phase_before": status.phase.value,
            "phase_after": status.phase.value,
            "account": self.target.spec.accountRef.name,
            "symbol": self.target.spec.symbol,
            "occurred_at": self.clock.now(),
        } | fields
        return AuditEvent(
            position_uid=self.target.uid,
            namespace=self.target.namespace,
            name=self.target.name,
            type=type_,
            message=message,
            epoch=self.runtime.epoch,
            replica=self.runtime.replica,
            **values,
        )

    def audit_events(self, before: PositionStatus, step: Step, now: datetime) -> list[AuditEvent]:
        action = step.action
        # Settings have no client id: the setting itself tells margin mode and leverage apart.
        setting = f"/{action}" if isinstance(action, SetMarginMode | SetLeverage | SetPositionTrailing) else ""
        events = [
            self.audit_event(
                note.type,
                before,
                note.message,
                occurred_at=now,
                phase_after=step.status.phase.value,
                client_order_id=note.client_order_id or _client_id(action),
                amount=_figure(note.amount, note, action, "amount"),
                price=_figure(note.price, note, action, "trigger_price", "price"),
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
        if status.observedGeneration == self.target.generation or (self.deleting and status.observedGeneration):
            return []
        spec = self.target.spec.model_dump(mode="json", exclude_none=True)
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
                f"spec changed (generation {self.target.generation})",
                occurred_at=now,
                key=str(self.target.generation),
                detail={"generation": self.target.generation, "spec": spec},
            )
        ]

    # --- bookkeeping ----------------------------------------------------------------------------

    async def read_fills(self, status: PositionStatus, observation: Observation) -> list[Fill]:
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
        owner = FillOwner(
            self.target.spec.accountRef.name, self.target.uid, self.target.namespace, self.target.name, client_ids
        )
        order_ids = client_ids.keys() | {trade.order_id for trade in observation.trades}
        return await self.gateway.fills(self.target.spec.symbol, order_ids, owner, status.entryPlacedAt)

    async def with_fills(
        self, status: PositionStatus, observation: Observation
    ) -> tuple[PositionStatus, list[Fill]] | None:
        """Write this Position's trades to the fills table; while the store is down they go into the backlog
        of the returned status. None: the trades could not be read (they stay on the exchange)."""
        try:
            fills = await self.read_fills(status, observation)
        except ccxt.BaseError as error:
            log.warning("could not read trades for %s/%s: %s", self.target.namespace, self.target.name, describe(error))
            return None
        return await self.audit.fills(status, fills), fills

    async def record_fills(self, status: PositionStatus, observation: Observation) -> PositionStatus:
        """After a fill step; a read that fails is repaired when the Position closes. The entry's trades also say
        what it paid in fees, which the unrealized PnL of an open Position is net of."""
        read = await self.with_fills(status, observation)
        if read is None:
            return status
        after, fills = read
        entry = status.entryOrder
        if entry is not None and status.phase not in TERMINAL and self.gateway is not None:
            rules = await self.gateway.rules(self.target.spec.symbol)
            # A fee paid in another asset (BNB) is not in the quote's PnL; Binance charges it beside.
            paid = [
                f.fee for f in fills if f.client_order_id == entry.clientOrderId and f.fee_asset in (None, rules.quote)
            ]
            if paid:
                after = shown(with_fees_paid(after, sum(paid, Decimal(0))), rules)
        await self.save(status, after)
        return after

    async def save(self, before: PositionStatus, after: PositionStatus) -> None:
        if not self.runtime.may_act():
            # A replica that lost the lease mid-pass must not overwrite what the new leader records.
            raise NotLeader(f"replica {self.runtime.replica} lost the leader lease; status not written")
        if (last := _dump(self.saved or before)) != (dumped := _dump(after)):
            failpoints.hit("status:before-write")
            written = await self.runtime.kube.patch_status(
                "positions", self.target.namespace, self.target.name, merge_patch(last, dumped)
            )
            failpoints.hit("status:after-write")
            self.runtime.known_version[self.target.uid] = written
            self.saved = after
            # Recorded here and not sent (one the pass began with may have been sent by a process that died).
            if recorded := pre_recorded(after) - self.inherited - self.tried:
                self.unsent_memory().update(recorded)
        if before.phase is not after.phase:
            PHASE_TRANSITIONS.labels(after.phase.value).inc()

    def with_condition(
        self, status: PositionStatus, type_: ConditionType, ok: bool, reason: Reason, message: str
    ) -> PositionStatus:
        flag = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
        now = self.clock.now()
        conditions = set_condition(status.conditions, type_, flag, reason, message, self.target.generation, now)
        return replace_status(status, conditions=conditions)

    # --- the pass -------------------------------------------------------------------------------

    async def run(self, status: PositionStatus, deleting: bool) -> PositionStatus:
        started, self.saved = self.clock.monotonic(), status
        self.inherited = _intended(status)
        try:
            status = await self._run(status, deleting)
            if self.audit.pending:
                status = await self.audit.commit(status, status, [])
            if self.fills_due is not None:
                # Read after the pass, so reading trades never delays the stop that a fill calls for.
                status = await self.record_fills(status, self.fills_due)
            RECONCILES.labels("ok").inc()
            return status
        except Exception:
            RECONCILES.labels("error").inc()
            raise
        finally:
            RECONCILE_SECONDS.observe(self.clock.monotonic() - started)

    async def _run(self, status: PositionStatus, deleting: bool) -> PositionStatus:
        self.deleting = deleting
        status = await self.audit.flush(status)
        if status.phase in TERMINAL:
            return status
        try:
            account = await self.runtime.account(self.target.namespace, self.target.spec.accountRef.name)
        except AccountNotReady as problem:
            after = self.with_condition(status, ConditionType.SYNCED, False, problem.reason, problem.message)
            await self.save(status, after)
            return after
        self.gateway, self.observer = account.gateway, account.observer
        if status.entryOrder is None and not deleting:
            # The limits as they are now, not as cached: a limit set a moment ago must bind this entry.
            account = await self.runtime.account(
                self.target.namespace, account_name := self.target.spec.accountRef.name, fresh=True
            )
            self.gateway, self.observer = account.gateway, account.observer
            if account.spec.risk is not None:
                # The entry decision reads the account's book; one Position of the account decides at a time, and
                # holds the account until its entry counts in the book (a market entry: once its fill is recorded).
                # Without limits there is nothing to decide together, and entries go side by side.
                async with self.runtime.account_lock(self.target.namespace, account_name):
                    risk = RiskContext(account.spec.risk, await self.book(account_name))
                    status = await self.steps(status, deleting, account, risk, until=counts_in_book)
                if status.entryOrder is None or status.phase in TERMINAL:
                    return status
        return await self.steps(status, deleting, account, None)

    async def book(self, account_name: str) -> Any:
        others = [
            (PositionSpec.model_validate(o["spec"]), PositionStatus.model_validate(o.get("status") or {}))
            for o in await self.runtime.kube.list("positions", self.target.namespace)
            if o["metadata"]["uid"] != self.target.uid and o["spec"].get("accountRef", {}).get("name") == account_name
        ]
        return book_from(others, self.clock.now())

    async def steps(
        self,
        status: PositionStatus,
        deleting: bool,
        account: AccountPort,
        risk: RiskContext | None,
        until: Callable[[PositionStatus], bool] = lambda _: False,
    ) -> PositionStatus:
        """Plan and act until nothing more happens now."""
        observed = False
        for _ in range(MAX_STEPS_PER_PASS):
            if until(status):
                break
            # A deletion the watch shows mid-pass is planned from the next step on: the daemon's pass would
            # otherwise go on to the entry (after a pre-armed stop, say) of a Position already deleted.
            deleting = self.deleting = deleting or self.deletion_seen()
            try:
                observation = await self.observe(account, status)
            except ccxt.BaseError as error:
                status = await self.observe_failed(status, error)
                break
            observed = True
            now = self.clock.now()
            step = plan(
                self.target.spec,
                status,
                observation,
                uid=self.target.uid,
                generation=self.target.generation,
                deleting=deleting,
                now=now,
                paused=self.target.paused,
                risk=risk,
                pnl_refresh=self.pnl_refresh if self.revaluing else None,
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
                after = closing[0]
            status, progressed = await self.apply(status, Step(after, step.action, step.notes), now)
            if any(note.type in _ENTRY_FILL_NOTES for note in step.notes):
                self.fills_due = observation  # read after the pass: the stop this fill calls for goes first
            elif any(note.type in _FILL_NOTES for note in step.notes):
                status = await self.record_fills(status, observation)
            if not progressed or status.phase in TERMINAL:
                break
        if observed and status.phase not in TERMINAL:
            # The watcher was made from the status before the last step: one made from what that step recorded (a
            # fresh valuation) keeps the next snapshot from waking this Position for the valuation just made.
            account.observer.watch(self.target.uid, await self.watcher(account, status))
        return status

    def deletion_seen(self) -> bool:
        """Whether the watch has shown this Position marked for deletion."""
        watched = self.runtime.positions.get(self.target.uid) or {}
        return bool(watched.get("metadata", {}).get("deletionTimestamp"))

    async def close_unentered(self, status: PositionStatus) -> PositionStatus:
        """Deleted before any order was sent: closed with neither the account nor the exchange, and audited like
        any phase change (if the store is down, the records wait in status and the finalizer waits for them)."""
        self.saved, now = status, self.clock.now()
        step = closed_before_entry(status, generation=self.target.generation, now=now)
        return (await self.apply(status, step, now))[0]

    async def observe_failed(self, status: PositionStatus, error: ccxt.BaseError) -> PositionStatus:
        EXCHANGE_ERRORS.labels(self.account_label, type(error).__name__).inc()
        if isinstance(error, ccxt.BadSymbol) and status.entryOrder is None:
            now = self.clock.now()
            step = unknown_symbol(status, self.target.spec.symbol, generation=self.target.generation, now=now)
            return (await self.apply(status, step, now))[0]
        after = self.with_condition(status, ConditionType.SYNCED, False, Reason.OBSERVE_FAILED, describe(error))
        if after.conditions == status.conditions:  # each new kind of failure once, not every second
            return status
        event = self.audit_event(EventType.EXCHANGE_ERROR, status, describe(error), key=self.clock.now().isoformat())
        return await self.audit.commit(status, after, [event])

    async def observe(self, account: AccountPort, status: PositionStatus) -> Observation:
        """This Position's view of the account's shared snapshot. It must be newer than this Position's last
        action (or the snapshot could predate the order it sent) and not older than two cycles."""
        spec, uid = self.target.spec, self.target.uid
        self.revaluing = self.revaluing or account.observer.revaluing(uid)
        watcher = await self.watcher(account, status)
        account.observer.watch(uid, watcher)
        fresh_enough = self.clock.monotonic() - 2 * account.observer.interval() - 1
        # Orders ended by their placements' own answers: a market entry that filled needs no read after its send
        # (the gateway adds its fill to the snapshot); a close that filled needs only the position and the mark.
        unsent = self.unsent(status)
        records = [(client_id, purpose) for client_id, purpose in records_to_observe(status) if client_id not in unsent]
        answered = bool(records) and all(account.gateway.ended(client_id) for client_id, _ in records)
        entry_filled = answered and all(purpose is Purpose.ENTRY for _, purpose in records)
        # Never acted, or the entry's answer stands in for the read after it: any snapshot fresh enough.
        acted_at = -math.inf if entry_filled else self.runtime.acted_at.get(uid, -math.inf)
        if account.gateway.flat_since(spec.symbol, spec.side, acted_at):
            # Pushed flat since its last send: what it acts on is the push and the trades read with it (orders it
            # sent after the snapshot are known by their answers), not a whole account's read first.
            acted_at = -math.inf
        snapshot = await account.observer.snapshot(
            spec.symbol, fresh_enough, acted_at, answered and not entry_filled, watcher.regular_orders
        )
        stop, following_stop = status.stopOrder, status.nextStopOrderId
        if following_stop is not None and stop is not None and stop.clientOrderId in snapshot.open_orders:
            # The next stop is only sent once this one is to go: while it rests, the next is open beside it if sent.
            unsent |= {following_stop} - snapshot.open_orders.keys()
        observation = await account.gateway.observe(spec, status, snapshot, unsent)
        venue = account.gateway.capabilities
        if self.asks_side(status, venue):
            alone, trailing, pre_armed = self.side_sharers()
            observation = replace(
                observation, alone_on_side=alone, trailing_elsewhere=trailing, pre_armed_elsewhere=pre_armed
            )
        if absent := {c for c in pre_recorded(status) if c in observation.orders and not observation.orders[c]}:
            self.unsent_memory().update(absent)  # looked for and absent: not again
        return observation

    def asks_side(self, status: PositionStatus, venue: Capabilities) -> bool:
        """Whether this pass's plan reads who else is on the side (a scan of the watched fleet): while closing with
        take profits that may rest (alone, it may flatten first); where the venue trails positions or pre-arms
        stops, also before the entry (it may have to wait, or pre-arm its stop), for a native trailing stop, or while
        one is recorded on the venue position or a pre-armed stop may rest."""
        if status.phase is Phase.CLOSING and any(r.state in LIVE for r in status.takeProfitOrders):
            return True
        if venue.trailing is not TrailingSupport.POSITION and not venue.pre_armed_stop:
            return False
        trailing = self.target.spec.trailingStop
        native = trailing is not None and trailing.mode is TrailingMode.NATIVE
        pre_armed = status.preArmedStop is not None and status.preArmedStop.state in LIVE
        return status.entryOrder is None or native or status.venueTrailing is not None or pre_armed

    def side_sharers(self) -> tuple[bool, bool, bool]:
        """Whether this is the account's only live Position on its symbol's side, and whether another one there has
        a venue trailing stop recorded, or a pre-armed stop that may rest: from the Positions this replica watches
        (``runtime.positions``), a newcomer counting from its creation on, before it sends anything."""
        spec = self.target.spec
        mine = (self.target.namespace, spec.accountRef.name, spec.symbol, spec.side)
        alone, trailing_elsewhere, pre_armed_elsewhere = True, False, False
        for uid, obj in self.runtime.positions.items():
            status = obj.get("status") or {}
            if uid == self.target.uid or side_of(obj) != mine or status.get("phase") in TERMINAL:
                continue
            alone = False
            trailing = status.get("venueTrailing")
            trailing_elsewhere = trailing_elsewhere or (
                trailing is not None and trailing.get("state") != VenueTrailingState.REJECTED
            )
            pre_armed = status.get("preArmedStop")
            pre_armed_elsewhere = pre_armed_elsewhere or (pre_armed is not None and pre_armed.get("state") in LIVE)
        return alone, trailing_elsewhere, pre_armed_elsewhere

    def unsent_memory(self) -> set[str]:
        """This Position's stops known unsent in the current leadership term (``Runtime.unsent_stops``)."""
        epoch = self.runtime.epoch
        kept = self.runtime.unsent_stops.get(self.target.uid)
        if kept is None or kept[0] != epoch:
            kept = self.runtime.unsent_stops[self.target.uid] = (epoch, set())
        return kept[1]

    def unsent(self, status: PositionStatus) -> frozenset[str]:
        """Intents this pass recorded and has not sent: the exchange cannot have them, so they are not looked up.
        An intent found in the status the pass began with may have been sent by a process that died: it is. So is
        the pre-recorded stops, once per process: this process recorded them, or looked for them and found none."""
        known = self.unsent_memory() & pre_recorded(status)
        return (_intended(status) - self.inherited - self.tried) | (known - self.tried)

    async def watcher(self, account: AccountPort, status: PositionStatus) -> Watcher:
        """What of the account's state concerns this Position now, for the observer to wake it on."""
        spec = self.target.spec
        rules = await account.gateway.rules(spec.symbol)  # an unknown symbol fails here, not in a wait for its mark
        revaluation = None
        if status.unrealizedPnlMark is not None and status.unrealizedPnlAt is not None:
            wait = status.unrealizedPnlAt + self.pnl_refresh - self.clock.now()
            due = self.clock.monotonic() + wait.total_seconds()
            revaluation = Revaluation(status.unrealizedPnlMark, rules.price_tick, due)
        return Watcher(
            spec.symbol,
            spec.side,
            client_id_prefix(self.target.uid),
            follows_mark(spec, status),
            self.runtime.wake(self.target.uid),
            resting=entry_rests(status),
            protecting=protecting_orders(status),
            regular_orders=has_regular_orders(spec, status),
            revaluation=revaluation,
        )

    async def apply(self, before: PositionStatus, step: Step, now: datetime) -> tuple[PositionStatus, bool]:
        """Record the step, then act. Returns the recorded status and whether to go on planning."""
        action = step.action
        events = self.generation_events(before, now) + self.audit_events(before, step, now)
        status = await self.audit.record(before, step, events)
        if status is None:
            # An entry whose intent the store could not take: it waits, and says so once.
            held = self.with_condition(
                before, ConditionType.READY, False, Reason.AUDIT_UNAVAILABLE, "waiting for the audit store"
            )
            if not any(c.reason == Reason.AUDIT_UNAVAILABLE for c in before.conditions):
                waits = Note(EventType.AUDIT_UNAVAILABLE, "the entry waits: its intent cannot be audited", warning=True)
                self.event(waits)
                # The wait itself is part of the story: it reaches the store with the backlog.
                event = self.audit_event(
                    waits.type, before, waits.message, occurred_at=now, key=self.clock.now().isoformat()
                )
                held = self.audit.keep(held, [event])
            await self.save(before, held)
            return held, False
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
        assert self.gateway is not None, "an action is sent through the gateway"
        if self.observer is not None:
            self.observer.acted(self.target.uid)
            self.observer.spent(self.gateway.action_cost(action))
        if moves_size:
            self.runtime.acted_at[self.target.uid] = self.clock.monotonic()

    async def act(self, status: PositionStatus, action: Action) -> tuple[PositionStatus, bool]:
        purpose = _purpose(action)
        assert self.gateway is not None, "act() follows a successful observation"
        if (client_id := _client_id(action)) is not None:
            self.tried.add(client_id)
            self.unsent_memory().discard(client_id)  # may be sent from here on
        failpoints.hit(f"{purpose}:before-send")
        # An order that can change the position's size (an entry, a close) needs a snapshot taken after it.
        # Stops, take profits and cancels do not: their own records say where they stand, and an order the
        # snapshot predates is looked up by its client id.
        # So does a position trailing stop: only the position's read shows it (it has no client id to look up).
        moves_size = isinstance(action, PlaceMarketOrder | PlaceLimitOrder | SetPositionTrailing)
        if isinstance(action, PlaceMarketOrder | PlaceLimitOrder) and self.observer is not None:
            # Before the send: a read begun after it must list the order, not leave it out as if it had ended.
            self.observer.placing_regular(self.target.uid)
        if client_id is not None and self.observer is not None:
            self.observer.sending(client_id, placing=not isinstance(action, CancelOrder))
        try:
            order_id = await self.gateway.execute(self.target.spec.symbol, action)
        except ccxt.BaseError as error:
            self.sent(action, moves_size)  # the outcome may be unknown: look again
            # An entry or a close that may have gone through is looked up in the same pass (a filled entry's stop
            # is due now); anything else waits for its back-off.
            return await self.failed(status, action, error), moves_size and self.gateway.classify(
                error
            ) is not Outcome.REJECTED
        self.sent(action, moves_size)
        failpoints.hit(f"{purpose}:after-send")
        after = record_success(status, action, order_id)
        if isinstance(action, SetMarginMode | SetLeverage):
            event = self.order_event(EventType.SETTING_APPLIED, status, action, f"{action} applied", key=str(action))
        elif isinstance(action, SetPositionTrailing):
            event = self.order_event(
                EventType.POSITION_TRAILING_APPLIED,
                status,
                action,
                f"{action} applied",
                key=str(action),
                price=action.distance,
            )
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
        self.audit.defer([event])
        return after, True

    async def failed(self, status: PositionStatus, action: Action, error: ccxt.BaseError) -> PositionStatus:
        EXCHANGE_ERRORS.labels(self.account_label, type(error).__name__).inc()
        assert self.gateway is not None, "a failed action was sent through the gateway"
        outcome = self.gateway.classify(error)
        message = describe(error)
        purpose = _purpose(action)
        after = record_failure(
            status, action, outcome, message, now=self.clock.now(), generation=self.target.generation
        )
        detail = {
            "purpose": purpose,
            "outcome": outcome.value,
            "class": type(error).__name__,
            "attempt": after.failedAttempts,
        }
        # Each failure is its own row (the attempt is part of its identity).
        event = self.order_event(
            EventType.EXCHANGE_ERROR, status, action, message, detail=detail, key=self.clock.now().isoformat()
        )
        self.event(Note(EventType.EXCHANGE_ERROR, f"{purpose}: {message}", warning=True))
        events = [event]
        if outcome is Outcome.REJECTED and not isinstance(
            action, CancelOrder | SetMarginMode | SetLeverage | SetPositionTrailing
        ):
            events.append(self.order_event(EventType.ORDER_REJECTED, status, action, message))
        if after.phase is not status.phase:
            events.append(self.phase_event(status.phase, after, self.clock.now()))
        after = self.with_condition(
            after, ConditionType.SYNCED, False, _EXCHANGE_FAILURE[outcome], f"{purpose}: {message}"
        )
        # The planner decides what a failure means next pass (retry after back-off, fail, escalate).
        return await self.audit.commit(status, after, events)
