"""The rate limiter's heartbeat on one real Redis: one sorted set of live instances (docs/redis.md
"Heartbeat"), the previous release's keys still written and counted during a rolling upgrade, and
a probe loop that survives an error nobody classified (the way back to shared mode)."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis

from gateway.ratelimit import PartnerLimiter, RateLimitConfig
from gateway.ratelimit.heartbeat import Heartbeat
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)
SET_KEY = "{gateway:instances}"


async def test_instances_are_members_of_one_sorted_set(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        first = Heartbeat(client, instance_id="gw-a", interval=10.0)
        second = Heartbeat(client, instance_id="gw-b", interval=10.0)
        assert await first.beat() == 1
        assert await second.beat() == 2
        assert await first.beat() == 2
        assert sorted(await client.zrange(SET_KEY, 0, -1)) == [b"gw-a", b"gw-b"]
        assert 0 < await client.pttl(SET_KEY) <= 30_000  # gone when nobody beats any more
        await first.leave()
        assert await client.zrange(SET_KEY, 0, -1) == [b"gw-b"]
        assert await second.beat() == 1
    finally:
        await client.aclose()


async def test_an_instance_that_stops_beating_is_dropped(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        quiet = Heartbeat(client, instance_id="gw-quiet", interval=0.05)  # expires 150 ms on
        alive = Heartbeat(client, instance_id="gw-alive", interval=0.05)
        await quiet.beat()
        assert await alive.beat() == 2

        async def alone() -> bool:
            return await alive.beat() == 1

        await eventually(alone, timeout=10, what="the quiet instance dropped from the count")
        assert await client.zrange(SET_KEY, 0, -1) == [b"gw-alive"]
    finally:
        await client.aclose()


async def test_old_and_new_gateways_count_each_other_during_a_rolling_upgrade(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set("gateway:instances:old-gw", "1", px=10_000)  # what the previous release writes
        new = Heartbeat(client, instance_id="new-gw", interval=10.0)
        assert await new.beat() == 2  # the new one counts the old one
        old_view = [k async for k in client.scan_iter(match="gateway:instances:*")]  # the old count
        assert sorted(old_view) == [b"gateway:instances:new-gw", b"gateway:instances:old-gw"]
        assert await new.beat() == 2  # each instance once, whichever key it was seen by
    finally:
        await client.aclose()


class _Unclassified(Heartbeat):
    """The real heartbeat, but its first ``failures`` beats raise what no except clause names."""

    failures = 25

    async def beat(self) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise AttributeError("'NoneType' object has no attribute 'execute_command'")  # redis-py 8.1
        return await super().beat()


async def test_the_probe_loop_survives_an_unclassified_error(redis_url: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    limiter = PartnerLimiter(RateLimitConfig(redis_url=redis_url, heartbeat_interval=0.02))
    await limiter.start()
    try:
        assert limiter.heartbeat is not None
        assert not limiter.degraded
        limiter.heartbeat = _Unclassified(limiter.heartbeat.client, instance_id=limiter.instance_id,
                                          interval=0.02)
        caplog.set_level(logging.ERROR, logger="gateway.ratelimit")

        async def degraded() -> bool:
            return limiter.degraded

        async def shared_again() -> bool:
            return not limiter.degraded and isinstance(limiter.heartbeat, _Unclassified) \
                and limiter.heartbeat.failures == 0

        await eventually(degraded, timeout=10, what="degraded after the first failed probe")
        await eventually(shared_again, timeout=20, what="shared mode once the probe succeeds again")
        said = [r.getMessage() for r in caplog.records]
        assert any("still degraded after 25 failed probes" in m and "AttributeError" in m for m in said)
    finally:
        await limiter.aclose()
