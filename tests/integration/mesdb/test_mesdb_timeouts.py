"""The kit never makes the MES wait long: DDL under a short ``lock_timeout`` with bounded retries
(a long MES transaction makes the step give up, naming it, while the MES's reads go on), and every
batch under a ``statement_timeout``."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

import asyncpg
import psycopg

from contracts.lifecycle import OrderStatus
from legacy_sim.mes.orders_repo import list_orders
from tests.integration.mesdb.conftest import mesdb, mesdb_json, query

KIT_WAITS = (
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE NOT l.granted AND a.application_name = 'mesdb'"
)


async def _mes_reads(dsn: str, kit: asyncio.subprocess.Process, seen: Counter[str]) -> None:
    """The legacy's own list call in a loop until the kit exits; counts reads that started while
    the kit's DDL waited for its lock (they queue behind it) and whether each one completed."""
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=2)
    try:
        while kit.returncode is None:
            async with pool.acquire() as probe:
                waiting = bool(await probe.fetchval(KIT_WAITS))
            try:
                await asyncio.wait_for(list_orders(pool, status=OrderStatus.SHIPPED, limit=50, offset=0), 30)
                seen["read while the kit waited" if waiting else "read"] += 1
            except (TimeoutError, asyncpg.PostgresError) as exc:
                seen[f"failed: {type(exc).__name__}"] += 1
    finally:
        await pool.close()


async def test_a_long_mes_transaction_makes_the_ddl_give_up_while_mes_reads_go_on(seeded_dsn: str) -> None:
    holder = psycopg.connect(seeded_dsn, application_name="long-mes-transaction")
    holder.execute("SELECT count(*) FROM orders WHERE id < 10")  # ACCESS SHARE, held: idle in transaction
    holder_pid = holder.info.backend_pid
    seen: Counter[str] = Counter()
    try:
        kit = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mesdb",
            "--dsn",
            seeded_dsn,
            "--lock-timeout",
            "500ms",
            "--lock-attempts",
            "4",
            "split",
            "--prepare-only",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        reads = asyncio.create_task(_mes_reads(seeded_dsn, kit, seen))
        _out, err = await asyncio.wait_for(kit.communicate(), timeout=120)
        await reads
    finally:
        holder.rollback()
        holder.close()
    message = err.decode()
    assert kit.returncode == 1, message
    assert "replace foreign key order_status_history_order_id_fkey: gave up after 4 attempts" in message
    assert "lock_timeout 500 ms" in message
    assert f"pid {holder_pid} (long-mes-transaction, idle in transaction" in message
    assert message.count("retrying in") == 3  # each attempt said so
    assert seen["read while the kit waited"] >= 1, seen  # queued behind the DDL, then served
    assert not [k for k in seen if k.startswith("failed")], seen
    # nothing half-done: run again once the transaction ended, the split's preparation completes
    assert mesdb_json(seeded_dsn, "split", "--prepare-only") == {"prepared": True}
    assert query(seeded_dsn, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == [(0,)]


def test_a_batch_longer_than_the_statement_timeout_is_rolled_back_with_a_clear_message(
    seeded_dsn: str,
) -> None:
    mesdb_json(seeded_dsn, "split", "--prepare-only")
    done = mesdb(seeded_dsn, "--statement-timeout", "1ms", "archive", "--batch", "20000")
    assert done.returncode == 1, done.stderr
    assert "statement_timeout 1 ms" in done.stderr
    assert "rolled back, nothing of it moved" in done.stderr
    assert query(seeded_dsn, "SELECT count(*) FROM orders_archive") == [(0,)]
    assert mesdb_json(seeded_dsn, "archive")["rows"] > 0  # the default limit: it moves


def test_a_bad_limit_is_a_usage_error_naming_it(seeded_dsn: str) -> None:
    done = mesdb(seeded_dsn, "--lock-timeout", "soon", "apply")
    assert done.returncode == 2
    assert "--lock-timeout" in done.stderr
