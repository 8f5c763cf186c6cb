"""Write audit events and fills; ids are deterministic, so a retried or re-flushed write never duplicates a row.

The store never makes a caller wait on a store it already knows is down: after a failure it refuses at once
(``AuditUnavailable``) until a short back-off has passed, and only then tries the database again.

Event writes are group-committed: calls that arrive while statements are in flight go out together in the next
one (up to ``GROUP_EVENTS`` per statement, ``POOL_SIZE`` statements at once), so many Positions each writing a
couple of events cost one round trip, not one each.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Self

import asyncpg

from controller.audit.migrations import ensure_partitions, migrate
from controller.metrics import AUDIT_UP, AUDIT_WRITES

_NAMESPACE = uuid.UUID("5b0c1c8e-6f1d-4a55-9a0e-2f2b8c1d7e11")
RETRY_AFTER_S = 2.0
TIMEOUT_S = 2.0
POOL_SIZE = 4
GROUP_EVENTS = 500  # events per statement before another statement (and connection) takes the rest
log = logging.getLogger("warden.audit")


class AuditUnavailable(Exception):
    """The audit store cannot take writes now."""


class JsonRecord:
    """A dataclass as JSON, Decimals and datetimes as strings: the wire form kept in a Position's status while the
    store is down, and the chaos suite's saved evidence."""

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)  # type: ignore[call-overload]
        return {k: str(v) if isinstance(v, Decimal | datetime) else v for k, v in values.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        values = dict(data)
        for f in fields(cls):  # type: ignore[arg-type]
            value = values.get(f.name)
            if value is not None and "Decimal" in str(f.type):
                values[f.name] = Decimal(value)
            elif value is not None and "datetime" in str(f.type):
                values[f.name] = datetime.fromisoformat(value)
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class AuditEvent(JsonRecord):
    position_uid: str | None
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
    """What makes this event unique within its Position and type (e.g. a sequence number)."""
    epoch: int | None = None
    """The leadership term of the replica that wrote it, so a stale leader's writes are visible."""
    replica: str | None = None

    @property
    def event_id(self) -> uuid.UUID:
        parts = (self.position_uid or "", self.type, self.key, self.client_order_id or "", self.phase_after or "")
        return uuid.uuid5(_NAMESPACE, "/".join(parts))


@dataclass(frozen=True)
class Fill(JsonRecord):
    """One exchange trade of a Warden order."""

    account: str
    symbol: str
    trade_id: str
    position_uid: str | None
    namespace: str
    name: str
    client_order_id: str | None
    exchange_order_id: str
    side: str
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str | None
    realized_pnl: Decimal
    maker: bool | None
    traded_at: datetime

    @property
    def entry_id(self) -> str:
        """Fixed-length id of this trade (its natural key may be longer than a backlog id may be)."""
        return uuid.uuid5(_NAMESPACE, f"{self.account}/{self.symbol}/{self.trade_id}").hex


_INSERT_EVENTS = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::text[], $12::numeric[], $13::numeric[],
                         $14::text[], $15::text[], $16::timestamptz[], $17::bigint[], $18::text[])
        WITH ORDINALITY
        AS t(event_id, position_uid, namespace, name, account, symbol, type, phase_before, phase_after,
             client_order_id, exchange_order_id, amount, price, message, detail, occurred_at, epoch, replica, ord)
), fresh AS (
    INSERT INTO event_ids (event_id, occurred_at)
    SELECT event_id, occurred_at FROM input
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
)
INSERT INTO events (event_id, position_uid, namespace, name, account, symbol, type, phase_before, phase_after,
                    client_order_id, exchange_order_id, amount, price, message, detail, occurred_at, epoch, replica)
SELECT i.event_id, i.position_uid, i.namespace, i.name, i.account, i.symbol, i.type, i.phase_before, i.phase_after,
       i.client_order_id, i.exchange_order_id, i.amount, i.price, i.message, i.detail::jsonb, i.occurred_at,
       i.epoch, i.replica
FROM input i JOIN fresh f USING (event_id)
ORDER BY i.ord
"""


def _event_row(e: AuditEvent) -> tuple[Any, ...]:
    return (
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
        e.epoch,
        e.replica,
    )


_INSERT_FILLS = """
INSERT INTO fills (account, symbol, trade_id, position_uid, namespace, name, client_order_id, exchange_order_id,
                   side, amount, price, fee, fee_asset, realized_pnl, maker, traded_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::numeric[], $11::numeric[], $12::numeric[], $13::text[], $14::numeric[],
                     $15::boolean[], $16::timestamptz[])
