"""A tiny forward-only migration runner: numbered SQL files, applied once under an advisory lock,
recorded with their checksums (a changed, already-applied file is an error, not a silent skip)."""

from __future__ import annotations

import hashlib
from importlib import resources

import asyncpg

_LOCK_KEY = 0x57A2DE4  # any constant shared by every Warden replica


class MigrationError(RuntimeError):
    pass


def available() -> list[tuple[str, str]]:
    files = resources.files("controller.audit").joinpath("migrations")
    return sorted((f.name, f.read_text()) for f in files.iterdir() if f.name.endswith(".sql"))


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"]: r["checksum"] for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")}
        for name, sql in available():
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if name in done:
                if done[name] != checksum:
                    raise MigrationError(f"migration {name} changed after it was applied")
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", name, checksum)
            applied_now.append(name)
        await _ensure_partitions(conn)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now


async def _ensure_partitions(conn: asyncpg.Connection) -> None:
    # This month and the next two, so writes land in a monthly partition rather than the default one.
    for months in range(3):
        await conn.execute("SELECT warden_ensure_partition(now() + make_interval(months => $1))", months)


async def ensure_partitions(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await _ensure_partitions(conn)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
