"""Circuit breaker: bound a cluster's in-flight requests and its wait queue.

Up to ``max_requests`` requests run at once; the next ``max_pending`` wait in FIFO
order for a slot; anything beyond is rejected at once with ``CircuitOpen`` (503,
never a hang). A waiter is bounded by the caller's overall deadline (the cluster
runs admission inside ``asyncio.timeout_at``). The per-endpoint connection limit
is enforced by aiohttp's connector (``limit_per_host``), not here.
"""

from __future__ import annotations

import asyncio
from collections import deque

from gateway import metrics
from gateway.errors import CircuitOpen
from gateway.upstreams.config import BreakerConfig

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Admission control for one cluster: ``try_acquire``/``wait`` then ``release``."""

    def __init__(self, cluster: str, config: BreakerConfig) -> None:
        self.cluster = cluster
        self.config = config
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._idle: asyncio.Event | None = None

    @property
    def pending(self) -> int:
        """Requests currently waiting for a slot."""
        return len(self._waiters)

    def try_acquire(self) -> bool:
        """Take a slot without waiting (the hot path); False if the caller must ``wait``."""
        if self.in_flight < self.config.max_requests and not self._waiters:
            self.in_flight += 1
            return True
        return False

    async def wait(self) -> None:
        """Queue for a slot, or raise ``CircuitOpen`` at once if the queue is full."""
        if len(self._waiters) >= self.config.max_pending:
            reason = "max_pending" if self.config.max_pending else "max_requests"
            metrics.CIRCUIT_BREAKER_REJECTIONS.labels(self.cluster, reason).inc()
            raise CircuitOpen(
                f"cluster {self.cluster!r}: {self.in_flight} requests in flight, "
                f"{len(self._waiters)} pending ({reason} reached)",
                retry_after=1.0,
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # a slot was handed over just as we were cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give the slot back, handing it straight to the oldest waiter if any."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # in_flight unchanged: the slot changes hands
                return
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no request is in flight (used to drain a retired cluster)."""
        if self.in_flight == 0:
            return
        if self._idle is None or self._idle.is_set():
            self._idle = asyncio.Event()
        await self._idle.wait()