ON CONFLICT (account, symbol, trade_id) DO NOTHING
"""


class AuditStore:
    """Postgres-backed; connects lazily and migrates on first contact, so Warden starts while it is down."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool: asyncpg.Pool | None = None
        self._retry_at = -math.inf  # monotonic; writes are refused without trying until then (-inf: no back-off)
        self._partitions_checked = -math.inf  # monotonic; -inf: never
        self._queued: list[tuple[list[AuditEvent], asyncio.Future[None]]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        AUDIT_UP.set(0)

    @classmethod
    async def connect(cls, dsn: str) -> AuditStore:
        """A store that is usable now (migrated); raises ``AuditUnavailable`` if Postgres cannot be reached."""
        store = cls(dsn)
        await store.ready()
        return store

    async def ready(self) -> None:
        try:
            await self._ready()
        except Exception as error:
            raise AuditUnavailable(f"audit store unavailable: {type(error).__name__}: {error}") from error

    @property
    def available_soon(self) -> bool:
        """False only while backing off after a failure: then a write would be refused without trying."""
        return time.monotonic() >= self._retry_at

    async def _ready(self) -> asyncpg.Pool:
        if self._pool is None:
            pool = await asyncpg.create_pool(
                self.dsn, min_size=0, max_size=POOL_SIZE, timeout=TIMEOUT_S, command_timeout=TIMEOUT_S
            )
            try:
                async with pool.acquire(timeout=TIMEOUT_S) as conn:
                    await migrate(conn)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
            self._partitions_checked = time.monotonic()
        elif time.monotonic() - self._partitions_checked > 3600:
            # Months roll over while Warden runs; keep partitions ahead of the clock.
            async with self._pool.acquire(timeout=TIMEOUT_S) as conn:
                await ensure_partitions(conn)
            self._partitions_checked = time.monotonic()
        return self._pool

    async def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One statement over arrays of the rows' columns: atomic by itself, one round trip, and no transaction
        left open between round trips (with the event loop busy, a BEGIN ... COMMIT held its connection "idle in
        transaction" while other writes timed out waiting for one)."""
        if not rows:
            return
        if not self.available_soon:
            raise AuditUnavailable("audit store unavailable (backing off)")
        try:
            pool = await self._ready()
            async with pool.acquire(timeout=TIMEOUT_S) as conn:
                await conn.execute(sql, *(list(column) for column in zip(*rows, strict=True)))
        except Exception as error:
            self._retry_at = time.monotonic() + RETRY_AFTER_S
            AUDIT_WRITES.labels("error").inc()
            AUDIT_UP.set(0)
            raise AuditUnavailable(f"audit store unavailable: {type(error).__name__}: {error}") from error
        self._retry_at = -math.inf
        AUDIT_WRITES.labels("ok").inc()
        AUDIT_UP.set(1)

    async def record(self, events: list[AuditEvent]) -> None:
        """Commit all events, in order, or raise ``AuditUnavailable``. They share one statement with the calls
        queued alongside them, so they are committed all together or not at all."""
        if not events:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((events, done))
        if len(self._flushers) < POOL_SIZE:
            # Own tasks: a cancelled caller cannot strand the others whose events share its statement.
            flusher = asyncio.ensure_future(self._flush())
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        await done

    def _take(self) -> list[tuple[list[AuditEvent], asyncio.Future[None]]]:
        """Queued calls in arrival order, up to about ``GROUP_EVENTS`` events (the rest go to another statement
        on another connection)."""
        taken, count = [], 0
        while self._queued and count < GROUP_EVENTS:
            call = self._queued.pop(0)
            taken.append(call)
            count += len(call[0])
        return taken

    async def _flush(self) -> None:
        while batch := self._take():
            try:
                merged = [e for events, _ in batch for e in events]
                unique = {e.event_id: e for e in reversed(merged)}  # the first of any repeated id wins
                rows = [_event_row(e) for e in merged if unique.get(e.event_id) is e]
                await self._write(_INSERT_EVENTS, rows)
            except Exception as error:  # AuditUnavailable, or an event that cannot be encoded
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def record_fills(self, fills: list[Fill]) -> None:
        unique = {(f.account, f.symbol, f.trade_id): f for f in fills}  # one statement may not insert a key twice
        rows = [
            (
                f.account,
                f.symbol,
                f.trade_id,
                uuid.UUID(f.position_uid) if f.position_uid else None,
                f.namespace,
                f.name,
                f.client_order_id,
                f.exchange_order_id,
                f.side,
                f.amount,
                f.price,
                f.fee,
                f.fee_asset,
                f.realized_pnl,
                f.maker,
                f.traded_at,
            )
            for f in unique.values()
        ]
        await self._write(_INSERT_FILLS, rows)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
