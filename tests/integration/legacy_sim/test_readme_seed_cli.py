"""``python -m legacy_sim seed`` as the README runs it: after orders were created, and twice."""

from __future__ import annotations

import subprocess
import sys

import asyncpg

from legacy_sim.seed import seed


def _seed_cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "legacy_sim", "seed", "--dsn", dsn, *args],
                          capture_output=True, text=True, timeout=120, check=False)


async def _count(dsn: str, *, active_only: bool = False) -> int:
    sql = "SELECT count(*) FROM orders WHERE NOT $1 OR status NOT IN ('CLOSED', 'CANCELLED')"
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, active_only))
    finally:
        await conn.close()


async def test_seed_cli_tops_a_table_with_orders_up_to_the_requested_count(pg_dsn: str) -> None:
    await seed(pg_dsn, orders=3, active=3)  # what the README's curl lines leave behind

    done = _seed_cli(pg_dsn, "--orders", "400", "--active", "40")

    assert done.returncode == 0, done.stderr
    assert "holds 3 orders; adding 397" in done.stderr
    assert await _count(pg_dsn) == 400
    assert await _count(pg_dsn, active_only=True) == 3 + 40


async def test_seed_cli_run_twice_adds_nothing_the_second_time_unless_appending(pg_dsn: str) -> None:
    assert _seed_cli(pg_dsn, "--orders", "300", "--active", "30").returncode == 0

    again = _seed_cli(pg_dsn, "--orders", "300", "--active", "30")

    assert again.returncode == 0, again.stderr
    assert "holds 300 orders already" in again.stderr
    assert "nothing to add" in again.stderr
    assert await _count(pg_dsn) == 300
    assert _seed_cli(pg_dsn, "--orders", "300", "--active", "30", "--append").returncode == 0
    assert await _count(pg_dsn) == 600
