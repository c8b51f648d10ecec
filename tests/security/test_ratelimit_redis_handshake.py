"""The rate limiter's Redis pipe runs nothing on a new connection before its AUTH/SELECT succeeded.

Attack/fault: partner counters written to db 0 (shared with whatever else lives there, or
readable by another tenant of the Redis) because limiter commands went out between ``AUTH``
and ``SELECT``; or a connection whose ``SELECT`` was refused used anyway, in db 0.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import limits
import pytest
import redis.asyncio as aioredis

from devstack import RedisServer
from gateway.ratelimit import Decision, PartnerLimiter, RateLimitConfig, Window
from gateway.ratelimit.pipe import RespError, RespPipe
from gateway.ratelimit.shared import MULTI_WINDOW_SCRIPT, SharedWindows

pytestmark = pytest.mark.timeout(60)
PASSWORD = "handshake-test-secret-0123"
DB = 5
WINDOWS = (Window("rate", limits.parse("1000/minute")),)


@pytest.fixture
def protected_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis with ``requirepass`` (set before any client connects)."""
    server = RedisServer(tmp_path / "redis-auth").start()
    try:
        subprocess.run(["redis-cli", "-p", str(server.port), "CONFIG", "SET", "requirepass", PASSWORD],
                       check=True, capture_output=True, timeout=10)
        yield server
    finally:
        server.stop()


def _url(server: RedisServer, db: int) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/{db}"


async def _keys(server: RedisServer, db: int) -> list[bytes]:
    client = aioredis.Redis.from_url(_url(server, db))
    try:
        return [k async for k in client.scan_iter(match="*", count=1000)]
    finally:
        await client.aclose()


async def test_limiter_calls_racing_a_new_connections_handshake_all_land_in_the_configured_db(
        protected_redis: RedisServer) -> None:
    client = aioredis.Redis.from_url(_url(protected_redis, DB))
    await client.script_load(MULTI_WINDOW_SCRIPT)  # as after a reconnect, or another gateway's load:
    await client.aclose()                          # an early EVALSHA runs at once (no NOSCRIPT detour)
    limiter = PartnerLimiter(RateLimitConfig(redis_url=_url(protected_redis, DB), socket_timeout=2.0,
                                             default_tier="default"))
    await limiter.start()  # heartbeat (redis-py); the pipe connects on the first check below
    try:
        def check(i: int) -> asyncio.Task[Decision | None]:
            return asyncio.create_task(limiter.check(WINDOWS, (("partner", f"p{i}"),)))

        first = check(0)
        calls = [first]
        while not first.done() and len(calls) < 2000:  # new callers for every loop iteration of the
            calls.append(check(len(calls)))            # connect + AUTH/SELECT round trips
            await asyncio.sleep(0)
        async with asyncio.timeout(20):
            decisions = await asyncio.gather(*calls)
        assert len(calls) > 3, "no caller arrived during the handshake"
        assert not limiter.degraded
        assert all(d is not None and d.allowed for d in decisions)
    finally:
        await limiter.aclose()
    in_db0 = await _keys(protected_redis, 0)
    counters = [k for k in await _keys(protected_redis, DB) if k.startswith(b"gateway:rl:")]
    assert in_db0 == [], f"{len(in_db0)} keys written to db 0, e.g. {in_db0[:3]}"
    assert len(counters) == len(calls)  # one counter per partner, every one in the configured db


async def test_refused_select_fails_every_call_and_writes_nothing_to_db_0(
        protected_redis: RedisServer) -> None:
    pipe = RespPipe(_url(protected_redis, 99), timeout=2.0)  # AUTH good, SELECT 99 out of range
    shared = SharedWindows(pipe, "gateway:rl")
    try:
        for i in range(5):
            with pytest.raises(RespError):  # never a reply from an unselected (db 0) connection
                await shared.hit(WINDOWS, (("partner", f"p{i}"),))
    finally:
        pipe.close()
    assert await _keys(protected_redis, 0) == []


async def test_refused_select_sends_the_limiter_to_degraded_mode_not_to_db_0(
        protected_redis: RedisServer) -> None:
    limiter = PartnerLimiter(RateLimitConfig(redis_url=_url(protected_redis, DB), socket_timeout=2.0,
                                             default_tier="default"))
    await limiter.start()  # the heartbeat (redis-py) is happy with db 5 …
    assert limiter.shared is not None
    limiter.shared.pipe = RespPipe(_url(protected_redis, 99), timeout=2.0)  # … the pipe's SELECT is not
    try:
        decision = await limiter.check(WINDOWS, (("partner", "p"),))
        assert decision is not None  # a local-share decision: the documented degraded mode
        assert decision.allowed
        assert limiter.degraded
        limiter.degraded = False  # as after a good heartbeat: the pipe is tried again
        await limiter.check(WINDOWS, (("partner", "q"),))
        assert limiter.degraded
    finally:
        await limiter.aclose()
    assert await _keys(protected_redis, 0) == []
