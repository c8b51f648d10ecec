"""The asyncpg pool of one MES instance: timeouts, start-up wait, schema."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from legacy_sim.events import log_event
from legacy_sim.mes.config import MesConfig
from legacy_sim.mes.schema import apply_schema
from legacy_sim.problem import STORE_ERRORS

logger = logging.getLogger("legacy_sim.mes.db")


async def open_pool(config: MesConfig) -> asyncpg.Pool:
    """Connect (retrying up to ``startup_wait_s`` while PostgreSQL comes up), then apply the schema."""
    deadline = time.monotonic() + config.startup_wait_s
    while True:
        try:
            pool = await asyncpg.create_pool(
                config.dsn, min_size=config.pool_min_size, max_size=config.pool_max_size,
                timeout=config.connect_timeout_s, command_timeout=config.statement_timeout_s + 5,
                server_settings={"application_name": f"legacy-{config.instance_id}",
                                 "statement_timeout": str(int(config.statement_timeout_s * 1000))})
            break
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                TimeoutError) as exc:
            if time.monotonic() >= deadline:
                raise
            log_event(logger, f"database not reachable yet: {exc}", action="db-connect",
                      outcome="failure", level=logging.WARNING)
            await asyncio.sleep(0.5)
    try:
        async with pool.acquire() as conn:
            await apply_schema(conn)
    except BaseException:
        await pool.close()
        raise
    return pool


async def database_ok(pool: asyncpg.Pool, within_s: float) -> bool:
    """True when the database answers ``SELECT 1`` within ``within_s`` seconds."""
    try:
        async with asyncio.timeout(within_s):
            async with pool.acquire() as conn:
                return bool(await conn.fetchval("SELECT 1") == 1)
    except STORE_ERRORS:
        return False
