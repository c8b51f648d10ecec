"""Instance heartbeat in Redis: how many gateway instances share the limits right now.

Every instance (worker process) writes ``gateway:instances:<id>`` with a TTL of three
intervals, then counts the live ones. The last count survives a Redis outage and sizes each
instance's local share in degraded mode. The same round trip is the degraded-mode probe.
"""

from __future__ import annotations

import os
import secrets
import socket

from sharedstate.redis_spec import AnyRedis

INSTANCE_PREFIX = "gateway:instances:"


def new_instance_id() -> str:
    """``host:pid:random`` — unique even for several gateways in one process (tests)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Heartbeat:
    """``beat()`` raises the client's error when Redis is unreachable; the caller decides."""

    def __init__(self, client: AnyRedis, *, instance_id: str, interval: float) -> None:
        self.client = client
        self.instance_id = instance_id
        self.ttl_ms = max(1, int(interval * 3 * 1000))
        self.instances = 1  # last count seen; 1 until the first beat

    async def beat(self) -> int:
        """Refresh our key and return the number of live instances (ours included)."""
        await self.client.set(INSTANCE_PREFIX + self.instance_id, "1", px=self.ttl_ms)
        count = 0
        async for _ in self.client.scan_iter(match=INSTANCE_PREFIX + "*", count=1000):
            count += 1
        self.instances = max(1, count)
        return self.instances

    async def leave(self) -> None:
        """Remove our key on a clean shutdown so the others' share grows at once."""
        await self.client.delete(INSTANCE_PREFIX + self.instance_id)
