"""Stopping the usage recorder on real Redis is bounded, wherever the cancellation lands.

Its flusher calls Redis every ``flush_interval``; on CPython 3.11 a cancellation arriving as
redis-py's socket write completes is swallowed by ``asyncio.wait_for`` (resilience/cancellation.py),
and the old loop flushed on forever: ``aclose()`` (the gateway's shutdown) never returned. That
hung ``test_usage_quotes``'s gateway stop (> 30 s) once on a loaded box; here, with a flush every
0.5 ms and stops at random moments, about one stop in four hung on the old code."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
import redis.asyncio as aioredis

from gateway.usage.config import UsageConfig
from gateway.usage.recorder import UsageRecorder
from sharedstate.usage_counts import UsageCounts, day_of

pytestmark = pytest.mark.timeout(120)
STOPS = 40


async def test_usage_recorder_stops_within_its_bound_wherever_the_cancellation_lands(redis_url: str) -> None:
    rng = random.Random(20)
    counted = 0
    for stop in range(STOPS):
        recorder = UsageRecorder(UsageConfig(redis_url=redis_url, flush_interval=0.0005))
        await recorder.start()
        for _ in range(rng.randint(20, 200)):  # requests counted while the flusher writes
            recorder.count("acme", "requests")
            counted += 1
            await asyncio.sleep(0)
        try:  # aclose flushes within 5 s; 20 s only tells a hang apart from a slow box
            await asyncio.wait_for(recorder.aclose(), timeout=20)
        except TimeoutError:
            pytest.fail(f"stop {stop + 1} of {STOPS}: the usage recorder did not stop (its flusher "
                        "swallowed the cancellation and went on)")
    client = aioredis.Redis.from_url(redis_url)
    try:  # and every stop flushed what was counted, once
        rows = await UsageCounts(client).read("acme", [day_of(time.time())])
    finally:
        await client.aclose()
    assert sum(row.get("requests", 0) for row in rows.values()) == counted
