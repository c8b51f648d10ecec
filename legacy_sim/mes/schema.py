"""Apply ``schema.sql`` idempotently; safe when several MES instances start at once."""

from __future__ import annotations

from importlib.resources import files

import asyncpg

#: pg_advisory_xact_lock key: the ASCII of "MESSCHM". Every instance takes it before DDL.
SCHEMA_LOCK_KEY = 0x4D45535343484D
SCHEMA_SQL = files("legacy_sim.mes").joinpath("schema.sql").read_text(encoding="utf-8")


async def apply_schema(conn: asyncpg.Connection) -> None:
    """Create the legacy tables if missing, serialised by a transaction-scoped advisory lock.

    ``CREATE TABLE IF NOT EXISTS`` alone races (two sessions both see "missing"
    and one fails on the catalog's unique index), hence the lock.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_KEY)
        await conn.execute(SCHEMA_SQL)
