"""Where usage counts are kept: Redis (shared by every gateway instance and the pricing workers)
or this process's memory (one instance, tests). Both apply a write once per token."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Protocol

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.usage.config import UsageConfig
from sharedstate.errors import REDIS_ERRORS
from sharedstate.redis_spec import parse_redis_spec
from sharedstate.usage_counts import DayCounts, Mode, UsageCounts


class UsageStore(Protocol):
    async def add(self, partner: str, counts: DayCounts, *, mode: Mode, token: str) -> bool: ...

    async def read(self, partner: str, days: Sequence[str]) -> dict[str, dict[str, int]]: ...

    async def partners(self, days: Iterable[str]) -> dict[str, list[str]]: ...

    async def aclose(self) -> None: ...


class MemoryUsageStore:
    """One process's counts (no ``usage.redis_url``): same once-only semantics as Redis."""

    def __init__(self) -> None:
        self.days: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._seq: dict[tuple[str, str], int] = {}
        self._tokens: set[tuple[str, str]] = set()

    async def add(self, partner: str, counts: DayCounts, *, mode: Mode, token: str) -> bool:
        if mode == "seq":
            writer, _, number = token.rpartition(":")
            if int(number) <= self._seq.get((partner, writer), 0):
                return False
            self._seq[(partner, writer)] = int(number)
        elif (partner, token) in self._tokens:
            return False
        else:
            self._tokens.add((partner, token))
        for day, kinds in counts.items():
            for kind, n in kinds.items():
                if n:
                    self.days[(partner, day)][kind] += n
        return True

    async def read(self, partner: str, days: Sequence[str]) -> dict[str, dict[str, int]]:
        return {d: dict(self.days[(partner, d)]) for d in days if (partner, d) in self.days}

    async def partners(self, days: Iterable[str]) -> dict[str, list[str]]:
        wanted = set(days)
        out: dict[str, list[str]] = {d: [] for d in wanted}
        for partner, day in self.days:
            if day in wanted:
                out[day].append(partner)
        return {d: sorted(ps) for d, ps in out.items()}

    async def aclose(self) -> None:
        return None


class RedisUsageStore(UsageCounts):
    """The shared counts (``sharedstate.usage_counts``) on a client with short timeouts, no retries:
    the recorder keeps what a failed write held and tries again itself."""

    def __init__(self, config: UsageConfig) -> None:
        assert config.redis_url is not None
        spec = parse_redis_spec(config.redis_url, "usage.redis_url")
        t = config.socket_timeout
        super().__init__(spec.client(socket_timeout=t, socket_connect_timeout=t, retry=Retry(NoBackoff(), 0),
                                     health_check_interval=0),
                         prefix=config.key_prefix, retention_days=config.retention_days)

    async def aclose(self) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self.client.aclose()


def open_usage_store(config: UsageConfig) -> UsageStore:
    return RedisUsageStore(config) if config.redis_url else MemoryUsageStore()
