"""The CRM's inbound status queue: applies ``crm:orders:status`` entries to its order records.

Runs as a task of the CRM app, reading as consumer group ``crm`` (so a restart resumes where it
stopped, and its own pending entries are re-read first). Each ``DELIVERED`` entry sets the
order's ``status``, ``mes_order_id`` and ``delivered_at``; then the entry is acknowledged.
Entries for orders this CRM never had, and entries it cannot read, are counted, logged and
acknowledged (they would never apply). A Redis outage is logged once, counted, and waited out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import redis.exceptions

from contracts.crm_status import DELIVERED, InvalidStatus, parse_status
from legacy_sim import metrics
from legacy_sim.crm.intake import ORDER_KEY_PREFIX
from legacy_sim.events import log_event
from legacy_sim.problem import log_store_error
from sharedstate.errors import REDIS_ERRORS
from sharedstate.redis_spec import AnyRedis

logger = logging.getLogger("legacy_sim.crm.status")

STATUS_GROUP = "crm"


def _entries(reply: Any) -> list[tuple[bytes, Mapping[bytes, bytes] | None]]:
    """XREADGROUP's one-stream answer: ``[[stream, entries]]`` (RESP2) or ``{stream: [entries]}`` (RESP3)."""
    if not reply:
        return []
    raw = next(iter(reply.values()))[0] if isinstance(reply, dict) else reply[0][1]
    return [(entry_id, fields or None) for entry_id, fields in raw]


def _cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class StatusIntake:
    """Moves delivery statuses from the status stream into the CRM's order hashes."""

    def __init__(self, client: AnyRedis, *, stream: str, consumer: str = "crm-1",
                 block_ms: int = 1000, retry_backoff_s: float = 1.0) -> None:
        self._redis = client
        self.stream = stream
        self.consumer = consumer
        self._block_ms = block_ms
        self._backoff = retry_backoff_s
        self._own_pending = True
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Let :meth:`run` return after the current read (at most ``block_ms`` later). Stopping by
        cancellation alone is not enough: redis-py's cluster client may turn the cancellation of a
        blocking ``XREADGROUP`` into a ``ConnectionError``, which looked like an outage here, so the
        task read on forever and the app's shutdown hung with it."""
        self._stopping.set()

    async def run(self) -> None:
        """Apply statuses until :meth:`stop` (an outage is logged when it starts and when it ends)."""
        failing = False
        while not self._stopping.is_set():
            try:
                await self._ensure_group()
                while not self._stopping.is_set():
                    await self.poll()
                    if failing:
                        failing = False
                        log_event(logger, "CRM status queue readable again", action="crm-status-update",
                                  fields={"messaging.destination.name": self.stream})
            except REDIS_ERRORS as exc:  # RedisClusterException too: no seed of a Cluster answers
                if _cancelled():  # a cancellation that redis-py turned into a connection error
                    raise asyncio.CancelledError from exc
                metrics.CRM_STATUS_UPDATES.labels(outcome="failure").inc()
                if not failing:
                    failing = True
                    log_store_error(logger, exc, f"CRM status queue read failed (retried): {exc}",
                                    {"messaging.destination.name": self.stream})
                self._own_pending = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._backoff)

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self.stream, STATUS_GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def poll(self) -> int:
        """Read and apply one batch (own pending entries first after a start or a failure)."""
        start = "0" if self._own_pending else ">"
        reply: Any = await self._redis.xreadgroup(STATUS_GROUP, self.consumer, {self.stream: start},
                                                  count=100, block=None if start == "0" else self._block_ms)
        entries = _entries(reply)
        if start == "0" and not entries:
            self._own_pending = False
        for entry_id, fields in entries:
            if fields:
                await self._apply(fields)
            await self._redis.xack(self.stream, STATUS_GROUP, entry_id)
        return len(entries)

    async def _apply(self, fields: Mapping[bytes, bytes]) -> None:
        try:
            status = parse_status(fields)
        except InvalidStatus as exc:
            metrics.CRM_STATUS_UPDATES.labels(outcome="invalid").inc()
            log_event(logger, f"status entry skipped: {exc}", action="crm-status-update", outcome="failure",
                      level=logging.WARNING, fields={"error.message": str(exc)[:500]})
            return
        key = ORDER_KEY_PREFIX + status.crm_order_id
        fields_of = {"crm.order_id": status.crm_order_id, "order.id": status.mes_order_id}
        if not await self._redis.exists(key):  # orders are never deleted: no race with the HSET
            metrics.CRM_STATUS_UPDATES.labels(outcome="unknown_order").inc()
            log_event(logger, f"status for unknown CRM order {status.crm_order_id} skipped",
                      action="crm-status-update", outcome="failure", level=logging.WARNING, fields=fields_of)
            return
        await self._redis.hset(key, mapping={"status": DELIVERED, "mes_order_id": str(status.mes_order_id),
                                             "delivered_at": status.delivered_at})
        metrics.CRM_STATUS_UPDATES.labels(outcome="delivered").inc()
        log_event(logger, f"CRM order {status.crm_order_id} delivered as MES order {status.mes_order_id}",
                  action="crm-status-update", fields={**fields_of, "crm.delivered_by": status.delivered_by})
