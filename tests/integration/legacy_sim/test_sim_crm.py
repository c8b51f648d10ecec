"""CRM intake: validation, the v1 envelope on the stream, the order record, health."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contracts.crm_envelope import STREAM, parse_message
from tests.integration.legacy_sim.sim_support import ORDER

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_intake_queues_a_v1_envelope_and_answers_202(crm_client: TestClient,
                                                           redis_client: aioredis.Redis) -> None:
    resp = await crm_client.post("/orders", json={**ORDER, "partner_id": "p-1"},
                                 headers={"traceparent": TRACEPARENT})
    body = await resp.json()
    assert resp.status == 202
    assert body == {"crm_order_id": "CRM-00000001", "status": "QUEUED"}
    [(_, fields)] = await redis_client.xrange(STREAM)
    assert fields[b"v"] == b"1"
    assert fields[b"traceparent"] == TRACEPARENT.encode()
    message = parse_message(fields)
    assert message.crm_order_id == "CRM-00000001"
    assert message.order.external_ref == "CRM-00000001"
    assert json.loads(fields[b"payload"]) == {**ORDER, "partner_id": "p-1"}


async def test_queued_order_can_be_read_back(crm_client: TestClient) -> None:
    created = await (await crm_client.post("/orders", json=ORDER)).json()
    resp = await crm_client.get(f"/orders/{created['crm_order_id']}")
    body = await resp.json()
    assert body["status"] == "QUEUED"
    assert body["order"]["customer"] == ORDER["customer"]
    assert (await crm_client.get("/orders/CRM-404")).status == 404


async def test_invalid_trace_context_is_not_propagated(crm_client: TestClient,
                                                       redis_client: aioredis.Redis) -> None:
    await crm_client.post("/orders", json=ORDER, headers={"traceparent": "garbage"})
    [(_, fields)] = await redis_client.xrange(STREAM)
    assert b"traceparent" not in fields


@pytest.mark.parametrize(("body", "status"), [
    ({**ORDER, "quantity": -1}, 422), ({**ORDER, "external_ref": "x"}, 422), ([], 422), (b"{oops", 400)])
async def test_bad_intake_is_refused_and_nothing_is_queued(crm_client: TestClient,
                                                           redis_client: aioredis.Redis, body: object,
                                                           status: int) -> None:
    if isinstance(body, bytes):
        resp = await crm_client.post("/orders", data=body, headers={"Content-Type": "application/json"})
    else:
        resp = await crm_client.post("/orders", json=body)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    assert await redis_client.xlen(STREAM) == 0


async def test_healthz_pings_redis(crm_client: TestClient) -> None:
    assert (await (await crm_client.get("/healthz")).json()) == {"status": "ok"}
