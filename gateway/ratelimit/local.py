"""Per-instance counters (``limits`` MemoryStorage): the embedded default and the degraded mode.

In degraded mode each instance enforces its share of every window, ``max(1, amount // n)``
with ``n`` the number of live gateway instances last seen in Redis, so the fleet as a whole
stays near the configured limit while Redis is away.
"""

from __future__ import annotations

import time

from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from gateway.ratelimit.decision import Decision
from gateway.ratelimit.policy import Window


class LocalWindows:
    """``test`` every window, then ``hit`` every window: no await suspends in between (memory)."""

    def __init__(self) -> None:
        self._storage = MemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)

    async def hit(self, windows: tuple[Window, ...], ids: tuple[tuple[str, ...], ...], *,
                  share: int = 1) -> Decision:
        """Like ``SharedWindows.hit`` with every amount divided by ``share``."""
        items = [w.item if share <= 1 else
                 type(w.item)(max(1, w.amount // share), w.item.multiples, namespace=w.item.namespace)
                 for w in windows]
        allowed = True
        for item, identifiers in zip(items, ids, strict=True):
            if not await self._limiter.test(item, *identifiers):
                allowed = False
                break
        if allowed:
            for item, identifiers in zip(items, ids, strict=True):
                await self._limiter.hit(item, *identifiers)
        now = time.time()
        remaining, reset_in = [], []
        for item, identifiers in zip(items, ids, strict=True):
            stats = await self._limiter.get_window_stats(item, *identifiers)
            remaining.append(stats.remaining)
            reset_in.append(max(0.0, stats.reset_time - now))
        return Decision(allowed, windows, tuple(remaining), tuple(reset_in))
