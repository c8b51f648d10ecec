"""Seed generator: exact status mix, realistic dates, history for active orders, refusal to re-seed."""

from __future__ import annotations

import asyncpg
import pytest

from contracts.lifecycle import FORWARD_PATH
from legacy_sim.seed import planned_counts, seed


async def test_seed_gives_the_planned_status_mix_and_history(pg_dsn: str) -> None:
    report = await seed(pg_dsn, orders=2000, active=300, seed_value=7)
    conn = await asyncpg.connect(pg_dsn)
    try:
        counts = dict(await conn.fetch("SELECT status, count(*) FROM orders GROUP BY status"))
        assert counts == {s.value: n for s, n in planned_counts(2000, 300).items() if n}
        assert counts["CLOSED"] > counts["CANCELLED"] > 0
        span = await conn.fetchval("SELECT max(created_at) - min(created_at) FROM orders "
                                   "WHERE status IN ('CLOSED', 'CANCELLED')")
        assert span.days > 3 * 365 - 30
        old_active = await conn.fetchval("SELECT count(*) FROM orders WHERE status NOT IN ('CLOSED', "
                                         "'CANCELLED') AND created_at < now() - interval '90 days'")
        assert old_active == 0
        expected_history = sum(FORWARD_PATH.index(s) + 1 for s in FORWARD_PATH[:-1]
                               for _ in range(counts.get(s.value, 0)))
        assert report.history_rows == expected_history
        assert await conn.fetchval("SELECT count(*) FROM order_status_history") == expected_history
        assert await conn.fetchval("SELECT count(DISTINCT (source, external_ref)) FROM orders "
                                   "WHERE external_ref IS NOT NULL") > 1000
    finally:
        await conn.close()


async def test_seed_refuses_a_non_empty_table_unless_appending(pg_dsn: str) -> None:
    await seed(pg_dsn, orders=50, active=10)
    with pytest.raises(RuntimeError, match="not empty"):
        await seed(pg_dsn, orders=50, active=10)
    await seed(pg_dsn, orders=50, active=10, append=True)
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 100
    finally:
        await conn.close()
