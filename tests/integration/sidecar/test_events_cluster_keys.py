"""The order-event publish script (dedupe key + stream + PUBLISH) on a real Redis Cluster: no CROSSSLOT."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from contracts.order_events import STREAM, OrderEvent
from sidecar.events import SEEN_PREFIX, EventPublisher
from tests.support.redis_cluster_keys import ClusterNodes
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(120)



def _event(order_id: int) -> OrderEvent:
    return OrderEvent(type="order.created", order_id=order_id, old_status=None, new_status="SUBMITTED",
                      occurred_at="2026-12-05T05:00:00+00:00", source="proxy", instance="cluster-test")


def test_dedupe_keys_share_the_streams_slot() -> None:
    assert key_slot((SEEN_PREFIX + _event(7).dedupe_key).encode()) == key_slot(STREAM.encode())


async def test_events_are_published_once_each_on_a_cluster(redis_cluster_nodes: ClusterNodes) -> None:
    client = RedisCluster.from_url(redis_cluster_nodes.seed_url)
    publisher = EventPublisher(client, kind="mes", instance="cluster-test")
    try:
        publisher.start()
        for order_id in (1, 2, 2, 3):  # the second 2 is a duplicate
            publisher.submit(_event(order_id))

        async def published() -> bool:
            return int(await client.xlen(STREAM)) >= 3 and not publisher.queued

        await eventually(published, timeout=20, what="three events in the stream")
        entries = await client.xrange(STREAM)
        assert [int(fields[b"order_id"]) for _, fields in entries or [] if fields] == [1, 2, 3]
    finally:
        await publisher.aclose()
        await client.aclose()
