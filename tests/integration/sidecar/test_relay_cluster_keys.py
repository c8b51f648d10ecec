"""The relay's two transactions (dead letter, delivered status; each XADD + XACK) on a real Redis Cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from contracts.crm_status import DeliveryStatus
from sidecar.relay import RelayConfig
from sidecar.relay.queue import RelayQueue
from tests.support.redis_cluster_keys import ClusterNodes, redis_cluster

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterNodes]:
    with redis_cluster(Path(tmp_path_factory.mktemp("redis-cluster"))) as nodes:
        yield nodes


async def test_dead_letter_and_delivered_status_each_commit_in_one_slot(cluster: ClusterNodes) -> None:
    config = RelayConfig(redis_url="redis+cluster://" + cluster.seed_url.removeprefix("redis://")
                         .removesuffix("/0"), consumer="c1",
                         dead_letter_stream="crm:orders:dead:{crm:orders}",
                         status_stream="crm:orders:status:{crm:orders}")
    client = RedisCluster.from_url(cluster.seed_url)
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
