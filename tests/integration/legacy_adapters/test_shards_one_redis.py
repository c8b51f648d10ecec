"""``shards`` on one Redis: 1 (the default) is exactly the unsharded layout; more spreads owners."""

from __future__ import annotations

import re

from legacy_adapters.redis_keys import shard_of_owner
from legacy_adapters.shards import ShardedQueue
from legacy_adapters.submit import QuoteRequest, QuoteSubmitter, SubmitSettings
from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.pricing_support import submit_checked


async def _keys_after_one_submission(redis_url: str, shards: int, owner: str) -> tuple[str, set[str]]:
    queue = ShardedQueue.from_url(redis_url, shards=shards)
    try:
        await queue.ensure_group()
        request = QuoteRequest(model=box_stl_binary(), material="PLA", owner=owner, idempotency_key="k")
        job_id = (await submit_checked(QuoteSubmitter(queue, SubmitSettings()), request)).job_id
        return job_id, {k.decode() for k in await queue.redis.keys("*")}
    finally:
        await queue.aclose()


async def test_one_shard_keeps_the_unsharded_layout_and_plain_ids(redis_url: str) -> None:
    job_id, keys = await _keys_after_one_submission(redis_url, 1, "acme")
    assert re.fullmatch(r"[0-9a-f]{32}", job_id)
    assert f"pricing:job:{job_id}" in keys
    assert all(k.startswith("pricing:") for k in keys)


async def test_with_two_shards_the_owner_keys_carry_its_shard_tag(redis_url: str) -> None:
    shard = shard_of_owner("acme", 2)
    job_id, keys = await _keys_after_one_submission(redis_url, 2, "acme")
    assert job_id.startswith(f"{shard}-")
    assert f"{{pricing:{shard}}}:job:{job_id}" in keys
    assert f"{{pricing:{shard}}}:idem:acme:k" in keys
    others = {k for k in keys if not k.startswith(f"{{pricing:{shard}}}:")}
    assert others == {f"{{pricing:{1 - shard}}}:stream"}  # the other shard: its empty stream only
