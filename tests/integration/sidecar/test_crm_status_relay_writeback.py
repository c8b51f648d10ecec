"""The relay writes ``DELIVERED`` back to the CRM in the same transaction as the ``XACK``.

Real MES (legacy app, real PostgreSQL) and real Redis; the relay runs in this loop
(``tests/integration/sidecar/test_relay.py`` has the fixtures).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from sidecar.relay import CrmRelay
from tests.integration.sidecar.sidecar_support import sample
from tests.integration.sidecar.test_relay import (
    Mes,
    MesLoad,
    all_delivered,
    crm_burst,
    eventually,
    relay_config,
    running_relay,
)


@pytest.fixture
async def mes_server(pg_dsn: str) -> AsyncIterator[Mes]:
    server = Mes(pg_dsn, MesLoad())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def crm_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _statuses(client: aioredis.Redis) -> list[dict[str, str]]:
    entries: Any = await client.xrange("crm:orders:status")
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


async def _mes_ids(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT external_ref, id FROM orders WHERE source = 'crm'")
    finally:
        await conn.close()
    return {r["external_ref"]: r["id"] for r in rows}


async def test_each_delivered_order_is_recorded_for_the_crm_with_its_mes_order_id(
        mes_server: Mes, crm_redis: aioredis.Redis, redis_url: str, pg_dsn: str) -> None:
    crm_ids = await crm_burst(crm_redis, 5)
    async with running_relay(relay_config(redis_url), mes_server.url, instance="relay-status"):
        await eventually(all_delivered(pg_dsn, crm_redis, 5), timeout=10, what="5 acked")
    statuses = await _statuses(crm_redis)
    mes_ids = await _mes_ids(pg_dsn)
    assert sorted(s["crm_order_id"] for s in statuses) == crm_ids
    for status in statuses:
        assert (status["v"], status["status"]) == ("1", "DELIVERED")
        assert int(status["mes_order_id"]) == mes_ids[status["crm_order_id"]]
        assert status["delivered_by"] == "mes-relay/relay-a"
        assert status["delivered_at"]
    assert sample("sidecar_relay_crm_status_writes_total", legacy_instance="relay-status",
                  outcome="success") == 5


async def test_a_failed_status_write_leaves_the_order_pending_and_the_redelivery_records_it(
        mes_server: Mes, crm_redis: aioredis.Redis, redis_url: str, pg_dsn: str) -> None:
    failures = {"left": 1}

    def fail_first_status_write(relay: CrmRelay) -> None:
        original = relay.queue.ack_delivered

        async def flaky(entry_id: str, status: Any) -> None:
            if failures["left"]:
                failures["left"] -= 1
                raise RedisConnectionError("connection lost before EXEC")
            await original(entry_id, status)
        relay.queue.ack_delivered = flaky  # type: ignore[method-assign]

    crm_ids = await crm_burst(crm_redis, 1)
    config = relay_config(redis_url, sweep_interval=0.1)
    async with running_relay(config, mes_server.url, instance="relay-status-flaky",
                             patch=fail_first_status_write):
        await eventually(all_delivered(pg_dsn, crm_redis, 1), timeout=10, what="the order acked")
    statuses = await _statuses(crm_redis)
    assert [(s["crm_order_id"], int(s["mes_order_id"])) for s in statuses] == [
        (crm_ids[0], (await _mes_ids(pg_dsn))[crm_ids[0]])]  # once, after the redelivery (MES: 200)
    assert failures["left"] == 0
    assert sample("sidecar_relay_crm_status_writes_total", legacy_instance="relay-status-flaky",
                  outcome="failure") == 1
    assert sample("sidecar_relay_crm_status_writes_total", legacy_instance="relay-status-flaky",
                  outcome="success") == 1
    assert sample("sidecar_relay_deliveries_total", legacy_instance="relay-status-flaky",
                  outcome="duplicate") == 1
