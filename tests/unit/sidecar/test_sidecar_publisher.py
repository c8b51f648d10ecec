"""The publisher's queue is bounded and drops the oldest event while Redis is unreachable."""

from __future__ import annotations

import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from contracts.order_events import OrderEvent
from devstack.ports import free_port
from sidecar.events import EventPublisher

LABELS = {"kind": "mes", "legacy_instance": "unit-pub"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def event(order_id: int) -> OrderEvent:
    return OrderEvent(type="order.created", order_id=order_id, old_status=None, new_status="SUBMITTED",
                      occurred_at="t", source="proxy", instance="unit-pub")


async def test_full_queue_drops_the_oldest_and_counts_it() -> None:
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    publisher = EventPublisher(client, kind="mes", instance="unit-pub", max_queue=3)
    before = sample("sidecar_events_dropped_total", **LABELS)
    for i in range(5):
        publisher.submit(event(i))  # never raises, never blocks
    assert sample("sidecar_events_dropped_total", **LABELS) - before == 2
    assert sample("sidecar_events_queued", **LABELS) == 3
    assert [e.order_id for e in publisher.queued] == [2, 3, 4]
    await publisher.aclose()
    await client.aclose()
