"""The CRM stand-in applies ``crm:orders:status`` to its orders (real Redis, the app in this loop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from contracts.crm_status import STATUS_STREAM, DeliveryStatus
from legacy_sim.crm import CrmConfig, build_crm_app
from tests.integration.legacy_sim.sim_support import ORDER, sample


@pytest.fixture
async def crm(redis_url: str) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_crm_app(CrmConfig(redis_url=redis_url)))) as client:
        yield client


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _order(crm: TestClient[Any, Any], crm_order_id: str) -> tuple[int, dict[str, Any]]:
    resp = await crm.get(f"/orders/{crm_order_id}")
    return resp.status, await resp.json()


async def test_statuses_for_unknown_orders_and_unreadable_entries_are_skipped_counted_and_acknowledged(
        crm: TestClient[Any, Any], redis_client: aioredis.Redis) -> None:
    before = {o: sample("orders_crm_status_updates_total", outcome=o) for o in ("delivered", "unknown_order",
                                                                                "invalid")}
    crm_order_id = (await (await crm.post("/orders", json=ORDER)).json())["crm_order_id"]
    assert (await _order(crm, crm_order_id))[1]["status"] == "QUEUED"
    unknown = DeliveryStatus(crm_order_id="CRM-99999999", mes_order_id=7, delivered_at="t", delivered_by="x")
    await redis_client.xadd(STATUS_STREAM, unknown.to_fields())  # type: ignore[arg-type]
    await redis_client.xadd(STATUS_STREAM, {"v": "9", "crm_order_id": crm_order_id})
    known = DeliveryStatus(crm_order_id=crm_order_id, mes_order_id=42,
                           delivered_at="2026-12-05T03:00:00.000+00:00", delivered_by="mes-relay/mes-1")
    await redis_client.xadd(STATUS_STREAM, known.to_fields())  # type: ignore[arg-type]

    async def settled() -> bool:  # applied in order, each acknowledged after it is applied
        delivered = (await _order(crm, crm_order_id))[1]["status"] == "DELIVERED"
        return delivered and int((await redis_client.xpending(STATUS_STREAM, "crm"))["pending"]) == 0
    try:
        async with asyncio.timeout(10):
            while not await settled():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{crm_order_id} not DELIVERED with every status entry acknowledged") from None
    status, body = await _order(crm, crm_order_id)
    assert (status, body["mes_order_id"], body["delivered_at"]) == (200, 42, known.delivered_at)
    assert body["order"]["model_name"] == ORDER["model_name"]
    assert (await _order(crm, "CRM-99999999"))[0] == 404  # no half record for an order the CRM never had
    for outcome in ("delivered", "unknown_order", "invalid"):
        assert sample("orders_crm_status_updates_total", outcome=outcome) == before[outcome] + 1
