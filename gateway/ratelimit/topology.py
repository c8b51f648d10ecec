"""What the rate limiter's heartbeat reports about the shared-state Redis: kind and failovers.

``gateway_redis_topology{kind}`` says which spec kind this gateway uses; on every successful
heartbeat the current primary (Sentinel: the address the sentinels name; Cluster: the set of
primaries redis-py knows) is compared with the last one seen, and a change counts one
``gateway_redis_failovers_total``. A single server has no failover to see.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from gateway import metrics
from sharedstate.redis_spec import AnyRedis, RedisSpec

log = logging.getLogger("gateway.ratelimit")


class Topology:
    """``publish()`` once at start; ``await observe()`` after each heartbeat that succeeded."""

    def __init__(self, spec: RedisSpec, client: AnyRedis) -> None:
        self.spec = spec
        self.client = client
        self.primary: Any = None  # last primary seen (address, or frozenset of cluster nodes)

    def publish(self) -> None:
        for kind in metrics.REDIS_KINDS:
            metrics.REDIS_TOPOLOGY.labels(kind=kind).set(1 if kind == self.spec.kind else 0)

    async def _current(self) -> Any:
        if isinstance(self.client, RedisCluster):
            return frozenset(node.name for node in self.client.get_primaries())
        if self.spec.kind == "sentinel":
            return await self.client.connection_pool.get_master_address()  # type: ignore[attr-defined]
        return None

    async def observe(self) -> None:
        try:
            current = await self._current()
        except (TimeoutError, RedisError, OSError):
            return  # the sentinels did not answer this time; the next beat asks again
        if self.primary is not None and current != self.primary:
            metrics.REDIS_FAILOVERS.inc()
            log.warning("shared-state Redis primary changed: %s → %s", self.primary, current,
                        extra={"event.action": "redis-failover", "redis.kind": self.spec.kind})
        self.primary = current
