"""The relay's two transactions (dead letter, delivered status; each XADD + XACK) on a real Redis Cluster."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster

from contracts.crm_status import DeliveryStatus
from sidecar.relay import RelayConfig
from sidecar.relay.queue import RelayQueue
from tests.support.redis_cluster_keys import ClusterNodes

pytestmark = pytest.mark.timeout(120)



async def test_dead_letter_and_delivered_status_each_commit_in_one_slot(
        redis_cluster_nodes: ClusterNodes) -> None:
    seed = redis_cluster_nodes.seed_url.removeprefix("redis://").removesuffix("/0")
    config = RelayConfig(redis_url=f"redis+cluster://{seed}", consumer="c1",
                         dead_letter_stream="crm:orders:dead:{crm:orders}",
                         status_stream="crm:orders:status:{crm:orders}")
    client = RedisCluster.from_url(redis_cluster_nodes.seed_url)
    queue = RelayQueue(client, config)
    try:
        await queue.ensure_group()
        for order in ("o-1", "o-2"):
            await client.xadd(config.stream, {"order": order})
        (poison, fields), (good, _) = await queue.read_new(count=2, block_ms=100)
        assert fields is not None
        await queue.dead_letter(poison, fields, reason="poison")
        await queue.ack_delivered(good, DeliveryStatus(crm_order_id="o-2", mes_order_id=7,
                                                       delivered_at="2026-12-05T05:00:00+00:00"))
        assert await client.xlen(config.dead_letter_stream) == 1
        assert await client.xlen(config.status_stream) == 1
        assert (await queue.lag()).pending == 0
    finally:
        await client.aclose()
