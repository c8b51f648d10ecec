"""The rate limiter of one gateway instance: shared (Redis) mode, degraded (local) mode, switching.

- **shared**: one Lua round trip per request (``SharedWindows``); Redis calls have short socket
  and connect timeouts and no retries, so a dead Redis costs one timeout, once.
- **degraded**: the first Redis error switches the instance to local counters sized to its
  share (``LocalWindows``); requests no longer touch Redis. The heartbeat keeps probing and
  switches back when Redis answers. Each transition is logged once and counted.
- Per route, what a request gets while Redis is away: ``local`` (default), ``open`` (allowed,
  no headers) or ``closed`` (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from gateway import metrics
from gateway.errors import RateLimitUnavailable
from gateway.ratelimit.client_windows import ClientWindows
from gateway.ratelimit.decision import Decision
from gateway.ratelimit.failures import failure_reason
from gateway.ratelimit.heartbeat import Heartbeat, new_instance_id
from gateway.ratelimit.local import LocalWindows
from gateway.ratelimit.pipe import RespError, RespPipe
from gateway.ratelimit.policy import RateLimitConfig, Window
from gateway.ratelimit.shared import SharedWindows
from gateway.ratelimit.topology import Topology
from resilience.cancellation import cancel_and_wait, stop_requested
from sharedstate.errors import closed_connection_as_connection_error
from sharedstate.redis_spec import AnyRedis, parse_redis_spec

log = logging.getLogger("gateway.ratelimit")
STOP_WITHIN = 5.0  # seconds the heartbeat gets to stop (a cancel can be lost: resilience/cancellation.py)
STILL_DEGRADED_EVERY = 25  # failed probes in a row between two "still degraded" log lines
# RedisClusterException: a Cluster client that cannot reach any seed (not a RedisError)
BACKEND_ERRORS = (RedisError, RedisClusterException, RespError, OSError, asyncio.TimeoutError)


class PartnerLimiter:
    """Start with ``await start()``, stop with ``await aclose()``; ``check`` is the hot path."""

    def __init__(self, config: RateLimitConfig, *, instance_id: str | None = None) -> None:
        self.config = config
        self.instance_id = instance_id or new_instance_id()
        self.local = LocalWindows()
        self.client: AnyRedis | None = None
        self.shared: SharedWindows | ClientWindows | None = None
        self.topology: Topology | None = None
        self.heartbeat: Heartbeat | None = None
        self.degraded = False
        self.failed_probes = 0  # in a row; with the last error, said every STILL_DEGRADED_EVERY
        self._task: asyncio.Task[None] | None = None
        if config.redis_url:
            spec = parse_redis_spec(config.redis_url, "ratelimit.redis_url")
            timeout = config.socket_timeout
            self.client = spec.client(socket_timeout=timeout, socket_connect_timeout=timeout,
                                      retry=Retry(NoBackoff(), 0), health_check_interval=0,
                                      max_connections=256)
            self.topology = Topology(spec, self.client)
            # the pipe only where it can go (one server, plain TCP) and is asked for: hot_path
            use_pipe = spec.plain_tcp and config.hot_path != "redis-py"
            self.shared = (SharedWindows(RespPipe(config.redis_url, timeout=timeout), config.key_prefix)
                           if use_pipe else ClientWindows(self.client, config.key_prefix))
            self.heartbeat = Heartbeat(self.client, instance_id=self.instance_id,
                                       interval=config.heartbeat_interval)

    async def start(self) -> None:
        """First heartbeat (degraded from the start if Redis is down), then beat in the background."""
        metrics.RATELIMIT_DEGRADED.set(0)
        metrics.RATELIMIT_FAILED_PROBES.set(0)
        if self.topology is not None:
            self.topology.publish()
        if self.heartbeat is None:
            return
        await self._beat()
        self._task = asyncio.get_running_loop().create_task(self._beat_forever())

    async def aclose(self) -> None:
        if not await cancel_and_wait(self._task, within=STOP_WITHIN):
            log.error("the rate-limit heartbeat did not stop within %.1f s", STOP_WITHIN,
                      extra={"event.action": "ratelimit-stop"})
        if self.heartbeat is not None and not self.degraded:
            with contextlib.suppress(*BACKEND_ERRORS):
                await self.heartbeat.leave()
        if self.client is not None:
            with contextlib.suppress(*BACKEND_ERRORS):  # a Cluster client never connected raises here
                await self.client.aclose()
        if isinstance(self.shared, SharedWindows):
            self.shared.pipe.close()

    @property
    def instances(self) -> int:
        return self.heartbeat.instances if self.heartbeat is not None else 1

    async def check(self, windows: tuple[Window, ...], ids: tuple[tuple[str, ...], ...], *,
                    on_backend_error: str = "local") -> Decision | None:
        """The decision for one request; None = fail-open (allowed, nothing to advertise)."""
        if self.shared is None:
            return await self.local.hit(windows, ids)
        if not self.degraded:
            try:
                with closed_connection_as_connection_error():  # redis-py under uvloop (Cluster kill)
                    return await self.shared.hit(windows, ids)
            except Exception as exc:  # any failure: the store's answer is unknown, decide locally
                # redis-py's Cluster client leaks unclassified types mid-reshard (was a 500,
                # bench.failover): those are logged with their traceback, once per switch
                if not isinstance(exc, BACKEND_ERRORS) and not self.degraded:
                    log.exception("rate-limit store call failed with an unclassified error",
                                  extra={"event.action": "ratelimit-store-error"})
                metrics.RATELIMIT_BACKEND_ERRORS.labels(reason=failure_reason(exc)).inc()
                self._switch(degraded=True, reason=exc)
        if on_backend_error == "open":
            return None
        if on_backend_error == "closed":
            raise RateLimitUnavailable("the rate-limit store is unreachable", retry_after=1.0)
        return await self.local.hit(windows, ids, share=self.instances)

    # ------------------------------------------------------------ background

    async def _beat(self) -> None:
        assert self.heartbeat is not None
        try:
            with closed_connection_as_connection_error():
                count = await self.heartbeat.beat()
        except BACKEND_ERRORS as exc:
            self._probe_failed(exc)
            return
        self.failed_probes = 0
        metrics.RATELIMIT_FAILED_PROBES.set(0)
        metrics.RATELIMIT_INSTANCES.set(count)
        if self.topology is not None:
            await self.topology.observe()
        self._switch(degraded=False, reason=None)

    async def _beat_forever(self) -> None:
        """Never ends but by cancellation: an error nobody classified (a client library's bug, a
        new exception type) is a failed probe, not the end of the only way back to shared mode."""
        while not stop_requested():  # a cancel redis-py swallowed (resilience/cancellation.py) ends it too
            await asyncio.sleep(self.config.heartbeat_interval)
            if self.degraded:
                metrics.RATELIMIT_DEGRADED_SECONDS.inc(self.config.heartbeat_interval)
            try:
                await self._beat()
            except Exception as exc:
                if self.failed_probes == 0:  # once per run of failures; the rest say it every N
                    log.exception("rate-limit heartbeat failed with an unclassified error",
                                  extra={"event.action": "ratelimit-probe-error"})
                self._probe_failed(exc)

    def _probe_failed(self, exc: BaseException) -> None:
        """Degraded (if not yet); every STILL_DEGRADED_EVERY failures in a row, say so with the error."""
        metrics.RATELIMIT_BACKEND_ERRORS.labels(reason=failure_reason(exc)).inc()
        self._switch(degraded=True, reason=exc)
        self.failed_probes += 1
        metrics.RATELIMIT_FAILED_PROBES.set(self.failed_probes)
        if self.failed_probes % STILL_DEGRADED_EVERY == 0:
            log.error("rate limiting still degraded after %d failed probes in a row; last error: %s: %s",
                      self.failed_probes, type(exc).__name__, exc,
                      extra={"event.action": "ratelimit-still-degraded",
                             "gateway.instances": self.instances, "error.type": type(exc).__name__})

    def _switch(self, *, degraded: bool, reason: BaseException | None) -> None:
        if degraded == self.degraded:
            return
        self.degraded = degraded
        metrics.RATELIMIT_DEGRADED.set(1 if degraded else 0)
        metrics.RATELIMIT_MODE_SWITCHES.labels(mode="degraded" if degraded else "shared").inc()
        if not degraded:
            metrics.REDIS_RECONNECTS.labels(user="ratelimit").inc()
        if degraded:
            log.error("rate limiting degraded to local shares: Redis unreachable (%s); each of %d "
                      "instances enforces 1/%d of every limit", type(reason).__name__, self.instances,
                      self.instances, extra={"event.action": "ratelimit-degraded",
                                             "gateway.instances": self.instances})
        else:
            log.warning("rate limiting back on shared Redis counters",
                        extra={"event.action": "ratelimit-shared", "gateway.instances": self.instances})
