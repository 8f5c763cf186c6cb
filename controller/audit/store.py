"""Write audit events; ids are deterministic, so a retried write never duplicates a row."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from controller.audit.migrations import migrate

_NAMESPACE = uuid.UUID("5b0c1c8e-6f1d-4a55-9a0e-2f2b8c1d7e11")


@dataclass(frozen=True)
class AuditEvent:
    position_uid: str
    namespace: str
    name: str
    type: str
    occurred_at: datetime
    account: str | None = None
    symbol: str | None = None
    phase_before: str | None = None
    phase_after: str | None = None
    client_order_id: str | None = None
    exchange_order_id: str | None = None
    amount: Decimal | None = None
    price: Decimal | None = None
    message: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    """What makes this event unique within its Position and type (e.g. a client order id)."""

    @property
    def event_id(self) -> uuid.UUID:
        parts = (self.position_uid, self.type, self.key, self.client_order_id or "", self.phase_after or "")
        return uuid.uuid5(_NAMESPACE, "/".join(parts))


_INSERT = """
INSERT INTO events (event_id, position_uid, namespace, name, account, symbol, type, phase_before, phase_after,
                    client_order_id, exchange_order_id, amount, price, message, detail, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16)
ON CONFLICT (event_id) DO NOTHING
"""


class AuditStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, dsn: str) -> AuditStore:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, command_timeout=5)
        async with pool.acquire() as conn:
            await migrate(conn)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def record(self, events: list[AuditEvent]) -> None:
        """Commit all events or raise; callers decide whether a failure blocks the step."""
        if not events:
            return
        rows = [
            (
                e.event_id,
                uuid.UUID(e.position_uid) if e.position_uid else None,
                e.namespace,
                e.name,
                e.account,
                e.symbol,
                e.type,
                e.phase_before,
                e.phase_after,
                e.client_order_id,
                e.exchange_order_id,
                e.amount,
                e.price,
                e.message,
                json.dumps(e.detail, default=str),
                e.occurred_at,
            )
            for e in events
        ]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(_INSERT, rows)
