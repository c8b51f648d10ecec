"""One CRM order is one trace: CRM SERVER → PRODUCER → (Redis) → MES CONSUMER, logs carry its ids."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.trace import SpanKind

from contracts.crm_envelope import STREAM
from legacy_sim.crm import CrmConfig, build_crm_app
from legacy_sim.mes import build_mes_app
from legacy_sim.mes.crm_consumer import ConsumerConfig, CrmConsumer
from legacy_sim.mes.db import open_pool
from tests.integration.legacy_sim.sim_support import ORDER, JsonLog, mes_config
from tests.support.spans import Spans

CALLER_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN_ID = 0x00F067AA0BA902B7
CALLER = {"traceparent": f"00-{CALLER_TRACE_ID:032x}-{CALLER_SPAN_ID:016x}-01", "tracestate": "vendor=x"}


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_pool(mes_config(pg_dsn))
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def traced_crm(redis_url: str, spans: Spans) -> AsyncIterator[TestClient]:
    app = build_crm_app(CrmConfig(redis_url=redis_url), tracer_provider=spans.provider)
    async with TestClient(TestServer(app)) as client:
        yield client


def traced_consumer(redis_client: aioredis.Redis, pool: asyncpg.Pool, spans: Spans) -> CrmConsumer:
    return CrmConsumer(redis_client, pool, ConsumerConfig(consumer="mes-1", retry_backoff_s=0.05),
                       tracer_provider=spans.provider)


async def test_crm_order_is_one_trace_from_intake_to_mes_order(
        traced_crm: TestClient, redis_client: aioredis.Redis, pool: asyncpg.Pool, spans: Spans,
        json_log: JsonLog) -> None:
    resp = await traced_crm.post("/orders", json=ORDER, headers=CALLER)
    assert resp.status == 202
    await traced_consumer(redis_client, pool, spans).run_until_idle()

    server = spans.named("POST /orders")
    producer = spans.named("crm:orders publish")
    consumer = spans.named("crm:orders process")
    kinds = (server.kind, producer.kind, consumer.kind)
    assert kinds == (SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert server.parent is not None
    assert server.parent.span_id == CALLER_SPAN_ID
    assert producer.parent is not None
    assert producer.parent.span_id == server.context.span_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert {s.context.trace_id for s in (server, producer, consumer)} == {CALLER_TRACE_ID}
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.destination.name"] == STREAM

    trace_id = f"{CALLER_TRACE_ID:032x}"
    [created] = json_log.events("order-created")
    [read] = json_log.events("crm-queue-read")
    [written] = json_log.events("crm-queue-write")
    assert created["trace.id"] == read["trace.id"] == written["trace.id"] == trace_id
    assert created["span.id"] == f"{consumer.context.span_id:016x}"
    assert read["order.id"] == created["order.id"]
    assert read["crm.order_id"] == written["crm.order_id"] == "CRM-00000001"


async def test_envelope_carries_the_producer_span_not_the_incoming_header(
        traced_crm: TestClient, redis_client: aioredis.Redis, spans: Spans) -> None:
    await traced_crm.post("/orders", json=ORDER, headers=CALLER)
    [(_, fields)] = await redis_client.xrange(STREAM)
    producer = spans.named("crm:orders publish")
    expected = f"00-{CALLER_TRACE_ID:032x}-{producer.context.span_id:016x}-01"
    assert fields[b"traceparent"].decode() == expected
    assert fields[b"tracestate"] == b"vendor=x"


async def test_crm_request_without_traceparent_starts_a_new_trace(
        traced_crm: TestClient, redis_client: aioredis.Redis, spans: Spans) -> None:
    await traced_crm.post("/orders", json=ORDER)
    server = spans.named("POST /orders")
    assert server.parent is None
    [(_, fields)] = await redis_client.xrange(STREAM)
    assert fields[b"traceparent"].decode().split("-")[1] == f"{server.context.trace_id:032x}"


async def test_message_without_traceparent_is_processed_in_a_new_trace(
        redis_client: aioredis.Redis, pool: asyncpg.Pool, spans: Spans, json_log: JsonLog) -> None:
    await redis_client.xadd(STREAM, {"v": "1", "crm_order_id": "CRM-00000007", "payload": json.dumps(ORDER),
                                     "submitted_at": "2026-01-01T00:00:00.000+00:00"})
    await traced_consumer(redis_client, pool, spans).run_until_idle()
    consumer = spans.named("crm:orders process")
    assert consumer.parent is None
    [created] = json_log.events("order-created")
    assert created["trace.id"] == f"{consumer.context.trace_id:032x}"
    assert await pool.fetchval("SELECT count(*) FROM orders WHERE external_ref = 'CRM-00000007'") == 1


async def test_malformed_traceparent_in_a_message_costs_no_order(
        redis_client: aioredis.Redis, pool: asyncpg.Pool, spans: Spans) -> None:
    await redis_client.xadd(STREAM, {"v": "1", "crm_order_id": "CRM-00000008", "payload": json.dumps(ORDER),
                                     "submitted_at": "t", "traceparent": "00-zz-garbage-01"})
    await traced_consumer(redis_client, pool, spans).run_until_idle()
    assert spans.named("crm:orders process").parent is None
    assert await pool.fetchval("SELECT count(*) FROM orders WHERE external_ref = 'CRM-00000008'") == 1


async def test_mes_request_continues_the_callers_trace_with_the_route_template(
        pg_dsn: str, spans: Spans, json_log: JsonLog) -> None:
    app = build_mes_app(mes_config(pg_dsn), tracer_provider=spans.provider)
    async with TestClient(TestServer(app)) as client:
        order = await (await client.post("/orders", json=ORDER)).json()
        resp = await client.post(f"/orders/{order['id']}/status", json={"status": "CANCELLED"},
                                 headers=CALLER)
        assert resp.status == 200
    server = spans.named("POST /orders/{order_id}/status")
    assert server.parent is not None
    assert server.parent.span_id == CALLER_SPAN_ID
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/orders/{order_id}/status"
    [changed] = json_log.events("order-status-changed")
    assert changed["trace.id"] == f"{CALLER_TRACE_ID:032x}"
