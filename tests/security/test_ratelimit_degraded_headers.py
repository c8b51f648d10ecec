"""In degraded rate-limit mode the RateLimit headers state the local share each instance enforces.

Misleading header: with Redis away each instance enforces ``amount // instances``, but
``RateLimit-Policy`` still advertised the shared quota, so a partner pacing itself by the
header was refused long before the advertised limit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import aiohttp
import pytest

from devstack import RedisServer
from tests.support.fake_upstream import fake_upstream
from tests.support.gateway import gateway_process
from tests.support.partner_edge import ECHO_PATH, make_keys, partner_echo_config

pytestmark = pytest.mark.timeout(90)
LIMIT = 20  # "rate" per minute, shared by two instances → a local share of 10


def _remaining(field: str, policy: str) -> int:
    item = next(i for i in field.split(", ") if i.startswith(f'"{policy}"'))
    return int(item.split(";r=")[1].split(";")[0])


async def test_degraded_mode_headers_advertise_the_local_share_and_429_comes_at_that_limit(
        tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    try:
        # a second live gateway instance in the heartbeat: this gateway's share is LIMIT // 2
        subprocess.run(["redis-cli", "-p", str(redis.port), "SET", "gateway:instances:other:1:ab", "1",
                        "PX", "600000"], check=True, capture_output=True, timeout=10)
        store, (key,) = make_keys(tmp_path, ("acme", "gold", ("orders:read",)))
        async with fake_upstream() as up:
            cfg = partner_echo_config(
                tmp_path, up.url, store,
                ratelimit={"redis_url": redis.url, "default_tier": "gold", "heartbeat_interval": 0.2,
                           "socket_timeout": 0.5,
                           "tiers": {"gold": {"rate": f"{LIMIT}/minute", "quota": "1000/day"}}})
            async with gateway_process(cfg, tmp_path) as gw:  # its first heartbeat counted 2 instances
                redis.stop()
                share = LIMIT // 2
                policy = f'"rate";q={share};w=60, "quota";q={1000 // 2};w=86400'
                async with aiohttp.ClientSession() as s:
                    url, headers = f"{gw.external}{ECHO_PATH}", {"X-API-Key": key}
                    for expected in range(share - 1, -1, -1):
                        async with s.get(url, headers=headers) as r:
                            assert r.status == 200
                            assert r.headers["RateLimit-Policy"] == policy
                            assert _remaining(r.headers["RateLimit"], "rate") == expected
                    async with s.get(url, headers=headers) as r:
                        assert r.status == 429
                        assert r.headers["RateLimit-Policy"] == policy
                        assert _remaining(r.headers["RateLimit"], "rate") == 0
                        assert (await r.json())["violated-policies"] == ["rate"]
    finally:
        redis.stop()
