"""Where entries and version counters live: a small interface, an in-memory LRU, and Redis.

* :class:`MemoryBackend` — one gateway process; bounded in bytes (LRU eviction); versions in a dict.
* :class:`RedisBackend` (``gateway.cache.redis_backend``) — shared by every gateway instance.

Backend failures raise :class:`CacheBackendError`; the cache filter then bypasses the cache.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from typing import Protocol

from gateway import metrics
from gateway.errors import GatewayError

#: Current versions of an entry's counters and the entry's bytes (None: nothing stored).
Found = tuple[tuple[int, ...], bytes | None]
#: Bookkeeping per memory entry (key object, tuple, dict slot) counted against the byte bound.
ENTRY_OVERHEAD = 160


class CacheBackendError(GatewayError):
    """The cache store failed (Redis unreachable, timed out, answered an error)."""


class CacheBackend(Protocol):
    """Entries (opaque bytes with a time to live) and monotonically increasing version counters."""

    async def lookup(self, entry_key: str, version_keys: Sequence[str]) -> Found:
        """Current versions (0 when unset) and the stored bytes, in one round trip."""
        ...

    async def versions(self, version_keys: Sequence[str]) -> tuple[int, ...]: ...

    async def store(self, entry_key: str, data: bytes, ttl: float) -> None: ...

    async def delete(self, entry_key: str) -> bool: ...

    async def bump(self, version_keys: Sequence[str]) -> None:
        """Increment every counter (entries stored under the old values become unreachable)."""
        ...

    async def try_lock(self, name: str, ttl: float) -> bool:
        """True for exactly one caller until ``ttl`` seconds pass (background refresh election)."""
        ...

    def byte_size(self) -> int | None:
        """Bytes held in this process (None for a remote store)."""
        ...

    async def aclose(self) -> None: ...


class MemoryBackend:
    """LRU over entries, bounded by ``max_bytes`` (body + key + overhead); expired entries drop on read."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: collections.OrderedDict[str, tuple[bytes, float]] = collections.OrderedDict()
        self._versions: dict[str, int] = {}
        self._base = 0  # added to every counter; raised past every value when the dict is trimmed
        self._locks: dict[str, float] = {}
        self._bytes = 0

    @staticmethod
    def _cost(key: str, data: bytes) -> int:
        return len(key) + len(data) + ENTRY_OVERHEAD

    def _drop(self, key: str) -> bool:
        item = self._entries.pop(key, None)
        if item is None:
            return False
        self._bytes -= self._cost(key, item[0])
        return True

    async def versions(self, version_keys: Sequence[str]) -> tuple[int, ...]:
        return tuple(self._base + self._versions.get(k, 0) for k in version_keys)

    async def lookup(self, entry_key: str, version_keys: Sequence[str]) -> Found:
        versions = await self.versions(version_keys)
        item = self._entries.get(entry_key)
        if item is None:
            return versions, None
        if item[1] <= time.monotonic():
            self._drop(entry_key)
            return versions, None
        self._entries.move_to_end(entry_key)
        return versions, item[0]

    async def store(self, entry_key: str, data: bytes, ttl: float) -> None:
        cost = self._cost(entry_key, data)
        if cost > self.max_bytes:
            return
        self._drop(entry_key)
        while self._entries and self._bytes + cost > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            metrics.CACHE_EVICTIONS.inc()
        self._entries[entry_key] = (data, time.monotonic() + ttl)
        self._bytes += cost

    async def delete(self, entry_key: str) -> bool:
        return self._drop(entry_key)

    async def bump(self, version_keys: Sequence[str]) -> None:
        for key in version_keys:
            self._versions[key] = self._versions.get(key, 0) + 1
        if len(self._versions) > 100_000:  # order ids accumulate: forget them all, safely —
            self._base += max(self._versions.values()) + 1  # every counter now differs from any
            self._versions.clear()                          # value an entry was stored under

    async def try_lock(self, name: str, ttl: float) -> bool:
        now = time.monotonic()
        if self._locks.get(name, 0.0) > now:
            return False
        if len(self._locks) > 10_000:
            self._locks = {k: t for k, t in self._locks.items() if t > now}
        self._locks[name] = now + ttl
        return True

    def byte_size(self) -> int | None:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def aclose(self) -> None:
        self._entries.clear()
        self._bytes = 0
