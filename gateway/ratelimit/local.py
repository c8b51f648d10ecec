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
        self._shares: dict[tuple[tuple[Window, ...], int], tuple[Window, ...]] = {}

    def shares(self, windows: tuple[Window, ...], share: int) -> tuple[Window, ...]:
        """``windows`` with every amount divided by ``share`` (the same tuple object per input)."""
        if share <= 1:
            return windows
        found = self._shares.get((windows, share))
        if found is None:
            found = tuple(Window(w.name, type(w.item)(max(1, w.amount // share), w.item.multiples,
                                                      namespace=w.item.namespace)) for w in windows)
            if len(self._shares) > 10_000:  # partners x routes x instance counts: bounded
                self._shares.clear()
            self._shares[(windows, share)] = found
        return found

    async def hit(self, windows: tuple[Window, ...], ids: tuple[tuple[str, ...], ...], *,
                  share: int = 1) -> Decision:
        """Like ``SharedWindows.hit`` with every amount divided by ``share``.

        The decision names the windows actually enforced (the shares), so the ``RateLimit-Policy``
        and ``RateLimit`` fields built from it state the local limits, not the shared quota.
        """
        enforced = self.shares(windows, share)
        items = [w.item for w in enforced]
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
        return Decision(allowed, enforced, tuple(remaining), tuple(reset_in))
