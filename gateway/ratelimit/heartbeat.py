"""Instance heartbeat in Redis: how many gateway instances share the limits right now.

Every instance (worker process) is one member of the sorted set ``{gateway:instances}`` (the
hash tag keeps it in one slot on Cluster) scored with its expiry (Redis' clock, ms, three
intervals ahead). One script adds or refreshes our member, drops the expired ones and returns the
live ones: one key and one round trip, so the count stays exact while a slot is migrated or a
primary fails over (the key moves as a whole; ``MOVED``/``ASK`` are followed), where a ``SCAN`` of
per-instance keys over every primary could miss keys in flight.

Rolling upgrade (this release only, ``legacy_keys``): the previous release wrote
``gateway:instances:<id>`` and counted them with ``SCAN``. We still write that key, so old
instances count us, and we count the union of the set's members and the ids the ``SCAN`` finds,
so we count them; the set alone stays exact for the new instances even when the ``SCAN`` misses.

The last count survives a Redis outage and sizes each instance's local share in degraded mode.
The beat is also the degraded-mode probe: on Cluster it PINGs every primary as well, so the
instance goes back to shared mode only when every shard answers (the counters live on all).
"""

from __future__ import annotations

import os
import secrets
import socket

from redis.asyncio.cluster import RedisCluster

from sharedstate.redis_spec import AnyRedis

INSTANCES_KEY = "{gateway:instances}"
LEGACY_PREFIX = "gateway:instances:"  # the previous release's per-instance keys (rolling upgrade)

# KEYS[1] the set; ARGV: our id, ttl ms. Redis' own clock (no skew between gateways); scripts
# replicate their effects (Redis >= 7 always; redis.replicate_commands() before 7), so TIME is fine.
BEAT_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('zadd', KEYS[1], now + ttl, ARGV[1])
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
redis.call('pexpire', KEYS[1], ttl)
return redis.call('zrange', KEYS[1], 0, -1)
"""

LEAVE_SCRIPT = "return redis.call('zrem', KEYS[1], ARGV[1])"


def new_instance_id() -> str:
    """``host:pid:random`` — unique even for several gateways in one process (tests)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Heartbeat:
    """``beat()`` raises the client's error when Redis is unreachable; the caller decides."""

    def __init__(self, client: AnyRedis, *, instance_id: str, interval: float,
                 legacy_keys: bool = True) -> None:
        self.client = client
        self.instance_id = instance_id
        self.ttl_ms = max(1, int(interval * 3 * 1000))
        self.legacy_keys = legacy_keys
        self.instances = 1  # last count seen; 1 until the first beat

    async def beat(self) -> int:
        """Refresh our membership and return the number of live instances (ours included)."""
        # EVAL, not EVALSHA: after an ASK to a node the client does not know yet, NOSCRIPT there
        # could not be repaired by redis-py's script loading (it loads on the primaries it knows)
        legacy_key = LEGACY_PREFIX + self.instance_id
        if isinstance(self.client, RedisCluster):
            members = await self.client.eval(BEAT_SCRIPT, 1, INSTANCES_KEY, self.instance_id, self.ttl_ms)
            # the probe must cover every shard the counters live on, not only the set's
            await self.client.ping(target_nodes=RedisCluster.PRIMARIES)
            if self.legacy_keys:
                await self.client.set(legacy_key, "1", px=self.ttl_ms)
        else:  # one server: the script and the old key in one round trip
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.eval(BEAT_SCRIPT, 1, INSTANCES_KEY, self.instance_id, self.ttl_ms)
                if self.legacy_keys:
                    pipe.set(legacy_key, "1", px=self.ttl_ms)
                members = (await pipe.execute())[0]
        live = {_text(m) for m in members}
        if self.legacy_keys:
            async for key in self.client.scan_iter(match=LEGACY_PREFIX + "*", count=1000):
                live.add(_text(key).removeprefix(LEGACY_PREFIX))
        self.instances = max(1, len(live))
        return self.instances

    async def leave(self) -> None:
        """Remove our member (and key) on a clean shutdown so the others' share grows at once."""
        await self.client.eval(LEAVE_SCRIPT, 1, INSTANCES_KEY, self.instance_id)
        if self.legacy_keys:
            await self.client.delete(LEGACY_PREFIX + self.instance_id)
