"""Usage accounting while Redis is away (real Redis, stopped and restarted): requests are served,
counts wait in memory and reach Redis exactly once when it is back; a batch whose reply was lost
is not added twice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import aiohttp
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from devstack import RedisServer
from gateway import metrics
from gateway.usage import UsageConfig, UsageRecorder
from gateway.usage.store import RedisUsageStore
from sharedstate.usage_counts import DayCounts, Mode
from tests.support.fake_upstream import fake_upstream
from tests.support.gateway import run_gateway
from tests.support.partner_edge import ECHO_PATH, make_keys, partner_echo_config

pytestmark = pytest.mark.timeout(60)


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def _failed() -> float:
    return float(metrics.USAGE_WRITES.labels(outcome="failed")._value.get())


async def test_counts_wait_in_memory_while_redis_is_down_and_arrive_once(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis", persistent=True) as server:
        config = UsageConfig(redis_url=server.url, socket_timeout=0.2)
        recorder = UsageRecorder(config, writer="w1")
        for _ in range(5):
            recorder.count("acme", "requests")
        assert await recorder.flush()
        server.stop()
        for _ in range(7):
            recorder.count("acme", "requests")
        recorder.count("acme", "rate_limited")
        failed = _failed()
        assert not await recorder.flush()
        assert not await recorder.flush()  # still away: the same batch, kept
        assert _failed() == failed + 2
        assert recorder.pending_events == 8
        recorder.count("acme", "requests")  # counted meanwhile: the next batch
        server.start()
        assert await recorder.flush()
        assert await recorder.flush()
        assert recorder.pending_events == 0
        counts = await recorder.store.read("acme", [_today()])
        await recorder.aclose()
    assert counts[_today()] == {"requests": 13, "rate_limited": 1}


class _LostReply(RedisUsageStore):
    """Applies the first write, then loses its reply (as a timeout after sending would)."""

    lost = False

    async def add(self, partner: str, counts: DayCounts, *, mode: Mode, token: str) -> bool:
        applied = await super().add(partner, counts, mode=mode, token=token)
        if not self.lost:
            self.lost = True
            raise RedisConnectionError("reply lost")
        return applied


async def test_a_batch_whose_reply_was_lost_is_applied_once(tmp_path: Path, redis_url: str) -> None:
    config = UsageConfig(redis_url=redis_url)
    recorder = UsageRecorder(config, store=_LostReply(config), writer="w2")
    for _ in range(4):
        recorder.count("acme", "orders")
    duplicates = metrics.USAGE_WRITES.labels(outcome="duplicate")._value.get()
    assert not await recorder.flush()  # applied, but the recorder cannot know
    assert await recorder.flush()      # retried with the same sequence: Redis says "already"
    assert metrics.USAGE_WRITES.labels(outcome="duplicate")._value.get() == duplicates + 1
    assert (await recorder.store.read("acme", [_today()]))[_today()] == {"orders": 4}
    await recorder.aclose()


async def test_requests_are_served_while_the_usage_store_is_unreachable(tmp_path: Path) -> None:
    store, (acme,) = make_keys(tmp_path, ("acme", "gold", ()))
    async with fake_upstream() as up:
        cfg = partner_echo_config(
            tmp_path, up.url, store,
            usage={"redis_url": "redis://127.0.0.1:9/0", "flush_interval": 0.05, "socket_timeout": 0.1})
        failed = _failed()
        async with run_gateway(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
            for _ in range(5):
                async with s.get(f"{gw.external}{ECHO_PATH}", headers={"X-API-Key": acme}) as r:
                    assert r.status == 200
            async with s.get(f"{gw.admin}/metrics") as r:
                text = await r.text()
        assert _failed() > failed
        assert "gateway_usage_pending_events" in text
        assert 'gateway_usage_lost_total{reason="shutdown"}' in text
