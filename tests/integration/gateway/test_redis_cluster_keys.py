"""The rate-limit script and the cache's lookup, store and bump on a real Redis Cluster: no CROSSSLOT.

Connection specs and client factories for Cluster are another part of issue 16; here the rate
limiter's ``RespPipe`` talks to the node that owns the partner's slot, and the cache backend
gets redis-py's ``RedisCluster`` client, so what is tested is the key layout alone.
"""

from __future__ import annotations

import limits
import pytest
from multidict import MultiDict
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from gateway.cache.invalidation import change_versions
from gateway.cache.keys import VersionKeys, cache_key
from gateway.cache.policy import CachePolicy
from gateway.cache.redis_backend import RedisBackend
from gateway.ratelimit import Window
from gateway.ratelimit.pipe import RespPipe
from gateway.ratelimit.shared import SharedWindows, counter_keys

pytestmark = pytest.mark.timeout(120)
KEYS = VersionKeys("cache:")





async def test_multi_window_script_runs_on_the_node_of_the_partners_slot(
        cluster_client: RedisCluster) -> None:
    windows = (Window("burst", limits.parse("50/second")), Window("rate", limits.parse("5/minute")),
               Window("quota", limits.parse("1000/day")), Window("echo-burst", limits.parse("3/minute")))
    ids = (("partner", "acme"),) * 3 + (("route", "partner-echo", "acme"),)  # as the filter plans them
    await cluster_client.initialize()
    node = cluster_client.get_node_from_key(counter_keys("gateway:rl", windows[0], ids[0])[1])
    assert node is not None
    pipe = RespPipe(f"redis://{node.host}:{node.port}/0", timeout=5.0)
    try:
        shared = SharedWindows(pipe, "gateway:rl")
        remaining = [(await shared.hit(windows, ids)).remaining for _ in range(4)]
    finally:
        pipe.close()
    assert [r[3] for r in remaining] == [2, 1, 0, 0]  # the route window; the 4th is refused
    assert remaining[3][1] == 2  # a refused request counts in no window


async def test_cache_lookup_store_and_order_change_run_on_a_cluster(cluster_client: RedisCluster) -> None:
    backend = RedisBackend("redis://127.0.0.1:1/0", all_key=KEYS.all, socket_timeout=5.0)
    await backend.client.aclose()
    backend.client = cluster_client  # the client factory for Cluster is another part of issue 16
    policy = CachePolicy(ttl=60, key_params={"status": ""})
    listing = cache_key(keys=KEYS, route="orders", policy=policy, prefix="/orders", path="/orders",
                        query=MultiDict(status="SUBMITTED"), partner="acme")
    item = cache_key(keys=KEYS, route="orders", policy=policy, prefix="/orders", path="/orders/7",
                     query=MultiDict(), partner="acme")
    for key in (listing, item):
        versions = await backend.versions(key.versions)
        await backend.store(key.entry, b"body", ttl=60)
        assert await backend.lookup(key.entry, key.versions) == (versions, b"body")
    bumped = change_versions(KEYS, 7, "SUBMITTED", "PRICE_CALCULATED")
    await backend.bump(bumped)
    for key in (listing, item):
        found_versions, _ = await backend.lookup(key.entry, key.versions)
        assert found_versions[-1] == 1  # the status list's and the order's counters moved
    assert len({key_slot(k.encode()) for k in (*bumped, *listing.versions, *item.versions)}) == 1
