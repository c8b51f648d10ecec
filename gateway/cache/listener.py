"""Subscribes to the sidecar's order-change events and invalidates what they touch.

Pub/sub channel ``orders:events`` (docs/sidecar.md): one JSON object per change, read with
:func:`contracts.order_events.parse_event`, from the sidecar's proxy (changes through it) and its
database poller (changes made on the MES directly). An event it cannot read (no version, another
version, malformed) is counted by reason (``gateway_cache_events_rejected_total``), logged, and
invalidates everything: we cannot tell what changed.

Pub/sub forgets what it sent while we were away, so every (re)subscription bumps ``v:all``:
everything cached before becomes unreachable. Until the subscription is confirmed
and that bump succeeded, :attr:`connected` is False and the filter does not use the cache
(it cannot know what it missed) — correctness over hit ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisClusterException, RedisError

from contracts.order_events import CREATED, InvalidEvent, parse_event
from gateway import metrics
from gateway.cache.backends import CacheBackendError
from gateway.cache.invalidation import Invalidator
from resilience.backoff import Backoff
from resilience.cancellation import cancel_and_wait, stop_requested
from sharedstate.redis_spec import parse_redis_spec

log = logging.getLogger("gateway.cache")
STOP_WITHIN = 5.0  # seconds the feed gets to stop (a cancel can be lost: resilience/cancellation.py)


class EventListener:
    """``start()`` a background task; ``aclose()`` stops it. ``connected`` gates the cache."""

    def __init__(self, url: str, channel: str, invalidator: Invalidator) -> None:
        self.url = url
        self.channel = channel
        self.invalidator = invalidator
        self.connected = False
        self.subscriptions = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="cache-events")

    async def _handle(self, data: bytes) -> None:
        try:
            event = parse_event(data)
        except InvalidEvent as exc:  # we cannot tell what changed: nothing cached may be served
            metrics.CACHE_EVENTS_REJECTED.labels(reason=exc.reason).inc()
            log.warning("unreadable order event (%s), invalidating everything: %s", exc.reason, exc,
                        extra={"event.action": "cache-invalidate", "event.reason": exc.reason})
            await self.invalidator.everything("event")
            return
        await self.invalidator.order_changed(event.order_id, event.old_status, event.new_status,
                                             reason="event", created=event.type == CREATED)

    async def _session(self) -> None:
        client = parse_redis_spec(self.url, "cache.events_redis_url").client(
            socket_connect_timeout=2.0, health_check_interval=2)
        pubsub = None
        try:
            await client.initialize()  # a Cluster client reads its slot map first: its pub/sub needs it
            pubsub = client.pubsub()
            await pubsub.subscribe(self.channel)
            while True:  # wait for the confirmation: from here on nothing is missed
                message = await pubsub.get_message(timeout=2.0)
                if message is not None and message["type"] == "subscribe":
                    break
            await self.invalidator.everything("subscribe")
            if self.subscriptions:
                metrics.REDIS_RECONNECTS.labels(user="cache_events").inc()
            self.connected, self.subscriptions = True, self.subscriptions + 1
            metrics.CACHE_EVENTS_CONNECTED.set(1)
            log.info("cache invalidation feed subscribed", extra={"event.action": "cache-subscribe"})
            while not stop_requested():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                if message is not None and message["type"] == "message":
                    await self._handle(message["data"])
        finally:
            self.connected = False
            metrics.CACHE_EVENTS_CONNECTED.set(0)
            if pubsub is not None:
                with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                await client.aclose()

    async def _run(self) -> None:
        backoff = Backoff(base=0.1, cap=2.0)  # full jitter: many gateway workers lose Redis at once
        while not stop_requested():  # a cancel redis-py swallowed (resilience/cancellation.py) ends it too
            before = self.subscriptions
            try:
                await self._session()
            except (TimeoutError, RedisError, RedisClusterException, OSError, CacheBackendError) as exc:
                metrics.CACHE_BACKEND_ERRORS.labels(operation="events").inc()
                log.warning("cache invalidation feed lost, cache bypassed until it is back: %s", exc,
                            extra={"event.action": "cache-subscribe", "event.outcome": "failure"})
            if self.subscriptions != before:  # it was subscribed: the next wait starts short again
                backoff.reset()
            await asyncio.sleep(backoff.next_delay())

    async def aclose(self) -> None:
        if not await cancel_and_wait(self._task, within=STOP_WITHIN):
            log.error("the cache invalidation feed did not stop within %.1f s", STOP_WITHIN,
                      extra={"event.action": "cache-subscribe"})
        self._task = None
