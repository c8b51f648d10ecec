"""The adaptive limiter inside a real Cluster: deadlines, failures and slot accounting."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gateway.errors import LoadShed, UpstreamTimeout
from gateway.upstreams.cluster import Cluster
from gateway.upstreams.config import TimeoutPolicy, parse_cluster
from resilience.shedding import PRIORITY_LOW
from tests.support.fake_upstream import FakeUpstream, fake_upstream

pytestmark = pytest.mark.timeout(60)
_names = itertools.count()


@asynccontextmanager
async def _cluster(url: str, **spec: Any) -> AsyncIterator[Cluster]:
    cluster = Cluster(parse_cluster(f"shed-{next(_names)}", {"endpoints": [url], **spec}))
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.aclose()


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as up:
        yield up


def _shed(cluster: str, priority: str, reason: str) -> float:
    return REGISTRY.get_sample_value("gateway_load_shed_total",
                                     {"cluster": cluster, "priority": priority, "reason": reason}) or 0.0


async def test_the_overall_deadline_bounds_the_limiter_wait(upstream: FakeUpstream) -> None:
    async with _cluster(upstream.url, timeouts={"overall": 0.3},
                        adaptive_concurrency={"initial_limit": 1, "min_limit": 1, "max_limit": 1,
                                              "max_wait": 30.0}) as cluster:
        async def slow() -> int:  # holds the only slot for longer than the waiter's deadline
            async with cluster.request("GET", "/slow?seconds=0.6", headers={}, body=None,
                                       timeouts=TimeoutPolicy(overall=5.0)) as resp:
                return resp.status

        async def waiter() -> None:
            async with cluster.request("GET", "/slow?seconds=0", headers={}, body=None,
                                       priority=PRIORITY_LOW):
                pass

        holder = asyncio.create_task(slow())
        await asyncio.sleep(0.05)
        with pytest.raises(LoadShed) as shed:
            await asyncio.wait_for(waiter(), 5)  # far below max_wait: the 0.3 s deadline cuts the wait
        assert shed.value.reason == "wait_timeout"
        assert shed.value.retry_after is not None
        assert await holder == 200
        assert _shed(cluster.name, "low", "wait_timeout") == 1.0
        assert cluster.snapshot()["adaptive_concurrency"]["in_flight"] == 0


async def test_failed_and_timed_out_requests_give_their_slot_back(upstream: FakeUpstream) -> None:
    async with _cluster(upstream.url, retry={"attempts": 0}, timeouts={"per_try": 0.1, "overall": 1.0},
                        adaptive_concurrency={"initial_limit": 2, "max_limit": 2}) as cluster:
        for path in ("/hang", "/status/503", "/status/200"):
            try:
                async with asyncio.timeout(5), cluster.request("GET", path, headers={}, body=None):
                    pass
            except UpstreamTimeout:
                assert path == "/hang"
            state = cluster.snapshot()["adaptive_concurrency"]
            assert (state["in_flight"], state["queued"]) == (0, 0)
        assert cluster.snapshot()["in_flight"] == 0


async def test_a_cancelled_client_gives_its_slot_back(upstream: FakeUpstream) -> None:
    async with _cluster(upstream.url, adaptive_concurrency={"initial_limit": 1, "min_limit": 1,
                                                            "max_limit": 1}) as cluster:
        async def call(path: str) -> None:
            async with cluster.request("GET", path, headers={}, body=None):
                pass

        running = asyncio.create_task(call("/hang"))
        await asyncio.sleep(0.1)
        queued = asyncio.create_task(call("/status/200"))
        await asyncio.sleep(0.05)
        assert cluster.snapshot()["adaptive_concurrency"]["queued"] == 1
        queued.cancel()
        running.cancel()
        await asyncio.gather(running, queued, return_exceptions=True)
        state = cluster.snapshot()["adaptive_concurrency"]
        assert (state["in_flight"], state["queued"]) == (0, 0)
