"""The shared store: every gateway instance reads and writes the same Redis.

A hit costs one round trip: ``MGET <versions>`` and ``GET <entry>`` in one pipeline. Calls
have short timeouts and no retries: a dead Redis costs one timeout per request, then the filter
serves from the MES. After any failure the store is *dirty*: a bump may have been lost while
Redis was away, so the first call that succeeds again bumps ``v:all`` before answering.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from gateway.cache.backends import CacheBackendError, Found
from sharedstate.redis_spec import parse_redis_spec

_ERRORS = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)  # Cluster: no seed reachable
#: Version keys expire a day after their last bump (order ids would pile up otherwise). Entries
#: live at most ``MAX_KEEP_FOR`` (< this), so a counter that expires back to 0 can no longer
#: match an entry stored before its last bump.
VERSION_TTL_S = 2 * 86400


class RedisBackend:
    """Entries as strings with ``EX``; versions as integer keys (``INCR``)."""

    def __init__(self, url: str, *, all_key: str, socket_timeout: float = 0.25) -> None:
        self.client = parse_redis_spec(url, "cache.redis_url").client(
            socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0), health_check_interval=0, max_connections=256)
        self._all_key = all_key
        self._dirty = False

    async def _clean(self) -> None:
        if self._dirty:
            await self.client.incr(self._all_key)
            self._dirty = False

    def _failed(self, exc: BaseException) -> CacheBackendError:
        self._dirty = True
        return CacheBackendError(f"redis: {type(exc).__name__}: {exc}")

    async def lookup(self, entry_key: str, version_keys: Sequence[str]) -> Found:
        try:
            await self._clean()
            pipe = self.client.pipeline(transaction=False)
            # MGET by name: redis-py's cluster pipeline refuses .mget() although the counters are
            # in one slot ({v}); the entry may be on another node (docs/redis.md, "Cache")
            pipe.execute_command("MGET", *version_keys)
            pipe.get(entry_key)
            raw_versions, raw = await pipe.execute()
        except _ERRORS as exc:
            raise self._failed(exc) from None
        return tuple(int(v) if v is not None else 0 for v in raw_versions), raw

    async def versions(self, version_keys: Sequence[str]) -> tuple[int, ...]:
        try:
            await self._clean()
            raw = await self.client.mget(version_keys)
        except _ERRORS as exc:
            raise self._failed(exc) from None
        return tuple(int(v) if v is not None else 0 for v in raw)

    async def store(self, entry_key: str, data: bytes, ttl: float) -> None:
        try:
            await self.client.set(entry_key, data, px=max(1, int(ttl * 1000)))
        except _ERRORS as exc:
            raise self._failed(exc) from None

    async def delete(self, entry_key: str) -> bool:
        try:
            return bool(await self.client.delete(entry_key))
        except _ERRORS as exc:
            raise self._failed(exc) from None

    async def bump(self, version_keys: Sequence[str]) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in version_keys:
                pipe.incr(key)
                pipe.expire(key, VERSION_TTL_S)
            await pipe.execute()
        except _ERRORS as exc:
            raise self._failed(exc) from None

    async def try_lock(self, name: str, ttl: float) -> bool:
        try:
            return bool(await self.client.set(name, b"1", nx=True, px=max(1, int(ttl * 1000))))
        except _ERRORS as exc:
            raise self._failed(exc) from None

    def byte_size(self) -> int | None:
        return None

    async def aclose(self) -> None:
        with contextlib.suppress(*_ERRORS):  # a Cluster client that never reached a seed raises here
            await self.client.aclose()
