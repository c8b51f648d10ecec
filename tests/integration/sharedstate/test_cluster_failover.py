"""A Redis Cluster primary SIGKILLed: the rate limiter degrades, then follows the promoted replica."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio.cluster import RedisCluster

from gateway.ratelimit import PartnerLimiter, RateLimitConfig
from gateway.ratelimit.policy import parse_windows
from gateway.ratelimit.shared import counter_keys
from tests.support.redis_cluster_keys import redis_cluster
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _failovers() -> float:
    return REGISTRY.get_sample_value("gateway_redis_failovers_total") or 0.0


async def test_a_killed_cluster_primary_is_followed_after_degraded_mode(tmp_path: Path) -> None:
    windows = parse_windows({"rate": "1000000/minute"}, "t")
    ids = (("partner", "acme"),)
    with redis_cluster(tmp_path, replicas=1) as nodes:
        limiter = PartnerLimiter(RateLimitConfig(redis_url=nodes.spec, heartbeat_interval=0.2,
                                                 socket_timeout=0.2))
        await limiter.start()
        try:
            decision = await limiter.check(windows, ids)
            assert decision is not None
            assert not limiter.degraded
            failovers = _failovers()
            assert isinstance(limiter.client, RedisCluster)
            node = limiter.client.get_node_from_key(counter_keys("gateway:rl", windows[0], ids[0])[1])
            assert node is not None
            port = node.port
            info = subprocess.run(["redis-cli", "-p", str(port), "INFO", "server"], capture_output=True,
                                  text=True, check=True, timeout=10).stdout
            os.kill(int(info.split("process_id:")[1].split()[0]), signal.SIGKILL)  # the partner's primary

            async def degraded() -> bool:
                await limiter.check(windows, ids)  # the partner's slot is on the dead primary
                return limiter.degraded

            async def shared_again() -> bool:
                return not limiter.degraded and _failovers() > failovers

            await eventually(degraded, timeout=10, what="degraded mode after the primary died")
            await eventually(shared_again, timeout=60, what="shared mode on the promoted replica")
            decision = await limiter.check(windows, ids)
            assert decision is not None
            assert decision.allowed
            assert not limiter.degraded
        finally:
            await limiter.aclose()
