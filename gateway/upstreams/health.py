"""Active health checks: one task per cluster probing every endpoint each interval.

Probes use their own small ``ClientSession`` -- never the traffic path -- so they
skip retries, the breaker and outlier detection, and a traffic pool saturated up
to ``limit_per_host`` cannot make a healthy endpoint look dead. Rounds are spaced
by ``interval`` +- ``jitter`` so many gateway workers do not probe in lockstep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence

import aiohttp

from gateway import metrics
from gateway.upstreams.config import HealthCheckConfig
from gateway.upstreams.endpoint import Endpoint

__all__ = ["HealthChecker"]

log = logging.getLogger("gateway.upstreams")


class HealthChecker:
    """Runs probe rounds and flips ``Endpoint.healthy`` after the configured thresholds."""

    def __init__(
        self,
        cluster: str,
        config: HealthCheckConfig,
        endpoints: Sequence[Endpoint],
        *,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.cluster = cluster
        self.config = config
        self.endpoints = tuple(endpoints)
        self.publish = True
        self._on_change = on_change
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._rounds_started = 0
        self._rounds_done = 0
        self._round_waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def start(self) -> None:
        """Open the probe session and start the probe loop (first round immediately)."""
        if self._task is not None:
            return
        if self.publish:  # both outcomes exist at 0: a failure rate reads 0, not "no data"
            for endpoint in self.endpoints:
                for outcome in ("success", "failure"):
                    metrics.HEALTH_CHECKS.labels(self.cluster, endpoint.url, outcome)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=2, ttl_dns_cache=10),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            auto_decompress=False,
        )
        self._task = asyncio.create_task(self._run(), name=f"health-check:{self.cluster}")

    async def aclose(self) -> None:
        """Stop the probe loop and close the probe session."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        for _, waiter in self._round_waiters:
            waiter.cancel()
        self._round_waiters.clear()

    def next_round(self) -> asyncio.Future[None]:
        """A future done when a probe round that starts *after this call* has finished.

        Not a coroutine on purpose: the round count is taken now, not when the
        caller's task first runs. Lets tests and readiness checks await health
        state instead of sleeping.
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._round_waiters.append((self._rounds_started + 1, waiter))
        return waiter

    async def check_all(self) -> None:
        """Probe every endpoint once, concurrently, and apply the thresholds."""
        self._rounds_started += 1
        results = await asyncio.gather(*(self._probe(ep) for ep in self.endpoints))
        changed = False
        for endpoint, ok in zip(self.endpoints, results, strict=True):
            changed |= self._record(endpoint, ok)
        if changed:
            self._on_change()
        self._rounds_done += 1
        still_waiting = []
        for target, waiter in self._round_waiters:
            if target <= self._rounds_done:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still_waiting.append((target, waiter))
        self._round_waiters = still_waiting

    async def _run(self) -> None:
        interval, jitter = self.config.interval, self.config.jitter
        while True:
            await self.check_all()
            await asyncio.sleep(interval * random.uniform(1.0 - jitter, 1.0 + jitter))

    async def _probe(self, endpoint: Endpoint) -> bool:
        session = self._session
        if session is None:
            raise RuntimeError("HealthChecker.start() was not awaited")
        low, high = self.config.expected_statuses
        try:
            async with session.get(endpoint.url + self.config.path, allow_redirects=False) as resp:
                ok = low <= resp.status <= high
        except (aiohttp.ClientError, OSError):  # OSError includes TimeoutError
            ok = False  # refused, reset, DNS, timeout: all mean "not healthy" here
        if self.publish:
            metrics.HEALTH_CHECKS.labels(self.cluster, endpoint.url, "success" if ok else "failure").inc()
        return ok

    def _record(self, endpoint: Endpoint, ok: bool) -> bool:
        """Update counters; True if the endpoint changed state."""
        if ok:
            endpoint.hc_failures = 0
            endpoint.hc_successes += 1
            if endpoint.healthy or endpoint.hc_successes < self.config.healthy_threshold:
                return False
            endpoint.healthy = True
            action, level = "endpoint-healthy", logging.INFO
        else:
            endpoint.hc_successes = 0
            endpoint.hc_failures += 1
            if not endpoint.healthy or endpoint.hc_failures < self.config.unhealthy_threshold:
                return False
            endpoint.healthy = False
            action, level = "endpoint-unhealthy", logging.WARNING
        if self.publish:
            gauge = metrics.UPSTREAM_ENDPOINT_HEALTHY.labels(self.cluster, endpoint.url)
            gauge.set(1 if endpoint.healthy else 0)
        log.log(
            level,
            "endpoint %s of cluster %s is now %s",
            endpoint.url, self.cluster, "healthy" if endpoint.healthy else "unhealthy",
            extra={"cluster": self.cluster, "endpoint": endpoint.url, "event.action": action},
        )
        return True
