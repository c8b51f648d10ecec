"""The CRM stand-in's intake (XADD to the queue + HSET of the order record in one MULTI) on a real
Redis Cluster: both keys in the queue's slot (bench.failover found every order refused with 500)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio.cluster import RedisCluster

from legacy_sim.crm.app import build_crm_app
from legacy_sim.crm.state import CrmConfig
from tests.support.redis_cluster_keys import ClusterNodes

pytestmark = pytest.mark.timeout(120)


async def test_an_order_is_queued_and_readable_on_a_cluster(redis_cluster_nodes: ClusterNodes) -> None:
    config = CrmConfig(redis_url=redis_cluster_nodes.spec, status_stream="")  # no status intake task
    async with TestClient(TestServer(build_crm_app(config))) as crm:
        response = await crm.post("/orders", json={"customer": "ACME", "material": "PLA", "quantity": 1,
                                                   "model_name": "a.stl"})
        assert response.status == 202, await response.text()
        order_id = (await response.json())["crm_order_id"]
        response = await crm.get(f"/orders/{order_id}")
        assert response.status == 200
        assert (await response.json())["status"] == "QUEUED"
    client = RedisCluster.from_url(redis_cluster_nodes.seed_url)
    try:
        assert await client.xlen(config.stream) == 1
    finally:
        await client.aclose()
