"""A seeded legacy MES database for the kit's tests, and the kit's CLI run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from legacy_sim.seed import seed

ORDERS, ACTIVE = 20_000, 500


@pytest.fixture
async def seeded_dsn(pg_dsn: str) -> str:
    """A fresh database with the legacy schema and 20,000 orders (500 active), as ``legacy_sim seed``."""
    await seed(pg_dsn, orders=ORDERS, active=ACTIVE)
    return pg_dsn


def mesdb(dsn: str | None, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m mesdb [--dsn DSN] ARGS`` as the DBA runs it."""
    argv = [sys.executable, "-m", "mesdb", *(["--dsn", dsn] if dsn else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


def mesdb_json(dsn: str, *args: str) -> Any:
    """The ``--json`` result of a command that must succeed."""
    done = mesdb(dsn, "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def query(dsn: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of one statement on a fresh connection."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params or None).fetchall()


def execute(dsn: str, sql: str, *params: object) -> None:
    """Run one statement (DDL, writes) on a fresh autocommit connection."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql, params or None)


#: orders the archiver should have moved: CLOSED/CANCELLED more than the default 30 days ago, still hot
DUE_IN_HOT = (
    "SELECT count(*) FROM ONLY orders WHERE status IN ('CLOSED', 'CANCELLED') "
    "AND status_changed_at < now() - interval '30 days'"
)


def close_long_ago(dsn: str, order_id: int) -> None:
    """What the legacy does when an order closes, dated 40 days back (the age is 30 days)."""
    execute(
        dsn,
        "UPDATE orders SET status = 'CLOSED', status_changed_at = now() - interval '40 days' WHERE id = %s",
        order_id,
    )
