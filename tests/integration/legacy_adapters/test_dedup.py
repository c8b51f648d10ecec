"""Price each distinct model once: exact and geometric duplicates share one legacy call."""

from __future__ import annotations

import asyncio
from pathlib import Path

from legacy_adapters.queue import PricingQueue
from legacy_adapters.submit import QuoteSubmitter
from legacy_sim.pricing.samples import box_stl_ascii, box_stl_binary
from tests.integration.legacy_adapters.conftest import submit
from tests.integration.legacy_adapters.pricing_support import (
    calls_per_model,
    geometric_copy,
    wait_until,
    worker_processes,
)


async def test_concurrent_and_later_duplicates_cost_one_legacy_call_per_distinct_model(
        redis_url: str, queue: PricingQueue, submitter: QuoteSubmitter, tmp_path: Path) -> None:
    original = box_stl_binary(10, 20, 30)
    other = box_stl_binary(11, 20, 30)
    first = await submit(submitter, original)
    burst = await asyncio.gather(submit(submitter, original), submit(submitter, geometric_copy(10, 20, 30)),
                                 submit(submitter, box_stl_ascii(10, 20, 30)), submit(submitter, other))
    assert first.outcome == "queued"
    assert [(s.outcome, s.kind) for s in burst] == [
        ("attached", "exact"), ("attached", "geometric"), ("attached", "geometric"), ("queued", None)]
    assert await queue.redis.xlen(queue.keys.stream) == 2  # duplicates are not queued
    log = tmp_path / "calls.log"
    env = {"PRICING_LOCAL_DELAY": "0.3", "PRICING_CALL_LOG": str(log)}
    ids = [first.job_id, *(s.job_id for s in burst)]
    with worker_processes(redis_url, tmp_path, 2, env=env):

        async def done() -> bool:
            return all([(await queue.job(j) or {}).get("status") == "done" for j in ids])

        await wait_until(done, 20, "all jobs done")
    jobs = [await queue.job(j) for j in ids]
    assert len({j["result"] for j in jobs[:4] if j}) == 1  # the same price for the equivalent four
    later = [await submit(submitter, original), await submit(submitter, geometric_copy(10, 20, 30, seed=3))]
    assert [(s.outcome, s.kind) for s in later] == [("cached", "exact"), ("cached", "geometric")]
    assert sorted(calls_per_model(log).values()) == [1, 1]


async def test_material_and_rules_version_are_part_of_the_fingerprint(
        queue: PricingQueue, submitter: QuoteSubmitter) -> None:
    model = box_stl_binary(10, 10, 10)
    outcomes = [(await submit(submitter, model, material)).outcome for material in ("PLA", "ABS")]
    assert outcomes == ["queued", "queued"]


async def test_rotated_copy_is_a_different_model(queue: PricingQueue, submitter: QuoteSubmitter) -> None:
    lying, standing = box_stl_binary(30, 20, 10), box_stl_binary(10, 20, 30)  # different bbox height
    assert [(await submit(submitter, m)).outcome for m in (lying, standing)] == ["queued", "queued"]
