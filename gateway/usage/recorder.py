"""Counts partner events on the hot path in memory; a background task adds them to the store.

- **Hot path**: :meth:`UsageRecorder.count` adds one to a local cell (partner, UTC day, kind):
  no I/O, no await. Requests never wait for Redis.
- **Flush**: every ``usage.flush_interval`` the local cells become one *batch* with a sequence
  number; each partner's share of it is one script call (``sharedstate.usage_counts``) that
  applies it only if that number is above the last one applied for this recorder. A batch whose
  reply was lost is retried as is and applied once: the counts in Redis are exact.
- **Degraded** (Redis away): the batch stays here and is retried each interval; new events keep
  adding up in memory (bounded by ``usage.max_pending_cells`` cells, beyond that dropped and
  counted in ``gateway_usage_lost_total{reason="backlog_full"}``). Requests are served as usual.
  A graceful stop flushes; what cannot be flushed then is lost and counted (``reason="shutdown"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from typing import Any

from gateway import metrics
from gateway.usage.config import UsageConfig
from gateway.usage.store import UsageStore, open_usage_store
from resilience.cancellation import cancel_and_wait, stop_requested
from sharedstate.errors import REDIS_ERRORS
from sharedstate.usage_counts import DAY, day_of

log = logging.getLogger("gateway.usage")
Cell = tuple[str, str, str]  # partner, day, kind


class UsageRecorder:
    """Start with ``await start()``, stop with ``await aclose()`` (flushes); ``count`` is the hot path."""

    def __init__(self, config: UsageConfig, *, store: UsageStore | None = None,
                 writer: str | None = None) -> None:
        self.config = config
        self.store = store if store is not None else open_usage_store(config)
        self.writer = writer or uuid.uuid4().hex  # one per process lifetime: its batches' sequence
        self._pending: dict[Cell, int] = defaultdict(int)
        self._batch: dict[str, dict[str, dict[str, int]]] | None = None  # partner → day → kind → n
        self._seq = 0
        self._day, self._day_ends = "", 0.0
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._counted: dict[str, Any] = {}  # kind → its metric child (no labels() lookup per event)

    # ---------------------------------------------------------------- hot path

    def count(self, partner: str, kind: str, n: int = 1) -> None:
        """Count ``n`` events of ``kind`` for ``partner`` today (UTC)."""
        now = time.time()
        if now >= self._day_ends:
            self._day, self._day_ends = day_of(now), (now // DAY + 1) * DAY
        cell = (partner, self._day, kind)
        if cell not in self._pending and len(self._pending) >= self.config.max_pending_cells:
            metrics.USAGE_LOST.labels(reason="backlog_full").inc(n)
            return
        self._pending[cell] += n
        counted = self._counted.get(kind)
        if counted is None:
            counted = self._counted[kind] = metrics.USAGE_COUNTED.labels(kind=kind)
        counted.inc(n)

    # ---------------------------------------------------------------- background

    async def start(self) -> None:
        metrics.USAGE_PENDING.set(0)
        self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def aclose(self, *, within: float = 5.0) -> None:
        """Stop the flusher, then flush what is left (bounded); what stays unflushed is counted lost."""
        if not await cancel_and_wait(self._task, within=within):
            log.error("usage: the flusher did not stop within %.1f s", within,
                      extra={"event.action": "usage-stop"})
        self._task = None
        deadline = time.monotonic() + within
        while self.pending_events and time.monotonic() < deadline:
            if not await self.flush():
                await asyncio.sleep(min(0.2, self.config.flush_interval))
        if lost := self.pending_events:
            metrics.USAGE_LOST.labels(reason="shutdown").inc(lost)
            log.error("usage: %d events could not be written before shutdown", lost,
                      extra={"event.action": "usage-lost", "usage.events": lost})
        await self.store.aclose()

    @property
    def pending_events(self) -> int:
        batch = sum(n for days in (self._batch or {}).values() for kinds in days.values()
                    for n in kinds.values())
        return batch + sum(self._pending.values())

    async def flush(self) -> bool:
        """Write the unacknowledged batch (or cut a new one from the local cells); True if all went."""
        if self._batch is None:
            if not self._pending:
                return True
            self._batch, self._pending = _group(self._pending), defaultdict(int)
            self._seq += 1
        token = f"{self.writer}:{self._seq}"
        for partner in list(self._batch):
            try:
                applied = await self.store.add(partner, self._batch[partner], mode="seq", token=token)
            except REDIS_ERRORS as exc:
                metrics.USAGE_WRITES.labels(outcome="failed").inc()
                self._note_failure(partner, exc)
                return False
            metrics.USAGE_WRITES.labels(outcome="ok" if applied else "duplicate").inc()
            del self._batch[partner]
        self._batch = None
        if self._failing:
            self._failing = False
            log.warning("usage: writes to Redis recovered", extra={"event.action": "usage-recovered"})
        return True

    async def _flush_forever(self) -> None:
        while not stop_requested():  # a cancel redis-py swallowed (resilience/cancellation.py) ends it too
            await asyncio.sleep(self.config.flush_interval)
            with contextlib.suppress(*REDIS_ERRORS):
                await self.flush()
            metrics.USAGE_PENDING.set(self.pending_events)

    def _note_failure(self, partner: str, exc: BaseException) -> None:
        if not self._failing:  # logged once per outage, then counted
            self._failing = True
            log.error("usage: writing counts to Redis failed, kept locally and retried: %s",
                      type(exc).__name__, extra={"event.action": "usage-write-failed",
                                                 "gateway.partner": partner,
                                                 "usage.pending_events": self.pending_events})


def _group(cells: dict[Cell, int]) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for (partner, day, kind), n in cells.items():
        out.setdefault(partner, {}).setdefault(day, {})[kind] = n
    return out
