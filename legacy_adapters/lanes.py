"""Which layout (shard) a worker serves next, and which ones it leaves alone for a while.

A worker reads, reclaims, promotes and claims webhooks in every shard (``ShardedQueue.lanes``).
:class:`Lanes` gives them in the order of a pluggable :class:`LaneOrder` — :class:`RoundRobin`
by default: the pass after a shard gave work starts at the next one, so a shard flooded by one
owner gets one turn per pass like every other shard (a weighted order per partner tier would plug
in here). A shard whose Redis node fails (down, failing over, moving) is skipped with a growing
back-off while the others go on: a dead shard stops only its own owners.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

from legacy_adapters.queue import PricingQueue
from legacy_adapters.shards import ShardedQueue
from sharedstate.errors import REDIS_ERRORS

log = logging.getLogger("legacy_adapters.worker")


class LaneOrder(Protocol):
    """The order in which a pass serves the lanes."""

    def order(self, lanes: Sequence[PricingQueue]) -> list[PricingQueue]:
        """``lanes`` in the order to try them in this pass."""
        ...

    def served(self, lane: PricingQueue) -> None:
        """``lane`` gave work in this pass."""
        ...


class RoundRobin:
    """Start each pass after the lane that gave work last (one cursor per user)."""

    def __init__(self) -> None:
        self._last: str | None = None

    def order(self, lanes: Sequence[PricingQueue]) -> list[PricingQueue]:
        """Rotated to begin after the last served lane (from the first when it is gone)."""
        names = [lane.keys.prefix for lane in lanes]
        start = names.index(self._last) + 1 if self._last in names else 0
        return [*lanes[start:], *lanes[:start]]

    def served(self, lane: PricingQueue) -> None:
        """Remember where to start next."""
        self._last = lane.keys.prefix


class Lanes:
    """The lanes of one worker task: refreshed every ``refresh_s``, ordered, failing ones held back."""

    def __init__(self, queue: ShardedQueue, order: LaneOrder | None = None, *, refresh_s: float = 5.0,
                 what: str = "worker loop") -> None:
        self.queue = queue
        self.order = order or RoundRobin()
        self._refresh_s = refresh_s
        self._what = what
        self._known: list[PricingQueue] = list(queue.shards)
        self._refreshed = float("-inf")
        self._failing: dict[str, tuple[int, float]] = {}  # prefix → (failures in a row, retry at)

    async def current(self) -> list[PricingQueue]:
        """The lanes to try now, in this pass's order (an old layout joins while it exists)."""
        now = time.monotonic()
        if now - self._refreshed >= self._refresh_s:
            self._refreshed = now
            try:
                self._known = await self.queue.lanes()
            except REDIS_ERRORS as exc:  # keep the last known list
                log.warning("could not list the pricing queue's shards: %s", exc)
        return [lane for lane in self.order.order(self._known) if self._ready(lane, now)]

    def _ready(self, lane: PricingQueue, now: float) -> bool:
        failing = self._failing.get(lane.keys.prefix)
        return failing is None or failing[1] <= now

    def ok(self, lane: PricingQueue) -> None:
        """A call on ``lane`` succeeded: it is served normally again."""
        self._failing.pop(lane.keys.prefix, None)

    def failed(self, lane: PricingQueue, exc: BaseException) -> None:
        """A call on ``lane`` failed: skip it for 0.4, 0.8 … 10 s (others keep going)."""
        failures = self._failing.get(lane.keys.prefix, (0, 0.0))[0] + 1
        self._failing[lane.keys.prefix] = (failures, time.monotonic() + min(10.0, 0.2 * 2 ** failures))
        log.error("redis error in the %s (shard %s): %s", self._what, lane.keys.prefix, exc,
                  extra={"event.action": "pricing-redis-error", "error.type": type(exc).__name__})

    def wait_s(self) -> float:
        """Seconds until the next held-back lane may be tried (0 when none is held back)."""
        now = time.monotonic()
        return max(0.0, min((at for _n, at in self._failing.values()), default=now) - now)
