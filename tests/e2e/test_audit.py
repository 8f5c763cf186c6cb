"""The audit store on a real Postgres: migrations, idempotent writes, append-only enforced by the database,
durability while Postgres is down, and the history a person reads."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from controller.api.display import fixed
from controller.audit.migrations import available, migrate
from controller.audit.store import AuditEvent, AuditStore, Fill
from devtools.localenv.processes import Service
from devtools.localenv.stack import Stack
from tests.e2e.conftest import Trader, position_manifest, wait_for


def _event(uid: str, type_: str = "OrderPlaced", key: str = "") -> AuditEvent:
    return AuditEvent(
        position_uid=uid,
        namespace="audit",
        name="p",
        type=type_,
        occurred_at=datetime.now(UTC),
        client_order_id="wabc-en",
        amount=Decimal("0.010"),
        price=Decimal("65000.123456789012345678"),
        key=key,
    )


def _fill(uid: str, trade_id: str) -> Fill:
    return Fill(
        account="paper",
        symbol="BTC/USDT:USDT",
        trade_id=trade_id,
        position_uid=uid,
        namespace="audit",
        name="p",
        client_order_id="wabc-en",
        exchange_order_id="7",
        side="buy",
        amount=Decimal("0.010"),
        price=Decimal("65000.1"),
        fee=Decimal("0.26000040"),
        fee_asset="USDT",
        realized_pnl=Decimal("0"),
        maker=False,
        traded_at=datetime.now(UTC),
    )


async def test_writes_are_idempotent_and_rows_cannot_change(stack: Stack) -> None:
    store = await AuditStore.connect(stack.postgres.url)
    uid = str(uuid.uuid4())
    try:
        await store.record([_event(uid)])
        await store.record([_event(uid), _event(uid, "EntryFilled")])  # a retried batch after a crash
        await store.record_fills([_fill(uid, "1")])
        await store.record_fills([_fill(uid, "1"), _fill(uid, "2"), _fill(uid, "2")])  # a trade twice in one call
        conn = await asyncpg.connect(stack.postgres.url)
        try:
            rows = await conn.fetch("SELECT type, amount, price FROM events WHERE position_uid = $1", uuid.UUID(uid))
            assert sorted(r["type"] for r in rows) == ["EntryFilled", "OrderPlaced"]
            assert rows[0]["price"] == Decimal("65000.123456789012345678")  # NUMERIC keeps every digit
            fills = await conn.fetch("SELECT trade_id, fee FROM fills WHERE position_uid = $1", uuid.UUID(uid))
            assert sorted(f["trade_id"] for f in fills) == ["1", "2"]
            assert fills[0]["fee"] == Decimal("0.26000040")
            for table in ("events", "fills"):
                with pytest.raises(asyncpg.RaiseError, match="append-only"):
                    await conn.execute(f"UPDATE {table} SET name = 'edited' WHERE position_uid = $1", uuid.UUID(uid))
                with pytest.raises(asyncpg.RaiseError, match="append-only"):
                    await conn.execute(f"DELETE FROM {table} WHERE position_uid = $1", uuid.UUID(uid))
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute("TRUNCATE events")
            month = datetime.now(UTC).strftime("events_%Y_%m")
            partition = await conn.fetchval(
                "SELECT tableoid::regclass::text FROM events WHERE position_uid = $1 LIMIT 1", uuid.UUID(uid)
            )
            assert partition == month  # a monthly partition, not the default one
            assert await migrate(conn) == []  # already applied: nothing to do, checksums match
        finally:
            await conn.close()
    finally:
        await store.close()


async def test_migrations_run_concurrently_from_two_processes(stack: Stack) -> None:
    database = f"mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(stack.postgres.url)
    try:
        await admin.execute(f"CREATE DATABASE {database}")
    finally:
        await admin.close()
    url = stack.postgres.url.rsplit("/", 1)[0] + f"/{database}"
    command = [sys.executable, "-m", "controller", "migrate"]
    env = {"WARDEN_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    runs = [
        await asyncio.create_subprocess_exec(*command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in "ab"
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(run.communicate() for run in runs)), 60)
    assert [run.returncode for run in runs] == [0, 0], outputs
    said = sorted(out.decode() for out, _ in outputs)
    assert said[0].startswith("applied: 0001_events.sql, 0002"), said  # one process applied everything
    assert said[1].strip() == "the audit store is up to date", said  # the other waited on the lock, then had none
    conn = await asyncpg.connect(url)
    try:
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")]
        assert names == [name for name, _ in available()]
    finally:
        await conn.close()


async def test_store_sustains_batched_writes(stack: Stack) -> None:
    """Batches of events go in one statement each; the throughput figure is measured by `make bench`."""
    store = await AuditStore.connect(stack.postgres.url)
    uid = str(uuid.uuid4())
    try:
        await asyncio.gather(*(store.record([_event(uid, key=f"{b}/{i}") for i in range(500)]) for b in range(4)))
        conn = await asyncpg.connect(stack.postgres.url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM events WHERE position_uid = $1", uuid.UUID(uid)) == 2000
        finally:
            await conn.close()
    finally:
        await store.close()


async def _events(stack: Stack, uid: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.postgres.url)
    try:
        return list(
            await conn.fetch(
                "SELECT type, event_id, client_order_id, replica FROM events WHERE position_uid = $1"
                " ORDER BY occurred_at, seq",
                uuid.UUID(uid),
            )
        )
    finally:
        await conn.close()


def _uid(trader: Trader, name: str) -> str:
    obj = trader.position(name)
    assert obj is not None
    return str(obj["metadata"]["uid"])


async def test_postgres_outage_never_blocks_protection(stack: Stack, trader: Trader, controller: Service) -> None:
    trader.apply(position_manifest("kept"))
    protected = trader.wait_phase("kept", "Protected", controller)
    first_stop = protected["stopOrder"]["clientOrderId"]
    stack.postgres.stop()
    try:
        # The venue cancels the stop: Warden must re-place it without the audit store.
        trader.stack.paper_admin(
            "/_paper/cancel-algo", {"apiKey": trader.account.api_key, "symbol": "BTCUSDT", "clientAlgoId": first_stop}
        )
        replaced = wait_for(
            "the stop to be re-placed",
            lambda: (
                (s := trader.status("kept")).get("stopOrder", {}).get("clientOrderId") != first_stop
                and s["stopOrder"]["state"] == "Open"
                and s
            ),
            30,
            controller,
        )
        assert replaced["auditBacklog"], "the re-placement's events wait in status"
        # A new entry waits: it would increase risk without an audited intent.
        trader.apply(position_manifest("waits"))
        held = wait_for(
            "the new Position to wait for the audit store",
            lambda: any(c.get("reason") == "AuditUnavailable" for c in trader.status("waits").get("conditions", [])),
            30,
            controller,
        )
        assert held
        assert trader.status("waits").get("phase", "Pending") == "Pending"
        assert not [o for o in trader.orders() if o["clientOrderId"].endswith("-en") and o["symbol"] == "BTCUSDT"][1:]
        # Closing is risk-reducing: it completes while the store is down.
        trader.stack.kubectl(
            "patch", "position", "kept", "-n", trader.namespace, "--type=merge", "-p", '{"spec":{"state":"Closed"}}'
        )
        closed = trader.wait_phase("kept", "Closed", controller)
        assert len(closed["auditBacklog"]) > 3
        assert closed["auditBacklogOverflow"] == 0
    finally:
        stack.postgres.start()
    trader.wait_phase("waits", "Protected", controller)
    flushed = wait_for("the backlog to be flushed", lambda: not trader.status("kept").get("auditBacklog"), 60)
    assert flushed
    events = await _events(stack, _uid(trader, "kept"))
    types = [e["type"] for e in events]
    assert types.count("AuditBacklogFlushed") == 1, types
    assert types.count("PositionClosed") == 1, types
    assert types.count("DriftStopMissing") == 1, types
    for expected in ("StopIntent", "CloseIntent", "CloseFilled", "PhaseChanged"):
        assert expected in types, types
    assert len({e["event_id"] for e in events}) == len(events)
    fills = await _fill_ids(stack, _uid(trader, "kept"))
    assert len(fills) == 2 and len(set(fills)) == 2  # entry and close, once each
    waited = [e["type"] for e in await _events(stack, _uid(trader, "waits"))]
    assert waited.count("AuditUnavailable") == 1, waited  # the wait itself reached the store, once
    assert waited.index("AuditUnavailable") < waited.index("EntryIntent"), waited


async def test_a_trade_the_venue_made_reaches_the_fills_before_closed(
    stack: Stack, trader: Trader, controller: Service
) -> None:
    """An external close is not Warden's order, yet it is the Position's trade: the audit has every one."""
    trader.apply(position_manifest("outside"))
    trader.wait_phase("outside", "Protected", controller)
    stack.paper_admin("/_paper/external-close", {"apiKey": trader.account.api_key, "symbol": "BTCUSDT"})
    status = trader.wait_phase("outside", "Closed", controller)
    assert status["exitReason"] == "ExternalClose"
    trades = stack.paper_admin(f"/_paper/trades?apiKey={trader.account.api_key}")
    assert isinstance(trades, list) and len(trades) == 2
    assert sorted(await _fill_ids(stack, _uid(trader, "outside"))) == sorted(str(t["id"]) for t in trades)


async def _fill_ids(stack: Stack, uid: str) -> list[str]:
    conn = await asyncpg.connect(stack.postgres.url)
    try:
        return [r["trade_id"] for r in await conn.fetch("SELECT trade_id FROM fills WHERE position_uid = $1", uid)]
    finally:
        await conn.close()


def test_history_tells_the_story(stack: Stack, trader: Trader, controller: Service) -> None:
    trader.apply(position_manifest("story"))
    trader.wait_phase("story", "Protected", controller)
    trader.stack.kubectl(
        "patch", "position", "story", "-n", trader.namespace, "--type=merge", "-p", '{"spec":{"state":"Closed"}}'
    )
    status = trader.wait_phase("story", "Closed", controller)
    env = {"WARDEN_DATABASE_URL": stack.postgres.url, "PATH": "/usr/bin:/bin"}

    def history(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "controller", "history", *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    text = history(f"{trader.namespace}/story")
    for expected in ("PositionCreated", "EntryIntent", "Pending -> EntryPlaced", "StopPlaced", "PositionClosed"):
        assert expected in text, text
    net = fixed(Decimal(status["realizedPnl"]), 2)  # USDT, at the quote's display precision
    assert f"net {net}" in text, text  # the fills add up to the status' PnL
    filled = next(line for line in text.splitlines() if "EntryFilled" in line)
    assert "amount 0.01 price 65000" in filled, filled  # the fill's own figures, not its stop's (63000)
    assert "E-" not in text and not re.search(r"\d\.\d*0000\b", text), text  # no exponent, no padding
    story = json.loads(history(f"{trader.namespace}/story", "--json"))
    assert story["events"][0]["type"] == "PositionCreated"
    assert len(story["fills"]) == 2
    day = history("--account", "paper", "--day", datetime.now(UTC).date().isoformat())
    assert f"{trader.namespace}/story" in day and net in day, day
