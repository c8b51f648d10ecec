"""Reads the queue's state from Redis and publishes it as gauges (the gateway runs the probe)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from legacy_adapters import metrics
from legacy_adapters.queue import PricingQueue, now_ms
from legacy_adapters.redis_keys import GROUP

log = logging.getLogger("legacy_adapters.queue_state")
WORKER_ALIVE_MS = 30_000


@dataclass(frozen=True, slots=True)
class QueueState:
    """One reading; ``depth`` is what the backlog bound is compared with."""

    depth: int
    delayed: int
    in_flight: int
    oldest_age_seconds: float
    dead: int
    workers_alive: int
    model_bytes: int = 0


async def read_queue_state(queue: PricingQueue) -> QueueState:
    """One pipelined round trip (XLEN, ZCARD x2, XRANGE first, XPENDING summary, ZCOUNT, GET)."""
    k = queue.keys
    now = now_ms()
    async with queue.redis.pipeline(transaction=False) as pipe:
        pipe.xlen(k.stream)
        pipe.zcard(k.delayed)
        pipe.xrange(k.stream, count=1)
        pipe.xpending(k.stream, GROUP)
        pipe.zcard(k.dead)
        pipe.zcount(k.workers, now - WORKER_ALIVE_MS, "+inf")
        pipe.get(k.model_bytes)
        stream_len, delayed, first, pending, dead, alive, model_bytes = await pipe.execute()
    oldest = 0.0
    if first:
        entry_id = first[0][0].decode() if isinstance(first[0][0], bytes) else str(first[0][0])
        oldest = max(0.0, (now - int(entry_id.split("-")[0])) / 1000)
    return QueueState(depth=int(stream_len) + int(delayed), delayed=int(delayed),
                      in_flight=int(pending["pending"]), oldest_age_seconds=oldest, dead=int(dead),
                      workers_alive=int(alive), model_bytes=int(model_bytes or 0))


def publish(state: QueueState, bound: int) -> None:
    """Set the ``pricing_queue_*`` gauges."""
    metrics.QUEUE_DEPTH.set(state.depth)
    metrics.QUEUE_DELAYED.set(state.delayed)
    metrics.QUEUE_IN_FLIGHT.set(state.in_flight)
    metrics.QUEUE_OLDEST_AGE.set(state.oldest_age_seconds)
    metrics.DEAD_LETTER_JOBS.set(state.dead)
    metrics.WORKERS_ALIVE.set(state.workers_alive)
    metrics.BACKLOG_BOUND.set(bound)
    metrics.MODEL_STORE_BYTES.set(state.model_bytes)


async def probe_forever(queue: PricingQueue, bound: int, interval: float = 5.0) -> None:
    """Publish the state every ``interval`` s until cancelled; Redis errors are counted, not raised."""
    metrics.BACKLOG_BOUND.set(bound)
    while True:
        try:
            publish(await read_queue_state(queue), bound)
        except (RedisError, OSError) as exc:
            metrics.PROBE_ERRORS.inc()
            log.warning("pricing queue probe failed: %s", exc, extra={"event.action": "pricing-probe"})
        await asyncio.sleep(interval)
