"""The response cache of one gateway process: store, versions, collapsing, invalidation feed.

Built by the server from the top-level ``cache:`` section, started before the listeners and
closed after them; the cache filter, the admin purge endpoints and the write path share it.
"""

from __future__ import annotations

import logging

from gateway import metrics
from gateway.cache.backends import CacheBackend, CacheBackendError, MemoryBackend
from gateway.cache.collapse import Collapser
from gateway.cache.entry import Entry
from gateway.cache.invalidation import Invalidator
from gateway.cache.keys import CacheKey, VersionKeys
from gateway.cache.listener import EventListener
from gateway.cache.policy import CacheConfig
from gateway.cache.redis_backend import RedisBackend

log = logging.getLogger("gateway.cache")


class Lookup:
    """What the store holds for a key right now: current versions and a usable entry (or None).

    ``invalidated`` is True when an entry exists but was stored under other versions.
    """

    __slots__ = ("entry", "invalidated", "versions")

    def __init__(self, versions: tuple[int, ...], entry: Entry | None, invalidated: bool) -> None:
        self.versions = versions
        self.entry = entry
        self.invalidated = invalidated


class ResponseCache:
    """``await start()`` (subscribes to the event feed), ``await aclose()``."""

    def __init__(self, config: CacheConfig, *, backend: CacheBackend | None = None) -> None:
        self.config = config
        self.keys = VersionKeys(config.key_prefix)
        if backend is None and config.backend == "redis" and config.redis_url:
            backend = RedisBackend(config.redis_url, all_key=self.keys.all,
                                   socket_timeout=config.socket_timeout)
        if backend is None:
            backend = MemoryBackend(config.memory_max_bytes)
        self.backend: CacheBackend = backend
        self.invalidator = Invalidator(backend, self.keys)
        self.collapser = Collapser()
        self.listener = (EventListener(config.events_redis_url, config.events_channel, self.invalidator)
                         if config.events_redis_url else None)
        metrics.CACHE_EVENTS_CONNECTED.set(1 if self.listener is None else 0)
        metrics.register_gauge_source(self)

    @property
    def usable(self) -> bool:
        """False while the configured event feed is down: changes could be missed."""
        return self.listener is None or self.listener.connected

    async def start(self) -> None:
        if self.listener is not None:
            self.listener.start()

    async def aclose(self) -> None:
        if self.listener is not None:
            await self.listener.aclose()
        await self.backend.aclose()

    async def lookup(self, key: CacheKey) -> Lookup:
        """One round trip; raises CacheBackendError (counted)."""
        try:
            versions, raw = await self.backend.lookup(key.entry, key.versions)
        except CacheBackendError:
            metrics.CACHE_BACKEND_ERRORS.labels(operation="lookup").inc()
            raise
        if raw is None:
            return Lookup(versions, None, False)
        try:
            entry = Entry.decode(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("undecodable cache entry %s dropped", key.entry)
            return Lookup(versions, None, False)
        if entry.versions != versions:
            return Lookup(versions, None, True)
        return Lookup(versions, entry, False)

    async def store(self, key: CacheKey, entry: Entry, keep_for: float) -> bool:
        """Store; False (counted) when the store failed — the answer is still served."""
        try:
            await self.backend.store(key.entry, entry.encode(), keep_for)
        except CacheBackendError:
            metrics.CACHE_BACKEND_ERRORS.labels(operation="store").inc()
            return False
        return True

    async def try_refresh_lock(self, key: CacheKey, ttl: float) -> bool:
        """One background refresh per key across instances (Redis ``SET NX PX``)."""
        try:
            return await self.backend.try_lock(f"{self.config.key_prefix}lock:{key.entry}", ttl)
        except CacheBackendError:
            metrics.CACHE_BACKEND_ERRORS.labels(operation="lock").inc()
            return False

    def publish_gauges(self) -> None:
        size = self.backend.byte_size()
        if size is not None:
            metrics.CACHE_BYTES.set(size)
