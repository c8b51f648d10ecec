"""Publishes order-change events to Redis, off the request path.

``submit()`` never blocks and never raises: events go to a bounded in-memory queue
(the oldest is dropped when it is full, counted in ``sidecar_events_dropped_total``)
and one task writes them. Each write is one Lua script, atomic on the server:

1. ``SET orders:events:seen:{orders:events}:<order>:<status> NX EX <ttl>`` — the change was already
   published (by this sidecar's other source, or by another MES sidecar polling the
   same database) → skip it;
2. ``XADD orders:events MAXLEN ~ 100000 * <fields>`` (durable, replayable);
3. ``PUBLISH orders:events <json>`` (low-latency cache invalidation).

The dedupe key carries the stream's name as its hash tag, so both keys are in one Redis Cluster
slot (docs/redis.md); ``PUBLISH`` in a script reaches every node's subscribers on Cluster too.

Redis down: the event stays at the head of the queue and the write is retried with
back-off (0.2 s → 5 s), one warning per outage, ``sidecar_events_publish_errors_total``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from contracts.order_events import CHANNEL, STREAM, OrderEvent
from resilience.backoff import Backoff
from sharedstate.errors import REDIS_ERRORS
from sharedstate.redis_spec import AnyRedis
from sidecar import metrics

logger = logging.getLogger("sidecar.events")

SEEN_PREFIX = f"orders:events:seen:{{{STREAM}}}:"  # the stream's slot: one slot per script call

_PUBLISH = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 5))
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""


class EventPublisher:
    """Bounded queue + one writer task; build it, ``start()``, ``submit()`` events, ``aclose()``."""

    def __init__(self, client: AnyRedis, *, kind: str, instance: str, max_queue: int = 10_000,
                 stream_maxlen: int = 100_000, dedupe_ttl_s: int = 600) -> None:
        self._client = client
        self._script = client.register_script(_PUBLISH)
        self._queue: collections.deque[OrderEvent] = collections.deque()
        self._max_queue = max_queue
        self._maxlen = stream_maxlen
        self._ttl = dedupe_ttl_s
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()  # set while the queue is empty
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        labels = {"kind": kind, "legacy_instance": instance}
        self._errors = metrics.EVENTS_PUBLISH_ERRORS.labels(**labels)
        self._dropped = metrics.EVENTS_DROPPED.labels(**labels)
        self._queued = metrics.EVENTS_QUEUED.labels(**labels)
        self._labels = labels
        self.connected = True

    @property
    def queued(self) -> tuple[OrderEvent, ...]:
        """The events waiting to be published, oldest first."""
        return tuple(self._queue)

    def submit(self, event: OrderEvent) -> None:
        """Queue ``event`` for publishing; drops the oldest queued event when the queue is full."""
        if len(self._queue) >= self._max_queue:
            self._queue.popleft()
            self._dropped.inc()
        self._queue.append(event)
        self._idle.clear()
        self._queued.set(len(self._queue))
        self._wakeup.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sidecar-events")

    async def _publish(self, event: OrderEvent) -> bool:
        fields = event.to_stream_fields()
        args: list[str | int] = [self._ttl, self._maxlen, CHANNEL, event.to_json()]
        for key, value in fields.items():
            args += [key, value]
        return bool(await self._script(keys=[SEEN_PREFIX + event.dedupe_key, STREAM], args=args))

    async def _run(self) -> None:
        backoff = Backoff(base=0.2, cap=5.0)
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            event = self._queue[0]
            try:
                published = await self._publish(event)
            except REDIS_ERRORS as exc:  # RedisClusterException too: the task must not end
                self._errors.inc()
                if self.connected:
                    logger.warning("cannot publish order events, retrying: %s", exc,
                                   extra={"event.action": "events-publish", "event.outcome": "failure"})
                self.connected = False
                await asyncio.sleep(backoff.next_delay())
                continue
            if not self.connected:
                logger.info("publishing order events again", extra={"event.action": "events-publish"})
            self.connected = True
            backoff.reset()
            if self._queue and self._queue[0] is event:
                self._queue.popleft()
            self._queued.set(len(self._queue))
            if published:
                metrics.EVENTS_PUBLISHED.labels(**self._labels, type=event.type, source=event.source).inc()
            else:
                metrics.EVENTS_DUPLICATES.labels(**self._labels, source=event.source).inc()

    async def aclose(self, flush_timeout: float = 2.0) -> None:
        """Give queued events up to ``flush_timeout`` seconds, then stop (the rest is lost)."""
        if self._task is None:
            return
        if self._queue and self.connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), flush_timeout)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._queue:
            logger.warning("%d order events not published at shutdown", len(self._queue))
