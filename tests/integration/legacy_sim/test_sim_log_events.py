"""Where orders get stuck, as on-call sees it: ECS log events and ``orders_*`` metrics of the stand-ins."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from contracts.crm_envelope import STREAM
from devstack.ports import free_port
from legacy_sim.crm import CrmConfig, build_crm_app
from legacy_sim.mes import build_mes_app
from legacy_sim.mes.crm_consumer import ConsumerConfig, CrmConsumer
from legacy_sim.mes.db import open_pool
from tests.integration.legacy_sim.sim_support import ORDER, JsonLog, mes_config, sample

REQUEST_ID = "req-0123456789abcdef"


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_pool(mes_config(pg_dsn))
    try:
        yield pool
    finally:
        await pool.close()


async def test_order_creation_is_an_event_with_its_id_and_first_status(mes_client: TestClient,
                                                                       json_log: JsonLog) -> None:
    before = sample("orders_created_total", source="b2b")
    order = await (await mes_client.post("/orders", json=ORDER)).json()
    [created] = json_log.events("order-created")
    assert created["order.id"] == order["id"]
    assert created["order.status.new"] == "SUBMITTED"
    assert created["order.source"] == "b2b"
    assert created["event.outcome"] == "success"
    assert isinstance(created["event.duration"], int)
    assert sample("orders_created_total", source="b2b") == before + 1


async def test_status_change_is_an_event_with_old_and_new_status(mes_client: TestClient,
                                                                 json_log: JsonLog) -> None:
    before = sample("orders_status_changes_total", **{"from": "SUBMITTED", "to": "PRICE_CALCULATED"})
    order = await (await mes_client.post("/orders", json=ORDER)).json()
    resp = await mes_client.post(f"/orders/{order['id']}/status", json={"status": "PRICE_CALCULATED"},
                                 headers={"X-Request-ID": REQUEST_ID})
    assert resp.status == 200
    [changed] = json_log.events("order-status-changed")
    assert (changed["order.id"], changed["order.status.old"], changed["order.status.new"]) == (
        order["id"], "SUBMITTED", "PRICE_CALCULATED")
    assert changed["event.outcome"] == "success"
    assert changed["event.duration"] > 0
    assert changed["http.request.id"] == REQUEST_ID
    after = sample("orders_status_changes_total", **{"from": "SUBMITTED", "to": "PRICE_CALCULATED"})
    assert after == before + 1


async def test_refused_transition_logs_failure_and_the_409_answered(mes_client: TestClient,
                                                                    json_log: JsonLog) -> None:
    order = await (await mes_client.post("/orders", json=ORDER)).json()
    resp = await mes_client.post(f"/orders/{order['id']}/status", json={"status": "SHIPPED"},
                                 headers={"X-Request-ID": REQUEST_ID})
    assert resp.status == 409
    [refused] = json_log.events("order-status-changed")
    assert (refused["event.outcome"], refused["order.status.old"], refused["order.status.new"]) == (
        "failure", "SUBMITTED", "SHIPPED")
    [answered] = json_log.events("api-error")
    assert answered["order.id"] == str(order["id"])  # from the request context, not passed by hand
    assert answered["http.response.status_code"] == 409
    assert answered["http.route"] == "/orders/{order_id}/status"
    assert answered["http.request.id"] == REQUEST_ID
    assert answered["event.outcome"] == "failure"
    assert answered["log.level"] == "warning"
    assert isinstance(answered["event.duration"], int)


async def test_unknown_order_404_carries_the_requested_order_id(mes_client: TestClient,
                                                                json_log: JsonLog) -> None:
    assert (await mes_client.get("/orders/999999")).status == 404
    [answered] = json_log.events("api-error")
    assert answered["order.id"] == "999999"
    assert answered["url.path"] == "/orders/999999"


async def test_malformed_inbound_request_id_is_not_adopted(mes_client: TestClient,
                                                          json_log: JsonLog) -> None:
    resp = await mes_client.post("/orders", json=ORDER, headers={"X-Request-ID": "bad id\u00e9"})
    assert resp.status == 201
    assert all("http.request.id" not in line for line in json_log.lines())


async def test_mes_metrics_endpoint_serves_the_orders_metrics(mes_client: TestClient) -> None:
    await mes_client.post("/orders", json=ORDER)
    resp = await mes_client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200
    assert 'orders_created_total{source="b2b"}' in text
    assert "orders_status_changes_total" in text
    assert 'orders_crm_queue_reads_total{outcome="dead_letter"}' in text


async def test_crm_queue_write_is_an_event_and_counted(crm_client: TestClient, json_log: JsonLog) -> None:
    before = sample("orders_crm_queue_writes_total", outcome="success")
    await crm_client.post("/orders", json=ORDER, headers={"X-Request-ID": REQUEST_ID})
    [written] = json_log.events("crm-queue-write")
    assert written["crm.order_id"] == "CRM-00000001"
    assert written["messaging.destination.name"] == STREAM
    assert written["event.outcome"] == "success"
    assert written["http.request.id"] == REQUEST_ID
    assert isinstance(written["event.duration"], int)
    assert sample("orders_crm_queue_writes_total", outcome="success") == before + 1
    text = await (await crm_client.get("/metrics")).text()
    assert 'orders_crm_queue_writes_total{outcome="success"}' in text


async def test_crm_queue_write_failure_is_logged_counted_and_answered_503(json_log: JsonLog) -> None:
    before = sample("orders_crm_queue_writes_total", outcome="failure")
    config = CrmConfig(redis_url=f"redis://127.0.0.1:{free_port()}/0", health_timeout_s=0.5,
                       status_stream="")  # no status intake: its own db-error is not this test's
    async with TestClient(TestServer(build_crm_app(config))) as client:
        resp = await client.post("/orders", json=ORDER)
    assert resp.status == 503
    [failed] = json_log.events("crm-queue-write")
    assert failed["event.outcome"] == "failure"
    [db_error] = json_log.events("db-error")
    assert db_error["db.system"] == "redis"
    [answered] = json_log.events("api-error")
    assert answered["http.response.status_code"] == 503
    assert answered["log.level"] == "error"
    assert sample("orders_crm_queue_writes_total", outcome="failure") == before + 1


async def test_crm_queue_read_is_an_event_with_the_mes_order_id(
        redis_client: aioredis.Redis, pool: asyncpg.Pool, json_log: JsonLog) -> None:
    before = sample("orders_crm_queue_reads_total", outcome="created")
    envelope = {"v": "1", "crm_order_id": "CRM-00000042", "payload": json.dumps(ORDER), "submitted_at": "t"}
    entry = (await redis_client.xadd(STREAM, envelope)).decode()
    await CrmConsumer(redis_client, pool, ConsumerConfig(consumer="mes-1")).run_until_idle()
    [read] = json_log.events("crm-queue-read")
    order_id = await pool.fetchval("SELECT id FROM orders WHERE external_ref = 'CRM-00000042'")
    assert (read["order.id"], read["crm.order_id"], read["messaging.message.id"]) == (
        order_id, "CRM-00000042", entry)
    assert read["event.outcome"] == "success"
    assert isinstance(read["event.duration"], int)
    [created] = json_log.events("order-created")
    assert created["order.source"] == "crm"
    assert sample("orders_crm_queue_reads_total", outcome="created") == before + 1


async def test_poison_entry_is_counted_as_dead_letter(redis_client: aioredis.Redis, pool: asyncpg.Pool,
                                                      json_log: JsonLog) -> None:
    before = sample("orders_crm_queue_reads_total", outcome="dead_letter")
    await redis_client.xadd(STREAM, {"v": "9", "crm_order_id": "CRM-1", "payload": "{}"})
    await CrmConsumer(redis_client, pool, ConsumerConfig(consumer="mes-1")).run_until_idle()
    [dead] = json_log.events("crm-queue-dead-letter")
    assert dead["event.outcome"] == "failure"
    assert "version" in str(dead["error.message"])
    assert sample("orders_crm_queue_reads_total", outcome="dead_letter") == before + 1


async def test_database_outage_is_a_db_error_event_and_a_503_answer(pg_dsn: str, pg_server,
                                                                    json_log: JsonLog) -> None:
    name = pg_dsn.rsplit("/", 1)[1]
    async with TestClient(TestServer(build_mes_app(mes_config(pg_dsn, health_timeout_s=0.5)))) as client:
        admin = await asyncpg.connect(pg_server.dsn.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                                name)
            assert (await client.get("/orders/1")).status == 503
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()
    [db_error] = json_log.events("db-error")
    assert db_error["db.system"] == "postgresql"
    assert db_error["order.id"] == "1"
    assert db_error["event.outcome"] == "failure"
    [answered] = json_log.events("api-error")
    assert answered["http.response.status_code"] == 503
