"""Model bytes in Redis are bounded (issue 12, point 6): a stored model leaves Redis when its job
is priced, its TTL is at most ``model_ttl`` (6 h by default, was 24 h), and all stored models
together stay within ``model_store_bytes`` — above it a new model gets 503 + Retry-After.

Black box: a real ``python -m gateway`` process, the session Redis, the pricing worker in this loop.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import aiohttp

from legacy_adapters.callable_backend import CallableBackend
from legacy_adapters.consumer import QuoteWorker, WorkerSettings
from legacy_adapters.queue import PricingQueue
from tests.integration.legacy_adapters.pricing_support import LOCAL, wait_until
from tests.security.upload_support import PROBLEM, STL, boxes_stl, metric, quote_gateway


async def _post(url: str, body: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    async with aiohttp.ClientSession() as s, s.post(f"{url}?material=PLA", data=body, headers=STL) as resp:
        return resp.status, dict(resp.headers), await resp.json()


async def test_stored_model_has_a_bounded_ttl_and_leaves_redis_when_its_job_is_priced(
        tmp_path: Path, redis_url: str) -> None:
    model = boxes_stl(3)
    key = f"pricing:model:{hashlib.sha256(model).hexdigest()}"
    queue = PricingQueue.from_url(redis_url)
    try:
        async with quote_gateway(tmp_path, redis_url) as (gw, _):
            status, _, job = await _post(f"{gw.internal}/quotes", model)
            assert status == 202
            assert 0 < await queue.redis.ttl(key) <= 6 * 3600
            stop = asyncio.Event()
            worker = asyncio.create_task(QuoteWorker(queue, CallableBackend(LOCAL), WorkerSettings(
                name="store-test", block_ms=100)).run(stop))
            try:
                async def priced() -> bool:
                    return (await queue.job(job["id"]) or {}).get("status") == "done"
                await wait_until(priced, 20, "job priced")
            finally:
                stop.set()
                await worker
            assert await queue.redis.exists(key) == 0
            assert int(await queue.redis.get("pricing:models:bytes") or 0) == 0
    finally:
        await queue.aclose()


async def test_models_above_the_store_budget_get_503_with_retry_after(tmp_path: Path, redis_url: str) -> None:
    models = [boxes_stl(700 + i) for i in range(3)]  # ~420 KB each, distinct
    queue = PricingQueue.from_url(redis_url)
    try:
        async with quote_gateway(tmp_path, redis_url, model_store_bytes=1 << 20, retry_after=9) as (gw, _):
            assert [(await _post(f"{gw.internal}/quotes", m))[0] for m in models[:2]] == [202, 202]
            status, headers, problem = await _post(f"{gw.internal}/quotes", models[2])
            assert status == 503
            assert headers["Content-Type"].startswith(PROBLEM)
            assert headers["Retry-After"] == "9"
            assert "budget" in problem["detail"]
            stored = sum([await queue.redis.strlen(k) for k in await queue.redis.keys("pricing:model:*")])
            assert stored <= 1 << 20

            async def gauge_caught_up() -> bool:  # the queue-state probe is periodic: it may have
                return await metric(gw, "pricing_model_store_bytes") == stored  # seen one model only
            await wait_until(gauge_caught_up, 10, f"pricing_model_store_bytes == {stored}")
    finally:
        await queue.aclose()
