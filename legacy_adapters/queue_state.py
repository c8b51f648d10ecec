"""Reads the queue's state from Redis and publishes it as gauges (the gateway runs the probe)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from legacy_adapters import metrics
from legacy_adapters.queue import PricingQueue, now_ms
from legacy_adapters.redis_keys import GROUP
from legacy_adapters.shards import ShardedQueue
from resilience.cancellation import stop_requested
from sharedstate.errors import REDIS_ERRORS, closed_connection_as_connection_error

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


async def read_queue_state(queue: PricingQueue | ShardedQueue) -> QueueState:
    """Summed over every shard (and the unsharded layout while it exists): one pipelined round trip
    (per shard XLEN, ZCARD x2, XRANGE first, XPENDING summary, GET x2; once ZCOUNT of the workers). On a
    Cluster the pipeline sends each shard's commands to its node. A shard with jobs in its
    fair-scheduling lists costs one more call: their oldest counts in ``oldest_age_seconds``."""
    sharded = ShardedQueue.of(queue)
    lanes = await sharded.lanes()
    now = now_ms()
    async with sharded.redis.pipeline(transaction=False) as pipe:
        for lane in lanes:
            k = lane.keys
            pipe.xlen(k.stream)
            pipe.zcard(k.delayed)
            pipe.xrange(k.stream, count=1)
            pipe.xpending(k.stream, GROUP)
            pipe.zcard(k.dead)
            pipe.get(k.model_bytes)
            pipe.get(k.fair_waiting)
        pipe.zcount(sharded.keys.workers, now - WORKER_ALIVE_MS, "+inf")
        *per_lane, alive = await pipe.execute()
    depth = delayed_total = in_flight = dead_total = stored = 0
    oldest = 0.0
    for lane, i in zip(lanes, range(0, len(per_lane), 7), strict=True):
        stream_len, delayed, first, pending, dead, model_bytes, waiting = per_lane[i:i + 7]
        if first:
            entry_id = first[0][0].decode() if isinstance(first[0][0], bytes) else str(first[0][0])
            oldest = max(oldest, (now - int(entry_id.split("-")[0])) / 1000)
        if int(waiting or 0) and (listed := await lane.oldest_listed_ms()) is not None:
            oldest = max(oldest, (now - listed) / 1000)  # fair scheduling: waiting in an owner's list
        depth += int(stream_len) + int(delayed) + int(waiting or 0)  # as SUBMIT's backlog
        delayed_total += int(delayed)
        in_flight += int(pending["pending"])
        dead_total += int(dead)
        stored += int(model_bytes or 0)
    return QueueState(depth=depth, delayed=delayed_total, in_flight=in_flight, oldest_age_seconds=oldest,
                      dead=dead_total, workers_alive=int(alive), model_bytes=stored)


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


async def probe_forever(queue: PricingQueue | ShardedQueue, bound: int, interval: float = 5.0) -> None:
    """Publish the state every ``interval`` s until cancelled; Redis errors are counted, not raised."""
    metrics.BACKLOG_BOUND.set(bound)
    while not stop_requested():  # a cancel redis-py swallowed (resilience/cancellation.py) ends it too
        try:
            with closed_connection_as_connection_error():
                publish(await read_queue_state(queue), bound)
        except REDIS_ERRORS as exc:
            metrics.PROBE_ERRORS.inc()
            log.warning("pricing queue probe failed: %s", exc, extra={"event.action": "pricing-probe"})
        await asyncio.sleep(interval)
