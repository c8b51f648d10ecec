"""The legacy MES side of the CRM queue: Redis Stream ``crm:orders``, consumer group ``mes``.

Each entry becomes an order created idempotently (``source='crm'``,
``external_ref`` = CRM order id); XACK only after the database commit, so a
crash between the two redelivers the entry and the unique key absorbs it.
Stale pending entries of crashed consumers are claimed (XAUTOCLAIM) at start and
periodically. Poison entries go to ``crm:orders:dead`` with the reason, then are
acked. Like the legacy, there is NO backpressure: it reads as fast as it can.

Each entry is processed inside a CONSUMER span whose parent is the CRM's PRODUCER span (the
envelope's ``traceparent``; none → a new trace), and with ``order.id`` bound once known, so the
order-creation and queue-read log lines carry the order's trace id and order id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis
import redis.exceptions
from opentelemetry.trace import TracerProvider

from contracts.crm_envelope import DEAD_LETTER_STREAM, STREAM, PoisonMessage, parse_message
from contracts.crm_queue import ConsumerStats, dead_letter_fields
from legacy_sim import metrics
from legacy_sim.events import log_event, since_ns
from legacy_sim.http_context import bind_order_id
from legacy_sim.mes import orders_repo
from legacy_sim.problem import STORE_ERRORS, log_store_error
from sharedstate.errors import REDIS_ERRORS
from telemetry import consumer_span

logger = logging.getLogger("legacy_sim.mes.crm_consumer")

Entry = tuple[bytes, Mapping[bytes, bytes] | None]


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsumerConfig:
    """Stream, group and pacing of one consumer (``consumer`` = the MES instance id)."""

    consumer: str
    stream: str = STREAM
    group: str = "mes"
    dead_letter_stream: str = DEAD_LETTER_STREAM
    batch: int = 100
    block_ms: int = 1000
    reclaim_idle_ms: int = 60_000
    reclaim_every_s: float = 30.0
    retry_backoff_s: float = 1.0


class CrmConsumer:
    """Moves CRM orders from the stream into the MES database."""

    def __init__(self, client: aioredis.Redis, pool: asyncpg.Pool, config: ConsumerConfig, *,
                 tracer_provider: TracerProvider | None = None) -> None:
        self._redis = client
        self._pool = pool
        self.config = config
        self._tracer_provider = tracer_provider
        self.stats = ConsumerStats()  # also logged per entry
        self._own_pending = True  # re-read our own pending entries (start-up, after a failure)

    async def ensure_group(self) -> None:
        """Create the consumer group (from the stream's start) unless it exists."""
        try:
            await self._redis.xgroup_create(self.config.stream, self.config.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        """Consume forever (cancel the task to stop); Redis/DB outages are waited out."""
        next_reclaim = 0.0
        while True:
            try:
                if time.monotonic() >= next_reclaim:
                    await self.ensure_group()
                    await self.reclaim_stale()
                    next_reclaim = time.monotonic() + self.config.reclaim_every_s
                await self.poll(block_ms=self.config.block_ms)
            except REDIS_ERRORS as exc:
                # e.g. Redis restarted (NOGROUP) or unreachable: re-create the group, re-read own pending
                metrics.CRM_QUEUE_READS.labels(outcome="failure").inc()
                log_store_error(logger, exc, f"CRM queue read failed: {exc}",
                                {"messaging.destination.name": self.config.stream})
                self._own_pending = True
                next_reclaim = 0.0
                await asyncio.sleep(self.config.retry_backoff_s)
            except Exception as exc:  # a bug must not silently end the consumer task
                logger.exception("CRM consumer internal error: %s", exc.__class__.__name__,
                                 extra={"event.action": "internal-error", "event.outcome": "failure"})
                self._own_pending = True
                await asyncio.sleep(self.config.retry_backoff_s)

    async def run_until_idle(self) -> None:
        """Process own pending, stale and new entries until the stream has nothing left (tests, tools)."""
        await self.ensure_group()
        await self.reclaim_stale()
        while True:
            read_new = not self._own_pending
            if not await self.poll(block_ms=None) and read_new and not self._own_pending:
                return

    async def reclaim_stale(self) -> int:
        """Claim entries idle for ``reclaim_idle_ms`` from any consumer (XAUTOCLAIM) and process them."""
        cursor, handled = "0-0", 0
        while True:
            reply: Any = await self._redis.xautoclaim(
                self.config.stream, self.config.group, self.config.consumer, self.config.reclaim_idle_ms,
                start_id=cursor, count=self.config.batch)
            cursor, entries = reply[0], reply[1]
            if entries:
                log_event(logger, f"reclaimed {len(entries)} stale entries", action="crm-queue-reclaim",
                          fields={"messaging.batch.message_count": len(entries)})
                await self._handle_batch(entries)
                handled += len(entries)
            if cursor in (b"0-0", "0-0"):
                return handled

    async def poll(self, *, block_ms: int | None) -> int:
        """Read one batch (own pending first when due, else new entries) and process it."""
        start_id = "0" if self._own_pending else ">"
        reply = await self._redis.xreadgroup(self.config.group, self.config.consumer,
                                             {self.config.stream: start_id}, count=self.config.batch,
                                             block=None if start_id == "0" else block_ms)
        entries: Sequence[Entry] = _entries_of(reply)
        if start_id == "0" and not entries:
            self._own_pending = False
        if entries:
            await self._handle_batch(entries)
        return len(entries)

    async def _handle_batch(self, entries: Sequence[Entry]) -> None:
        # no backpressure: the whole batch hits the database at once
        results = await asyncio.gather(*(self._handle(entry_id, fields) for entry_id, fields in entries))
        if not all(results):
            self._own_pending = True
            await asyncio.sleep(self.config.retry_backoff_s)

    async def _handle(self, entry_id: bytes, fields: Mapping[bytes, bytes] | None) -> bool:
        """Process one entry in its CONSUMER span; False means "keep it pending and retry later".

        Runs as its own task (``asyncio.gather``), so the ``order.id`` bound here stays with this entry.
        """
        msg_id = entry_id.decode()
        if not fields:  # trimmed or deleted from the stream while pending: nothing left to do
            await self._redis.xack(self.config.stream, self.config.group, entry_id)
            return True
        attributes = {"messaging.system": "redis", "messaging.destination.name": self.config.stream,
                      "messaging.operation.type": "process", "messaging.message.id": msg_id,
                      "messaging.consumer.group.name": self.config.group}
        with consumer_span(f"{self.config.stream} process", fields, attributes=attributes,
                           tracer_provider=self._tracer_provider):
            return await self._process(entry_id, fields)

    async def _process(self, entry_id: bytes, fields: Mapping[bytes, bytes]) -> bool:
        started = time.perf_counter_ns()
        msg_id = entry_id.decode()
        try:
            message = parse_message(dict(fields))
        except PoisonMessage as exc:
            await self._dead_letter(entry_id, fields, str(exc))
            return True
        try:
            row, created = await orders_repo.create_order(self._pool, message.order, source="crm")
        except STORE_ERRORS as exc:
            self.stats.failures += 1
            metrics.CRM_QUEUE_READS.labels(outcome="failure").inc()
            log_store_error(logger, exc, f"entry {msg_id} not stored, will retry: {exc}",
                            {"messaging.message.id": msg_id, "crm.order_id": message.crm_order_id})
            log_event(logger, f"CRM order {message.crm_order_id} stays queued (entry {msg_id} pending)",
                      action="crm-queue-read", outcome="failure", duration_ns=since_ns(started),
                      level=logging.ERROR,
                      fields={"messaging.message.id": msg_id, "crm.order_id": message.crm_order_id,
                              "error.type": exc.__class__.__name__})
            return False
        bind_order_id(row["id"])
        await self._redis.xack(self.config.stream, self.config.group, entry_id)
        if created:
            self.stats.created += 1
        else:
            self.stats.duplicates += 1
        metrics.CRM_QUEUE_READS.labels(outcome="created" if created else "duplicate").inc()
        log_event(logger, f"CRM order {message.crm_order_id} -> MES order {row['id']}",
                  action="crm-queue-read", duration_ns=since_ns(started),
                  fields={"messaging.message.id": msg_id, "crm.order_id": message.crm_order_id,
                          "order.id": row["id"], "order.duplicate": not created})
        return True

    async def _dead_letter(self, entry_id: bytes, fields: Mapping[bytes, bytes], reason: str) -> None:
        dead = dead_letter_fields(fields, reason=reason, entry_id=entry_id, consumer=self.config.consumer)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.config.dead_letter_stream, dead)
            pipe.xack(self.config.stream, self.config.group, entry_id)
            await pipe.execute()
        self.stats.dead_lettered += 1
        metrics.CRM_QUEUE_READS.labels(outcome="dead_letter").inc()
        log_event(logger, f"entry {entry_id.decode()} dead-lettered: {reason}",
                  action="crm-queue-dead-letter", outcome="failure", level=logging.WARNING,
                  fields={"messaging.message.id": entry_id.decode(), "error.message": reason})


def _entries_of(reply: Any) -> list[Entry]:
    """Entries of a single-stream XREADGROUP reply (RESP2 list or RESP3 dict shape)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(next(iter(reply.values())))
    return list(reply[0][1])
