"""The pricing queue on a real Redis Cluster with the prefix as hash tag: every script in one slot."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster

from configkit import ConfigError
from legacy_adapters.queue import PricingQueue
from legacy_adapters.queue_state import read_queue_state
from legacy_adapters.redis_keys import QueueKeys
from legacy_adapters.submit import QuoteSubmitter, SubmitSettings
from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.conftest import submit
from tests.support.redis_cluster_keys import ClusterNodes

pytestmark = pytest.mark.timeout(120)



@pytest.fixture
async def cluster_queue(redis_cluster_nodes: ClusterNodes) -> AsyncIterator[PricingQueue]:
    queue = PricingQueue(RedisCluster.from_url(redis_cluster_nodes.seed_url), QueueKeys("{pricing}"))
    await queue.ensure_group()
    yield queue
    await queue.aclose()


async def test_a_job_is_submitted_priced_and_served_from_the_price_cache_on_a_cluster(
        cluster_queue: PricingQueue) -> None:
    submitter = QuoteSubmitter(cluster_queue, SubmitSettings(backlog_bound=100))
    model = box_stl_binary(5, 6, 7)
    first = await submit(submitter, model, idempotency_key="k1")
    assert first.outcome == "queued"
    ((entry, fields),) = await cluster_queue.read("w1", count=1, block_ms=100)
    assert fields["job_id"] == first.job_id
    assert (await cluster_queue.start(first.job_id, entry, "w1"))[0] == "queued"
    assert (await cluster_queue.complete(first.job_id, entry, json.dumps({"price": "1.00"}), 60))[0]
    assert (await submit(submitter, model)).outcome == "cached"
    assert (await submit(submitter, model, idempotency_key="k1")).outcome == "replay"
    state = await read_queue_state(cluster_queue)
    assert (state.depth, state.in_flight) == (0, 0)


def test_a_cluster_spec_needs_a_hash_tagged_prefix() -> None:
    spec = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"  # refused before any connection
    with pytest.raises(ConfigError, match=r"^redis_url: Redis Cluster needs the pricing prefix as a hash"):
        PricingQueue.from_url(spec, prefix="pricing")


async def test_retry_dead_letter_hand_back_requeue_and_webhooks_run_on_a_cluster(
        cluster_queue: PricingQueue) -> None:
    """Every other script of the queue, once, on the prefix's one slot."""
    submitter = QuoteSubmitter(cluster_queue, SubmitSettings(backlog_bound=100))
    job = (await submit(submitter, box_stl_binary(3, 4, 5), callback_url="https://partner.example/hook")).job_id
    ((entry, _),) = await cluster_queue.read("w1", count=1, block_ms=100)
    await cluster_queue.start(job, entry, "w1")
    assert await cluster_queue.extend(entry, "w1")
    await cluster_queue.retry(job, entry, "legacy busy", delay=0)
    assert await cluster_queue.promote_due() == 1
    ((entry, _),) = await cluster_queue.read("w1", count=1, block_ms=100)
    await cluster_queue.start(job, entry, "w1")
    assert await cluster_queue.hand_back(job, entry)
    ((entry, _),) = await cluster_queue.read("w1", count=1, block_ms=100)
    await cluster_queue.start(job, entry, "w1")
    await cluster_queue.dead_letter(job, entry, "poison")
    assert await cluster_queue.dead_jobs() == [job]
    assert await cluster_queue.requeue(job) == "queued"
    ((entry, _),) = await cluster_queue.read("w1", count=1, block_ms=100)
    await cluster_queue.start(job, entry, "w1")
    await cluster_queue.complete(job, entry, json.dumps({"price": "2.00"}), 60)
    claimed = await cluster_queue.claim_webhook(lease_ms=1000)
    assert claimed is not None
    assert claimed[0] == job
    await cluster_queue.webhook_delivered(job, claimed[1], attempt=1)
    assert (await cluster_queue.job(job) or {}).get("webhook_status") == "delivered"
