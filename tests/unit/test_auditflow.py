"""The audit ordering on its own, against a fake store: commit, carry, keep (bounded), flush."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from controller.api.v1alpha1 import AUDIT_BACKLOG_LIMIT, OrderRecord, OrderState, PositionStatus
from controller.audit.store import AuditEvent, AuditUnavailable, Fill
from controller.handlers.auditflow import AuditFlow, buffered
from controller.reconcile.model import (
    Action,
    CancelOrder,
    Note,
    OrderSide,
    PlaceMarketOrder,
    PlaceStopOrder,
    Purpose,
    SetLeverage,
    Step,
)
from controller.reconcile.status import replace_status
from tests.fakes import FakeAudit, Journal

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def event(type_: str, key: str = "") -> AuditEvent:
    return AuditEvent(position_uid="u1", namespace="ns", name="p", type=type_, occurred_at=NOW, key=key)


def fill(trade_id: str) -> Fill:
    one = Decimal("1")
    return Fill(
        "acct", "BTC/USDT:USDT", trade_id, "u1", "ns", "p", None, "9", "buy", one, one, one, None, one, None, NOW
    )


class Harness:
    """An AuditFlow whose status writes and reports land in the fake store's journal."""

    def __init__(self, down: bool = False) -> None:
        self.journal = Journal()
        self.store = FakeAudit(self.journal, down=down)
        self.reports: list[Note] = []
        self.flow = AuditFlow(self.store, self.save, self.stamp, self.reports.append, "ns/p")

    async def save(self, before: PositionStatus, after: PositionStatus) -> None:
        self.journal.entries.append(("status", after))

    def stamp(self, type_: str, status: PositionStatus, message: str, **fields: Any) -> AuditEvent:
        return AuditEvent(position_uid="u1", namespace="ns", name="p", type=type_, occurred_at=NOW, **fields)


def backlog_of(n: int) -> PositionStatus:
    return PositionStatus(auditBacklog=[buffered(event("Old", str(i))) for i in range(n)])


AMOUNT = Decimal("0.010")
ENTRY = PlaceMarketOrder(Purpose.ENTRY, "w-en", OrderSide.BUY, AMOUNT, reduce_only=False)
STOP = PlaceStopOrder("w-sl1", OrderSide.SELL, AMOUNT, Decimal("60000"))
CLOSE = PlaceMarketOrder(Purpose.CLOSE, "w-cl", OrderSide.SELL, AMOUNT, reduce_only=True)
CANCEL = CancelOrder("w-sl1", Purpose.STOP)


@pytest.mark.parametrize(
    ("action", "down", "journal", "pending"),
    [
        (ENTRY, False, ["audit", "status"], False),  # committed, then its intent saved: then the send
        (ENTRY, True, [], False),  # refused: nothing written, no send
        (STOP, False, ["status"], True),  # carried in the intent's status write, whatever the store
        (STOP, True, ["status"], True),
        (CLOSE, True, ["status"], True),
        (CANCEL, True, ["status"], True),
        (SetLeverage(5), False, ["audit", "status"], False),  # a setting is committed like a step without action
        (None, False, ["audit", "status"], False),
        (None, True, ["status"], False),
    ],
    ids=["entry", "entry-no-store", "stop", "stop-no-store", "close-no-store", "cancel-no-store", "setting",
         "no-action", "no-action-no-store"],
)  # fmt: skip
async def test_each_kind_of_step_is_recorded_in_its_order(
    action: Action | None, down: bool, journal: list[str], pending: bool
) -> None:
    h = Harness(down=down)
    recorded = await h.flow.record(PositionStatus(), Step(PositionStatus(), action, ()), [event("Intent")])
    assert h.journal.kinds() == journal and h.flow.pending is pending
    assert (recorded is None) is (action is ENTRY and down)


async def test_a_resend_is_recorded_with_its_result() -> None:
    """Its intent is in status already: the send goes first, its step's records with the next write."""
    h = Harness()
    before = PositionStatus(stopOrder=OrderRecord(clientOrderId="w-sl1", state=OrderState.INTENDED, amount=AMOUNT))
    assert await h.flow.record(before, Step(before, STOP, ()), [event("Intent")]) == before
    assert h.journal.entries == [] and h.flow.unsaved == [event("Intent")]


async def test_commit_writes_first_then_saves() -> None:
    h = Harness()
    after = await h.flow.commit(PositionStatus(), PositionStatus(), [event("A")])
    assert h.journal.kinds() == ["audit", "status"] and not after.auditBacklog


