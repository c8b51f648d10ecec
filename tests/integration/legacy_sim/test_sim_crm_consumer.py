"""CRM queue → MES: idempotent creation, crash before XACK, dead letters, the in-process consumer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from contracts.crm_envelope import DEAD_LETTER_STREAM, STREAM, parse_message
from legacy_sim.mes import build_mes_app
from legacy_sim.mes.crm_consumer import ConsumerConfig, CrmConsumer
from legacy_sim.mes.db import open_pool
from legacy_sim.mes.orders_repo import create_order
from tests.integration.legacy_sim.sim_support import ORDER, mes_config

ENVELOPE = {"v": "1", "crm_order_id": "CRM-00000042", "payload": json.dumps(ORDER),
            "submitted_at": "2026-01-01T00:00:00.000+00:00"}


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_pool(mes_config(pg_dsn))
    try:
        yield pool
    finally:
        await pool.close()


def consumer(redis_client: aioredis.Redis, pool: asyncpg.Pool, name: str = "mes-1") -> CrmConsumer:
    return CrmConsumer(redis_client, pool, ConsumerConfig(consumer=name, reclaim_idle_ms=0,
                                                          retry_backoff_s=0.05))


async def crm_orders(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM orders WHERE source = 'crm'")


async def test_intake_to_order_end_to_end(crm_client: TestClient, redis_client: aioredis.Redis,
                                          pool: asyncpg.Pool) -> None:
    crm_id = (await (await crm_client.post("/orders", json=ORDER)).json())["crm_order_id"]
    worker = consumer(redis_client, pool)
    await worker.run_until_idle()
    [order] = await crm_orders(pool)
    assert (order["external_ref"], order["status"], order["customer"]) == (crm_id, "SUBMITTED", "Acme GmbH")
    assert (await redis_client.xpending(STREAM, "mes"))["pending"] == 0


async def test_a_message_delivered_twice_creates_one_order(redis_client: aioredis.Redis,
                                                           pool: asyncpg.Pool) -> None:
    await redis_client.xadd(STREAM, ENVELOPE)
    await redis_client.xadd(STREAM, ENVELOPE)
    worker = consumer(redis_client, pool)
    await worker.run_until_idle()
    assert len(await crm_orders(pool)) == 1
    assert (worker.stats.created, worker.stats.duplicates) == (1, 1)


async def test_crash_after_commit_before_xack_is_reclaimed_without_duplicate(
        redis_client: aioredis.Redis, pool: asyncpg.Pool) -> None:
    await redis_client.xadd(STREAM, ENVELOPE)
    crashed = consumer(redis_client, pool, "mes-crashed")
    await crashed.ensure_group()
    # the crashed instance read the entry and committed the order, then died before XACK
    [[_, [(_, fields)]]] = await redis_client.xreadgroup("mes", "mes-crashed", {STREAM: ">"})
    await create_order(pool, parse_message(fields).order, source="crm")
    survivor = consumer(redis_client, pool, "mes-2")
    await survivor.run_until_idle()
    assert len(await crm_orders(pool)) == 1
    assert survivor.stats.duplicates == 1
    assert (await redis_client.xpending(STREAM, "mes"))["pending"] == 0


async def test_own_pending_entries_are_processed_after_restart(redis_client: aioredis.Redis,
                                                               pool: asyncpg.Pool) -> None:
    await redis_client.xadd(STREAM, ENVELOPE)
    await consumer(redis_client, pool).ensure_group()
    await redis_client.xreadgroup("mes", "mes-1", {STREAM: ">"})  # read, then "crashed" before commit
    restarted = CrmConsumer(redis_client, pool, ConsumerConfig(consumer="mes-1"))  # default: no reclaim
    await restarted.run_until_idle()
    assert len(await crm_orders(pool)) == 1


@pytest.mark.parametrize(("fields", "reason"), [
    ({"v": "1", "crm_order_id": "CRM-1", "payload": "{not json"}, "not JSON"),
    ({"v": "2", "crm_order_id": "CRM-1", "payload": "{}"}, "version"),
    ({"v": "1", "payload": json.dumps(ORDER)}, "crm_order_id"),
    ({"v": "1", "crm_order_id": "CRM-1", "payload": json.dumps({**ORDER, "quantity": "many"})}, "quantity"),
    ({"v": "1", "crm_order_id": b"\xff\xfe", "payload": "{}"}, "UTF-8"),
])
async def test_poison_messages_are_dead_lettered_and_acked(redis_client: aioredis.Redis, pool: asyncpg.Pool,
                                                           fields: dict, reason: str) -> None:
    await redis_client.xadd(STREAM, fields)
    await redis_client.xadd(STREAM, ENVELOPE)  # the queue keeps flowing behind the poison
    worker = consumer(redis_client, pool)
    await worker.run_until_idle()
    [(_, dead)] = await redis_client.xrange(DEAD_LETTER_STREAM)
    assert reason in dead[b"dl_reason"].decode()
    assert dead[b"dl_consumer"] == b"mes-1"
    assert len(await crm_orders(pool)) == 1
    assert (await redis_client.xpending(STREAM, "mes"))["pending"] == 0


async def test_mes_consumes_the_crm_queue_in_process(pg_dsn: str, redis_url: str,
                                                     redis_client: aioredis.Redis) -> None:
    app = build_mes_app(mes_config(pg_dsn), crm_redis_url=redis_url,
                        consumer_config=ConsumerConfig(consumer="mes-1", block_ms=50))
    async with TestClient(TestServer(app)) as client:
        await redis_client.xadd(STREAM, ENVELOPE)
        async with asyncio.timeout(5):
            while not (await (await client.get("/orders?limit=1")).json())["items"]:
                await asyncio.sleep(0.02)
        info = await (await client.get("/")).json()
        assert info["crm_consumer"]["created"] == 1


async def test_database_outage_keeps_the_entry_pending_until_it_can_be_stored(
        pg_dsn: str, pg_server, redis_client: aioredis.Redis, pool: asyncpg.Pool) -> None:
    name = pg_dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_server.dsn.rsplit("/", 1)[0] + "/postgres")
    worker = consumer(redis_client, pool)
    await worker.ensure_group()
    await redis_client.xadd(STREAM, ENVELOPE)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        await worker.poll(block_ms=None)  # own pending: nothing yet
        await worker.poll(block_ms=None)  # the new entry: cannot be stored
        assert worker.stats.failures == 1
        assert (await redis_client.xpending(STREAM, "mes"))["pending"] == 1
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    await worker.run_until_idle()
    assert len(await crm_orders(pool)) == 1
    assert (await redis_client.xpending(STREAM, "mes"))["pending"] == 0


async def test_consumer_survives_the_stream_being_deleted(redis_client: aioredis.Redis,
                                                          pool: asyncpg.Pool) -> None:
    worker = CrmConsumer(redis_client, pool, ConsumerConfig(consumer="mes-1", block_ms=20,
                                                            retry_backoff_s=0.01))
    task = asyncio.create_task(worker.run())
    try:
        await redis_client.xadd(STREAM, ENVELOPE)
        async with asyncio.timeout(5):
            while worker.stats.created < 1:
                await asyncio.sleep(0.01)
        await redis_client.delete(STREAM)  # NOGROUP on the next read
        await redis_client.xadd(STREAM, {**ENVELOPE, "crm_order_id": "CRM-00000043"})
        async with asyncio.timeout(5):
            while worker.stats.created < 2:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
