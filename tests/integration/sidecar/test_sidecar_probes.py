"""Business probes against a real MES database driven through the legacy MES stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from contracts.lifecycle import ACTIVE_STATUS_NAMES as ACTIVE_STATUSES
from contracts.lifecycle import STATUS_NAMES as STATUSES
from legacy_sim.mes import build_mes_app
from sidecar.db import open_readonly_pool
from sidecar.probe_runner import ProbeRunner
from sidecar.probes import BusinessProbes
from tests.integration.sidecar.sidecar_support import create_orders, mes_config, move_order, sample
from tests.support.waiting import eventually

LABELS = {"kind": "mes", "legacy_instance": "mes-probe"}


@pytest.fixture
async def mes(pg_dsn: str) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_mes_app(mes_config(pg_dsn)))) as client:
        yield client


@pytest.fixture
async def db(pg_dsn: str, mes: TestClient[Any, Any]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def probes(pg_dsn: str, mes: TestClient[Any, Any]) -> AsyncIterator[BusinessProbes]:
    pool = await open_readonly_pool(pg_dsn, instance="mes-probe")
    yield BusinessProbes(pool, ProbeRunner(kind="mes", instance="mes-probe"))
    await pool.close()


async def test_gauges_match_direct_sql_counts_after_a_scripted_lifecycle(
        mes: TestClient[Any, Any], db: asyncpg.Connection, probes: BusinessProbes) -> None:
    ids = await create_orders(mes, 9)
    await move_order(mes, ids[0], "PRICE_CALCULATED", "MANUFACTURING_APPROVED", "MANUFACTURING_STARTED")
    await move_order(mes, ids[1], "PRICE_CALCULATED", "MANUFACTURING_APPROVED")
    await move_order(mes, ids[2], "PRICE_CALCULATED")
    await move_order(mes, ids[3], "CANCELLED")
    await move_order(mes, ids[4], "PRICE_CALCULATED", "CANCELLED")
    await move_order(mes, ids[5], "PRICE_CALCULATED", "MANUFACTURING_APPROVED", "MANUFACTURING_STARTED",
                     "MANUFACTURING_COMPLETED", "SHIPPED", "CLOSED")
    # two orders created 5 minutes ago (not new), one calculation running on each of two instances
    await db.execute("UPDATE orders SET created_at = now() - interval '5 minutes' WHERE id = ANY($1)",
                     ids[6:8])
    await db.execute("INSERT INTO price_calculations (instance_id, model_sha256, material, finished_at) "
                     "VALUES ('mes-1', 'a', 'PLA', NULL), ('mes-2', 'b', 'PLA', NULL), "
                     "('mes-1', 'c', 'PLA', now())")

    await probes.run_once()

    expected = dict(await db.fetch("SELECT status, count(*) FROM orders GROUP BY status"))
    for status in STATUSES:
        assert sample("orders_by_status", status=status) == expected.get(status, 0), status
    assert sample("orders_by_status", status="MANUFACTURING_COMPLETED") == 0  # empty, still exported
    assert sample("orders_new_per_minute") == await db.fetchval(
        "SELECT count(*) FROM orders WHERE created_at > now() - interval '1 minute'") == 7
    assert sample("pricing_calculations_in_progress", legacy_instance="mes-1") == 1
    assert sample("pricing_calculations_in_progress", legacy_instance="mes-2") == 1
    size = await db.fetchval("SELECT pg_database_size(current_database())")
    assert 0.9 * size <= sample("mes_database_size_bytes") <= 1.1 * size  # pages may be added meanwhile
    assert sample("mes_orders_archive_rows") == 0  # no split in this database
    for probe in ("active_orders", "terminal_orders", "new_orders", "pricing"):
        assert sample("sidecar_probe_last_success_timestamp_seconds", **LABELS, probe=probe) > 0
        assert sample("sidecar_probe_duration_seconds_count", **LABELS, probe=probe) >= 1


async def test_oldest_age_is_now_minus_status_changed_at_of_the_oldest_order(
        mes: TestClient[Any, Any], db: asyncpg.Connection, probes: BusinessProbes) -> None:
    ids = await create_orders(mes, 3)
    await move_order(mes, ids[0], "PRICE_CALCULATED")
    await db.execute("UPDATE orders SET status_changed_at = now() - interval '3 hours 7 seconds' "
                     "WHERE id = $1", ids[1])  # stuck in SUBMITTED
    await probes.run_once()
    expected = await db.fetchval("SELECT extract(epoch FROM now() - min(status_changed_at))::float8 "
                                 "FROM orders WHERE status = 'SUBMITTED'")
    assert abs(sample("orders_oldest_age_seconds", status="SUBMITTED") - expected) < 1.0
    assert abs(sample("orders_oldest_age_seconds", status="SUBMITTED") - (3 * 3600 + 7)) < 2.0
    assert 0 < sample("orders_oldest_age_seconds", status="PRICE_CALCULATED") < 5
    assert {s: sample("orders_oldest_age_seconds", status=s) for s in ACTIVE_STATUSES[2:]} == \
        dict.fromkeys(ACTIVE_STATUSES[2:], 0.0)


async def test_watermarks_keep_later_cycles_exact(mes: TestClient[Any, Any], db: asyncpg.Connection,
                                                  probes: BusinessProbes) -> None:
    await create_orders(mes, 2)
    await db.execute("INSERT INTO price_calculations (instance_id, model_sha256, material) "
                     "VALUES ('mes-9', 'a', 'PLA')")
    await probes.run_once()
    assert sample("pricing_calculations_in_progress", legacy_instance="mes-9") == 1
    # later: the running calculation ends, another starts; 3 more orders arrive
    await db.execute("UPDATE price_calculations SET finished_at = now() WHERE instance_id = 'mes-9'")
    await db.execute("INSERT INTO price_calculations (instance_id, model_sha256, material) "
                     "VALUES ('mes-8', 'b', 'PLA')")
    await create_orders(mes, 3)
    await probes.run_once()
    assert sample("pricing_calculations_in_progress", legacy_instance="mes-9") == 0
    assert sample("pricing_calculations_in_progress", legacy_instance="mes-8") == 1
    assert sample("orders_new_per_minute") == 5
    assert sample("orders_by_status", status="SUBMITTED") == 5


async def test_new_orders_scan_above_the_id_watermark_of_a_probe_one_window_ago(
        pg_dsn: str, mes: TestClient[Any, Any], db: asyncpg.Connection) -> None:
    """The second probe counts only ids above the max id the first one saw (a window earlier on
    the database's clock): the 4 orders seen then are not counted again, although their
    ``created_at`` is made recent (a full scan would count all 6)."""
    window = timedelta(milliseconds=300)  # a minute and a second in production
    pool = await open_readonly_pool(pg_dsn, instance="mes-probe")
    try:
        probes = BusinessProbes(pool, ProbeRunner(kind="mes", instance="mes-probe"), new_orders_window=window)
        old = await create_orders(mes, 4)
        await probes.run_once()  # marks (now, max id = old[-1])
        marked_at = await db.fetchval("SELECT now()")

        async def window_passed() -> bool:
            return bool(await db.fetchval("SELECT now() > $1::timestamptz + $2::interval", marked_at, window))

        await eventually(window_passed, timeout=10, what="the database clock one window past the mark")
        await create_orders(mes, 2)
        await db.execute("UPDATE orders SET created_at = now() WHERE id = ANY($1)", old)
        await probes.run_once()
        assert sample("orders_new_per_minute") == 2
    finally:
        await pool.close()


async def test_database_down_counts_probe_errors_and_keeps_running() -> None:
    pool = await open_readonly_pool("postgresql://postgres@127.0.0.1:1/none", instance="mes-probe")
    labels = {"kind": "mes", "legacy_instance": "mes-down"}
    before = sample("sidecar_probe_errors_total", **labels, probe="active_orders")
    try:
        await BusinessProbes(pool, ProbeRunner(kind="mes", instance="mes-down")).run_once()
    finally:
        await pool.close()
    assert sample("sidecar_probe_errors_total", **labels, probe="active_orders") - before == 1
    assert sample("sidecar_probe_errors_total", **labels, probe="pricing") >= 1


async def test_probe_connection_is_read_only(pg_dsn: str, mes: TestClient[Any, Any]) -> None:
    pool = await open_readonly_pool(pg_dsn, instance="mes-probe")
    try:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await pool.execute("DELETE FROM orders")
    finally:
        await pool.close()