async def test_commit_without_the_store_keeps_the_records_in_status() -> None:
    h = Harness(down=True)
    after = await h.flow.commit(PositionStatus(), PositionStatus(), [event("A")])
    assert h.journal.kinds() == ["status"] and [b.type for b in after.auditBacklog] == ["A"]


@pytest.mark.parametrize("down", [False, True])
async def test_a_carried_step_rides_in_its_status_write_and_the_next_commit_writes_it(down: bool) -> None:
    h = Harness(down=down)
    carried = await h.flow.carry(PositionStatus(), PositionStatus(), [event("StopIntent")])
    # The intent's status write holds the records; the store was not asked (the send does not wait for it).
    assert h.journal.kinds() == ["status"] and [b.type for b in carried.auditBacklog] == ["StopIntent"]
    assert h.flow.pending
    h.store.down = False
    after = await h.flow.commit(carried, carried, [event("OrderPlaced")])
    assert h.journal.entries[1] == ("audit", ["StopIntent", "OrderPlaced"])
    assert not after.auditBacklog and not h.flow.pending


async def test_carried_records_stay_in_the_backlog_while_the_store_is_down() -> None:
    h = Harness(down=True)
    carried = await h.flow.carry(PositionStatus(), PositionStatus(), [event("StopIntent")])
    after = await h.flow.commit(carried, carried, [event("OrderPlaced")])
    assert [b.type for b in after.auditBacklog] == ["StopIntent", "OrderPlaced"]


async def test_what_would_not_fit_in_the_backlog_is_written_first() -> None:
    h = Harness()
    full = backlog_of(AUDIT_BACKLOG_LIMIT - 1)
    after = await h.flow.carry(full, full, [event("StopIntent"), event("PhaseChanged")])
    assert h.journal.kinds() == ["audit", "status"] and len(after.auditBacklog) == AUDIT_BACKLOG_LIMIT - 1
    assert not h.flow.pending


async def test_deferred_records_go_out_with_the_next_write() -> None:
    h = Harness()
    h.flow.defer([event("OrderPlaced")])
    await h.flow.commit(PositionStatus(), PositionStatus(), [event("StopIntent")])
    assert h.journal.entries[0] == ("audit", ["OrderPlaced", "StopIntent"])


async def test_the_backlog_bound_counts_and_reports_what_is_lost() -> None:
    h = Harness(down=True)
    after = h.flow.keep(backlog_of(AUDIT_BACKLOG_LIMIT - 1), [event("A"), event("B"), event("C")])
    assert len(after.auditBacklog) == AUDIT_BACKLOG_LIMIT and after.auditBacklogOverflow == 2
    assert [n.type for n in h.reports] == ["AuditBacklogOverflow"]


async def test_flush_writes_events_and_fills_once_and_empties_the_backlog() -> None:
    h = Harness()
    status = h.flow.keep(PositionStatus(), [event("StopIntent"), fill("t1")])
    after = await h.flow.flush(status)
    assert h.journal.entries == [("fills", 1), ("audit", ["StopIntent", "AuditBacklogFlushed"]), ("status", after)]
    assert not after.auditBacklog and h.store.fills == [fill("t1")]
    assert h.store.events[0] == event("StopIntent")  # the JSON in status comes back as it was


@pytest.mark.parametrize("fail_fills", [False, True])
async def test_a_failed_flush_loses_nothing(fail_fills: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness()
    status = h.flow.keep(PositionStatus(), [event("StopIntent"), fill("t1")])
    failing = h.store.record_fills if fail_fills else h.store.record

    async def refuse(*_: Any) -> None:
        raise AuditUnavailable("went down mid-flush")

    monkeypatch.setattr(h.store, failing.__name__, refuse)
    assert await h.flow.flush(status) == status and not [k for k in h.journal.kinds() if k == "status"]


async def test_no_flush_while_the_store_is_known_down() -> None:
    h = Harness(down=True)
    status = h.flow.keep(PositionStatus(), [event("StopIntent")])
    assert await h.flow.flush(status) == status and h.journal.entries == []


async def test_fills_go_to_the_backlog_while_the_store_is_down() -> None:
    h = Harness(down=True)
    after = await h.flow.fills(PositionStatus(), [fill("t1")])
    assert [b.type for b in after.auditBacklog] == ["Fill"] and h.journal.entries == []
    h.store.down = False
    assert await h.flow.fills(after, [fill("t2")]) == after and h.store.fills == [fill("t2")]


def test_a_record_comes_back_from_its_backlog_form() -> None:
    kept = replace_status(PositionStatus(), auditBacklog=[buffered(fill("t1")), buffered(event("A"))])
    assert Fill.from_json(kept.auditBacklog[0].data) == fill("t1")
    assert AuditEvent.from_json(kept.auditBacklog[1].data) == event("A")
