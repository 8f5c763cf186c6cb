"""One reconcile pass for one Position: observe → plan → record intent → act → record result."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ccxt
import kopf

from controller import failpoints
from controller.api.v1alpha1 import ConditionStatus, OrderRecord, OrderState, Phase, PositionSpec, PositionStatus
from controller.audit.store import AuditEvent
from controller.exchange.errors import Outcome, classify, describe
from controller.exchange.gateway import Gateway
from controller.handlers.runtime import AccountNotReady, Runtime
from controller.metrics import (
    AUDIT_WRITES,
    EXCHANGE_ERRORS,
    ORDERS_CANCELED,
    ORDERS_PLACED,
    PHASE_TRANSITIONS,
    RECONCILE_SECONDS,
    RECONCILES,
)
from controller.reconcile.model import (
    Action,
    CancelStopOrder,
    Note,
    PlaceMarketOrder,
    PlaceStopOrder,
    Purpose,
    Step,
)
from controller.reconcile.planner import TERMINAL, plan, replace_status, set_condition

MAX_STEPS_PER_PASS = 8
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


def _dump(status: PositionStatus) -> dict[str, Any]:
    dumped: dict[str, Any] = status.model_dump(mode="json", exclude_none=True)
    return dumped


def _purpose(action: Action) -> str:
    if isinstance(action, PlaceMarketOrder):
        return "entry" if action.purpose is Purpose.ENTRY else "close"
    return "stop"


def _with_record(status: PositionStatus, client_order_id: str, **changes: Any) -> PositionStatus:
    for field in ("entryOrder", "stopOrder", "closeOrder"):
        record: OrderRecord | None = getattr(status, field)
        if record is not None and record.clientOrderId == client_order_id:
            return replace_status(status, **{field: record.model_copy(update=changes)})
    return status


class Reconciler:
    def __init__(self, runtime: Runtime, target: Target) -> None:
        self.rt = runtime
        self.t = target
        self.gateway: Gateway | None = None

    # --- reporting ------------------------------------------------------------------------------

    def event(self, note: Note) -> None:
        post = kopf.warn if note.warning else kopf.info
        post(self.t.body, reason=note.type, message=note.message)

    def audit_events(self, before: PositionStatus, step: Step, now: datetime) -> list[AuditEvent]:
        action = step.action
        events = [
            AuditEvent(
                position_uid=self.t.uid,
                namespace=self.t.namespace,
                name=self.t.name,
                type=note.type,
                occurred_at=now,
                account=self.t.spec.accountRef.name,
                symbol=self.t.spec.symbol,
                phase_before=before.phase.value,
                phase_after=step.status.phase.value,
                client_order_id=note.client_order_id or getattr(action, "client_order_id", None),
                amount=getattr(action, "amount", None),
                price=getattr(action, "trigger_price", None),
                message=note.message,
                key=f"{step.status.stopSequence}/{step.status.exitReason or ''}",
            )
            for note in step.notes
        ]
        if before.phase is not step.status.phase:
            events.append(self.phase_event(before.phase, step.status, now))
        return events

    def phase_event(self, before: Phase, status: PositionStatus, now: datetime) -> AuditEvent:
        detail = {"realizedPnl": status.realizedPnl, "fees": status.fees, "filled": status.filled}
        return AuditEvent(
            position_uid=self.t.uid,
            namespace=self.t.namespace,
            name=self.t.name,
            type="PhaseChanged",
            occurred_at=now,
            account=self.t.spec.accountRef.name,
            symbol=self.t.spec.symbol,
            phase_before=before.value,
            phase_after=status.phase.value,
            message=f"{before.value} -> {status.phase.value}",
            detail={k: str(v) for k, v in detail.items() if v is not None} | {"exitReason": status.exitReason},
        )

    def order_event(self, type_: str, status: PositionStatus, action: Action, message: str, **kw: Any) -> AuditEvent:
        return AuditEvent(
            position_uid=self.t.uid,
            namespace=self.t.namespace,
            name=self.t.name,
            type=type_,
            occurred_at=datetime.now(UTC),
            account=self.t.spec.accountRef.name,
            symbol=self.t.spec.symbol,
            phase_before=status.phase.value,
            phase_after=status.phase.value,
            client_order_id=action.client_order_id,
            message=message,
            detail={"purpose": _purpose(action)},
            **kw,
        )

    async def record(self, events: list[AuditEvent], required: bool) -> bool:
        """Write audit rows. Required writes (before risk-increasing steps) report failure to the caller;
        the others never block a risk-reducing step."""
        try:
            await self.rt.audit.record(events)
        except Exception as error:
            AUDIT_WRITES.labels("failed").inc()
            log.error("audit write failed for %s/%s: %s", self.t.namespace, self.t.name, error)
            if not required:
                self.event(Note("AuditWriteFailed", f"audit store unavailable: {type(error).__name__}", warning=True))
            return False
        if events:
            AUDIT_WRITES.labels("ok").inc()
        return True

    async def save(self, before: PositionStatus, after: PositionStatus) -> None:
        if _dump(before) != _dump(after):
            await self.rt.kube.patch_status("positions", self.t.namespace, self.t.name, _dump(after))
        if before.phase is not after.phase:
            PHASE_TRANSITIONS.labels(after.phase.value).inc()

    def with_condition(self, status: PositionStatus, type_: str, ok: bool, reason: str, message: str) -> PositionStatus:
        flag = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
        now = datetime.now(UTC)
        conditions = set_condition(status.conditions, type_, flag, reason, message, self.t.generation, now)
        return replace_status(status, conditions=conditions)

    # --- the pass -------------------------------------------------------------------------------

    async def run(self, status: PositionStatus, deleting: bool) -> PositionStatus:
        started = time.monotonic()
        try:
            status = await self._run(status, deleting)
            RECONCILES.labels("ok").inc()
            return status
        except Exception:
            RECONCILES.labels("error").inc()
            raise
        finally:
            RECONCILE_SECONDS.observe(time.monotonic() - started)

    async def _run(self, status: PositionStatus, deleting: bool) -> PositionStatus:
        if status.phase in TERMINAL:
            return status
        try:
            gateway = self.gateway = await self.rt.gateway(self.t.namespace, self.t.spec.accountRef.name)
        except AccountNotReady as problem:
            after = self.with_condition(status, "Synced", False, problem.reason, problem.message)
            await self.save(status, after)
            return after
        for _ in range(MAX_STEPS_PER_PASS):
            try:
                observation = await gateway.observe(self.t.spec, status)
            except ccxt.BaseError as error:
                EXCHANGE_ERRORS.labels(type(error).__name__).inc()
                after = self.with_condition(status, "Synced", False, "ObserveFailed", describe(error))
                await self.save(status, after)
                return after
            now = datetime.now(UTC)
            step = plan(
                self.t.spec,
                status,
                observation,
                uid=self.t.uid,
                generation=self.t.generation,
                deleting=deleting,
                now=now,
            )
            after = self.with_condition(step.status, "Synced", True, "Observed", "exchange state observed")
            status, progressed = await self.apply(status, Step(after, step.action, step.notes), now)
            if not progressed or status.phase in TERMINAL:
                return status
        return status

    async def apply(self, before: PositionStatus, step: Step, now: datetime) -> tuple[PositionStatus, bool]:
        """Record the step, then act. Returns the recorded status and whether to go on planning."""
        action = step.action
        events = self.audit_events(before, step, now)
        opening = isinstance(action, PlaceMarketOrder) and action.purpose is Purpose.ENTRY
        if opening and not await self.record(events, required=True):
            # Risk-increasing: no committed intent, no order.
            held = self.with_condition(before, "Ready", False, "AuditUnavailable", "waiting for the audit store")
            await self.save(before, held)
            return held, False
        await self.save(before, step.status)
        if not opening:
            await self.record(events, required=False)
        for note in step.notes:
            self.event(note)
        if action is None:
            return step.status, before.phase is not step.status.phase
        return await self.act(step.status, action)

    async def act(self, status: PositionStatus, action: Action) -> tuple[PositionStatus, bool]:
        purpose = _purpose(action)
        assert self.gateway is not None, "act() follows a successful observation"
        failpoints.hit(f"{purpose}:before-send")
        try:
            order_id = await self.gateway.execute(self.t.spec.symbol, action)
        except ccxt.BaseError as error:
            return await self.failed(status, action, error)
        failpoints.hit(f"{purpose}:after-send")
        if isinstance(action, CancelStopOrder):
            ORDERS_CANCELED.labels(purpose).inc()
            after = _with_record(status, action.client_order_id, state=OrderState.CANCELED)
            event = self.order_event("OrderCanceled", status, action, f"{purpose} order canceled")
        else:
            ORDERS_PLACED.labels(purpose).inc()
            after = _with_record(status, action.client_order_id, state=OrderState.OPEN, exchangeOrderId=order_id)
            amount = action.amount if isinstance(action, PlaceMarketOrder | PlaceStopOrder) else None
            event = self.order_event(
                "OrderPlaced", status, action, f"{purpose} order placed", exchange_order_id=order_id, amount=amount
            )
        await self.save(status, after)
        await self.record([event], required=False)
        return after, True

    async def failed(
        self, status: PositionStatus, action: Action, error: ccxt.BaseError
    ) -> tuple[PositionStatus, bool]:
        EXCHANGE_ERRORS.labels(type(error).__name__).inc()
        outcome = classify(error)
        message = describe(error)
        purpose = _purpose(action)
        event = self.order_event(
            "ExchangeError", status, action, message, detail={"purpose": purpose, "outcome": outcome.value}
        )
        self.event(Note("ExchangeError", f"{purpose}: {message}", warning=True))
        if outcome is Outcome.REJECTED and not isinstance(action, CancelStopOrder):
            after = _with_record(status, action.client_order_id, state=OrderState.REJECTED, message=message)
            await self.save(status, after)
            await self.record([event], required=False)
            return after, True  # the planner decides what a rejection means (fail, or close a naked position)
        reason = "AccountError" if outcome is Outcome.ACCOUNT else "OutcomeUnknown"
        # Unknown outcome: keep the intent; the next pass looks the order up by its client id.
        after = self.with_condition(status, "Synced", False, reason, f"{purpose}: {message}")
        await self.save(status, after)
        await self.record([event], required=False)
        return after, False
