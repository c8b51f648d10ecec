"""Every shared-state user connects through each kind of Redis spec: one server, Sentinel, Cluster.

Real servers (devstack/redis_sentinel.py: 1 primary, 1 replica, 3 sentinels;
devstack/redis_cluster.py with ``replicas=1``: 3 primaries + 3 replicas), each user
built from the spec string exactly as its config hands it over.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from contracts.order_events import CHANNEL, OrderEvent
from gateway.cache.listener import EventListener
from gateway.cache.redis_backend import RedisBackend
from gateway.ratelimit import PartnerLimiter, RateLimitConfig
from gateway.ratelimit.policy import parse_windows
from legacy_adapters.queue import PricingQueue
from legacy_sim.crm.app import build_crm_app
from legacy_sim.crm.state import CrmConfig
from sharedstate.redis_spec import parse_redis_spec
from sidecar.events import EventPublisher
from tests.support.redis_cluster_keys import redis_cluster
from tests.support.redis_sentinel import redis_sentinel
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def sentinel_spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_sentinel(Path(tmp_path_factory.mktemp("sentinel"))) as topology:
        yield topology.url


@pytest.fixture(scope="module")
def cluster_spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_cluster(Path(tmp_path_factory.mktemp("cluster")), replicas=1) as nodes:
        yield nodes.spec


@pytest.fixture(params=["single", "sentinel", "cluster"])
def spec(request: pytest.FixtureRequest) -> str:
    name = {"single": "redis_url", "sentinel": "sentinel_spec", "cluster": "cluster_spec"}[request.param]
    return str(request.getfixturevalue(name))


async def test_the_rate_limiter_counts_in_shared_mode(spec: str) -> None:
    windows = parse_windows({"rate": "3/minute"}, "t")
    limiter = PartnerLimiter(RateLimitConfig(redis_url=spec, heartbeat_interval=0.2))
    await limiter.start()
    try:
        decisions = [await limiter.check(windows, (("partner", f"acme-{id(limiter)}"),)) for _ in range(4)]
        assert not limiter.degraded
        assert [d.allowed for d in decisions if d is not None] == [True, True, True, False]
        kind = parse_redis_spec(spec, "t").kind
        assert REGISTRY.get_sample_value("gateway_redis_topology", {"kind": kind}) == 1
    finally:
        await limiter.aclose()


async def test_the_cache_store_and_its_event_feed_with_the_sidecars_publisher(spec: str) -> None:
    backend = RedisBackend(spec, all_key="t:{v}:all")
    await backend.store("t:entry", b"cached", 30)
    assert (await backend.lookup("t:entry", ["t:{v}:all"]))[1] == b"cached"
    seen: list[int] = []

    class Invalidator:
        async def everything(self, reason: str) -> None:
            pass

        async def order_changed(self, order_id: int, old: str | None, new: str, *, reason: str,
                                created: bool) -> None:
            seen.append(order_id)

    listener = EventListener(spec, CHANNEL, Invalidator())  # type: ignore[arg-type]
    client = parse_redis_spec(spec, "--redis-url").client(socket_timeout=1.0)
    publisher = EventPublisher(client, kind="mes", instance="topology-test")
    listener.start()
    publisher.start()
    try:
        await eventually(lambda: _true(listener.connected), timeout=15, what="the feed subscribed")
        publisher.submit(OrderEvent(type="order.created", order_id=41, old_status=None,
                                    new_status="SUBMITTED", occurred_at="2026-12-05T06:00:00+00:00",
                                    source="proxy", instance="topology-test"))
        await eventually(lambda: _true(41 in seen), timeout=15, what="the event reached the cache")
    finally:
        await publisher.aclose()
        await listener.aclose()
        await client.aclose()
        await backend.aclose()


async def test_the_pricing_queue_and_the_crm_stand_in_connect(spec: str) -> None:
    queue = PricingQueue.from_url(spec, prefix="{topo}")  # Cluster: the prefix is the hash tag
    try:
        await queue.ensure_group()
        assert await queue.redis.ping()
    finally:
        await queue.aclose()
    async with TestClient(TestServer(build_crm_app(CrmConfig(redis_url=spec)))) as crm:  # status intake too
        response = await crm.get("/healthz")
        assert response.status == 200


async def _true(value: bool) -> bool:
    return value
