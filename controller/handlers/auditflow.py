"""The order of one Position's audit writes around its status writes and its sends.

- commit: a step's records go to the store now if it takes them, else into the Position's status (the backlog,
  bounded: what does not fit is counted and reported); then the status is written.
- carry: a risk-reducing step (a stop, a close, a cancel) does not wait for the store: its records ride in the
  status write that records its intent, and the next commit writes them and takes them out of the backlog.
- defer: the records of an order that was sent go out with the next step's status write (one write per action).
- flush: what an outage left in the backlog is written once the store is back; ids are deterministic, so a
  crash mid-flush cannot duplicate a row.

``record`` picks, for each step, the order its kind calls for; an entry (risk-increasing) is only sent once its
intent is committed to the store: no committed intent, no order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from controller.api.v1alpha1 import AUDIT_BACKLOG_LIMIT, BufferedAuditEvent, OrderState, PositionStatus
from controller.api.vocabulary import EventType
from controller.audit.store import AuditEvent, AuditUnavailable, Fill
from controller.handlers.ports import AuditLog
from controller.metrics import AUDIT_BACKLOG_OVERFLOW
from controller.reconcile.model import (
    CancelOrder,
    Note,
    PlaceLimitOrder,
    PlaceMarketOrder,
    PlaceStopOrder,
    Purpose,
    SetLeverage,
    SetMarginMode,
    Step,
)
from controller.reconcile.status import all_records, replace_status

log = logging.getLogger("warden.reconcile")


class Stamp(Protocol):
    """Makes an audit event about the Position (the reconciler's ``audit_event``)."""

    def __call__(self, type_: EventType, status: PositionStatus, message: str, **fields: Any) -> AuditEvent: ...


def buffered(record: AuditEvent | Fill) -> BufferedAuditEvent:
    """A record as the backlog in status keeps it."""
    if isinstance(record, Fill):
        return BufferedAuditEvent(
            id=record.entry_id, type="Fill", occurredAt=record.traded_at.isoformat(), data=record.to_json()
        )
    return BufferedAuditEvent(
        id=record.event_id.hex, type=record.type, occurredAt=record.occurred_at.isoformat(), data=record.to_json()
    )


def resends(before: PositionStatus, step: Step) -> bool:
    """Whether the step sends an order whose intent is recorded already: a retry (same phase, same record), the
    stop recorded with a market entry, which goes out on the entry's answer (the phase it moves to is written
    with the stop's result: a crash before that finds the stop by its id and moves the phase again), or the next
    stop recorded with the one before it (a crash after its send finds it by its id and adopts it)."""
    action = step.action
    client_id = getattr(action, "client_order_id", None)
    stop = isinstance(action, PlaceStopOrder) and action.purpose is Purpose.STOP
    if stop and client_id is not None and client_id == before.nextStopOrderId:
        return True
    return (stop or step.status.phase is before.phase) and any(
        r.clientOrderId == client_id and r.state is OrderState.INTENDED for r in all_records(before)
    )


class AuditFlow:
    def __init__(
        self,
        store: AuditLog,
        save: Callable[[PositionStatus, PositionStatus], Awaitable[None]],
        stamp: Stamp,
        report: Callable[[Note], None],
        where: str,
    ) -> None:
        self.store = store
        self.save = save
        """Writes the Position's status (from what it was to what it becomes)."""
        self.stamp = stamp
        self.report = report
        """Tells the user (a Kubernetes event) that records did not fit in the backlog."""
        self.where = where
        self.unsaved: list[AuditEvent] = []
        """Events of an order or cancel that was sent: they go out with the next step's status write, so the stop
        that a fill calls for is one write nearer (a crash in between is repaired by the look-up by client id, the
        intent being recorded before the send)."""
        self.carried: list[AuditEvent] = []
        """Events of a risk-reducing step that rode in the status write recording its intent (in the backlog), so
        its order did not wait for the audit store; the next commit writes them and takes them out of the backlog."""

    @property
    def pending(self) -> bool:
        """Whether records wait for the next status write."""
        return bool(self.unsaved or self.carried)

    def defer(self, events: list[AuditEvent]) -> None:
        self.unsaved.extend(events)

    async def record(self, before: PositionStatus, step: Step, events: list[AuditEvent]) -> PositionStatus | None:
        """Record a step ahead of its send, as its kind calls for; returns the recorded status. None: an entry
        whose intent the store could not take; nothing was written, and its order must not go out."""
        action = step.action
        opening = isinstance(action, PlaceMarketOrder | PlaceLimitOrder) and action.purpose is Purpose.ENTRY
        if opening:
            # Risk-increasing: no committed intent, no order.
            return await self.commit(before, step.status, []) if await self.write(events) else None
        if action is not None and resends(before, step):
            # Its intent is in status and the audit already: it goes out first, and this step is saved with its
            # result (a stop the venue refused is sent again without two writes ahead of it).
            self.defer(events)
            return step.status
        if isinstance(action, CancelOrder) and await self.write(events):
            # A cancel leaves no order behind to find by its id, so its intent needs no status record: the audit
            # row is durable before the send, and the step's status is saved with the cancel's result (a crash in
            # between plans the same step again, and the same rows are not written twice).
            return step.status
        if action is not None and not isinstance(action, SetMarginMode | SetLeverage):
            # Risk-reducing (a stop, a take profit, a close, a cancel): it never waits for the audit store.
            return await self.carry(before, step.status, events)
        return await self.commit(before, step.status, events)

    async def write(self, events: list[AuditEvent]) -> bool:
        """Try to commit events now; False when the store is unavailable (it never waits on a known outage)."""
        try:
            await self.store.record(events)
        except AuditUnavailable as error:
            log.warning("audit write for %s deferred: %s", self.where, error)
            return False
        return True

    def keep(self, status: PositionStatus, records: Sequence[AuditEvent | Fill]) -> PositionStatus:
        """Keep records in status until the store returns; what exceeds the bound is counted and reported."""
        room = max(AUDIT_BACKLOG_LIMIT - len(status.auditBacklog), 0)
        lost = max(len(records) - room, 0)
        if lost:
            AUDIT_BACKLOG_OVERFLOW.inc(lost)
            self.report(
                Note(EventType.AUDIT_BACKLOG_OVERFLOW, f"{lost} audit records did not fit in the backlog", warning=True)
            )
        return replace_status(
            status,
            auditBacklog=[*status.auditBacklog, *(buffered(r) for r in records[:room])],
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
                after = self.keep(after, events)
        await self.save(before, after)
        return after

    async def carry(self, before: PositionStatus, after: PositionStatus, events: list[AuditEvent]) -> PositionStatus:
        """Risk-reducing bookkeeping before a send: the step's events ride in the status write that records its
        intent, so the stop or close goes out without waiting for the audit store; the next commit writes them.
        A crash in between leaves them in the backlog, which the next pass flushes."""
        if len(after.auditBacklog) + len(self.unsaved) + len(events) > AUDIT_BACKLOG_LIMIT:
            return await self.commit(before, after, events)  # no room in the backlog: nothing may be lost
        events, self.unsaved = [*self.unsaved, *events], []
        after = replace_status(after, auditBacklog=[*after.auditBacklog, *(buffered(e) for e in events)])
        await self.save(before, after)
        self.carried.extend(events)
        return after

    async def flush(self, status: PositionStatus) -> PositionStatus:
        """Write what an outage left in status; ids are deterministic, so a crash mid-flush cannot duplicate."""
        if not status.auditBacklog or not self.store.available_soon:
            return status
        events = [AuditEvent.from_json(b.data) for b in status.auditBacklog if b.type != "Fill"]
        fills = [Fill.from_json(b.data) for b in status.auditBacklog if b.type == "Fill"]
        flushed = self.stamp(
            EventType.AUDIT_BACKLOG_FLUSHED,
            status,
            f"{len(status.auditBacklog)} buffered audit records written",
            key=status.auditBacklog[0].id,
            detail={"events": len(events), "fills": len(fills), "overflow": status.auditBacklogOverflow},
        )
        try:
            await self.store.record_fills(fills)
            await self.store.record([*events, flushed])
        except AuditUnavailable:
            return status
        after = replace_status(status, auditBacklog=[])
        await self.save(status, after)
        return after

    async def fills(self, status: PositionStatus, fills: list[Fill]) -> PositionStatus:
        """Write trades to the fills table; while the store is down they go into the backlog of the returned
        status (the caller's next status write keeps them)."""
        try:
            await self.store.record_fills(fills)
        except AuditUnavailable:
            return self.keep(status, fills)
        return status
