"""The audit store on a real Postgres: migrations, idempotent writes, append-only enforced by the database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from controller.audit.migrations import migrate
from controller.audit.store import AuditEvent, AuditStore
from controller.localenv.stack import Stack


async def test_writes_are_idempotent_and_rows_cannot_change(stack: Stack) -> None:
    store = await AuditStore.connect(stack.postgres.url)
    uid = str(uuid.uuid4())
    event = AuditEvent(
        position_uid=uid,
        namespace="audit",
        name="p",
        type="OrderPlaced",
        occurred_at=datetime.now(UTC),
        client_order_id="wabc-en",
        amount=Decimal("0.010"),
        price=Decimal("65000.123456789012345678"),
    )
    try:
        await store.record([event])
        await store.record([event])  # a retried write after a crash
        conn = await asyncpg.connect(stack.postgres.url)
        try:
            rows = await conn.fetch("SELECT amount, price FROM events WHERE position_uid = $1", uuid.UUID(uid))
            assert len(rows) == 1
            assert rows[0]["price"] == Decimal("65000.123456789012345678")  # NUMERIC keeps every digit
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute("UPDATE events SET message = 'edited' WHERE position_uid = $1", uuid.UUID(uid))
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute("DELETE FROM events WHERE position_uid = $1", uuid.UUID(uid))
            assert await migrate(conn) == []  # already applied: nothing to do, checksums match
        finally:
            await conn.close()
    finally:
        await store.close()
