"""The relay's queue lag probe on a Redis that has no CRM stream (or no relay group) yet.

An empty Redis (a fresh ``make run``, no order submitted yet) is a normal state: the probe
reports lag 0 and logs no error. The process test holds Redis writes back (``CLIENT PAUSE
WRITE``) until the relay's first probe has run, so the probe meets the missing stream every time.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from devstack.ports import free_port, wait_for_port
from devstack.process import ServerProcess
from sidecar.relay import RelayConfig
from sidecar.relay.queue import RelayQueue
from tests.support.fake_upstream import fake_upstream
from tests.support.waiting import eventually


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()



def _sample(text: str, name: str) -> float | None:
    """The value of the (single) series ``name`` in a Prometheus text page, None if absent."""
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


async def _lag_probes(client: aioredis.Redis) -> int:
    """How many ``XINFO GROUPS`` Redis has answered (the probe's only use of it)."""
    stats: dict[str, dict[str, int]] = await client.info("commandstats")
    return int(stats.get("cmdstat_xinfo|groups", {}).get("calls", 0))


async def test_lag_of_a_missing_stream_is_zero(redis_client: aioredis.Redis, redis_url: str) -> None:
    lag = await RelayQueue(redis_client, RelayConfig(redis_url=redis_url, consumer="c")).lag()
    assert (lag.length, lag.lag, lag.pending, lag.oldest_pending_age) == (0, 0.0, 0, 0.0)


async def test_lag_of_a_stream_without_the_relay_group_yet_is_every_entry(
        redis_client: aioredis.Redis, redis_url: str) -> None:
    for n in range(3):  # the CRM queued orders before any relay ran; the group will replay them
        await redis_client.xadd("crm:orders", {"n": str(n)})
    lag = await RelayQueue(redis_client, RelayConfig(redis_url=redis_url, consumer="c")).lag()
    assert (lag.length, lag.lag, lag.pending, lag.oldest_pending_age) == (3, 3.0, 0, 0.0)


async def test_start_up_probe_on_a_missing_stream_logs_no_error_and_reports_lag_zero(
        tmp_path: Path, redis_url: str, redis_client: aioredis.Redis) -> None:
    listen, admin = free_port(), free_port()
    log_file = tmp_path / "sidecar.json.log"
    probes_before = await _lag_probes(redis_client)
    async with fake_upstream() as up:
        proc = ServerProcess([sys.executable, "-m", "sidecar", "--kind", "mes", "--instance-id", "mes-lag",
                              "--upstream", up.url, "--listen", f"127.0.0.1:{listen}",
                              "--admin", f"127.0.0.1:{admin}", "--relay-redis-url", redis_url],
                             log_path=tmp_path / "sidecar.log", env={**os.environ, "LOG_FILE": str(log_file)})
        await redis_client.client_pause(20000, all=False)  # no XGROUP CREATE yet
        try:
            proc.start()
            await eventually(lambda: _probed(redis_client, probes_before), timeout=20.0,
                             what="the relay's first lag probe")
            await redis_client.client_unpause()
            await eventually(lambda: _group_exists(redis_client), timeout=10.0, what="the relay's group")
            wait_for_port(admin, timeout=20)
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{admin}/metrics") as resp:
                metrics = await resp.text()
        finally:
            await redis_client.client_unpause()
            proc.stop()
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    assert [li["message"] for li in lines if li.get("log.level") in ("error", "critical")] == []
    assert _sample(metrics, "sidecar_relay_queue_lag") == 0.0
    assert _sample(metrics, "sidecar_relay_queue_errors_total") == 0.0


async def _probed(client: aioredis.Redis, before: int) -> bool:
    return await _lag_probes(client) > before


async def _group_exists(client: aioredis.Redis) -> bool:
    try:
        return any(g["name"] == b"mes-relay" for g in await client.xinfo_groups("crm:orders"))
    except aioredis.ResponseError:
        return False
